"""Schema of the data and model groups: dataset (one variant per ``dataset.format``) and student (one per
``student.name``; also the ID teachers' ``teacher.model``). One field per key: type, default (= the YAML's),
range (core/schema.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from .schema import DROPOUT, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Range, Section, at_least, between, frozen, key

# null or -1 = no limit
LIMIT = Range(lambda v: v == -1 or v >= 1, "a positive integer, -1 or null")


# -- dataset -----------------------------------------------------------------------------------------------
@frozen
class Split(Section):
    method: Literal["leave_one_out"] = key("leave_one_out")


@frozen
class Dataset(Section):
    """Keys of every format; the subclasses add each format's own (``dataset.format`` chooses)."""

    name: str = key(rule=Range(bool, "a non-empty string"))
    format: Literal["ml-1m", "ml-100k", "csv", "amazon", "sequence", "synthetic"] = key()
    data_dir: str | None = key()
    max_seq_len: int = key(50, POSITIVE_INT)
    limit_data_rows: int | None = key(None, LIMIT)
    num_candidates: int = key(20, at_least(2))
    candidate_seed: int = key(0, NON_NEGATIVE)
    prompt_template: str = key("movies")
    variant_key = "format"
    removed = {"item_kind": "nothing read it; the prompt's wording is dataset.prompt_template"}

    def rules(self) -> Iterator[tuple[str, str]]:
        if self.data_dir is None and self.format != "synthetic":
            yield "data_dir", f"{{key}} must be set for dataset.format={self.format}"


@frozen
class Interactions(Dataset):
    """Raw interaction logs, filtered and split leave-one-out by the platform."""

    min_rating: float | None = key(None)
    min_user_inter: int = key(5, NON_NEGATIVE)
    min_item_inter: int = key(0, NON_NEGATIVE)
    k_core: bool = key(False)
    limit_users: int | None = key(None, LIMIT)
    id_order: Literal["sorted", "first_appearance"] = key("sorted")
    split: Split = key(Split)
    write_split_csv: bool = key(False)


@frozen
class Columns(Section):
    user: str = key("user_id")
    item: str = key("item_id")
    timestamp: str = key("timestamp")
    rating: str | None = key(None)
    title: str | None = key(None)


@frozen
class CsvDataset(Interactions):
    prompt_template: str = key("generic")
    file: str = key("interactions.csv")
    sep: str = key(",")
    columns: Columns = key(Columns)


@frozen
class AmazonDataset(Interactions):
    reviews_file: str = key("Video_Games_5.json")
    meta_file: str | None = key("meta_Video_Games.json")
    min_item_inter: int = key(5, NON_NEGATIVE)
    k_core: bool = key(True)
    prompt_template: str = key("games")


@frozen
class SequenceDataset(Dataset):
    max_seq_len: int = key(10, POSITIVE_INT)
    train_file: str = key("train_data.csv")
    val_file: str = key("val_data.csv")
    test_file: str = key("test_data.csv")
    data_statis: str | None = key(None)
    id2name_file: str | None = key("id2name.txt")


@frozen
class SyntheticSettings(Section):
    num_users: int = key(600, POSITIVE_INT)
    num_items: int = key(400, POSITIVE_INT)
    num_genres: int = key(12, POSITIVE_INT)
    min_len: int = key(12, POSITIVE_INT)
    max_len: int = key(60, POSITIVE_INT)
    drift: float = key(0.15, between(0, 1))
    popularity_skew: float = key(1.1, NON_NEGATIVE)
    markov: float = key(0.5, between(0, 1))
    seed: int = key(7, NON_NEGATIVE)


@frozen
class SyntheticDataset(Interactions):
    synthetic: SyntheticSettings = key(SyntheticSettings)

    def rules(self) -> Iterator[tuple[str, str]]:
        yield from super().rules()
        p = self.synthetic
        if not p.min_len <= p.max_len <= p.num_items - self.num_candidates:
            yield (
                "synthetic",
                (
                    "{key} needs min_len <= max_len <= num_items - num_candidates, got "
                    f"{p.min_len}, {p.max_len}, {p.num_items} - {self.num_candidates}"
                ),
            )


Dataset.variants = {
    "ml-1m": Interactions,
    "ml-100k": Interactions,
    "csv": CsvDataset,
    "amazon": AmazonDataset,
    "sequence": SequenceDataset,
    "synthetic": SyntheticDataset,
}


# -- student models (the student group; teacher.model of the ID teachers) -----------------------------------
@frozen
class StudentModel(Section):
    name: Literal["sasrec", "gru4rec", "caser"] = key()
    emb_size: int = key(64, POSITIVE_INT)
    hidden_size: int = key(64, POSITIVE_INT)
    max_seq_len: int = key(50, Range(lambda v: v >= 1, "an integer >= 1 (it defaults to dataset.max_seq_len)"))
    dropout: float = key(0.2, DROPOUT)
    head: Literal["tied", "linear"] = key("tied")
    history_bias: bool = key(True)
    loss: Literal["ce", "bce", "dros"] = key("ce")
    n_neg: int = key(1, POSITIVE_INT)
    dros_alpha: float = key(0.1, NON_NEGATIVE)
    dros_beta: float = key(1.0, POSITIVE)
    variant_key = "name"

    def same_size_rule(self) -> Iterator[tuple[str, str]]:
        if self.emb_size != self.hidden_size:
            yield (
                "emb_size",
                (
                    f"{self.name} needs {{key}} == hidden_size (the tied head), "
                    f"got {self.emb_size} and {self.hidden_size}"
                ),
            )


@frozen
class SasrecModel(StudentModel):
    num_blocks: int = key(1, NON_NEGATIVE)
    num_heads: int = key(1, POSITIVE_INT)
    positions: Literal["recency", "absolute"] = key("recency")

    def rules(self) -> Iterator[tuple[str, str]]:
        yield from self.same_size_rule()
        if self.hidden_size % self.num_heads:
            yield "num_heads", f"{{key}} ({self.num_heads}) must divide hidden_size ({self.hidden_size})"


@frozen
class Gru4recModel(StudentModel):
    dropout: float = key(0.1, DROPOUT)
    num_layers: int = key(1, POSITIVE_INT)


@frozen
class CaserModel(StudentModel):
    num_horizontal: int = key(16, POSITIVE_INT)
    filter_heights: list[int] = key([2, 3, 4], Range(bool, "a non-empty list of integers"))
    num_vertical: int = key(4, POSITIVE_INT)

    def rules(self) -> Iterator[tuple[str, str]]:
        yield from self.same_size_rule()
        if not all(1 <= h <= self.max_seq_len for h in self.filter_heights):
            yield (
                "filter_heights",
                (
                    f"{{key}} must be non-empty integers in [1, max_seq_len={self.max_seq_len}], "
                    f"got {self.filter_heights}"
                ),
            )


StudentModel.variants = {"sasrec": SasrecModel, "gru4rec": Gru4recModel, "caser": CaserModel}


@frozen
class StudentTraining(Section):
    """The student group's own training values (the student stage's train.batch_size, train.lr ... are them)."""

    batch_size: int = key(256, POSITIVE_INT)
    lr: float = key(1e-3, POSITIVE)
    weight_decay: float = key(0.0, NON_NEGATIVE)
    num_epochs: int = key(200, POSITIVE_INT)


@frozen
class SasrecStudent(SasrecModel, StudentTraining):
    pass


@frozen
class Gru4recStudent(Gru4recModel, StudentTraining):
    pass


@frozen
class CaserStudent(CaserModel, StudentTraining):
    pass


@frozen
class Student(StudentModel, StudentTraining):
    """The ``student`` group: a model and its training values."""


Student.variants = {"sasrec": SasrecStudent, "gru4rec": Gru4recStudent, "caser": CaserStudent}
