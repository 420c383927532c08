"""Markdown tables and matplotlib charts for reports (headless: Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr", "cand_hr@1")


def markdown_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = COLUMNS, title: str = "") -> str:
    lines = [f"**{title}**", ""] if title else []
    lines.append("| model | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.4f}" if c in values else "-" for c in columns) + " |")
    return "\n".join(lines)


def bar_chart(
    rows: Mapping[str, Mapping[str, float]],
    out: Path,
    columns: Sequence[str] = COLUMNS,
    title: str = "",
    *,
    gains: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    reference: str | None = None,
) -> Path:
    """Write :func:`eval_all_figure` as a PNG."""
    fig = eval_all_figure(rows, columns, title, gains=gains, reference=reference)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def eval_all_figure(
    rows: Mapping[str, Mapping[str, float]],
    columns: Sequence[str] = COLUMNS,
    title: str = "",
    *,
    gains: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    reference: str | None = None,
) -> Figure:
    """Grouped bars of each model's metrics, each bar labelled with its value; below them, when ``gains`` (the
    significance table: model -> metric -> paired comparison) is given, each model's relative gain over
    ``reference`` with its bootstrap interval and p-value.

    Why the second panel: on an axis from 0 a 3% difference (0.100 vs 0.103) is invisible, and an axis cut
    above 0 exaggerates it; the gain with its interval shows both the size and whether it is noise. The number
    of users each bar was scored on goes into the legend when they differ (an LLM teacher on a subset), else
    into the title."""
    columns = [c for c in columns if any(c in v for v in rows.values())]  # no empty group for a missing metric
    names = list(rows)
    counts = {name: int(rows[name].get("num_samples", 0)) for name in names}
    differ = len(set(counts.values())) > 1
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    panels = 2 if gains else 1
    width_in = min(24.0, max(8.0, 1.5 + 0.3 * len(names) * len(columns)))
    fig, axes = plt.subplots(panels, 1, figsize=(width_in, 4.2 * panels), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(1, len(names))
    small = 6 if len(names) * len(columns) > 24 else 7
    top = 0.0
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(columns))]
        values = [float(rows[name].get(c, 0.0)) for c in columns]
        top = max(top, *values)
        label = f"{name} ({counts[name]} users)" if differ else name
        bars = ax.bar(xs, values, width=width, label=label, color=colors[name])
        ax.bar_label(bars, labels=[f"{v:.4f}" for v in values], rotation=90, fontsize=small, padding=2)
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)  # room for the value labels
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], list(columns))
    users = "" if differ or not counts else f", {next(iter(counts.values()))} users"
    ax.set_title(f"{title}{users}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if gains:
        _gain_panel(axes[1][0], gains, reference, colors, small)
    fig.tight_layout()
    return fig


def _gain_panel(
    ax: Axes,
    gains: Mapping[str, Mapping[str, Mapping[str, float]]],
    reference: str | None,
    colors: Mapping[str, str],
    fontsize: int,
) -> None:
    """Bars of the relative gain (%) per metric and model, error bars = the bootstrap interval, each annotated with
    the gain, the p-value and the users the pair was compared on."""
    names = list(gains)
    metrics = list(dict.fromkeys(m for per_metric in gains.values() for m in per_metric))
    users = {int(c["num_users"]) for per_metric in gains.values() for c in per_metric.values()}
    width = 0.8 / max(1, len(names))
    confidence = 0.95
    for i, name in enumerate(names):
        for j, metric in enumerate(metrics):
            c = gains[name].get(metric)
            if c is None or not np.isfinite(c["gain"]):
                continue
            confidence = float(c.get("confidence", confidence))
            x, gain = j + i * width, 100 * c["gain"]
            low, high = 100 * c["gain_ci_low"], 100 * c["gain_ci_high"]
            bounded = bool(np.isfinite([low, high]).all())  # NaN when a resample's reference mean is 0
            yerr = [[max(gain - low, 0.0)], [max(high - gain, 0.0)]] if bounded else None
            label = name if j == 0 else None
            ax.bar([x], [gain], width=width, color=colors.get(name), yerr=yerr, capsize=3, ecolor="black", label=label)
            text = f"{c['gain']:+.1%}\np={c['p_value']:.3f}" + ("" if bounded else "\nno interval")
            if len(users) > 1:  # the LLM teacher is compared on its own users
                text += f"\nn={int(c['num_users'])}"
            edge = (high if gain >= 0 else low) if bounded else gain
            ax.annotate(
                text,
                (x, edge),
                xytext=(0, 3 if gain >= 0 else -3),
                textcoords="offset points",
                ha="center",
                va="bottom" if gain >= 0 else "top",
                fontsize=fontsize,
            )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.margins(y=0.25)  # room for the annotations above and below
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics)
    ax.set_ylabel("relative gain (%)")
    users_note = f", {users.pop()} users" if len(users) == 1 else ""
    ax.set_title(f"gain vs {reference} ({confidence:.0%} paired bootstrap interval, sign-flip p{users_note})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def learning_curves(curves: Mapping[str, Mapping[str, list[tuple[int, float]]]], out: Path) -> Path | None:
    """curves[stage][tag] = [(step, value)]: one panel per tag family (train/loss, val/ndcg@10)."""
    tags = ("train/loss", "val/ndcg@10")
    if not any(tag in c for c in curves.values() for tag in tags):
        return None
    fig, axes = plt.subplots(1, len(tags), figsize=(10, 3.5))
    for ax, tag in zip(axes, tags):
        for stage, c in curves.items():
            if tag in c and c[tag]:
                steps, values = zip(*c[tag])
                ax.plot(steps, values, label=stage, marker="o" if tag.startswith("val") else None, markersize=3)
        ax.set_title(tag)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
