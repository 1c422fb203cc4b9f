"""Perplexity as an ``evaluate`` metric, from summed negative log-likelihoods and token counts.

Load it offline with ``modeling_study.metrics.load_metric("perplexity")`` (or
``evaluate.load("<path to this directory>")``).

Each input row is one batch (or one sequence): ``nll_sum`` is the sum of the per-token
negative log-likelihoods (natural log) over its counted tokens and ``num_tokens`` is how many
tokens were counted (labels != -100, after the causal shift). The result is the
token-weighted corpus perplexity ``exp(sum(nll_sum) / sum(num_tokens))``, which equals
``exp(cross_entropy)`` over all counted tokens -- unlike the mean of per-batch perplexities.

Example::

    >>> metric = load_metric("perplexity")
    >>> metric.add_batch(nll_sum=[2.0, 4.0], num_tokens=[2, 2])
    >>> round(metric.compute()["perplexity"], 4)  # exp(6 / 4)
    4.4817
"""

import math
import sys

import datasets
import evaluate

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    nll_sum (list of float): summed negative log-likelihood (nats) of the counted tokens, per row.
    num_tokens (list of int): number of counted tokens, per row (>= 0; total > 0).
Returns:
    perplexity (float): exp(total nll / total tokens).
    loss (float): total nll / total tokens (mean cross-entropy per token, nats).
    num_tokens (int): total counted tokens.
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Perplexity(evaluate.Metric):
    """Token-weighted perplexity from (nll_sum, num_tokens) pairs."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "nll_sum": datasets.Value("float64"),
                    "num_tokens": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, nll_sum, num_tokens):
        if len(nll_sum) != len(num_tokens):
            raise ValueError(f"nll_sum and num_tokens differ in length: {len(nll_sum)} vs {len(num_tokens)}")
        if any(n < 0 for n in num_tokens):
            raise ValueError("num_tokens must be non-negative")
        if any(not math.isfinite(x) for x in nll_sum):
            raise ValueError("nll_sum must be finite")
        total_tokens = int(sum(num_tokens))
        if total_tokens == 0:
            raise ValueError("perplexity needs at least one counted token (sum(num_tokens) == 0)")
        total_nll = math.fsum(nll_sum)
        loss = total_nll / total_tokens
        # a diverged model can average more than ~709.8 nats, past float64's exp: its perplexity is infinite
        perplexity = math.exp(loss) if loss < math.log(sys.float_info.max) else math.inf
        return {"perplexity": perplexity, "loss": loss, "num_tokens": total_tokens}
