"""Evaluation through the packaged ``evaluate`` metrics (perplexity, token accuracy).

Two entry points:

* ``trainer_metric_hooks(is_causal)`` -> ``(preprocess_logits_for_metrics, compute_metrics)`` for
  ``Trainer``: logits are reduced on the fly to per-token NLL and argmax, so evaluation never holds
  a ``(N, T, vocab)`` array, and the metrics are token-weighted (exact, unlike a mean of batch losses).
* ``evaluate_perplexity(model, tokenizer_or_token_ids, block_size)``: perplexity of a causal LM on
  non-overlapping windows of ``block_size`` tokens (the study scores one model at L, 2L, 4L, 8L).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import load_metric


def token_stats(logits: torch.Tensor, labels: torch.Tensor, shift: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position NLL ``(B, T')`` (0 where ignored) and argmax ids ``(B, T')``, aligned with labels[:, 1:] if shift."""
    if shift:
        logits, labels = logits[:, :-1, :], labels[:, 1:]
    nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100, reduction="none")
    return nll.view(labels.shape), logits.argmax(dim=-1)


def _finite_or_nan(compute, **inputs) -> dict:
    try:
        return compute(**inputs)
    except ValueError:  # non-finite NLL (a diverged model): report NaN instead of failing the run
        return {}


def metrics_from_stats(nll: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Token-weighted ``loss``, ``perplexity`` and ``token_accuracy`` from per-position arrays (labels already aligned)."""
    mask = labels != -100
    perplexity = load_metric("perplexity")
    ppl = _finite_or_nan(
        perplexity.compute,
        nll_sum=np.where(mask, nll, 0.0).sum(axis=1).astype(np.float64).tolist(),
        num_tokens=mask.sum(axis=1).tolist(),
    )
    accuracy = load_metric("token_accuracy").compute(
        predictions=predictions[mask].astype(np.int64).tolist(), references=labels[mask].astype(np.int64).tolist()
    )
    return {
        "loss": ppl.get("loss", math.nan),
        "perplexity": ppl.get("perplexity", math.nan),
        "token_accuracy": accuracy["accuracy"],
        "num_tokens": int(mask.sum()),
    }


def trainer_metric_hooks(is_causal: bool):
    """``preprocess_logits_for_metrics`` and ``compute_metrics`` for a Trainer (causal: shifted labels)."""

    def preprocess_logits_for_metrics(logits, labels):
        if isinstance(logits, tuple):
            logits = logits[0]
        return token_stats(logits, labels, shift=is_causal)

    def compute_metrics(eval_pred):
        nll, predictions = eval_pred.predictions
        labels = eval_pred.label_ids[:, 1:] if is_causal else eval_pred.label_ids
        metrics = metrics_from_stats(np.asarray(nll), np.asarray(predictions), np.asarray(labels))
        # Trainer's own eval_loss is a mean of batch means; this one is weighted by tokens
        metrics["loss_per_token"] = metrics.pop("loss")
        return metrics

    return preprocess_logits_for_metrics, compute_metrics


def _token_ids(tokenizer_or_token_ids, text: str | None, path) -> torch.Tensor:
    if isinstance(tokenizer_or_token_ids, torch.Tensor):
        return tokenizer_or_token_ids.flatten().long()
    if isinstance(tokenizer_or_token_ids, (Sequence, np.ndarray)) and not isinstance(tokenizer_or_token_ids, str):
        return torch.as_tensor(np.asarray(tokenizer_or_token_ids), dtype=torch.long).flatten()
    tokenizer = tokenizer_or_token_ids
    if text is None:
        from ..data import corpus_path

        with open(path if path is not None else corpus_path("validation"), encoding="utf-8") as handle:
            text = handle.read()
    lines = [line for line in text.splitlines() if line.strip()]
    ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
    return torch.tensor([token for row in ids for token in row + [tokenizer.eos_token_id]], dtype=torch.long)


@torch.no_grad()
def evaluate_perplexity(
    model,
    tokenizer_or_token_ids,
    block_size: int,
    *,
    text: str | None = None,
    path: str | os.PathLike | None = None,
    batch_size: int = 8,
    max_tokens: int | None = None,
) -> dict:
    """Perplexity of a causal LM on non-overlapping windows of ``block_size`` tokens.

    Args:
        model: a causal LM returning ``.logits``; run in eval mode, then its mode is restored.
        tokenizer_or_token_ids: a tokenizer (then ``text``, else the file ``path``, else the embedded
            validation split is tokenised one line per document, each followed by ``</s>``) or the
            token ids themselves (a 1-D sequence or tensor).
        block_size: window length. Each window starts from an empty context, so its first token is
            not scored: a window of L tokens scores L - 1 predictions.
        max_tokens: use only the first ``max_tokens`` ids, e.g. the same budget at every length, so
            L, 2L, 4L, 8L score the same text (the tail shorter than a window is always dropped).

    Returns ``{"perplexity", "loss", "token_accuracy", "num_tokens", "num_windows", "block_size"}``,
    ``loss`` in nats per scored token; ``perplexity`` is NaN for a model with non-finite outputs.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2 (a window of 1 token scores nothing), got {block_size}")
    if not getattr(model.config, "is_causal", True):
        raise ValueError("evaluate_perplexity needs a causal LM (config.is_causal=True); a masked LM has no left-to-right perplexity.")
    ids = _token_ids(tokenizer_or_token_ids, text, path)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    num_windows = ids.numel() // block_size
    if num_windows == 0:
        raise ValueError(f"{ids.numel()} tokens are fewer than one window of block_size={block_size}.")
    windows = ids[: num_windows * block_size].view(num_windows, block_size)  # (N, L)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll, predictions = [], []
    for start in range(0, num_windows, batch_size):
        batch = windows[start : start + batch_size].to(device)
        logits = model(input_ids=batch, use_cache=False).logits  # (B, L, V)
        batch_nll, batch_pred = token_stats(logits, batch, shift=True)
        nll.append(batch_nll.cpu().double().numpy())
        predictions.append(batch_pred.cpu().numpy())
    model.train(was_training)
    labels = windows[:, 1:].numpy()
    result = metrics_from_stats(np.concatenate(nll), np.concatenate(predictions), labels)
    return {**result, "num_windows": num_windows, "block_size": block_size}


__all__ = ["evaluate_perplexity", "metrics_from_stats", "token_stats", "trainer_metric_hooks"]
