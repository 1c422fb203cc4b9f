"""The study's pictures: every curve is a mean over seeds with a band of +- one standard deviation."""

from __future__ import annotations

import math
from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(ax, xs, means, sds, **kwargs):
    points = [(x, m, s) for x, m, s in zip(xs, means, sds) if m is not None and math.isfinite(m)]
    if not points:
        return None
    xs, ms, ss = zip(*points)
    line, = ax.plot(xs, ms, **kwargs)
    lo = [m - (s or 0.0) for m, s in zip(ms, ss)]
    hi = [m + (s or 0.0) for m, s in zip(ms, ss)]
    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)
    return line


def plot_context(lm: dict, path: Path) -> None:
    """Loss against context length k (same targets at every k), per encoding, with the n-gram baselines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    ks = [int(k) for k in lm["ks"] or []]
    for row in lm["rows"]:
        means = [row["loss"].get(str(k), {}).get("mean") for k in ks]
        sds = [row["loss"].get(str(k), {}).get("sd") for k in ks]
        style = "-" if row["learned"] and row["uses_context_ok"] else "--"
        _band(ax, ks, means, sds, marker="o", markersize=3, linestyle=style,
              label=row["encoding"] + ("" if style == "-" else " (no verdict)"))
    for name, style in (("bigram", ":"), ("trigram", "-."), ("5-gram", (0, (1, 3)))):
        if name not in lm["baselines"]:
            continue
        values = [lm["baselines"][name][str(k)] for k in ks]
        ax.plot(ks, values, color="black", linestyle=style, linewidth=1, label=f"{name} (Kneser-Ney, train split)")
    L = lm["train_length"]
    ax.axvline(L - 1, color="grey", linestyle=":", linewidth=1)
    ax.text(L - 1, ax.get_ylim()[1], f" L-1 = {L - 1}: longest context in training", va="top", fontsize=8, color="grey")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length k (tokens; the same target tokens at every k)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("Loss against context length: mean ± sd over seeds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_positions(lm: dict, path: Path) -> None:
    """Loss against the token's position in a window of 8L, per encoding (bands over seeds)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for encoding, band in lm["positions"].items():
        xs = list(range(1, len(band["mean"]) + 1))
        # a moving average over 8 positions keeps the bands readable; the JSON has every position
        def smooth(values):
            out = []
            for i in range(len(values)):
                window = [v for v in values[max(0, i - 7): i + 1] if v is not None]
                out.append(sum(window) / len(window) if window else None)
            return out
        _band(ax, xs, smooth(band["mean"]), smooth(band["sd"]), linewidth=1, label=encoding)
    L = lm["train_length"]
    ax.axvline(L, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"position in a window of {8 * L} tokens (= tokens of context; trained at L = {L})")
    ax.set_ylabel("loss (nats per token, moving average of 8)")
    ax.set_title("Loss against position: mean ± sd over seeds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_norm_grid(norm: dict, path: Path) -> None:
    """Eval loss of every (placement, lr, warmup) cell, mean ± sd over seeds."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for ax, warmup in zip(axes, (True, False)):
        by_placement: dict = {}
        for cell in norm["table"]:
            if cell["warmup"] == warmup:
                by_placement.setdefault(cell["placement"], []).append(cell)
        for placement, cells in by_placement.items():
            cells.sort(key=lambda c: c["lr"])
            xs = [c["lr"] for c in cells]
            line = _band(ax, xs, [c["loss"]["mean"] for c in cells], [c["loss"]["sd"] for c in cells], marker="o",
                         label=placement)
            for c in cells:
                if c["diverged"] and line is not None:
                    ax.annotate(f"{c['diverged']} diverged", (c["lr"], c["loss"]["mean"] or 0), fontsize=7)
        ax.set_xscale("log")
        ax.set_title("with warmup" if warmup else "without warmup")
        ax.set_xlabel("peak learning rate")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    axes[0].set_ylabel("eval loss (nats per token)")
    fig.suptitle("Norm placement: the pre-registered grid (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_init_grads(norm: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for placement, profile in norm["profiles"].items():
        xs = list(range(1, len(profile["mean"]) + 1))
        _band(ax, xs, profile["mean"], profile["sd"], marker="o", label=placement)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("gradient norm of the FFN weights")
    ax.set_title("Gradient norm per layer at initialisation (cf. Xiong et al. 2020, Fig. 3)")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tasks(tasks: dict, path: Path) -> None:
    """Exact match (top) and teacher-forced token accuracy (bottom) against instance length, one column per
    task, bands over seeds: past L exact match is often 0 for all, and token accuracy still orders them."""
    plt = _plt()
    names = tasks["tasks"]
    metrics = (("exact_match", "exact match"), ("token_accuracy", "token accuracy (teacher-forced)"))
    fig, axes = plt.subplots(2, max(1, len(names)), figsize=(5 * max(1, len(names)), 7.6), sharey=True, squeeze=False)
    for (metric, label), row_axes in zip(metrics, axes):
        for ax, task in zip(row_axes, names):
            for row in (r for r in tasks["rows"] if r["task"] == task):
                xs = [int(n) for n in tasks["lengths"] if row[metric].get(n)]
                cells = [row[metric][str(n)] for n in xs]
                _band(ax, xs, [c["mean"] for c in cells], [c["sd"] for c in cells], marker="o",
                      linestyle="-" if row["learned"] else "--",
                      label=row["encoding"] + ("" if row["learned"] else " (did not learn)"))
            if tasks["lengths"]:
                ax.axvline(int(tasks["lengths"][0]), color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{task}: {label}")
            ax.set_ylim(-0.05, 1.05)
            ax.grid(True, alpha=0.3)
        row_axes[0].set_ylabel(label)
    for ax in axes[1]:
        ax.set_xlabel("instance length n (trained on n <= L, grey line)")
    for ax in axes[0]:  # one legend per task: which encodings did not learn differs between tasks
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Synthetic length generalisation (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ablations(ablations: dict, path: Path) -> None:
    """Difference in eval loss (variant - baseline) with its 95% interval, per variant."""
    plt = _plt()
    rows = [r for r in ablations["rows"] if r["difference"]["difference"]["mean"] is not None]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.6))
    for i, row in enumerate(rows):
        d = row["difference"]
        mean = d["difference"]["mean"]
        if d["interval"]:
            ax.plot(d["interval"], [i, i], color="C0", linewidth=2)
        ax.plot([mean], [i], "o", color="C0")
        ax.plot(d["difference"]["values"], [i] * len(d["difference"]["values"]), "x", color="grey", markersize=4)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(range(len(rows)), [r["variant"] for r in rows])
    ax.set_xlabel("eval loss, variant - baseline (nats; o mean, bar 95% CI, x per seed)")
    ax.set_title("One change at a time against the rope / pre-RMSNorm / SwiGLU / cosine baseline")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
