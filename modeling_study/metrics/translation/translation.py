"""Corpus BLEU (Papineni et al. 2002) and chrF (Popović 2015), computed by sacreBLEU (Post 2018,
arXiv:1804.08771), as one ``evaluate`` metric.

Load it offline with ``modeling_study.metrics.load_metric("translation")``. sacreBLEU tokenises the
detokenised text itself (``13a`` for BLEU), so scores are comparable across tokenizers and papers, and it
reports a signature per score (``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``) that says
exactly how the number was made; keep it next to the score. chrF (character n-grams, n <= 6, recall
weighted by beta = 2) is kinder than BLEU to a morphologically rich target such as Spanish, where a
wrong ending costs a few characters instead of a whole word.

Example::

    >>> scores = load_metric("translation").compute(predictions=["el gato"], references=["el gato"])
    >>> scores["bleu"], scores["chrf"], scores["bleu_signature"].startswith("nrefs:1|case:mixed")
    (100.0, 100.0, True)
"""

import datasets
import evaluate
from sacrebleu.metrics import BLEU, CHRF

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): detokenised system outputs, one per segment.
    references (list of str): one detokenised reference per segment.
Returns:
    bleu (float): corpus BLEU, 0-100; bleu_precisions (1- to 4-gram, %), bleu_brevity_penalty.
    chrf (float): corpus chrF, 0-100.
    bleu_signature, chrf_signature (str): sacreBLEU's signatures of the settings and version.
"""

_CITATION = """@inproceedings{post-2018-call, title = "A Call for Clarity in Reporting {BLEU} Scores",
author = "Post, Matt", booktitle = "Proceedings of the Third Conference on Machine Translation", year = "2018"}"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class Translation(evaluate.Metric):
    """sacreBLEU corpus BLEU and chrF with one reference per segment."""

    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if len(predictions) != len(references):
            raise ValueError(f"predictions and references differ in length: {len(predictions)} vs {len(references)}")
        if not predictions:
            raise ValueError("BLEU and chrF need at least one segment; got none.")
        bleu, chrf = BLEU(), CHRF()
        hypotheses, refs = list(predictions), [list(references)]
        b, c = bleu.corpus_score(hypotheses, refs), chrf.corpus_score(hypotheses, refs)
        return {"bleu": b.score, "bleu_precisions": list(b.precisions), "bleu_brevity_penalty": b.bp,
                "chrf": c.score, "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}
