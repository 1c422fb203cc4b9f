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


# -- when tensor parallelism is asked for, and from_pretrained's checks -------------------------------------


class _Distributed:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@pytest.mark.parametrize("kwargs, requested", [
    ({}, False),
    ({"tp_plan": "auto"}, True),
    ({"tp_plan": None}, False),
    ({"distributed_config": {}}, False),
    ({"distributed_config": {"tp_plan": "auto"}}, True),
    ({"distributed_config": {"tp_size": 2}}, True),
    ({"distributed_config": {"tp_size": 1}}, False),
    ({"distributed_config": {"tp_size": None}}, False),
    ({"distributed_config": _Distributed(tp_plan="auto")}, True),
    ({"distributed_config": _Distributed(tp_size=4)}, True),
    ({"distributed_config": _Distributed(tp_size=1)}, False),
    ({"distributed_config": _Distributed()}, False),
])
def test_what_counts_as_asking_for_tensor_parallelism(kwargs, requested):
    from modeling_study.modeling_study import _tensor_parallel_requested

    assert _tensor_parallel_requested(kwargs) is requested


@pytest.fixture
def saved_alibi(tmp_path):
    StudyForCausalLM(tiny_config(position_encoding="alibi")).save_pretrained(tmp_path / "sub")
    return tmp_path


def test_from_pretrained_refuses_tensor_parallelism_for_a_bias_wherever_the_path_is_given(saved_alibi):
    refusal = r"^Tensor parallelism splits the attention heads across ranks, but position_encoding='alibi'"
    with pytest.raises(ValueError, match=refusal):
        StudyForCausalLM.from_pretrained(saved_alibi / "sub", tp_plan="auto")
    with pytest.raises(ValueError, match=refusal):
        StudyForCausalLM.from_pretrained(pretrained_model_name_or_path=saved_alibi / "sub", tp_plan="auto")
    with pytest.raises(ValueError, match=refusal):  # the location keywords reach the config it reads
        StudyForCausalLM.from_pretrained(saved_alibi, subfolder="sub", tp_plan="auto")


def test_from_pretrained_checks_the_config_it_is_given(tmp_path):
    StudyForCausalLM(tiny_config(position_encoding="rope")).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"position_encoding='alibi' adds a bias to every head"):
        StudyForCausalLM.from_pretrained(tmp_path, config=tiny_config(position_encoding="alibi"), tp_plan="auto")


def test_weights_load_from_safetensors_only(tmp_path):
    model = StudyForCausalLM(tiny_config())
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError) as error:
        StudyForCausalLM.from_pretrained(tmp_path, use_safetensors=False)
    assert str(error.value) == "Study models load safetensors weights only; drop use_safetensors=False."
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle next to nothing else
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(OSError):
        StudyForCausalLM.from_pretrained(tmp_path)


# -- eager attention -----------------------------------------------------------------------------------


def test_eager_attention_in_bfloat16_takes_its_softmax_in_float32():
    """As Llama's: scores in the model's dtype, softmax in float32, weights cast back to it, then the values
    (torch's CPU softmax of bfloat16 also works in float32 inside: the cast back is what this pins)."""
    from modeling_study.modeling_study import eager_attention_forward

    torch.manual_seed(0)
    query, key, value = (torch.randn(1, 2, 5, 8, dtype=torch.bfloat16) for _ in range(3))
    module = torch.nn.Module()
    module.num_key_value_groups, module.training = 1, False
    output, weights = eager_attention_forward(module, query, key, value, None, scaling=0.35)
    scores = torch.matmul(query, key.transpose(2, 3)) * 0.35
    expected_weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(torch.bfloat16)
    assert weights.dtype == torch.bfloat16 and torch.equal(weights, expected_weights)
    assert torch.equal(output, torch.matmul(expected_weights, value).transpose(1, 2))
