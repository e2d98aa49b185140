"""``training_curves.png``: smoothed losses every few steps and validation metrics per epoch, for both stages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cllm4rec.core.files import atomic_file
from cllm4rec.training.log_keys import LOSS_KEYS, PLOTTED_METRIC_KEYS, TRACE_KEY, VALID_PREFIX


def plot_curves(path: Path, histories: dict[str, list[dict[str, Any]]]) -> None:
    """Draw one row per stage (losses left, validation metrics right) and write the PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    stages = [s for s, rows in histories.items() if rows]
    if not stages:
        return
    fig, axes = plt.subplots(len(stages), 2, figsize=(11, 3.6 * len(stages)), squeeze=False)
    for row, stage in enumerate(stages):
        rows = histories[stage]
        ax_loss, ax_metric = axes[row]
        for key in LOSS_KEYS:
            pts = [(r["epoch"], r[key]) for r in rows if _finite(r.get(key)) and r[key] > 0]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            style = "--" if key.endswith("_reg") else "-"
            trace = _trace(rows, key)
            if trace:  # the smoothed loss within each pass, epoch e spanning (e - 1, e]; epoch means as dots
                (line,) = ax_loss.plot(*trace, style, lw=1.2, label=key.replace("_", " "))
                ax_loss.plot(xs, ys, "o", ms=3, color=line.get_color())
            else:
                ax_loss.plot(xs, ys, style, marker="o", ms=3, label=key.replace("_", " "))
        ax_loss.set_yscale("log")  # the summed multinomial loss is ~10x the per-token LM losses
        ax_loss.set_title(f"{stage}: training losses (log scale)")
        ax_loss.set_xlabel("epoch")
        ax_loss.grid(alpha=0.3)
        if ax_loss.lines:
            ax_loss.legend(fontsize=8)
        for key in PLOTTED_METRIC_KEYS:
            pts = [(r["epoch"], r[key]) for r in rows if _finite(r.get(key))]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax_metric.plot(xs, ys, marker="o", ms=3, label=key.removeprefix(VALID_PREFIX))
        ax_metric.set_title(f"{stage}: validation")
        epochs = sorted({r["epoch"] for r in rows})
        for ax in (ax_loss, ax_metric):
            if len(epochs) <= 12:
                ax.set_xticks(epochs)
                ax.set_xlim(min(epochs[0], 1) - 1.05, epochs[-1] + 0.3)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_metric.set_xlabel("epoch")
        ax_metric.grid(alpha=0.3)
        if ax_metric.lines:
            ax_metric.legend(fontsize=8)
        else:
            ax_metric.text(
                0.5, 0.5, "no validation in this stage", ha="center", va="center", transform=ax_metric.transAxes
            )
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _trace(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]] | None:
    """The logged smoothed-loss points of ``key`` over all epochs as (x, y), x = epoch - 1 + fraction."""
    xs, ys = [], []
    for r in rows:
        for frac, value in (r.get(TRACE_KEY) or {}).get(key, []):
            if _finite(value) and value > 0:
                xs.append(r["epoch"] - 1 + frac)
                ys.append(value)
    return (xs, ys) if xs else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
