"""The flex attention path on the CPU: its score_mods and block masks, against the dense bias and eager.

FlexAttention's forward runs on the CPU (uncompiled, a reference implementation); its backward needs a GPU,
so gradients through flex are checked in tests/test_cuda.py. Here: forward logits of flex against eager for
every encoding, causal and bidirectional, with padding; packed sequences attending within their document;
the ALiBi and T5 score_mods against the dense bias elementwise, and T5's gradient reaching its table; the
settings (compile, kernel options) reaching ``flex_attention``.
"""

import copy
import warnings

import pytest
import torch
from conftest import ENCODINGS, tiny_config

from modeling_study import StudyForCausalLM, StudyForMaskedLM
from modeling_study import attention_paths as paths
from modeling_study.position_encodings import POSITION_ENCODINGS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # flex warns that it runs uncompiled on the CPU


def pair(encoding, causal, **overrides):
    """A flex model and an eager copy of it, in evaluation mode."""
    config = tiny_config(position_encoding=encoding, is_causal=causal, **overrides)
    cls = StudyForCausalLM if causal else StudyForMaskedLM
    flex = cls._from_config(config, attn_implementation="flex_attention").eval()
    eager = copy.deepcopy(flex)
    eager.set_attn_implementation("eager")
    return flex, eager


def count_flex_calls(monkeypatch):
    calls = []
    original = paths._flex_function
    monkeypatch.setattr(paths, "_flex_function", lambda device: calls.append(device) or original(device))
    return calls


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_flex_logits_match_eager_with_padding(encoding, causal, monkeypatch):
    """Every position, the pads of a left-padded row included (they see no key: zero on both paths)."""
    flex, eager = pair(encoding, causal)
    ids = torch.randint(1, 99, (2, 20))
    attention_mask = torch.ones_like(ids)
    attention_mask[1, :5] = 0
    calls = count_flex_calls(monkeypatch)
    with torch.no_grad():
        got = flex(ids, attention_mask=attention_mask).logits
        expected = eager(ids, attention_mask=attention_mask).logits
    assert len(calls) == flex.config.num_hidden_layers
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
@pytest.mark.parametrize("encoding", ["rope", "alibi", "t5", "learned"])
def test_packed_sequences_attend_only_within_their_document(encoding, causal):
    """Position ids that restart mark documents (transformers finds them, without a cache, as in training);
    each document's logits equal those of the document alone."""
    flex, eager = pair(encoding, causal)
    lengths = [5, 8, 3]
    ids = torch.randint(1, 99, (1, sum(lengths)))
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    with torch.no_grad():
        packed = flex(ids, position_ids=position_ids, **({"use_cache": False} if causal else {})).logits
        alone = torch.cat([eager(doc).logits for doc in ids.split(lengths, dim=1)], dim=1)
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)


def grid(batch, heads, queries, keys):
    """Index tensors broadcasting to (B, H, T, S), as flex calls a score_mod (one element each)."""
    return (torch.arange(batch)[:, None, None, None], torch.arange(heads)[None, :, None, None],
            torch.arange(queries)[None, None, :, None], torch.arange(keys)[None, None, None, :])


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
@pytest.mark.parametrize("encoding", ["alibi", "t5"])
def test_score_mod_adds_exactly_the_dense_bias(encoding, causal):
    """Elementwise, per row positions (a left-padded row), distances far past T5's reach (its clamp)."""
    config = tiny_config(position_encoding=encoding, is_causal=causal, t5_num_buckets=16, t5_max_distance=20)
    module = POSITION_ENCODINGS[encoding](config)
    torch.nn.init.normal_(module.relative_attention_bias.weight) if encoding == "t5" else None
    query_positions = torch.stack([torch.arange(10, 40), torch.arange(300, 330)])  # (B, T)
    key_positions = torch.stack([torch.arange(0, 90), torch.arange(250, 340)])  # (B, S): 90 past the queries too
    score_mod = module.attention_score_mod(query_positions, key_positions)
    scores = torch.randn(2, config.num_attention_heads, 30, 90)
    got = score_mod(scores, *grid(*scores.shape))
    expected = scores + module.attention_bias(query_positions, key_positions)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_t5_score_mod_gradient_reaches_the_table():
    """The score_mod reads a per-distance row gathered from the table, so the gradient flex returns for it
    flows on to the table: equal to the dense bias's gradient."""
    module = POSITION_ENCODINGS["t5"](tiny_config(position_encoding="t5")).double()
    positions = torch.arange(200)[None]
    grad = torch.randn(1, 4, 200, 200, dtype=torch.float64)
    score_mod = module.attention_score_mod(positions, positions)
    scores = torch.zeros(1, 4, 200, 200, dtype=torch.float64)
    (through_score_mod,) = torch.autograd.grad(score_mod(scores, *grid(1, 4, 200, 200)),
                                               module.relative_attention_bias.weight, grad)
    (through_dense,) = torch.autograd.grad(module.attention_bias(positions, positions),
                                           module.relative_attention_bias.weight, grad)
    torch.testing.assert_close(through_score_mod, through_dense, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("encoding", ["rope", "t5"])
def test_settings_reach_flex_attention(encoding, monkeypatch):
    """Kernel options: FLEX's default, a forward's ``kernel_options=`` over it. Compiling: off on the CPU
    unless FLEX.compile says so, with FLEX.compile_options handed to torch.compile."""
    flex, _ = pair(encoding, True)
    seen, compiled = [], []

    def recording(query, key, value, **kwargs):
        seen.append(kwargs)
        return torch.zeros_like(query)

    monkeypatch.setattr(torch.nn.attention.flex_attention, "flex_attention", recording)
    monkeypatch.setattr(paths, "FLEX", paths.FlexSettings(kernel_options={"num_stages": 1}))
    ids = torch.randint(1, 99, (1, 6))
    with torch.no_grad():
        flex(ids)
        assert [s["kernel_options"] for s in seen] == [{"num_stages": 1}] * 2
        assert all(s["block_mask"] is seen[0]["block_mask"] for s in seen)  # one BlockMask per forward
        assert (seen[0]["score_mod"] is not None) == (encoding == "t5")
        seen.clear()
        flex(ids, kernel_options={"BLOCK_M": 32})
        assert [s["kernel_options"] for s in seen] == [{"BLOCK_M": 32}] * 2

    monkeypatch.setattr(torch, "compile", lambda fn, **options: compiled.append(options) or fn)
    paths._compiled_flex.cache_clear()
    assert paths._flex_function(torch.device("cpu")) is recording and not compiled
    monkeypatch.setattr(paths, "FLEX", paths.FlexSettings(compile=True, compile_options={"dynamic": False}))
    paths._flex_function(torch.device("cpu"))
    paths._flex_function(torch.device("cpu"))
    assert compiled == [{"dynamic": False}]  # compiled once, reused
    paths._compiled_flex.cache_clear()


def test_flex_refuses_attention_dropout_in_training():
    flex, _ = pair("alibi", True, attention_dropout=0.1)
    with pytest.raises(ValueError, match="attention_dropout"):
        with torch.no_grad(), warnings.catch_warnings():
            flex.train()(torch.randint(1, 99, (1, 6)))
