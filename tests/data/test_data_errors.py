"""Bad inputs give one-line DataError/ConfigError messages naming the file/key and the fix."""

from __future__ import annotations

import json

import pytest
from data_helpers import csv_cfg, make_cfg, write_csv
from test_data_loaders import _ml1m, _write_sequence

from ilora_dllm2rec.core.errors import ConfigError, DataError, UserError
from ilora_dllm2rec.data import prepare_data


def _fails(cfg, kind: type[UserError], *needles: str) -> str:
    with pytest.raises(kind) as info:
        prepare_data(cfg, None)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


@pytest.mark.parametrize("variant", ["ml-100k", "ml-1m"])
def test_missing_movielens_folder_names_download_command(tmp_path, variant):
    _fails(make_cfg(variant, tmp_path / "nowhere"), DataError, "nowhere", f"bash cmd/movielens.sh {variant}")


def test_missing_movielens_file_in_existing_folder(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n")
    _fails(make_cfg("ml-100k", tmp_path), DataError, "u.item", "bash cmd/movielens.sh ml-100k")


def test_missing_files_of_other_formats_say_what_is_expected(tmp_path):
    _fails(csv_cfg(tmp_path / "none"), DataError, "interactions.csv", "user, item, ts")
    amazon = make_cfg("amazon", tmp_path, reviews_file="r.json", meta_file="m.json")
    _fails(amazon, DataError, "r.json", "m.json")
    _fails(make_cfg("sequence", tmp_path, max_seq_len=3), DataError, "train_data.csv", "val_data.csv", "test_data.csv")


def test_malformed_ml1m_line_reports_file_and_line(tmp_path):
    d = _ml1m(tmp_path)
    (d / "ratings.dat").write_text("1::10::5::300\n1::20::3::100\n\n2::oops::4::50\n")
    _fails(make_cfg("ml-1m", d), DataError, "ratings.dat: line 4", "user::item::rating::timestamp")
    (d / "ratings.dat").write_text("1::10::5::300\n1::20::3\n")
    _fails(make_cfg("ml-1m", d), DataError, "ratings.dat: line 2")
    (d / "ratings.dat").write_text("1::10::5::300\n1::20::3::1::9\n")
    _fails(make_cfg("ml-1m", d), DataError, "ratings.dat: line 2")


def test_malformed_ml100k_and_titles(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n1\t2\t3\n")
    (tmp_path / "u.item").write_text("2|Two (1990)|x\n")
    _fails(make_cfg("ml-100k", tmp_path), DataError, "u.data: line 2")
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n")
    (tmp_path / "u.item").write_text("2|Two (1990)|x\nthree|Three|y\n")
    _fails(make_cfg("ml-100k", tmp_path), DataError, "u.item: line 2", "not an integer")


def test_malformed_csv_and_amazon_lines(tmp_path):
    d = write_csv(tmp_path / "c", "user,item,ts", ["a,1,1", "b,2,2", "c,3,3,9"])
    _fails(csv_cfg(d), DataError, "interactions.csv: line 4", "4 fields")
    d = write_csv(tmp_path / "c2", "user,item,ts", ["a,1,1", "b,2,yesterday-ish"])
    _fails(csv_cfg(d), DataError, "interactions.csv: line 3", "timestamp")
    d = write_csv(tmp_path / "c3", "user,item,when", ["a,1,1"])
    _fails(csv_cfg(d), DataError, "'ts'", "dataset.columns.timestamp")
    (tmp_path / "r.json").write_text(json.dumps({"reviewerID": "a", "asin": "b", "unixReviewTime": 1}) + "\n{oops\n")
    _fails(make_cfg("amazon", tmp_path, reviews_file="r.json", meta_file=None), DataError, "r.json: line 2")
    (tmp_path / "r.json").write_text(json.dumps({"reviewerID": "a", "asin": "b"}) + "\n")
    _fails(
        make_cfg("amazon", tmp_path, reviews_file="r.json", meta_file=None),
        DataError,
        "r.json: line 1",
        "unixReviewTime",
    )


def test_config_errors():
    _fails(make_cfg("parquet", None), ConfigError, "dataset.format='parquet'", "ml-1m", "sequence", "synthetic")
    _fails(make_cfg("synthetic", None, max_seq_len=0), ConfigError, "dataset.max_seq_len", ">= 1")
    _fails(make_cfg("synthetic", None, id_order="random"), ConfigError, "dataset.id_order")
    _fails(make_cfg("synthetic", None, limit_users=0), ConfigError, "dataset.limit_users")
    _fails(make_cfg("synthetic", None, split={"method": "random"}), ConfigError, "dataset.split.method")
    _fails(make_cfg("synthetic", None, synthetic={"max_len": 1000}), ConfigError, "dataset.synthetic")


def test_empty_after_filtering(tmp_path):
    d = write_csv(tmp_path, "user,item,ts", ["a,1,1", "a,2,2", "b,1,1"])
    _fails(csv_cfg(d, min_user_inter=5), DataError, "min_user_inter=5", "min_item_inter", "min_rating", "k_core")


def test_sequence_ids_beyond_item_num(tmp_path):
    d = _write_sequence(tmp_path / "s")
    (d / "val_data.csv").write_text('seq,len_seq,next\n"[0, 1, 2]",3,3\n"[0, 7, 2]",3,1\n')
    _fails(
        make_cfg("sequence", d, max_seq_len=3, num_candidates=2),
        DataError,
        "val_data.csv: line 3",
        "item_num 5",
        "data_statis",
    )


def test_sequence_length_mismatch(tmp_path):
    d = _write_sequence(tmp_path / "s")
    _fails(
        make_cfg("sequence", d, max_seq_len=4, num_candidates=2),
        DataError,
        "train_data.csv: line 2",
        "3 ids",
        "dataset.max_seq_len=4",
    )
    (d / "test_data.csv").write_text('seq,len_seq,next\n"[1, 2, 3]",3,4\n"[1, 2]",2,4\n')
    _fails(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), DataError, "test_data.csv: line 3", "2 ids")


def test_sequence_bad_padding_and_values(tmp_path):
    d = _write_sequence(tmp_path / "s")
    (d / "test_data.csv").write_text('seq,len_seq,next\n"[1, 2, 0]",2,4\n')
    _fails(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), DataError, "test_data.csv: line 2", "padded")
    (d / "test_data.csv").write_text('seq,len_seq,next\n"[1, x, 5]",2,4\n')
    _fails(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), DataError, "test_data.csv: line 2", "integer")
    (d / "test_data.csv").write_text('seq,len_seq,next\n"[1, 2, 5]",two,4\n')
    _fails(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), DataError, "test_data.csv: line 2", "len_seq")
    (d / "test_data.csv").write_text('seq,len_seq,next\n"[1, 2, 3]",3,4\n')
    (d / "data_statis.csv").write_text("seq_size,item_num\n4,5\n")
    _fails(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), ConfigError, "seq_size=4", "max_seq_len=3")


def test_sequence_inconsistent_padding_without_statis(tmp_path):
    d = _write_sequence(tmp_path / "s", statis=False)
    (d / "val_data.csv").write_text('seq,len_seq,next\n"[0, 1, 7]",2,3\n')
    _fails(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), DataError, "padded positions", "data_statis")
