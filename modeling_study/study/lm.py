"""Language-model measurements that separate context from position.

Press et al. (2022, arXiv:2108.12409) score one model on non-overlapping windows of L, 2L, ..., 8L
tokens. Windows of different lengths hold different shares of short-context predictions (every
window restarts from an empty context), so a longer window earns a lower loss for free. Here:

* ``context_losses``: a fixed set of target tokens, each scored with its context cut to the last k
  tokens, for every k of a grid from 1 to 8L. Every k scores the *same* tokens, each with exactly k
  tokens of context; k <= L - 1 is what training saw, k >= L is extrapolation. The loss against k
  says both whether a model uses its context and what happens past L.
* ``position_losses``: the validation stream cut into windows of 8L tokens, the mean loss of the
  token at each position 0 .. 8L - 1 (a token at position p has p tokens of context).

Both return plain lists (JSON), and the per-target losses are kept so a new view of a cached run
does not retrain.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def context_grid(train_length: int, factor: int = 8) -> list[int]:
    """Context lengths k: 1, 2, 4, ... below L, then L - 1 (the longest context training saw), 2L - 1, ..., factor*L - 1."""
    ks, k = [], 1
    while k < train_length - 1:
        ks.append(k)
        k *= 2
    m = 1
    while m <= factor:
        ks.append(m * train_length - 1)
        m *= 2
    return sorted(set(ks))


def target_positions(stream_length: int, max_context: int, count: int) -> np.ndarray:
    """``count`` evenly spaced target indices, each with at least ``max_context`` tokens before it."""
    available = stream_length - max_context
    if available < count:
        raise ValueError(f"the stream has {stream_length} tokens: too few for {count} targets with "
                         f"{max_context} tokens of context each (lower the target count or the lengths).")
    stride = available // count
    return max_context + stride * np.arange(count)


@torch.no_grad()
def context_losses(model, stream: torch.Tensor, targets: np.ndarray, ks: list[int], *, max_position: int | None = None,
                   tokens_per_batch: int = 16384) -> dict:
    """NLL (nats) of ``stream[t]`` given ``stream[t-k:t]``, for every target t and every k.

    Returns ``{str(k): list of per-target NLL}``; a k whose inputs reach past ``max_position`` (a
    bounded encoding's table) maps to None.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stream = stream.long()
    t = torch.as_tensor(targets, dtype=torch.long)
    out = {}
    for k in ks:
        if max_position is not None and k > max_position:
            out[str(k)] = None
            continue
        windows = torch.stack([stream[i - k : i] for i in t.tolist()])  # (N, k)
        labels = stream[t]  # (N,)
        nll = []
        batch = max(1, tokens_per_batch // k)
        for start in range(0, len(windows), batch):
            ids = windows[start : start + batch].to(device)
            logits = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1].float()  # (B, V)
            nll.append(F.cross_entropy(logits, labels[start : start + batch].to(device), reduction="none").cpu())
        out[str(k)] = [round(float(x), 5) for x in torch.cat(nll)]
    model.train(was_training)
    return out


@torch.no_grad()
def position_losses(model, stream: torch.Tensor, window: int, max_tokens: int, *, batch_size: int = 8) -> list[float]:
    """Mean NLL of the token at each position 1 .. window - 1 of non-overlapping windows (position 0 has no prediction)."""
    stream = stream[:max_tokens].long()
    n = stream.numel() // window
    if n == 0:
        raise ValueError(f"{stream.numel()} tokens are fewer than one window of {window}.")
    windows = stream[: n * window].view(n, window)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(window - 1, dtype=torch.float64)
    for start in range(0, n, batch_size):
        ids = windows[start : start + batch_size].to(device)
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
        total += nll.view(ids.size(0), window - 1).sum(0).double().cpu()
    model.train(was_training)
    return [round(float(x), 5) for x in total / n]


def mean_losses(per_target: dict) -> dict:
    """``{k: mean NLL}`` from ``context_losses``' output (None stays None)."""
    return {k: (None if v is None else float(np.mean(v))) for k, v in per_target.items()}


__all__ = ["context_grid", "context_losses", "mean_losses", "position_losses", "target_positions"]
