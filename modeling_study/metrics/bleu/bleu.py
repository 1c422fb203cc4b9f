"""Corpus BLEU (Papineni et al. 2002) computed by sacreBLEU (Post 2018, arXiv:1804.08771), as an ``evaluate`` metric.

Load it offline with ``modeling_study.metrics.load_metric("bleu")``. sacreBLEU tokenises the detokenised
text itself (``13a``), so scores are comparable across papers and tokenizers, and it reports a signature
(``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``) that says exactly how the number was made;
keep it next to the score.

Example::

    >>> bleu = load_metric("bleu")
    >>> result = bleu.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])
    >>> result["score"], result["signature"].startswith("nrefs:1|case:mixed")
    (100.0, True)
"""

import datasets
import evaluate
from sacrebleu.metrics import BLEU

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): detokenised system outputs, one per segment.
    references (list of str): one detokenised reference per segment.
    tokenize (str): sacreBLEU tokenizer, "13a" (default, the WMT standard), "intl", "none", ...
    lowercase (bool): case-insensitive BLEU (default False).
Returns:
    score (float): corpus BLEU, 0-100.
    precisions (list of float): 1- to 4-gram precisions (%).
    brevity_penalty (float), sys_len (int), ref_len (int).
    signature (str): sacreBLEU's signature of the settings and version.
"""

_CITATION = """@inproceedings{post-2018-call, title = "A Call for Clarity in Reporting {BLEU} Scores",
author = "Post, Matt", booktitle = "Proceedings of the Third Conference on Machine Translation", year = "2018"}"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
    """sacreBLEU corpus BLEU with one reference per segment."""

    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False):
        if len(predictions) != len(references):
            raise ValueError(f"predictions and references differ in length: {len(predictions)} vs {len(references)}")
        if not predictions:
            raise ValueError("BLEU needs at least one segment; got none.")
        metric = BLEU(tokenize=tokenize, lowercase=lowercase)
        score = metric.corpus_score(list(predictions), [list(references)])
        return {"score": score.score, "precisions": list(score.precisions), "brevity_penalty": score.bp,
                "sys_len": score.sys_len, "ref_len": score.ref_len, "signature": str(metric.get_signature())}
