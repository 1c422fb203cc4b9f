"""Packaged evaluate metrics (perplexity, token_accuracy), loaded offline from local modules."""

import math
import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("HF_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modeling_study_hf_home_")

import evaluate
import pytest
import torch
import torch.nn.functional as F

from modeling_study.metrics import AVAILABLE_METRICS, causal_lm_stats, load_metric, metric_path


@pytest.fixture(scope="module")
def perplexity():
    return load_metric("perplexity")


@pytest.fixture(scope="module")
def token_accuracy():
    return load_metric("token_accuracy")


@pytest.fixture()
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 9, 11, generator=generator)
    labels = torch.randint(0, 11, (3, 9), generator=generator)
    labels[1, 5:] = -100  # padding
    labels[2, :3] = -100  # masked prompt
    return logits, labels


def test_available_metrics_are_evaluate_modules(perplexity, token_accuracy):
    assert set(AVAILABLE_METRICS) == {"perplexity", "token_accuracy"}
    for name in AVAILABLE_METRICS:
        assert (metric_path(name) / f"{name}.py").is_file()
    assert isinstance(perplexity, evaluate.Metric) and isinstance(token_accuracy, evaluate.Metric)
    assert "nll_sum" in perplexity.features and "num_tokens" in perplexity.features


def test_evaluate_load_local_path_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    metric = evaluate.load(str(metric_path("perplexity")))
    assert metric.compute(nll_sum=[0.0], num_tokens=[3])["perplexity"] == 1.0


def test_unknown_metric_names_available():
    with pytest.raises(ValueError, match="perplexity, token_accuracy"):
        load_metric("bleu")


def test_perplexity_equals_exp_cross_entropy(perplexity, batch):
    logits, labels = batch
    expected_loss = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100)
    stats = causal_lm_stats(logits, labels)
    # fed batch by batch, like an evaluation loop
    for nll_sum, num_tokens in zip(stats["nll_sum"], stats["num_tokens"]):
        perplexity.add_batch(nll_sum=[nll_sum], num_tokens=[num_tokens])
    result = perplexity.compute()
    assert result["num_tokens"] == int((labels[:, 1:] != -100).sum())
    assert result["loss"] == pytest.approx(expected_loss.item(), rel=1e-6)
    assert result["perplexity"] == pytest.approx(torch.exp(expected_loss).item(), rel=1e-6)


def test_perplexity_is_token_weighted_not_mean_of_batches(perplexity):
    result = perplexity.compute(nll_sum=[1.0, 30.0], num_tokens=[1, 10])
    assert result["perplexity"] == pytest.approx(math.exp(31 / 11))
    assert result["perplexity"] != pytest.approx((math.exp(1.0) + math.exp(3.0)) / 2)


def test_perplexity_bad_inputs(perplexity):
    with pytest.raises(ValueError, match="at least one"):
        perplexity.compute(nll_sum=[0.0], num_tokens=[0])
    with pytest.raises(ValueError, match="non-negative"):
        perplexity.compute(nll_sum=[1.0, 1.0], num_tokens=[2, -1])


def test_token_accuracy_matches_torch(token_accuracy, batch):
    logits, labels = batch
    stats = causal_lm_stats(logits, labels)
    preds, targets = logits[:, :-1].argmax(-1), labels[:, 1:]
    mask = targets != -100
    expected = ((preds == targets) & mask).sum().item() / mask.sum().item()
    result = token_accuracy.compute(predictions=stats["predictions"], references=stats["references"])
    assert result == {"accuracy": pytest.approx(expected), "num_tokens": int(mask.sum())}
    # flat inputs (one token per row) give the same answer
    flat = token_accuracy.compute(predictions=preds.flatten().tolist(), references=targets.flatten().tolist())
    assert flat == result


def test_token_accuracy_ignores_minus_100(token_accuracy):
    result = token_accuracy.compute(predictions=[[1, 2, 3], [4, 4]], references=[[1, 5, -100], [4, -100]])
    assert result == {"accuracy": pytest.approx(2 / 3), "num_tokens": 3}
    with pytest.raises(ValueError, match="at least one"):
        token_accuracy.compute(predictions=[[1]], references=[[-100]])
    assert token_accuracy.compute(predictions=[7, 8], references=[7, 0], ignore_index=0)["accuracy"] == 1.0


def test_perplexity_of_a_diverged_model_is_infinite_not_an_overflow(perplexity):
    # 800 nats per token: exp(800) overflows float64 (max ~ exp(709.78)); the loss itself stays exact
    out = perplexity.compute(nll_sum=[1600.0], num_tokens=[2])
    assert out["loss"] == 800.0 and out["perplexity"] == float("inf")
    assert perplexity.compute(nll_sum=[709.0], num_tokens=[1])["perplexity"] == pytest.approx(math.exp(709.0))
