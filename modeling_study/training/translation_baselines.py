"""No-model baselines for the translation recipe, scored on the same verses as the model.

A translation score means little alone: on the embedded Bible, where many verses repeat formulas ("And the
LORD spake unto Moses, saying"), returning the Spanish of a similar English *training* verse already scores
far above zero. Every BLEU the recipe reports is printed beside three baselines made without a model:

``retrieval``
    The Spanish side of the most similar English training verse. "Most similar" is the largest cosine
    similarity of TF-IDF vectors over lowercased words (``re.findall(r"\\w+", text.lower())``):
    term frequency = the raw count of the word in the verse, inverse document frequency
    ``idf(w) = ln((1 + N) / (1 + df(w))) + 1`` (N training verses, df(w) of them containing w), each vector
    scaled to unit length -- scikit-learn's ``TfidfVectorizer`` defaults, computed with ``scipy.sparse``
    (about a second for 917 verses against 29k). Words never seen in training are ignored;
    ties (and a verse with no known word, whose similarities are all 0) go to the first training verse.
``constant``
    One fixed Spanish sentence for every verse: of all distinct training targets, the one with the highest
    sacreBLEU corpus BLEU when it is the hypothesis for every 10th training target (ties: the first in
    training order). Computed exactly from pooled n-gram counts, a few seconds for 29k candidates. (The
    most frequent training target, a repeated offering list of Numbers 7, scores BLEU 0.02 on the test
    verses: too weak a floor to be informative.)
``copy``
    The English source copied unchanged (chrF rewards shared names and numbers).

Example::

    >>> pairs = [{"en": "the cat", "es": "el gato"}, {"en": "a dog", "es": "un perro"}]
    >>> NearestVerse([p["en"] for p in pairs]).nearest(["the black cat"])
    [0]
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

WORD = re.compile(r"\w+")
BASELINE_NAMES = ("retrieval", "constant", "copy")
BASELINE_DESCRIPTIONS = {
    "retrieval": "Spanish of the most similar English training verse (TF-IDF cosine over lowercased words)",
    "constant": "one Spanish training verse for every verse: the one with the best BLEU on a sample of training",
    "copy": "the English source copied unchanged",
}


def words(text: str) -> list[str]:
    """The lowercased ``\\w+`` words of ``text``: the units of the retrieval baseline."""
    return WORD.findall(text.lower())


class NearestVerse:
    """TF-IDF cosine nearest neighbour over a fixed list of documents (the training sources).

    ``nearest(queries)`` gives, for each query, the index of the most similar document (first on ties);
    ``similarities(query)`` the cosine of the query with every document (a numpy array). The vectors are
    rows of ``scipy.sparse`` matrices; a query's words never seen in the documents are ignored.
    """

    def __init__(self, documents: list[str]):
        if not documents:
            raise ValueError("retrieval needs at least one training verse; got none.")
        self.vocabulary: dict[str, int] = {}
        for doc in documents:
            for word in words(doc):
                self.vocabulary.setdefault(word, len(self.vocabulary))
        counts = self._counts(documents)
        df = np.bincount(counts.indices, minlength=len(self.vocabulary))
        self.idf = np.log((1 + len(documents)) / (1 + df)) + 1.0
        self._documents = self._unit_tfidf(counts)
        self.n_docs = len(documents)

    def _counts(self, texts: list[str]):
        """Term counts of ``texts`` over the vocabulary (a CSR matrix, one row per text)."""
        from scipy.sparse import csr_matrix

        rows, cols = [], []
        for row, text in enumerate(texts):
            known = [self.vocabulary[w] for w in words(text) if w in self.vocabulary]
            rows += [row] * len(known)
            cols += known
        shape = (len(texts), len(self.vocabulary))
        counts = csr_matrix((np.ones(len(cols)), (rows, cols)), shape=shape)  # duplicates are summed
        counts.sum_duplicates()
        return counts

    def _unit_tfidf(self, counts):
        """Rows of raw counts -> TF-IDF rows of unit length (an all-zero row stays zero)."""
        from scipy.sparse import diags

        weighted = counts.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        return (diags(1.0 / np.where(norms > 0, norms, 1.0)) @ weighted).tocsr()

    def similarities(self, text: str) -> np.ndarray:
        return (self._unit_tfidf(self._counts([text])) @ self._documents.T).toarray().ravel()

    def nearest(self, queries: list[str], chunk: int = 256) -> list[int]:
        out: list[int] = []
        for start in range(0, len(queries), chunk):  # a dense block of chunk x documents at a time
            scores = (self._unit_tfidf(self._counts(queries[start:start + chunk])) @ self._documents.T).toarray()
            out += [int(i) for i in scores.argmax(axis=1)]  # the first maximum: the first document on ties
        return out


def retrieval_hypotheses(train_sources: list[str], train_targets: list[str], sources: list[str]) -> list[str]:
    """For each source, the target of the most similar training source (``NearestVerse``)."""
    if len(train_sources) != len(train_targets):
        raise ValueError(f"{len(train_sources)} training sources but {len(train_targets)} targets.")
    return [train_targets[i] for i in NearestVerse(train_sources).nearest(sources)]


CONSTANT_SAMPLE_EVERY = 10  # the constant baseline is chosen on every 10th training target


def constant_bleu_on(candidates: list[str], references: list[str]) -> list[float]:
    """sacreBLEU's corpus BLEU (default settings: 13a, exp smoothing) of each candidate used as the
    hypothesis for every one of ``references``, computed exactly from n-gram statistics gathered once
    (the references' n-gram counts pooled), so thousands of candidates take seconds."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    bleu = BLEU()
    pooled: dict[tuple, Counter] = {}  # n-gram -> Counter(count in a reference -> number of references)
    ref_len = 0
    for reference in references:
        counts, length = extract_all_word_ngrams(bleu._preprocess_segment(reference), 1, bleu.max_ngram_order)
        ref_len += length
        for gram, count in counts.items():
            pooled.setdefault(gram, Counter())[count] += 1
    scores = []
    for candidate in candidates:
        counts, length = extract_all_word_ngrams(bleu._preprocess_segment(candidate), 1, bleu.max_ngram_order)
        correct = [0] * bleu.max_ngram_order
        for gram, count in counts.items():
            correct[len(gram) - 1] += sum(min(count, ref_count) * n for ref_count, n in pooled.get(gram, {}).items())
        total = [len(references) * max(length - n, 0) for n in range(bleu.max_ngram_order)]
        scores.append(BLEU.compute_bleu(correct, total, len(references) * length, ref_len,
                                        smooth_method=bleu.smooth_method, smooth_value=bleu.smooth_value,
                                        max_ngram_order=bleu.max_ngram_order).score)
    return scores


def constant_sentence(train_targets: list[str], sample_every: int = CONSTANT_SAMPLE_EVERY) -> str:
    """The training target that, said for every verse, scores the highest corpus BLEU on every
    ``sample_every``-th training target (ties: the first in training order). Every distinct training target is
    a candidate."""
    if not train_targets:
        raise ValueError("the constant baseline needs at least one training target; got none.")
    candidates = list(dict.fromkeys(train_targets))
    scores = constant_bleu_on(candidates, train_targets[::sample_every])
    return candidates[max(range(len(candidates)), key=lambda i: (scores[i], -i))]


def baseline_hypotheses(train_pairs: list[dict], sources: list[str], source_lang: str = "en",
                        target_lang: str = "es") -> dict[str, list[str]]:
    """``{"retrieval": [...], "constant": [...], "copy": [...]}``: one hypothesis per source for each baseline."""
    train_sources = [pair[source_lang] for pair in train_pairs]
    train_targets = [pair[target_lang] for pair in train_pairs]
    constant = constant_sentence(train_targets)
    return {"retrieval": retrieval_hypotheses(train_sources, train_targets, sources),
            "constant": [constant] * len(sources),
            "copy": list(sources)}


def score_baselines(train_pairs: list[dict], eval_pairs: list[dict], source_lang: str = "en",
                    target_lang: str = "es") -> dict[str, dict]:
    """Each baseline's sacreBLEU BLEU and chrF (the package's ``translation`` metric) on ``eval_pairs``:
    ``{name: {"bleu", "chrf", "description"}}``, and the constant's sentence under ``constant["sentence"]``."""
    from ..metrics import load_metric

    metric = load_metric("translation")
    references = [pair[target_lang] for pair in eval_pairs]
    hypotheses = baseline_hypotheses(train_pairs, [pair[source_lang] for pair in eval_pairs], source_lang, target_lang)
    scores = {}
    for name, outputs in hypotheses.items():
        result = metric.compute(predictions=outputs, references=references)
        scores[name] = {"bleu": result["bleu"], "chrf": result["chrf"], "description": BASELINE_DESCRIPTIONS[name]}
    scores["constant"]["sentence"] = hypotheses["constant"][0] if hypotheses["constant"] else constant_sentence(
        [pair[target_lang] for pair in train_pairs])
    return scores


def format_baselines(baselines: dict[str, dict]) -> str:
    """One line: ``baselines: retrieval BLEU 16.64 / chrF 34.50, constant ..., copy ...``."""
    return "baselines (no model): " + ", ".join(
        f"{name} BLEU {baselines[name]['bleu']:.2f} / chrF {baselines[name]['chrf']:.2f}"
        for name in BASELINE_NAMES if name in baselines)


__all__ = ["BASELINE_NAMES", "NearestVerse", "baseline_hypotheses", "constant_sentence", "format_baselines",
           "retrieval_hypotheses", "score_baselines", "words"]
