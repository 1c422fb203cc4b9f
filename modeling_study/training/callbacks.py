"""Trainer callbacks: a record of the loss curve, and divergence detection.

A run diverges when a logged training loss or gradient norm is NaN or Inf, or when the loss climbs
above ``blowup_factor`` times the lowest loss seen so far (post-norm at a high learning rate does
both). ``DivergenceCallback`` then logs a warning, stops training at that step (no crash, no more
checkpoints) and keeps ``diverged``, ``diverged_step`` and ``reason`` for the results JSON.

The check reads Trainer's logs, so it needs ``logging_nan_inf_filter=False`` (else Trainer hides a
NaN loss behind the running average) and sees a divergence within ``logging_steps`` steps.
"""

from __future__ import annotations

import math

from transformers import TrainerCallback
from transformers.utils import logging

logger = logging.get_logger(__name__)


def _finite(value) -> bool:
    return value is None or math.isfinite(float(value))


class HistoryCallback(TrainerCallback):
    """Keeps every logged ``(step, loss)``, ``(step, grad_norm)`` and ``(step, learning_rate)``."""

    def __init__(self):
        self.loss: list[tuple[int, float]] = []
        self.grad_norm: list[tuple[int, float]] = []
        self.learning_rate: list[tuple[int, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        for key, series in (("loss", self.loss), ("grad_norm", self.grad_norm), ("learning_rate", self.learning_rate)):
            if key in logs:
                series.append((state.global_step, float(logs[key])))


class DivergenceCallback(TrainerCallback):
    """Stops training on a NaN/Inf loss or grad norm, or a loss above ``blowup_factor`` x its minimum.

    Args:
        blowup_factor: loss / best-loss-so-far ratio that counts as divergence; None to check
            only for NaN/Inf.
        min_steps: ignore the ratio test before this step (the first losses are noisy).
    """

    def __init__(self, blowup_factor: float | None = 3.0, min_steps: int = 0):
        self.blowup_factor = blowup_factor
        self.min_steps = min_steps
        self.best_loss = math.inf
        self.diverged = False
        self.diverged_step: int | None = None
        self.reason: str | None = None

    def _check(self, step: int, logs: dict) -> str | None:
        loss, grad_norm = logs.get("loss"), logs.get("grad_norm")
        if not _finite(loss):
            return f"training loss is {loss}"
        if not _finite(grad_norm):
            return f"gradient norm is {grad_norm}"
        if loss is None:
            return None
        if self.blowup_factor is not None and step >= self.min_steps and loss > self.blowup_factor * self.best_loss:
            return f"training loss {loss:.4g} is above {self.blowup_factor} x the best loss so far ({self.best_loss:.4g})"
        self.best_loss = min(self.best_loss, float(loss))
        return None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.diverged or not logs:
            return
        reason = self._check(state.global_step, logs)
        if reason is None:
            return
        self.diverged, self.diverged_step, self.reason = True, state.global_step, reason
        logger.warning(f"Training diverged at step {state.global_step}: {reason}. Stopping; the run is marked diverged.")
        control.should_training_stop = True
        control.should_save = False  # a checkpoint of NaN weights is no use to resume from

    def summary(self) -> dict:
        return {"diverged": self.diverged, "diverged_step": self.diverged_step, "divergence_reason": self.reason}


__all__ = ["DivergenceCallback", "HistoryCallback"]
