"""The no-model translation baselines (modeling_study.training.translation_baselines) on tiny hand-made verse
sets whose expected outputs are worked out by hand here."""

from __future__ import annotations

import math

import pytest
import sacrebleu

from modeling_study.training.translation_baselines import (
    NearestVerse,
    baseline_hypotheses,
    constant_bleu_on,
    constant_sentence,
    format_baselines,
    retrieval_hypotheses,
    score_baselines,
    words,
)


def test_words_are_lowercased_word_characters():
    assert words("The LORD's day, 7 times!") == ["the", "lord", "s", "day", "7", "times"]
    assert words("¿Quién? Él.") == ["quién", "él"]


def test_tfidf_cosine_by_hand():
    documents = ["a b", "a c", "c c d"]
    index = NearestVerse(documents)
    # N = 3; df: a 2, b 1, c 2, d 1; idf = ln((1 + N) / (1 + df)) + 1
    idf_a = idf_c = math.log(4 / 3) + 1
    idf_b = idf_d = math.log(4 / 2) + 1
    d0 = {"a": idf_a, "b": idf_b}
    d1 = {"a": idf_a, "c": idf_c}
    d2 = {"c": 2 * idf_c, "d": idf_d}  # tf(c) = 2
    query = {"b": idf_b, "c": idf_c}  # "b c zebra": zebra is unknown, ignored

    def cosine(u, v):
        dot = sum(u[k] * v.get(k, 0.0) for k in u)
        return dot / math.sqrt(sum(x * x for x in u.values())) / math.sqrt(sum(x * x for x in v.values()))

    expected = [cosine(query, d) for d in (d0, d1, d2)]
    assert list(index.similarities("b c zebra")) == pytest.approx(expected, abs=1e-12)
    assert index.nearest(["b c zebra"]) == [max(range(3), key=lambda i: expected[i])]
    assert index.nearest(["B, A!"]) == [0]  # the same words as document 0: cosine 1
    assert index.similarities("a b")[0] == pytest.approx(1.0)
    assert index.nearest(["c d"]) == [2] and index.nearest(["d"]) == [2]


def test_ties_and_unknown_words_go_to_the_first_verse():
    index = NearestVerse(["x y", "x y", "z"])
    assert index.nearest(["x y"]) == [0]  # two identical documents: the first
    assert index.nearest(["never seen"]) == [0]  # all similarities 0
    assert list(index.similarities("never seen")) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="at least one training verse"):
        NearestVerse([])


def test_retrieval_returns_the_target_of_the_nearest_source():
    train_sources = ["the cat sleeps", "a dog runs fast", "the bird sings"]
    train_targets = ["el gato duerme", "un perro corre rápido", "el pájaro canta"]
    assert retrieval_hypotheses(train_sources, train_targets, ["the dog runs", "a bird sings", "the cat"]) == [
        "un perro corre rápido", "el pájaro canta", "el gato duerme"]
    with pytest.raises(ValueError, match="3 training sources but 2 targets"):
        retrieval_hypotheses(train_sources, train_targets[:2], ["x"])


def test_constant_bleu_is_sacrebleu_exactly():
    references = ["el gato duerme en la casa .", "el perro duerme", "la casa es grande", "Y dijo Dios: Sea la luz."]
    candidates = ["el gato duerme", "la casa", "", "Y dijo Dios", "el el el el el"]
    expected = [sacrebleu.corpus_bleu([c] * len(references), [references]).score for c in candidates]
    assert constant_bleu_on(candidates, references) == pytest.approx(expected, abs=1e-9)


def test_constant_sentence_is_the_best_bleu_on_the_sample():
    # Every target is a reference (sample_every=1). "el perro duerme en la casa" shares the 4-gram-rich
    # "duerme en la casa" with two references; "hola" shares nothing with any: it must lose.
    targets = ["hola", "el gato duerme en la casa", "el perro duerme en la casa", "hola"]
    assert constant_sentence(targets, sample_every=1) == "el gato duerme en la casa"  # tie with the dog: first
    assert constant_sentence(["b", "a"], sample_every=1) == "b"  # a tie (both BLEU 0): the first
    with pytest.raises(ValueError, match="at least one training target"):
        constant_sentence([])


def test_baseline_hypotheses_and_scores():
    train = [{"en": "the cat sleeps", "es": "el gato duerme"}, {"en": "a dog runs fast", "es": "un perro corre rápido"},
             {"en": "the dog runs", "es": "el perro corre"}]
    evaluation = [{"en": "the cat sleeps", "es": "el gato duerme"}, {"en": "a dog runs fast", "es": "un perro corre rápido"}]
    hypotheses = baseline_hypotheses(train, [p["en"] for p in evaluation])
    assert hypotheses["retrieval"] == ["el gato duerme", "un perro corre rápido"]  # exact sources: their targets
    assert hypotheses["copy"] == ["the cat sleeps", "a dog runs fast"]
    constant = constant_sentence([p["es"] for p in train])
    assert hypotheses["constant"] == [constant, constant]
    scores = score_baselines(train, evaluation)
    assert scores["retrieval"]["bleu"] == pytest.approx(100.0) and scores["retrieval"]["chrf"] == pytest.approx(100.0)
    references = [p["es"] for p in evaluation]
    assert scores["copy"]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses["copy"], [references]).score)
    assert scores["copy"]["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses["copy"], [references]).score)
    assert scores["constant"]["sentence"] == constant
    line = format_baselines(scores)
    assert line.startswith("baselines (no model): retrieval BLEU 100.00 / chrF 100.00, constant BLEU ")
    assert ", copy BLEU " in line


def test_source_and_target_languages_swap():
    train = [{"en": "the cat", "es": "el gato"}, {"en": "a dog", "es": "un perro"}]
    assert baseline_hypotheses(train, ["un perro negro"], source_lang="es", target_lang="en")["retrieval"] == ["a dog"]
