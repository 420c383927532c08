"""Teacher outputs folder: atomic write, round trip, and every rejection (ALGORITHMS.md section 7)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from ilora_dllm2rec.core import atomic
from ilora_dllm2rec.core.errors import ArtifactError, ConfigError, DataError
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.handoff import outputs as db
from ilora_dllm2rec.handoff.outputs import make_manifest, to_dense, write_teacher_outputs
from ilora_dllm2rec.handoff.outputs_reader import load_teacher_outputs

N, M, L, TOP, D = 20, 6, 4, 5, 8
FP = "datafp123"


def _train() -> SampleSet:
    rng = np.random.default_rng(0)
    seq = np.full((M, L), N, dtype=np.int64)
    lens = np.array([1, 2, 3, 4, 2, 1])
    for i, n in enumerate(lens):
        seq[i, :n] = rng.integers(0, N, n)
    return SampleSet(seq=seq, len_seq=lens, target=rng.integers(0, N, M), user=np.arange(M))


def _arrays(rows: int = M):
    rng = np.random.default_rng(1)
    ranks = np.stack([rng.permutation(N)[:TOP] for _ in range(rows)])
    conf = np.sort(rng.random((rows, TOP)) * 4, axis=1).astype(np.float32)
    return torch.randn(N, D), ranks, conf


@pytest.fixture
def train() -> SampleSet:
    return _train()


@pytest.fixture
def folder(tmp_path, train):
    emb, ranks, conf = _arrays()
    manifest = make_manifest(
        data_fingerprint=FP, train_samples=train, num_items=N, teacher_checkpoint="t.ckpt", export_time_sec=1.5
    )
    return write_teacher_outputs(tmp_path / "out", emb, ranks, conf, manifest)


def load(folder, train, **kw):
    args = {"num_items": N, "train_samples": train, "data_fingerprint": FP, "candidate_topk": 3} | kw
    return load_teacher_outputs(folder, **args)


def test_round_trip(tmp_path, train):
    emb, ranks, conf = _arrays()
    manifest = make_manifest(data_fingerprint=FP, train_samples=train, num_items=N)
    folder = write_teacher_outputs(tmp_path / "o", emb, ranks, conf, manifest)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [db.EMBEDDINGS_FILE, db.RANKS_FILE, db.CONFIDENCE_FILE, db.MANIFEST_FILE]
    )  # no temporary files left
    out = load(folder, train, candidate_topk=TOP)
    assert torch.equal(out.item_embeddings, emb)
    assert torch.equal(out.ranks, torch.from_numpy(ranks)) and out.ranks.dtype == torch.long
    assert torch.equal(out.confidences, torch.from_numpy(conf))  # %.9g is float32-exact
    assert torch.equal(out.sample_ids, torch.arange(M)) and out.order_verified
    m = out.manifest
    assert (m["top_n"], m["hidden_size"], m["num_rows"], m["num_items"]) == (TOP, D, M, N)
    assert m["train_order_fingerprint"] == train.order_fingerprint() and m["data_fingerprint"] == FP
    assert load(folder, train, candidate_topk=2).ranks.shape == (M, 2)  # truncated to candidate_topk


def test_manifest_is_written_last_and_old_manifest_removed_first(tmp_path, train, monkeypatch):
    emb, ranks, conf = _arrays()
    manifest = make_manifest(data_fingerprint=FP, train_samples=train, num_items=N)
    order = []
    real_replace = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (order.append(b.name), real_replace(a, b)))
    folder = write_teacher_outputs(tmp_path / "o", emb, ranks, conf, manifest)
    assert order[-1] == db.MANIFEST_FILE and len(order) == 4

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(db, "write_matrix", boom)
    with pytest.raises(OSError):
        write_teacher_outputs(folder, emb, ranks, conf, manifest)
    assert not (folder / db.MANIFEST_FILE).exists()  # an interrupted re-export never looks complete
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_subset_sample_ids_and_to_dense(tmp_path, train):
    emb, ranks, conf = _arrays(rows=3)
    ids = [4, 0, 2]
    manifest = make_manifest(data_fingerprint=FP, train_samples=train, num_items=N, sample_ids=ids)
    out = load(write_teacher_outputs(tmp_path / "o", emb, ranks, conf, manifest), train)
    assert out.sample_ids.tolist() == ids
    cand, dist, has = to_dense(out, M)
    assert has.tolist() == [True, False, True, False, True, False]
    assert torch.equal(cand[4], torch.from_numpy(ranks[0, :3])) and torch.equal(cand[2], torch.from_numpy(ranks[2, :3]))
    assert torch.allclose(dist[0], torch.from_numpy(conf[1, :3])) and cand[1].eq(0).all()


def test_subset_row_count_mismatch(tmp_path, train):
    emb, ranks, conf = _arrays(rows=3)
    manifest = make_manifest(data_fingerprint=FP, train_samples=train, num_items=N, sample_ids=[0, 1])
    with pytest.raises(ValueError, match="3 teacher rows but the manifest describes 2 samples"):
        write_teacher_outputs(tmp_path / "o", emb, ranks, conf, manifest)  # the exporter is guarded too
    manifest["sample_ids"] = [0, 1, 2]
    folder = write_teacher_outputs(tmp_path / "o", emb, ranks, conf, manifest)
    written = json.loads((folder / db.MANIFEST_FILE).read_text())
    (folder / db.MANIFEST_FILE).write_text(json.dumps(written | {"sample_ids": [0, 1]}))
    with pytest.raises(ArtifactError, match=r"myrank_train.txt has 3 rows but this run has 2 manifest sample_ids"):
        load(folder, train)


def _drop_last_line(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))


def test_row_count_mismatch(folder, train):
    _drop_last_line(folder / db.CONFIDENCE_FILE)
    with pytest.raises(ArtifactError, match=r"confidence_train.txt has 5 rows but this run has 6 training samples"):
        load(folder, train)


def test_order_fingerprint_mismatch(folder, train):
    shuffled = train.subset(np.array([1, 0, 2, 3, 4, 5]))
    with pytest.raises(ArtifactError, match="train_order_fingerprint=.* but this run's training samples have"):
        load(folder, shuffled)


def test_num_train_mismatch(folder, train):
    with pytest.raises(ArtifactError, match="exported for 6 training samples but this run has 5"):
        load(folder, train.subset(np.arange(5)))


def test_data_fingerprint_mismatch(folder, train):
    with pytest.raises(ArtifactError, match="data_fingerprint=datafp123 but this run's data set has other"):
        load(folder, train, data_fingerprint="other")
    load(folder, train, data_fingerprint=None)  # None: not checked


def test_num_items_mismatch(folder, train):
    with pytest.raises(ArtifactError, match="num_items=20 but this run has num_items=21"):
        load(folder, train, num_items=21)


def _rewrite(path, row, col, value):
    lines = path.read_text().splitlines()
    tokens = lines[row].split()
    tokens[col] = value
    lines[row] = " ".join(tokens)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("value", [str(N), "-1"])
def test_ids_out_of_range(folder, train, value):
    _rewrite(folder / db.RANKS_FILE, 3, 1, value)
    with pytest.raises(ArtifactError, match=rf"myrank_train.txt line 4: item id {value} outside \[0, num_items=20\)"):
        load(folder, train)


def test_embedding_rows_mismatch(folder, train):
    torch.save(torch.randn(N + 1, D), folder / db.EMBEDDINGS_FILE)
    with pytest.raises(ArtifactError, match="all_embeddings.pt has 21 rows but this run has num_items=20"):
        load(folder, train)


def test_non_finite_embeddings(folder, train):
    emb = torch.randn(N, D)
    emb[3, 2] = float("inf")
    torch.save(emb, folder / db.EMBEDDINGS_FILE)
    with pytest.raises(ArtifactError, match="all_embeddings.pt contains NaN/inf"):
        load(folder, train)


def test_hidden_size_mismatch_with_manifest(folder, train):
    torch.save(torch.randn(N, D + 1), folder / db.EMBEDDINGS_FILE)
    with pytest.raises(ArtifactError, match="hidden_size=8 but .* has D=9"):
        load(folder, train)


def test_embeddings_optional(folder, train):
    (folder / db.EMBEDDINGS_FILE).unlink()
    assert load(folder, train, load_embeddings=False).item_embeddings is None
    with pytest.raises(ArtifactError, match="all_embeddings.pt is missing"):
        load(folder, train)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_confidences(folder, train, value):
    _rewrite(folder / db.CONFIDENCE_FILE, 2, 0, value)
    with pytest.raises(ArtifactError, match=r"confidence_train.txt line 3: distance .* is not finite"):
        load(folder, train)


def test_negative_confidence(folder, train):
    _rewrite(folder / db.CONFIDENCE_FILE, 5, 4, "-0.25")
    with pytest.raises(ArtifactError, match=r"confidence_train.txt line 6: distance -0.25 is negative"):
        load(folder, train)


def test_candidate_topk_exceeds_top_n(folder, train):
    with pytest.raises(ConfigError, match="distill.candidate_topk=6 exceeds top_n=5"):
        load(folder, train, candidate_topk=6)
    with pytest.raises(ConfigError, match="candidate_topk must be >= 1"):
        load(folder, train, candidate_topk=0)


@pytest.mark.parametrize(
    "value, match",
    [("abc", r"myrank_train.txt line 3: 'abc' is not a number"), ("1.5", r"line 3: 1.5 is not an integer")],
)
def test_malformed_token(folder, train, value, match):
    _rewrite(folder / db.RANKS_FILE, 2, 1, value)
    with pytest.raises(DataError, match=match):
        load(folder, train)


def test_ragged_line(folder, train):
    path = folder / db.CONFIDENCE_FILE
    lines = path.read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:-1])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"confidence_train.txt line 5: expected 5 values like line 1, found 4"):
        load(folder, train)


def test_columns_differ_between_files(folder, train):
    path = folder / db.CONFIDENCE_FILE
    path.write_text("\n".join(" ".join(r.split()[:-1]) for r in path.read_text().splitlines()) + "\n")
    with pytest.raises(ArtifactError, match="has 5 columns but .*confidence_train.txt has 4"):
        load(folder, train)


def test_bad_manifest(folder, train):
    (folder / db.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="manifest.json is not valid JSON"):
        load(folder, train)
    (folder / db.MANIFEST_FILE).write_text(json.dumps({"num_items": N}))
    with pytest.raises(ArtifactError, match="lacks train_order_fingerprint"):
        load(folder, train)


def test_missing_files(folder, train, tmp_path):
    (folder / db.RANKS_FILE).unlink()
    with pytest.raises(ArtifactError, match="myrank_train.txt is missing"):
        load(folder, train)
    with pytest.raises(ArtifactError, match="does not exist"):
        load(tmp_path / "nowhere", train)


def test_no_manifest_mode_like_public_tooling(tmp_path, train, caplog):
    """Files as the DLLM2Rec/BIGRec tooling writes them: np.savetxt defaults, torch.save, no manifest."""
    emb, ranks, conf = _arrays()
    folder = tmp_path / "tocf"
    folder.mkdir()
    np.savetxt(folder / db.RANKS_FILE, ranks)  # '%.18e' floats
    np.savetxt(folder / db.CONFIDENCE_FILE, conf)
    torch.save(emb, folder / db.EMBEDDINGS_FILE)
    with caplog.at_level(logging.WARNING):
        out = load(folder, train, data_fingerprint=FP)
    assert "order cannot be verified" in caplog.text
    assert not out.order_verified and out.manifest == {}
    assert torch.equal(out.ranks, torch.from_numpy(ranks[:, :3]))
    _drop_last_line(folder / db.RANKS_FILE)
    with pytest.raises(ArtifactError, match="has 5 rows but this run has 6 training samples"):
        load(folder, train)
    np.savetxt(folder / db.RANKS_FILE, np.where(ranks == ranks[0, 0], N + 5, ranks))
    with pytest.raises(ArtifactError, match=r"line 1: item id 25 outside"):
        load(folder, train)


def test_to_dense_rejects_out_of_range_ids(folder, train):
    out = load(folder, train)
    with pytest.raises(ArtifactError, match="outside"):
        to_dense(out, M - 1)


def test_bridge_to_loss_with_batch_index(tmp_path, train):
    """Export a subset, look rows up by batch["index"], and train only rows that have teacher outputs."""
    from ilora_dllm2rec.distill.kd_losses import ranking_distillation_loss

    emb, ranks, conf = _arrays(rows=2)
    manifest = make_manifest(data_fingerprint=FP, train_samples=train, num_items=N, sample_ids=[1, 3])
    cand, dist, has = to_dense(load(write_teacher_outputs(tmp_path / "o", emb, ranks, conf, manifest), train), M)
    index = torch.tensor([3, 0, 1])  # a shuffled batch
    scores = torch.randn(3, N, requires_grad=True)
    neg = torch.randint(0, N, (3, 1))
    loss = ranking_distillation_loss(scores, cand[index], dist[index], neg, has[index], use_dros=False)
    loss.backward()
    assert torch.isfinite(loss) and scores.grad[1].abs().sum() == 0 and scores.grad[0].abs().sum() > 0
