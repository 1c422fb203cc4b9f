"""Pictures of positional encodings: each function takes tensors and a path and writes one PNG.

matplotlib (Agg backend, no display needed) is imported here only, so the model files never pull it
in. The data come from ``ambiguity.py`` (``absolute_encoding_tables``, ``rope_decay_curves``,
``bias_matrices``, ``attention_maps``) or from anything of the same shape.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

DPI = 100


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(count: int, columns: int, size: tuple[float, float]):
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_position_heatmaps(tables: dict[str, torch.Tensor], path, columns: int = 2) -> Path:
    """Position x dimension heatmap of each ``(P, D)`` table: position down, dimension across."""
    fig, axes = _grid(len(tables), columns, (6.0, 4.2))
    for ax, (name, table) in zip(axes, tables.items()):
        table = table.detach().float()
        if table.min() < 0:  # diverging, centred on 0; clip at the 99th percentile so outlier dims don't wash it out
            limit = table.abs().flatten().quantile(0.99).item()
            image = ax.imshow(table.numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        else:
            image = ax.imshow(table.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_title(f"{name}\n{table.shape[0]} positions x {table.shape[1]} dims", fontsize=11)
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel("position")
        fig.colorbar(image, ax=ax, label="value added to the embedding", extend="both" if table.min() < 0 else "neither")
    fig.suptitle("Absolute position encodings: the vector added to the token embedding at each position",
                 fontsize=13)
    return _save(fig, path)


def plot_position_similarity(tables: dict[str, torch.Tensor], path, columns: int = 2) -> Path:
    """``PE @ PE.T``: the dot product between the encodings of every pair of positions."""
    fig, axes = _grid(len(tables), columns, (5.2, 4.4))
    for ax, (name, table) in zip(axes, tables.items()):
        table = table.detach().double()
        similarity = (table @ table.T).float()
        # clip at the 99th percentile: one outlier row (BERT's position 0) would otherwise wash out the rest
        vmax = similarity.flatten().quantile(0.99).item()
        clipped = bool(similarity.max() > 2 * vmax)
        image = ax.imshow(similarity.numpy(), cmap="viridis", interpolation="nearest", vmax=vmax if clipped else None)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("position j")
        ax.set_ylabel("position i")
        fig.colorbar(image, ax=ax, label="PE(i) . PE(j)" + (" (clipped at 99th pct)" if clipped else ""),
                     extend="max" if clipped else "neither")
    fig.suptitle("Similarity between positions (dot products of their encodings)", fontsize=13)
    return _save(fig, path)


def plot_rope_decay(curves: dict[str, torch.Tensor], path) -> Path:
    """RoPE's relative score against distance: ``curves`` holds ``distance``, ``bound`` and ``score``."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    distance = curves["distance"].numpy()
    ax.plot(distance, curves["bound"].numpy(),
            label="RoFormer's upper bound (sec. 3.4.3): mean$_j$ |$\\sum_{i \\leq j} e^{i(m-n)\\theta_i}$|")
    ax.plot(distance, curves["score"].numpy(), label="actual score q$_m$·k$_n$ for q = k = (1, …, 1)", alpha=0.8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("relative distance m − n (tokens)")
    ax.set_ylabel("score / score at distance 0")
    ax.set_title("RoPE long-term decay (head dim 128, base 10000)")
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_bias_matrices(matrices: dict[str, torch.Tensor], path, columns: int = 2) -> Path:
    """Query x key matrices of attention biases (or T5 buckets); NaN cells (masked future) are blank."""
    fig, axes = _grid(len(matrices), columns, (5.2, 4.4))
    for ax, (name, matrix) in zip(axes, matrices.items()):
        image = ax.imshow(matrix.float().numpy(), cmap="viridis", interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        fig.colorbar(image, ax=ax, label="bucket index" if name.startswith("T5") else "bias added to the score")
    fig.suptitle("Relative position biases: ALiBi (fixed) and T5's buckets (one learned bias each)\n"
                 "blank = masked future keys", fontsize=12)
    return _save(fig, path)


def plot_attention_maps(maps: dict[tuple[str, str], torch.Tensor], tokens: list[str], path,
                        highlight: tuple[int, ...] = (), title: str = "Attention maps") -> Path:
    """Attention weights ``(T, T)`` per (encoding, mask): encodings across, masks down; tokens on both axes.

    The ``highlight`` rows (the two dogs) are boxed: without positions and without a mask they are equal.
    """
    encodings = list(dict.fromkeys(encoding for encoding, _ in maps))
    masks = list(dict.fromkeys(mask for _, mask in maps))
    labels = [token.replace("Ġ", " ").replace("▁", " ").strip() or token for token in tokens]
    labels = [f"{label} [{i}]" for i, label in enumerate(labels)]
    fig, axes = plt.subplots(len(masks), len(encodings), figsize=(3.3 * len(encodings) + 1.5, 3.0 * len(masks) + 1.5),
                             squeeze=False, layout="constrained")
    vmax = max(m.max().item() for m in maps.values())
    for r, mask in enumerate(masks):
        for c, encoding in enumerate(encodings):
            ax = axes[r, c]
            image = ax.imshow(maps[(encoding, mask)].float().numpy(), cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{'no position' if encoding == 'none' else encoding}, {mask}", fontsize=10)
            last_row = r == len(masks) - 1
            ax.set_xticks(range(len(labels)), labels if last_row else [""] * len(labels), rotation=60, ha="right",
                          fontsize=8)
            ax.set_yticks(range(len(labels)), labels if c == 0 else [""] * len(labels), fontsize=8)
            for row in highlight:
                ax.add_patch(plt.Rectangle((-0.5, row - 0.5), len(labels), 1, fill=False, ec="cyan", lw=1.5))
            if r == len(masks) - 1:
                ax.set_xlabel("key (attended to)")
            if c == 0:
                ax.set_ylabel("query")
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)
