"""Evaluation metrics shipped as local ``evaluate`` modules (no Hub download needed).

>>> from modeling_study.metrics import load_metric
>>> ppl = load_metric("perplexity")          # evaluate.load(<package>/metrics/perplexity)
>>> acc = load_metric("token_accuracy")

``causal_lm_stats(logits, labels)`` turns a causal-LM batch into the inputs both metrics take.
"""

from __future__ import annotations

from pathlib import Path

METRICS_DIR: Path = Path(__file__).resolve().parent
AVAILABLE_METRICS: tuple[str, ...] = ("perplexity", "token_accuracy")
TRANSLATION_METRICS: tuple[str, ...] = ("translation",)  # sacreBLEU's BLEU and chrF, on decoded text


def metric_path(name: str) -> Path:
    """Directory of the local ``evaluate`` module for metric ``name``."""
    if name not in AVAILABLE_METRICS + TRANSLATION_METRICS:
        raise ValueError(f"unknown metric {name!r}; available metrics: {', '.join(AVAILABLE_METRICS + TRANSLATION_METRICS)}")
    return METRICS_DIR / name


def load_metric(name: str, **kwargs):
    """``evaluate.load`` the packaged metric ``name`` ("perplexity", "token_accuracy" or "translation").

    Works offline (HF_HUB_OFFLINE=1): the module is loaded from this package, not the Hub.
    Extra keyword arguments go to ``evaluate.load``. Raises ValueError for an unknown name.
    """
    path = metric_path(name)
    import evaluate

    return evaluate.load(str(path), **kwargs)


def causal_lm_stats(logits, labels, ignore_index: int = -100, shift: bool = True) -> dict:
    """Per-sequence metric inputs from a causal-LM batch.

    Args:
        logits: float tensor ``(batch, seq, vocab)``.
        labels: int tensor ``(batch, seq)``; ``ignore_index`` marks positions not to count.
        shift: predict token t+1 from position t (Hugging Face causal-LM convention).

    Returns a dict of lists, one entry per sequence: ``nll_sum`` and ``num_tokens`` (feed
    to the perplexity metric) and ``predictions`` / ``references`` (argmax ids and labels,
    feed to token_accuracy).
    """
    import torch
    import torch.nn.functional as F

    logits = torch.as_tensor(logits)
    labels = torch.as_tensor(labels)
    if shift:
        logits = logits[:, :-1, :]
        labels = labels[:, 1:]
    nll = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        labels.reshape(-1),
        ignore_index=ignore_index,
        reduction="none",
    ).view(labels.shape)
    mask = labels != ignore_index
    return {
        "nll_sum": (nll * mask).sum(dim=1).double().tolist(),
        "num_tokens": mask.sum(dim=1).tolist(),
        "predictions": logits.argmax(dim=-1).tolist(),
        "references": labels.tolist(),
    }


__all__ = ["AVAILABLE_METRICS", "TRANSLATION_METRICS", "METRICS_DIR", "causal_lm_stats", "load_metric", "metric_path"]
