"""Markdown tables and matplotlib charts for reports (headless: Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

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
    rows: Mapping[str, Mapping[str, float]], out: Path, columns: Sequence[str] = COLUMNS, title: str = ""
) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(rows))
    for i, (name, values) in enumerate(rows.items()):
        xs = [j + i * width for j in range(len(columns))]
        ax.bar(xs, [values.get(c, 0.0) for c in columns], width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], list(columns))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


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
