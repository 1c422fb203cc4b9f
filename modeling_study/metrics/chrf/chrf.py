"""Corpus chrF (Popović 2015) computed by sacreBLEU (Post 2018, arXiv:1804.08771), as an ``evaluate`` metric.

Character n-gram F-score (n <= 6, recall weighted by beta = 2): kinder than BLEU to a morphologically
rich target such as Spanish, where a wrong ending costs a few characters instead of a whole word.
Load it offline with ``modeling_study.metrics.load_metric("chrf")``; keep the signature with the score.

Example::

    >>> chrf = load_metric("chrf")
    >>> chrf.compute(predictions=["el gato"], references=["el gato"])["score"]
    100.0
"""

import datasets
import evaluate
from sacrebleu.metrics import CHRF

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): detokenised system outputs, one per segment.
    references (list of str): one detokenised reference per segment.
    word_order (int): 0 for chrF (default), 2 for chrF++.
Returns:
    score (float): corpus chrF, 0-100.
    signature (str): sacreBLEU's signature of the settings and version.
"""

_CITATION = """@inproceedings{popovic-2015-chrf, title = "chr{F}: character n-gram {F}-score for automatic {MT}
evaluation", author = "Popovi{\\'c}, Maja", booktitle = "Proceedings of the Tenth Workshop on Statistical Machine
Translation", year = "2015"}"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class Chrf(evaluate.Metric):
    """sacreBLEU corpus chrF with one reference per segment."""

    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, word_order=0):
        if len(predictions) != len(references):
            raise ValueError(f"predictions and references differ in length: {len(predictions)} vs {len(references)}")
        if not predictions:
            raise ValueError("chrF needs at least one segment; got none.")
        metric = CHRF(word_order=word_order)
        score = metric.corpus_score(list(predictions), [list(references)])
        return {"score": score.score, "signature": str(metric.get_signature())}
