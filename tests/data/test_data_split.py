"""Preprocessing and leave-one-out split on hand-made data (expected values computed by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_helpers import csv_cfg, make_cfg, write_csv

from ilora_dllm2rec.core.errors import ConfigError, DataError
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.data.options import dataset_options
from ilora_dllm2rec.data.preprocess import filter_interactions

# alice (5 items) and bob (3 items, a timestamp tie between raw items 30 and 10, file order 30 first)
HAND = [
    "bob,30,5",
    "alice,10,100",
    "alice,20,50",
    "bob,10,5",
    "alice,40,300",
    "alice,50,200",
    "bob,60,1",
    "alice,30,400",
]


@pytest.fixture
def hand(tmp_path):
    # raw ids sorted: 10->0, 20->1, 30->2, 40->3, 50->4, 60->5; N = 6 = padding id
    # alice by time: 20,10,50,40,30 -> [1,0,4,3,2]; bob: 60,30,10 (tie kept in file order) -> [5,2,0]
    # users numbered by first appearance: bob = 0, alice = 1
    return prepare_data(csv_cfg(write_csv(tmp_path, "user,item,ts", HAND), max_seq_len=2, num_candidates=2), None)


def test_leave_one_out_exact_rows(hand):
    assert hand.num_items == 6 and hand.pad_id == 6
    assert hand.raw_item_ids == ["10", "20", "30", "40", "50", "60"]
    # train: only alice (t = 1..n-3 = 1..2); bob (n = 3) has none
    np.testing.assert_array_equal(hand.train.seq, [[1, 6], [1, 0]])  # right-padded with N
    np.testing.assert_array_equal(hand.train.len_seq, [1, 2])
    np.testing.assert_array_equal(hand.train.target, [0, 4])
    np.testing.assert_array_equal(hand.train.user, [1, 1])
    # val: (x_0..x_{n-3}, x_{n-2}); alice's history [1,0,4] truncated to the last L=2
    np.testing.assert_array_equal(hand.val.seq, [[5, 6], [0, 4]])
    np.testing.assert_array_equal(hand.val.len_seq, [1, 2])
    np.testing.assert_array_equal(hand.val.target, [2, 3])
    np.testing.assert_array_equal(hand.val.user, [0, 1])
    # test: (x_0..x_{n-2}, x_{n-1})
    np.testing.assert_array_equal(hand.test.seq, [[5, 2], [4, 3]])
    np.testing.assert_array_equal(hand.test.len_seq, [2, 2])
    np.testing.assert_array_equal(hand.test.target, [0, 2])
    np.testing.assert_array_equal(hand.test.user, [0, 1])


def test_no_leakage_and_test_history_holds_val_item(hand):
    for u in (0, 1):
        val_t = hand.val.target[hand.val.user == u][0]
        test_row = np.flatnonzero(hand.test.user == u)[0]
        test_hist = hand.test.seq[test_row, : hand.test.len_seq[test_row]]
        assert test_hist[-1] == val_t  # the val target is the last item of the test history
        train_targets = set(hand.train.target[hand.train.user == u].tolist())
        assert not train_targets & {int(val_t), int(hand.test.target[test_row])}  # no item repeats here
    # the val history is a strict prefix of the test history (before truncation): alice [..0, 4] -> [4, 3]
    assert hand.val.seq[1, 1] == hand.test.seq[1, 0]


def test_candidates_on_hand_example(hand):
    # num_candidates=2: target + 1 negative; alice never saw only item 5 (raw 60)
    np.testing.assert_array_equal(hand.val.candidates[:, 0], hand.val.target)
    np.testing.assert_array_equal(hand.val.candidates[1], [3, 5])
    np.testing.assert_array_equal(hand.test.candidates[1], [2, 5])
    assert hand.test.candidates[0, 1] in (1, 3, 4)  # bob saw 5, 2, 0


def test_too_few_negatives_is_a_data_error(tmp_path):
    cfg = csv_cfg(write_csv(tmp_path, "user,item,ts", HAND), num_candidates=3)
    with pytest.raises(DataError, match="user 'alice'.*fewer than 2 negatives"):
        prepare_data(cfg, None)


def test_first_appearance_id_order(tmp_path):
    cfg = csv_cfg(write_csv(tmp_path, "user,item,ts", HAND), id_order="first_appearance", num_candidates=2)
    split = prepare_data(cfg, None)
    assert split.raw_item_ids == ["30", "10", "20", "40", "50", "60"]  # order of first appearance in the file
    np.testing.assert_array_equal(split.test.target, [1, 0])  # bob ends with raw 10, alice with raw 30


def test_titles_follow_remap(tmp_path):
    rows = ["u,b2,1,Bee", "u,a1,2,Ay", "u,c3,3,Cee", "v,d4,1,Dee", "v,a1,2,Ay", "v,b2,3,Bee"]
    cfg = csv_cfg(write_csv(tmp_path, "user,item,ts,title", rows), num_candidates=2)
    cfg["columns"]["title"] = "title"
    split = prepare_data(cfg, None)
    assert split.raw_item_ids == ["a1", "b2", "c3", "d4"]  # string ids sort lexicographically
    assert split.item_titles == ["Ay", "Bee", "Cee", "Dee"]


FILTER_ROWS = [  # user,item,rating,timestamp
    "u1,1,5,1",
    "u1,2,5,2",
    "u1,3,1,3",
    "u1,4,5,4",
    "u2,1,5,1",
    "u2,2,5,2",
    "u2,3,5,3",
    "u3,1,5,1",
    "u3,3,1,2",
    "u3,4,5,3",
]


def _frame(rows: list[str], rating: bool = False) -> pd.DataFrame:
    cols = ["user", "item", "rating", "timestamp"] if rating else ["user", "item", "timestamp"]
    df = pd.DataFrame([r.split(",") for r in rows], columns=cols)
    return df.astype({"timestamp": int, **({"rating": float} if rating else {})})


def _pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(df["user"], df["item"]))


def test_filter_order_rating_then_item_then_user():
    # min_rating drops (u1,3),(u3,3); item 3 then has 1 interaction < 2 -> (u2,3) dropped too;
    # users: u1 keeps 1,2,4 (3 >= 3), u2 and u3 keep 2 -> dropped. User-before-item would keep u2.
    opts = dataset_options(make_cfg("csv", Path("."), min_rating=3, min_item_inter=2, min_user_inter=3))
    kept = filter_interactions(_frame(FILTER_ROWS, rating=True), opts)
    assert _pairs(kept) == [("u1", "1"), ("u1", "2"), ("u1", "4")]


def test_k_core_repeats_until_stable():
    rows = [
        "u1,a,1",
        "u1,b,2",
        "u1,c,3",
        "u2,a,1",
        "u2,b,2",
        "u2,c,3",
        "u3,a,1",
        "u3,b,2",
        "u3,d,3",
        "u4,d,1",
        "u4,e,2",
        "u4,f,3",
    ]
    once = filter_interactions(
        _frame(rows), dataset_options(make_cfg("csv", Path("."), min_item_inter=2, min_user_inter=3))
    )
    # one pass: e,f (1 each) dropped at item time, then u4 (only d left) at user time; d keeps u3's row
    assert sorted(set(once["user"])) == ["u1", "u2", "u3"] and ("u3", "d") in _pairs(once)
    core = filter_interactions(
        _frame(rows), dataset_options(make_cfg("csv", Path("."), min_item_inter=2, min_user_inter=3, k_core=True))
    )
    # second pass: d now has 1 -> dropped -> u3 has 2 -> dropped; third pass changes nothing
    assert _pairs(core) == [(u, i) for u in ("u1", "u2") for i in "abc"]


def test_limit_data_rows_and_limit_users(tmp_path):
    pairs = [(3, 1), (1, 2), (3, 2), (1, 3), (3, 3), (1, 5), (2, 1), (2, 2), (2, 3), (3, 4), (1, 4), (2, 6)]
    data = write_csv(tmp_path, "user,item,ts", [f"u{u},{i},{t}" for t, (u, i) in enumerate(pairs)])
    # first 6 rows: u3 has items 1,2,3 and u1 has 2,3,5; u2 does not appear yet
    split = prepare_data(csv_cfg(data, limit_data_rows=6, num_candidates=2), None)
    assert len(split.test) == 2 and split.raw_item_ids == ["1", "2", "3", "5"]
    # limit_users keeps the first users in order of first appearance: u3 (index 0), u1 (index 1)
    split = prepare_data(csv_cfg(data, limit_users=2, num_candidates=2), None)
    np.testing.assert_array_equal(split.test.user, [0, 1])
    assert split.raw_item_ids == ["1", "2", "3", "4", "5"]  # item 6 (only u2) is gone
    np.testing.assert_array_equal(split.test.target, [3, 3])  # both end with raw item 4 -> id 3
    assert len(prepare_data(csv_cfg(data, limit_data_rows=-1, num_candidates=2), None).test) == 3


def test_min_rating_needs_ratings(tmp_path):
    with pytest.raises(ConfigError, match="dataset.min_rating"):
        prepare_data(csv_cfg(write_csv(tmp_path, "user,item,ts", HAND), min_rating=4), None)


def test_empty_after_filtering_names_the_keys(tmp_path):
    cfg = csv_cfg(write_csv(tmp_path, "user,item,ts", HAND), min_user_inter=10)
    with pytest.raises(DataError, match="min_user_inter=10") as e:
        prepare_data(cfg, None)
    assert "min_item_inter" in str(e.value) and "\n" not in str(e.value)
