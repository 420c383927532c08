"""Console tables of metrics (rich)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.table import Table

from .distributed import is_rank_zero

DEFAULT_COLUMNS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr", "cand_hr@1")


def metrics_table(
    title: str, rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = DEFAULT_COLUMNS
) -> Table:
    table = Table(title=title)
    table.add_column("model / split")
    for col in columns:
        table.add_column(col, justify="right")
    for name, values in rows.items():
        table.add_row(name, *(f"{values[c]:.4f}" if c in values else "-" for c in columns))
    return table


def print_metrics_table(title: str, rows: Mapping[str, Mapping[str, float]]) -> None:
    """Print on rank 0 only (under DDP every rank computes the same table)."""
    if is_rank_zero():
        Console(stderr=False).print(metrics_table(title, rows))
