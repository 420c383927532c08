"""Every raw format on small hand-written files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from data_helpers import csv_cfg, make_cfg, write_csv

from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.data.options import dataset_options
from ilora_dllm2rec.data.prepare import load_raw


def _ml1m(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text("1::10::5::300\n1::20::3::100\n2::10::4::50\n\n1::30::1::200\n")
    (d / "movies.dat").write_bytes("10::Amélie (2001)::Comedy|Romance\n20::Heat (1995)::Action\n".encode("latin-1"))
    return d


def test_ml1m_loader_keeps_file_order_and_latin1_titles(tmp_path):
    raw = load_raw(dataset_options(make_cfg("ml-1m", _ml1m(tmp_path))))
    df = raw.interactions
    assert list(df.columns) == ["user", "item", "timestamp", "rating"]
    assert df["item"].tolist() == [10, 20, 10, 30]  # file order, blank line skipped
    assert df["timestamp"].tolist() == [300, 100, 50, 200] and df["rating"].tolist() == [5, 3, 4, 1]
    assert raw.titles == {10: "Amélie (2001)", 20: "Heat (1995)"}
    raw = load_raw(dataset_options(make_cfg("ml-1m", tmp_path / "ml-1m", limit_data_rows=2)))
    assert len(raw.interactions) == 2


def test_ml100k_loader(tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    (d / "u.item").write_bytes(
        "242|Kolya (1996)|24-Jan-1997||http://x|0|0\n302|L.A. Confidential (1997)|x||y|0\n".encode("latin-1")
    )
    raw = load_raw(dataset_options(make_cfg("ml-100k", d)))
    assert raw.interactions.values.tolist() == [[196, 242, 881250949, 3], [186, 302, 891717742, 3]]
    assert raw.titles == {242: "Kolya (1996)", 302: "L.A. Confidential (1997)"}


def test_csv_loader_with_rating_title_dates_and_custom_sep(tmp_path):
    rows = ["A;x1;2020-01-02;4.5;First", "B;x2;2020-01-01;3;Second", "A;x2;2020-01-03;2;"]
    d = write_csv(tmp_path, "uid;iid;when;stars;name", rows)
    cfg = csv_cfg(
        d, sep=";", columns={"user": "uid", "item": "iid", "timestamp": "when", "rating": "stars", "title": "name"}
    )
    raw = load_raw(dataset_options(cfg))
    df = raw.interactions
    assert df["user"].tolist() == ["A", "B", "A"] and df["item"].tolist() == ["x1", "x2", "x2"]
    assert df["timestamp"].is_monotonic_increasing is False and df["timestamp"].iloc[1] < df["timestamp"].iloc[0]
    assert df["rating"].tolist() == [4.5, 3.0, 2.0]
    assert raw.titles == {"x1": "First", "x2": "Second"}


def test_csv_integer_ids_sort_numerically(tmp_path):
    rows = ["1,10,1", "1,9,2", "1,100,3", "2,9,1", "2,7,2", "2,8,3"]
    split = prepare_data(csv_cfg(write_csv(tmp_path, "user,item,ts", rows), num_candidates=2), None)
    assert split.raw_item_ids == ["7", "8", "9", "10", "100"]
    assert split.item_titles[0] == "item 7"  # no title column -> default title


def test_amazon_json_and_literal_eval_metadata(tmp_path):
    reviews = [
        {"reviewerID": "R1", "asin": "B002", "unixReviewTime": 30, "overall": 5.0},
        {"reviewerID": "R1", "asin": "B001", "unixReviewTime": 10, "overall": 4.0},
        {"reviewerID": "R2", "asin": "B001", "unixReviewTime": 20, "overall": 3.0},
    ]
    (tmp_path / "reviews.json").write_text("".join(json.dumps(r) + "\n" for r in reviews))
    meta = [
        "{'asin': 'B001', 'title': 'Zelda\\'s   Quest', 'price': 9.99, 'related': {'also_bought': ['B9']}}",
        json.dumps({"asin": "B002", "title": "Mario Kart"}),
        "{'asin': 'B999', 'title': broken python",  # unreviewed item: skipped before parsing
    ]
    (tmp_path / "meta.json").write_text("\n".join(meta) + "\n")
    cfg = make_cfg("amazon", tmp_path, reviews_file="reviews.json", meta_file="meta.json")
    raw = load_raw(dataset_options(cfg))
    assert raw.interactions.values.tolist() == [
        ["R1", "B002", 30, 5.0],
        ["R1", "B001", 10, 4.0],
        ["R2", "B001", 20, 3.0],
    ]
    assert raw.titles == {"B001": "Zelda's Quest", "B002": "Mario Kart"}


def _write_sequence(d, L=3, statis=True, names=True):
    d.mkdir(parents=True, exist_ok=True)
    pad = 5
    files = {
        "train_data.csv": [("[0, 5, 5]", 1, 1), ("[0, 1, 5]", 2, 2), ("[5, 5, 5]", 0, 3)],
        "val_data.csv": [("[0, 1, 2]", 3, 3)],
        "test_data.csv": [("[1, 2, 3]", 3, 4)],
    }
    for name, rows in files.items():
        lines = ["seq,len_seq,next"] + [f'"{s}",{n},{t}' for s, n, t in rows]
        (d / name).write_text("\n".join(lines) + "\n")
    if statis:
        (d / "data_statis.csv").write_text(f"seq_size,item_num\n{L},{pad}\n")
    if names:
        (d / "id2name.txt").write_text("0::Alpha (1990)\n1::Beta::Gamma (1991)\n")
    return d


def test_sequence_format_rows_used_as_is(tmp_path):
    d = _write_sequence(tmp_path / "seq")
    split = prepare_data(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), None)
    assert split.num_items == 5 and split.pad_id == 5
    np.testing.assert_array_equal(split.train.seq, [[0, 5, 5], [0, 1, 5], [5, 5, 5]])
    np.testing.assert_array_equal(split.train.len_seq, [1, 2, 0])
    np.testing.assert_array_equal(split.train.target, [1, 2, 3])
    np.testing.assert_array_equal(split.train.user, [-1, -1, -1])
    assert split.item_titles[:3] == ["Alpha (1990)", "Beta::Gamma (1991)", "item 2"]
    # 5 items; the val row excludes {0,1,2,3}: target 3, then the only other item 4
    np.testing.assert_array_equal(split.val.candidates, [[3, 4]])
    np.testing.assert_array_equal(split.test.candidates, [[4, 0]])


def test_sequence_item_num_inferred_from_padding(tmp_path):
    d = _write_sequence(tmp_path / "seq", statis=False, names=False)
    split = prepare_data(make_cfg("sequence", d, max_seq_len=3, num_candidates=2), None)
    assert split.num_items == 5 and split.item_titles[0] == "item 0"


def test_sequence_whitespace_statis_and_limit_rows(tmp_path):
    d = _write_sequence(tmp_path / "seq", statis=False)
    (d / "data_statis").write_text("   seq_size  item_num\n0         3         5\n")  # pandas-printed frame
    split = prepare_data(make_cfg("sequence", d, max_seq_len=3, num_candidates=2, limit_data_rows=2), None)
    assert split.num_items == 5 and len(split.train) == 2


def test_synthetic_is_a_raw_format_too():
    raw = load_raw(dataset_options(make_cfg("synthetic", None, synthetic={"num_users": 5, "seed": 1})))
    assert set(raw.interactions.columns) == {"user", "item", "timestamp", "rating"}
    assert isinstance(raw.interactions, pd.DataFrame) and raw.interactions["user"].nunique() == 5
