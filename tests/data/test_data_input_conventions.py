"""Conventions of files written by other tools: LLaRA/DROS empty histories, title-file encodings, duplicate rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from data_helpers import csv_cfg, make_cfg, write_csv

from ilora_dllm2rec.core.errors import DataError
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.data.options import dataset_options
from ilora_dllm2rec.data.prepare import load_raw
from ilora_dllm2rec.student.caser import Caser
from ilora_dllm2rec.student.gru4rec import GRU4Rec
from ilora_dllm2rec.student.sasrec import SASRec

PAD = 5  # item_num of the sequence fixtures: ids 0..4, padding id 5


def _write_llara(d, statis: bool = True, train=None):
    """Sequence-format folder as LLaRA / DROS write it: an empty history is all padding with len_seq = 1."""
    d.mkdir(parents=True, exist_ok=True)
    files = {
        "train_data.csv": train or [("[5, 5, 5]", 1, 0), ("[0, 5, 5]", 1, 1), ("[0, 1, 5]", 2, 2), ("[5, 5, 5]", 1, 3)],
        "val_data.csv": [("[5, 5, 5]", 1, 2), ("[0, 1, 5]", 2, 3)],
        "test_data.csv": [("[1, 2, 3]", 3, 4)],
    }
    for name, rows in files.items():
        lines = ["seq,len_seq,next"] + [f'"{s}",{n},{t}' for s, n, t in rows]
        (d / name).write_text("\n".join(lines) + "\n")
    if statis:
        (d / "data_statis.csv").write_text(f"seq_size,item_num\n3,{PAD}\n")
    return d


def _seq_cfg(d):
    return make_cfg("sequence", d, max_seq_len=3, num_candidates=2)


# -- 1. empty histories in the LLaRA / DROS convention ----------------------------------------------------------


@pytest.mark.parametrize("statis", [True, False])
def test_llara_empty_history_rows_load_as_len_seq_zero(tmp_path, caplog, statis):
    d = _write_llara(tmp_path / "s", statis=statis)
    with caplog.at_level(logging.INFO):
        split = prepare_data(_seq_cfg(d), None)
    assert split.num_items == PAD
    # kept, as the empty history this project writes: all padding, len_seq 0
    np.testing.assert_array_equal(split.train.seq, [[5, 5, 5], [0, 5, 5], [0, 1, 5], [5, 5, 5]])
    np.testing.assert_array_equal(split.train.len_seq, [0, 1, 2, 0])
    np.testing.assert_array_equal(split.train.target, [0, 1, 2, 3])
    np.testing.assert_array_equal(split.val.len_seq, [0, 2])
    assert split.val.candidates[0, 0] == 2 and split.val.candidates[0, 1] != 2
    lines = [r.getMessage() for r in caplog.records if "empty histor" in r.getMessage()]
    assert len([m for m in lines if "train_data.csv" in m]) == 1, lines
    assert any("train_data.csv" in m and " 2 " in m for m in lines), lines
    assert any("val_data.csv" in m and " 1 " in m for m in lines), lines
    assert not any("test_data.csv" in m for m in lines), lines


def _mismatch(tmp_path, row, statis=True) -> str:
    d = _write_llara(tmp_path / "m", statis=statis, train=[("[0, 1, 5]", 2, 2), row])
    with pytest.raises(DataError) as info:
        prepare_data(_seq_cfg(d), None)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("statis", [True, False])
def test_len_seq_larger_than_the_real_ids_is_named_as_such(tmp_path, statis):
    msg = _mismatch(tmp_path, ("[0, 1, 5]", 3, 2), statis)  # len_seq 3, only 2 non-padding ids
    assert "train_data.csv: line 3" in msg and "len_seq 3" in msg and "2 non-padding" in msg, msg
    assert ">= item_num" not in msg, msg


def test_all_padding_row_with_len_seq_two_is_a_mismatch(tmp_path):
    msg = _mismatch(tmp_path, ("[5, 5, 5]", 2, 2))
    assert "train_data.csv: line 3" in msg and "len_seq 2" in msg and "0 non-padding" in msg, msg


def test_non_padding_ids_beyond_len_seq_are_named_as_such(tmp_path):
    msg = _mismatch(tmp_path, ("[0, 1, 2]", 2, 3))
    assert "train_data.csv: line 3" in msg and "len_seq 2" in msg and "padded" in msg, msg


def test_ids_really_beyond_item_num_keep_their_message(tmp_path):
    msg = _mismatch(tmp_path, ("[0, 7, 5]", 2, 3))
    assert "train_data.csv: line 3" in msg and "item id 7 >= item_num 5" in msg, msg


@pytest.mark.parametrize(
    "model",
    [
        lambda: GRU4Rec(PAD, emb_size=8, hidden_size=8, max_seq_len=3, num_layers=1, dropout=0.1, head="tied"),
        lambda: SASRec(
            PAD, hidden_size=8, max_seq_len=3, num_blocks=1, num_heads=1, dropout=0.2, head="tied", positions="recency"
        ),
        lambda: Caser(
            PAD,
            hidden_size=8,
            max_seq_len=3,
            num_horizontal=2,
            filter_heights=(2,),
            num_vertical=1,
            dropout=0.2,
            head="tied",
        ),
    ],
    ids=["gru4rec", "sasrec", "caser"],
)
def test_students_score_kept_empty_histories(tmp_path, model):
    """Why the rows can stay in training: every student gives a finite, history-independent state for len_seq 0."""
    split = prepare_data(_seq_cfg(_write_llara(tmp_path / "s")), None)
    torch.manual_seed(0)
    net = model().eval()
    with torch.no_grad():
        scores = net(torch.as_tensor(split.train.seq), torch.as_tensor(split.train.len_seq))
    assert torch.isfinite(scores).all()
    torch.testing.assert_close(scores[0], scores[3])


# -- 2. encodings of title / metadata files ----------------------------------------------------------------------

ENCODINGS = {"latin-1": ("latin-1", b""), "utf-8": ("utf-8", b""), "utf-8-sig": ("utf-8", b"\xef\xbb\xbf")}
TITLE = "Misérables, Les (1995)"


def _ml100k(d, encoding: str):
    codec, bom = ENCODINGS[encoding]
    d.mkdir(parents=True, exist_ok=True)
    rows = [(1, 10, 5, 100), (1, 20, 4, 200), (1, 30, 3, 300), (2, 20, 4, 100), (2, 10, 2, 200), (2, 40, 5, 300)]
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    text = (
        f"10|Toy Story (1995)|01-Jan-1995||http://x|0\n20|{TITLE}|01-Jan-1995||http://y|0\n"
        "30|Heat (1995)|x||y|0\n40|Up (2009)|x||y|0\n"
    )
    (d / "u.item").write_bytes(bom + text.encode(codec))
    return d


def _encoding_logged(caplog, name: str, encoding: str) -> None:
    lines = [r.getMessage() for r in caplog.records if name in r.getMessage() and "encoding" in r.getMessage()]
    assert len(lines) == 1 and f"encoding {encoding}" in lines[0], lines


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_ml100k_titles_intact_in_every_encoding(tmp_path, caplog, encoding):
    d = _ml100k(tmp_path / "ml-100k", encoding)
    with caplog.at_level(logging.INFO):
        split = prepare_data(make_cfg("ml-100k", d, max_seq_len=3, num_candidates=2, write_split_csv=True), None)
    assert split.item_titles == ["Toy Story (1995)", TITLE, "Heat (1995)", "Up (2009)"]
    _encoding_logged(caplog, "u.item", encoding)
    (names,) = list(d.glob("*/id2name.txt"))  # the split CSVs: next to the data without a cache_dir
    assert names.read_text(encoding="utf-8").splitlines()[1] == f"1::{TITLE}"


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_ml1m_movies_dat_in_every_encoding(tmp_path, caplog, encoding):
    codec, bom = ENCODINGS[encoding]
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text("1::10::5::300\n1::20::3::100\n")
    (d / "movies.dat").write_bytes(bom + f"10::{TITLE}::Drama\n20::Heat (1995)::Action\n".encode(codec))
    with caplog.at_level(logging.INFO):
        raw = load_raw(dataset_options(make_cfg("ml-1m", d)))
    assert raw.titles == {10: TITLE, 20: "Heat (1995)"}
    _encoding_logged(caplog, "movies.dat", encoding)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_csv_titles_in_every_encoding(tmp_path, caplog, encoding):
    codec, bom = ENCODINGS[encoding]
    tmp_path.mkdir(exist_ok=True)
    text = f'user,item,ts,name\nA,x1,1,"{TITLE}"\nB,x2,2,Heat\n'
    (tmp_path / "interactions.csv").write_bytes(bom + text.encode(codec))
    cols = {"user": "user", "item": "item", "timestamp": "ts", "rating": None, "title": "name"}
    with caplog.at_level(logging.INFO):
        raw = load_raw(dataset_options(csv_cfg(tmp_path, columns=cols)))
    assert raw.titles == {"x1": TITLE, "x2": "Heat"}
    assert raw.interactions["user"].tolist() == ["A", "B"]
    _encoding_logged(caplog, "interactions.csv", encoding)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_amazon_metadata_in_every_encoding(tmp_path, caplog, encoding):
    codec, bom = ENCODINGS[encoding]
    (tmp_path / "r.json").write_text('{"reviewerID": "R1", "asin": "B1", "unixReviewTime": 5}\n')
    (tmp_path / "m.json").write_bytes(bom + ("{'asin': 'B1', 'title': '" + TITLE + "'}\n").encode(codec))
    with caplog.at_level(logging.INFO):
        raw = load_raw(dataset_options(make_cfg("amazon", tmp_path, reviews_file="r.json", meta_file="m.json")))
    assert raw.titles == {"B1": TITLE}
    _encoding_logged(caplog, "m.json", encoding)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_sequence_id2name_in_every_encoding(tmp_path, caplog, encoding):
    codec, bom = ENCODINGS[encoding]
    d = _write_llara(tmp_path / "s")
    (d / "id2name.txt").write_bytes(bom + f"0::{TITLE}\n1::Heat (1995)\n".encode(codec))
    with caplog.at_level(logging.INFO):
        split = prepare_data(_seq_cfg(d), None)
    assert split.item_titles[:3] == [TITLE, "Heat (1995)", "item 2"]
    _encoding_logged(caplog, "id2name.txt", encoding)


# -- 3. duplicate (user, item, timestamp) rows ---------------------------------------------------------------------


def test_duplicate_interactions_are_counted_and_kept(tmp_path, caplog):
    rows = ["A,x1,1", "A,x1,1", "A,x2,2", "A,x3,3", "A,x3,3", "A,x3,3", "A,x3,4", "B,x1,1"]
    d = write_csv(tmp_path, "user,item,ts", rows)
    with caplog.at_level(logging.INFO):
        raw = load_raw(dataset_options(csv_cfg(d)))
    assert len(raw.interactions) == len(rows)  # kept, as before
    lines = [r.getMessage() for r in caplog.records if "duplicate (user" in r.getMessage()]
    assert len(lines) == 1 and "interactions.csv" in lines[0] and "3 duplicate" in lines[0], lines


def test_duplicates_in_movielens_ratings_are_counted(tmp_path, caplog):
    d = _ml100k(tmp_path / "ml-100k", "latin-1")
    (d / "u.data").write_text("1\t10\t5\t100\n1\t10\t4\t100\n1\t20\t4\t200\n")  # same (user, item, ts), other rating
    with caplog.at_level(logging.INFO):
        raw = load_raw(dataset_options(make_cfg("ml-100k", d)))
    assert len(raw.interactions) == 3
    lines = [r.getMessage() for r in caplog.records if "duplicate (user" in r.getMessage()]
    assert len(lines) == 1 and "u.data" in lines[0] and "1 duplicate" in lines[0], lines


def test_no_duplicate_line_without_duplicates(tmp_path, caplog):
    d = write_csv(tmp_path, "user,item,ts", ["A,x1,1", "A,x1,2", "B,x1,1"])
    with caplog.at_level(logging.INFO):
        load_raw(dataset_options(csv_cfg(d)))
    assert not [r for r in caplog.records if "duplicate (user" in r.getMessage()]
