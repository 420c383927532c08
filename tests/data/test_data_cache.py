"""Split cache: hits skip the raw files, the key follows config and file identity; CSV export round-trips."""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
from data_helpers import make_cfg

from ilora_dllm2rec.data import prepare as prepare_mod
from ilora_dllm2rec.data import prepare_data, write_split_csv
from ilora_dllm2rec.data.loaders_movielens import ml100k_files


def _ml100k(d, n_users=6, n_items=40):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = [
        f"{u}\t{i}\t{rng.integers(1, 6)}\t{1000 + k}"
        for k, (u, i) in enumerate(
            (u, i) for u in range(1, n_users + 1) for i in rng.choice(np.arange(1, n_items + 1), 8, replace=False)
        )
    ]
    (d / "u.data").write_text("\n".join(rows) + "\n")
    (d / "u.item").write_text("".join(f"{i}|Movie {i} (1990)|x\n" for i in range(1, n_items + 1)))
    return d


def _boom(opts):
    raise AssertionError("raw files were read although the cache should have been used")


def _assert_same(a, b):
    assert a.summary() == b.summary() and a.item_titles == b.item_titles and a.raw_item_ids == b.raw_item_ids
    for part in ("train", "val", "test"):
        x, y = getattr(a, part), getattr(b, part)
        for f in ("seq", "len_seq", "target", "user", "candidates"):
            if getattr(x, f) is None:
                assert getattr(y, f) is None
            else:
                np.testing.assert_array_equal(getattr(x, f), getattr(y, f))
                assert getattr(y, f).dtype == np.int64


def test_second_call_loads_cache_without_reading_raw_files(tmp_path, monkeypatch, caplog):
    cfg = make_cfg("ml-100k", _ml100k(tmp_path / "raw"), max_seq_len=5)
    first = prepare_data(cfg, tmp_path / "cache")
    folder = tmp_path / "cache" / f"t-ml-100k_{first.fingerprint}"
    assert (folder / "splits.npz").is_file() and (folder / "meta.json").is_file()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temp leftovers
    monkeypatch.setitem(prepare_mod.RAW_FORMATS, "ml-100k", (ml100k_files, _boom))
    with caplog.at_level(logging.INFO):
        second = prepare_data(cfg, tmp_path / "cache", logging.getLogger("t"))
    assert "loaded cached splits from" in caplog.text
    _assert_same(first, second)
    with pytest.raises(AssertionError, match="raw files were read"):
        prepare_data(cfg, None)  # no cache dir: always rebuilds


def test_cache_key_follows_config_and_file_identity(tmp_path):
    raw = _ml100k(tmp_path / "raw")
    base = prepare_data(make_cfg("ml-100k", raw, max_seq_len=5), tmp_path / "cache").fingerprint
    assert prepare_data(make_cfg("ml-100k", raw, max_seq_len=6), tmp_path / "cache").fingerprint != base
    assert prepare_data(make_cfg("ml-100k", raw, max_seq_len=5, candidate_seed=1), None).fingerprint != base
    # keys that cannot change the arrays do not change the key
    same = make_cfg("ml-100k", raw, max_seq_len=5, write_split_csv=True, prompt_template="x")
    assert prepare_data(same, None).fingerprint == base
    # a copied folder with identical bytes keeps the key, whatever the timestamps (re-extracted downloads) ...
    shutil.copytree(raw, tmp_path / "moved", copy_function=shutil.copyfile)
    st = os.stat(tmp_path / "moved" / "u.data")
    os.utime(tmp_path / "moved" / "u.data", ns=(st.st_atime_ns, st.st_mtime_ns + 10**12))
    assert prepare_data(make_cfg("ml-100k", tmp_path / "moved", max_seq_len=5), None).fingerprint == base
    # ... an edited file (same size, one byte changed) does not
    data = (raw / "u.data").read_bytes()
    (raw / "u.data").write_bytes(data[:-2] + (b"4" if data[-2:-1] != b"4" else b"3") + data[-1:])
    assert prepare_data(make_cfg("ml-100k", raw, max_seq_len=5), None).fingerprint != base


def test_synthetic_cache_and_fingerprint_follow_seed(tmp_path):
    from data_helpers import synthetic_cfg

    a = prepare_data(synthetic_cfg(), tmp_path)
    b = prepare_data(synthetic_cfg(synthetic={"seed": 4}), tmp_path)
    assert a.fingerprint != b.fingerprint and len(list(tmp_path.iterdir())) == 2


def test_write_split_csv_round_trips_as_sequence_format(tmp_path):
    cfg = make_cfg("ml-100k", _ml100k(tmp_path / "raw"), max_seq_len=5, write_split_csv=True)
    split = prepare_data(cfg, tmp_path / "cache")
    folder = tmp_path / "cache" / f"t-ml-100k_{split.fingerprint}"
    for name in ("train.csv", "val.csv", "test.csv", "data_statis.csv", "id2name.txt"):
        assert (folder / name).is_file()
    head = (folder / "train.csv").read_text().splitlines()[:2]
    assert head[0] == "seq,len_seq,next,user" and head[1].startswith('"[') and ", " in head[1]
    seq_cfg = make_cfg(
        "sequence", folder, max_seq_len=5, train_file="train.csv", val_file="val.csv", test_file="test.csv"
    )
    back = prepare_data(seq_cfg, None)
    assert back.num_items == split.num_items and back.item_titles == split.item_titles
    for part in ("train", "val", "test"):
        for f in ("seq", "len_seq", "target", "user"):
            np.testing.assert_array_equal(getattr(getattr(back, part), f), getattr(getattr(split, part), f))
    out = write_split_csv(split, tmp_path / "explicit")
    assert [p.name for p in out][:3] == ["train.csv", "val.csv", "test.csv"]


def test_cache_entry_contents_concurrent_save_and_corrupt_entry(tmp_path):
    import json

    from ilora_dllm2rec.core.errors import ArtifactError
    from ilora_dllm2rec.data.cache import save_split

    cfg = make_cfg("ml-100k", _ml100k(tmp_path / "raw"), max_seq_len=5)
    split = prepare_data(cfg, tmp_path / "cache")
    folder = tmp_path / "cache" / f"t-ml-100k_{split.fingerprint}"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["fingerprint"] == split.fingerprint and meta["num_items"] == split.num_items
    assert meta["item_titles"] == split.item_titles and meta["raw_item_ids"] == split.raw_item_ids
    before = (folder / "splits.npz").stat().st_mtime_ns
    save_split(split, folder)  # a second writer (another rank) keeps the complete entry
    assert (folder / "splits.npz").stat().st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [folder.name]
    (folder / "splits.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="delete that folder"):
        prepare_data(cfg, tmp_path / "cache")
