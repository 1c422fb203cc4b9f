"""Count-based baselines a reader can hold the transformers against: unigram, bigram, trigram.

Interpolated Kneser-Ney (Kneser & Ney 1995; Chen & Goodman 1998, "An Empirical Study of Smoothing
Techniques for Language Modeling", section 3) with one absolute discount D = 0.75 at every order:

    p_k(w | h) = [max(c_k(h w) - D, 0) + D * T_k(h) * p_{k-1}(w | h')] / S_k(h)      if S_k(h) > 0
               = p_{k-1}(w | h')                                                   otherwise

where h' drops the oldest token of h, ``S_k(h) = sum_w c_k(h w)`` and ``T_k(h) = |{w : c_k(h w) > 0}|``.
The order a prediction starts from uses raw counts ``c``; the lower orders it interpolates with use
continuation counts (how many distinct tokens precede ``h w``), which is what makes it Kneser-Ney.
Order 1 interpolates with the uniform distribution over the vocabulary, so no token has probability 0.
A ``NGramModel`` of order 1 is therefore a discounted unigram, the best context-free predictor.

Fitted on the training split's token stream and scored on exactly the targets the transformers are
scored on, with the same context: a target with k context tokens uses order min(n, k + 1).
All counting is vectorised with numpy on integer keys (token ids < vocab_size).
"""

from __future__ import annotations

import numpy as np

DISCOUNT = 0.75


class _Table:
    """Sorted n-gram keys with their counts, and per-history totals and type counts."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray, vocab_size: int):
        order = np.argsort(keys, kind="stable")
        self.keys, self.counts = keys[order], counts[order].astype(np.float64)
        histories = self.keys // vocab_size
        self.hist_keys, first = np.unique(histories, return_index=True)
        self.hist_totals = np.add.reduceat(self.counts, first) if len(first) else np.zeros(0)
        self.hist_types = np.diff(np.append(first, len(histories))).astype(np.float64)

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
        if len(sorted_keys) == 0:
            return np.zeros(len(queries))
        idx = np.clip(np.searchsorted(sorted_keys, queries), 0, len(sorted_keys) - 1)
        return np.where(sorted_keys[idx] == queries, values[idx], 0.0)

    def count(self, keys: np.ndarray) -> np.ndarray:
        return self._lookup(self.keys, self.counts, keys)

    def history(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (self._lookup(self.hist_keys, self.hist_totals, hist),
                self._lookup(self.hist_keys, self.hist_types, hist))


def _gram_keys(ids: np.ndarray, k: int, vocab_size: int) -> np.ndarray:
    """Integer key of every k-gram of ``ids`` (oldest token most significant)."""
    n = len(ids) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.zeros(n, dtype=np.int64)
    for j in range(k):
        keys = keys * vocab_size + ids[j : j + n]
    return keys


MAX_ORDER = 5  # a byte 5-gram: the strongest baseline the study's models are held against


class NGramModel:
    """An interpolated Kneser-Ney model of ``order`` 1 to ``MAX_ORDER`` over ids ``< vocab_size``."""

    def __init__(self, train_ids, order: int, vocab_size: int, discount: float = DISCOUNT):
        if order not in range(1, MAX_ORDER + 1):
            raise ValueError(f"order must be 1 to {MAX_ORDER}, got {order!r}.")
        if not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {discount!r}.")
        ids = np.asarray(train_ids, dtype=np.int64)
        if ids.size == 0 or ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"train_ids must be a non-empty sequence of ids in [0, {vocab_size}).")
        if vocab_size ** order >= 2 ** 62:
            raise ValueError(f"vocab_size {vocab_size} is too large for integer keys of order {order}.")
        self.order, self.vocab_size, self.discount = order, vocab_size, discount
        self.raw, self.cont = {}, {}
        for k in range(1, order + 1):
            keys, counts = np.unique(_gram_keys(ids, k, vocab_size), return_counts=True)
            self.raw[k] = _Table(keys, counts, vocab_size)
            if k < order:
                # continuation count of a k-gram: distinct tokens seen before it (distinct (k+1)-grams ending in it)
                longer = np.unique(_gram_keys(ids, k + 1, vocab_size))
                suffixes, cont = np.unique(longer % vocab_size ** k, return_counts=True)
                self.cont[k] = _Table(suffixes, cont, vocab_size)

    def probabilities(self, contexts: np.ndarray, targets: np.ndarray, context_lengths: np.ndarray) -> np.ndarray:
        """p(target | the last ``min(order - 1, context_length)`` tokens of its context row).

        contexts: (N, order - 1) ids, the most recent token last (entries before the available context
        are ignored); targets: (N,); context_lengths: (N,) tokens of real context available (>= 0).
        """
        V, D = self.vocab_size, self.discount
        targets = np.asarray(targets, dtype=np.int64)
        n = len(targets)
        contexts = np.asarray(contexts, dtype=np.int64).reshape(n, self.order - 1) if self.order > 1 \
            else np.zeros((n, 0), dtype=np.int64)
        start = np.minimum(self.order, np.asarray(context_lengths, dtype=np.int64) + 1)  # the order each target starts from
        p = np.full(n, 1.0 / V)  # order 0: uniform
        for k in range(1, self.order + 1):
            hist = np.zeros(n, dtype=np.int64)
            for j in range(k - 1):  # the k-1 most recent context tokens, oldest first
                hist = hist * V + contexts[:, self.order - 1 - (k - 1) + j]
            keys = hist * V + targets
            use_raw = start == k
            counts = np.where(use_raw, self.raw[k].count(keys), self.cont[k].count(keys) if k < self.order else 0.0)
            totals_raw, types_raw = self.raw[k].history(hist)
            if k < self.order:
                totals_cont, types_cont = self.cont[k].history(hist)
            else:
                totals_cont = types_cont = np.zeros(n)
            totals = np.where(use_raw, totals_raw, totals_cont)
            types = np.where(use_raw, types_raw, types_cont)
            with np.errstate(divide="ignore", invalid="ignore"):
                interpolated = (np.maximum(counts - D, 0.0) + D * types * p) / totals
            active = (start >= k) & (totals > 0)
            p = np.where(active, interpolated, p)
        return p

    def nll(self, contexts: np.ndarray, targets: np.ndarray, context_lengths: np.ndarray) -> np.ndarray:
        """Negative log-likelihood (nats) of each target."""
        return -np.log(self.probabilities(contexts, targets, context_lengths))


def score_targets(model: NGramModel, stream: np.ndarray, target_positions: np.ndarray, context_length: int) -> np.ndarray:
    """NLL of ``stream[t]`` for each t in ``target_positions`` given at most ``context_length`` preceding tokens."""
    stream = np.asarray(stream, dtype=np.int64)
    t = np.asarray(target_positions, dtype=np.int64)
    width = max(model.order - 1, 0)
    contexts = np.stack([stream[np.maximum(t - width + j, 0)] for j in range(width)], axis=1) if width \
        else np.zeros((len(t), 0), dtype=np.int64)
    available = np.minimum(t, context_length)
    return model.nll(contexts, stream[t], available)


__all__ = ["DISCOUNT", "MAX_ORDER", "NGramModel", "score_targets"]
