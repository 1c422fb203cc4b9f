"""modeling_study.py, the promises a forward pass does not exercise (found by mutation testing, docs/mutation/).

The tensor-parallel refusal and where it reads the config from, swapping embeddings (what
``resize_token_embeddings`` relies on), the classifier head's shape, and the ALiBi bias channel in
bfloat16.
"""

import pytest
import torch
from conftest import tiny_config

from modeling_study import StudyConfig, StudyForCausalLM, StudyForMaskedLM, StudyForSequenceClassification, StudyModel
from modeling_study.modeling_study import _check_tensor_parallel

SERVED = "none, integer, binary, sinusoidal, learned, rope"


@pytest.mark.parametrize("encoding", ["alibi", "t5"])
def test_tensor_parallelism_refuses_a_per_head_bias_and_names_what_it_serves(encoding):
    with pytest.raises(ValueError) as error:
        _check_tensor_parallel(tiny_config(position_encoding=encoding), "unused", {"tp_plan": "auto"})
    assert str(error.value) == (
        f"Tensor parallelism splits the attention heads across ranks, but position_encoding={encoding!r} adds a bias "
        f"to every head's scores, built for all heads at once. Load this model without tp_plan (one process, or "
        f"accelerate / data parallelism); tensor parallelism serves {SERVED}.")


def test_tensor_parallelism_serves_the_encodings_without_a_bias():
    for encoding in SERVED.split(", "):
        _check_tensor_parallel(tiny_config(position_encoding=encoding), "unused", {"tp_plan": "auto"})


def test_tensor_parallel_check_reads_the_config_where_from_pretrained_would(monkeypatch):
    """Called directly (no config object yet), it reads the config from the same place, revision and
    credentials as the model's own loading: every location keyword is passed on, nothing else."""
    seen = []

    def from_pretrained(where, **kwargs):
        seen.append((where, kwargs))
        return tiny_config(position_encoding="rope")

    monkeypatch.setattr(StudyConfig, "from_pretrained", from_pretrained)
    where_from = dict(revision="v2", cache_dir="/cache", token="hf_x", local_files_only=True, subfolder="sub")
    _check_tensor_parallel(None, "user/model", {**where_from, "tp_plan": "auto", "torch_dtype": "auto"})
    assert seen == [("user/model", where_from)]


def test_swapping_the_embeddings_and_the_masked_lm_head():
    model = StudyModel(tiny_config())
    new = torch.nn.Embedding(7, 32)
    model.set_input_embeddings(new)
    assert model.get_input_embeddings() is new

    masked = StudyForMaskedLM(tiny_config(is_causal=False))
    masked.resize_token_embeddings(120)  # through set_input_embeddings and set_output_embeddings
    assert masked.get_input_embeddings().weight.shape == (120, 32)
    assert masked.get_output_embeddings().weight.shape == (120, 32)
    assert masked(torch.tensor([[110, 119]])).logits.shape == (1, 2, 120)


def test_the_classifier_head_is_bias_free_like_llamas():
    model = StudyForSequenceClassification(tiny_config(num_labels=3))
    assert model.num_labels == 3 and model.score.bias is None and model.score.weight.shape == (3, 32)


@pytest.mark.parametrize("encoding", ["alibi"])
def test_the_bias_channel_in_bfloat16_matches_eager(encoding):
    """sdpa folds ALiBi into an extra q/k channel (the slopes are a buffer in the model's dtype): in bfloat16
    it gives eager's logits."""
    torch.manual_seed(0)
    model = StudyForCausalLM(tiny_config(position_encoding=encoding)).to(torch.bfloat16).eval()
    ids = torch.randint(1, 99, (2, 12))
    with torch.no_grad():
        sdpa = model(ids).logits
        model.set_attn_implementation("eager")
        eager = model(ids).logits
    assert sdpa.dtype == torch.bfloat16
    torch.testing.assert_close(sdpa.float(), eager.float(), rtol=0, atol=0.05)  # bfloat16 has 8 bits of mantissa
