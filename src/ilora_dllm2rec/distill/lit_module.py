"""Lightning module for distillation: the student's base loss + rd_weight * L_RD (+ listwise_weight * L_KD).

``L_RD`` takes the form of ``distill.rd_form`` (``bce``: DLLM2Rec's per-candidate sigmoid form; ``softmax``:
the same weights under the student's softmax, for ``ce`` students); ``L_KD`` is the listwise soft-target
term over the teacher's exported top-N (distill/softmax_kd.py). Teacher knowledge is held as dense
per-training-row tensors (candidate ids, distances, and a mask of rows that get the KD loss), looked up
by ``batch["index"]``; no per-batch I/O or parsing. ``L_RD`` uses the first ``candidate_topk`` columns,
``L_KD`` the first ``listwise_topn`` (every loaded column when null). With ``function_matching_weight`` > 0 the
export's ID teacher is also queried every step on each selected input with one item appended (``L_FM``,
distill/function_matching.py); it is held outside the module's children, so it is neither trained nor saved.
"""

from __future__ import annotations

import torch

from ..student.factory import student_spec
from ..student.lit_module import StudentLitModule
from .function_matching import append_item, function_matching_loss, sample_from_teacher
from .kd_losses import distill_spec, kd_negatives, ranking_distillation_loss, ranking_loss_kwargs
from .softmax_kd import listwise_kd_loss, resolve_rd_form, softmax_kd_kwargs, softmax_ranking_distillation_loss


class DistillLitModule(StudentLitModule):
    def __init__(self, *args, distill_cfg: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.distill_cfg = distill_cfg
        spec = distill_spec(distill_cfg)
        self.rd_weight = float(spec.rd_weight)
        self.use_ranking = spec.use_ranking_distill
        self.n_neg = spec.n_neg
        student_loss = student_spec(self.hparams.student_cfg).loss
        self.kd_kwargs = ranking_loss_kwargs(distill_cfg, student_loss=student_loss)
        self.rd_form = resolve_rd_form(spec.rd_form, student_loss)
        self.rd_temperature = float(spec.rd_temperature)
        self.candidate_topk = spec.candidate_topk
        self.listwise_weight = float(spec.listwise_weight)
        self.listwise_topn = spec.listwise_topn
        self.listwise_kwargs = softmax_kd_kwargs(distill_cfg)
        self.fm_weight = float(spec.function_matching_weight)
        self.fm_temperature = float(spec.function_matching_temperature)
        self.mean_over = spec.rd_mean
        self._fm_teacher: list[torch.nn.Module] = []  # a plain list: not a child module (not trained, not saved)
        self._fm_generator: torch.Generator | None = None
        # filled by set_teacher_knowledge; not persistent: checkpoints hold only the student
        self.register_buffer("cand_ids", torch.zeros(0, 0, dtype=torch.long), persistent=False)
        self.register_buffer("cand_dist", torch.zeros(0, 0), persistent=False)
        self.register_buffer("kd_mask", torch.zeros(0, dtype=torch.bool), persistent=False)

    def set_teacher_knowledge(self, cand_ids: torch.Tensor, cand_dist: torch.Tensor, kd_mask: torch.Tensor) -> None:
        """Dense [num_train, K] candidates/distances and [num_train] bool: rows that get the KD loss."""
        self.cand_ids = cand_ids.long()
        self.cand_dist = cand_dist.float()
        self.kd_mask = kd_mask.bool()

    def set_function_matching_teacher(self, teacher: torch.nn.Module) -> None:
        """The frozen teacher ``L_FM`` queries (an ID teacher with ``score(seq, len_seq)``)."""
        teacher.eval().requires_grad_(False)
        self._fm_teacher = [teacher]

    def on_fit_start(self) -> None:
        if self._fm_teacher:
            self._fm_teacher[0].to(self.device)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        scores, base, parts = self.base_loss(batch)
        loss = base
        size = batch["target"].shape[0]
        if self.cand_ids.numel():
            idx = batch["index"]
            mask = self.kd_mask[idx]
            if self.use_ranking and self.rd_weight > 0:
                l_rd = self.ranking_term(batch, scores, idx, mask)
                loss = loss + self.rd_weight * l_rd
                self.log("train/l_rd", l_rd.detach(), batch_size=size)
            if self.listwise_weight > 0:
                n = self.listwise_topn
                l_kd = listwise_kd_loss(
                    scores.float(), self.cand_ids[idx, :n], self.cand_dist[idx, :n], mask, **self.listwise_kwargs
                )
                loss = loss + self.listwise_weight * l_kd
                self.log("train/l_kd", l_kd.detach(), batch_size=size)
            if self.fm_weight > 0 and self._fm_teacher:
                l_fm = self.function_matching_term(batch, idx, mask)
                loss = loss + self.fm_weight * l_fm
                self.log("train/l_fm", l_fm.detach(), batch_size=size)
        self.check_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/base_loss", base.detach(), batch_size=size)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=size)
        return loss

    def function_matching_term(self, batch: dict, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``L_FM`` on the selected rows, each with one item from the teacher's exported top-N appended."""
        size = batch["target"].shape[0]
        rows = torch.nonzero(mask).squeeze(1)
        if rows.numel() == 0:
            return self.cand_dist.new_zeros(())
        if self._fm_generator is None or self._fm_generator.device != self.device:
            self._fm_generator = torch.Generator(device=self.device)
            self._fm_generator.manual_seed(int(self.hparams.seed) + 2000 + 1000 * self.global_rank)
        items = sample_from_teacher(self.cand_ids[idx[rows]], self.cand_dist[idx[rows]], self._fm_generator)
        seq, len_seq = append_item(batch["seq"][rows], batch["len_seq"][rows], items)
        with torch.no_grad():
            teacher_scores = self._fm_teacher[0].score(seq, len_seq)
        denominator = size if self.mean_over == "batch" else rows.numel()
        return function_matching_loss(
            self.model(seq, len_seq), teacher_scores, temperature=self.fm_temperature, batch_rows=denominator
        )

    def ranking_term(self, batch: dict, scores: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``L_RD`` over the teacher's top ``candidate_topk``, in the form ``distill.rd_form`` resolved to."""
        k = self.candidate_topk
        cand_ids, cand_dist = self.cand_ids[idx, :k], self.cand_dist[idx, :k]
        if self.rd_form == "softmax":
            weights = {key: self.kd_kwargs[key] for key in _WEIGHT_KEYS}
            return softmax_ranking_distillation_loss(
                scores.float(),
                cand_ids,
                cand_dist,
                mask,
                temperature=self.rd_temperature,
                mean_over=self.kd_kwargs["mean_over"],
                **weights,
            )
        generator = self.negative_generator()
        num_items = self.model.num_items
        negatives = kd_negatives(batch["seq"], batch["target"], cand_ids, num_items, self.n_neg, generator=generator)
        return ranking_distillation_loss(
            scores.float(), cand_ids, cand_dist, negatives, mask, propensity=self.propensity, **self.kd_kwargs
        )


_WEIGHT_KEYS = ("gamma_position", "gamma_confidence", "gamma_consistency", "lam_position")
