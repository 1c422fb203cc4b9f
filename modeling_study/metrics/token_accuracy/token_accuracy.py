"""Token-level accuracy as an ``evaluate`` metric, ignoring padded/masked positions (-100).

Load it offline with ``modeling_study.metrics.load_metric("token_accuracy")`` (or
``evaluate.load("<path to this directory>")``).

``predictions`` are predicted token ids (e.g. ``logits.argmax(-1)``, already aligned with
the labels -- for a causal LM shift first: predictions[:, :-1] vs labels[:, 1:]) and
``references`` the label ids. Inputs may be flat (one token per row) or one sequence per
row. Positions whose reference equals ``ignore_index`` (default -100) are not counted.

Example::

    >>> metric = load_metric("token_accuracy")
    >>> metric.compute(predictions=[[1, 2, 3]], references=[[1, 5, -100]])
    {'accuracy': 0.5, 'num_tokens': 2}
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int, or list of list of int): predicted token ids.
    references (list of int, or list of list of int): label token ids, same shape.
    ignore_index (int, optional): reference value to skip. Default -100.
Returns:
    accuracy (float): correct / counted tokens.
    num_tokens (int): counted tokens.
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TokenAccuracy(evaluate.Metric):
    """Fraction of non-ignored positions where prediction == reference."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("int64")),
                        "references": datasets.Sequence(datasets.Value("int64")),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("int64"),
                        "references": datasets.Value("int64"),
                    }
                ),
            ],
        )

    def _compute(self, predictions, references, ignore_index=-100):
        if len(predictions) != len(references):
            raise ValueError(f"predictions and references differ in length: {len(predictions)} vs {len(references)}")
        if predictions and isinstance(predictions[0], (list, tuple, np.ndarray)):
            for row, (pred, ref) in enumerate(zip(predictions, references)):
                if len(pred) != len(ref):
                    raise ValueError(f"row {row}: predictions and references differ in length ({len(pred)} vs {len(ref)})")
            pred = np.concatenate([np.asarray(p, dtype=np.int64) for p in predictions] or [np.zeros(0, np.int64)])
            ref = np.concatenate([np.asarray(r, dtype=np.int64) for r in references] or [np.zeros(0, np.int64)])
        else:
            pred = np.asarray(predictions, dtype=np.int64)
            ref = np.asarray(references, dtype=np.int64)
        mask = ref != ignore_index
        total = int(mask.sum())
        if total == 0:
            raise ValueError(f"token_accuracy needs at least one reference token != {ignore_index}")
        correct = int((pred[mask] == ref[mask]).sum())
        return {"accuracy": correct / total, "num_tokens": total}
