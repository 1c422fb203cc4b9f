"""``from_hf`` for Mistral, Qwen2 and Gemma: exact parity with random tiny references.

Method as in ``test_convert.py`` (litgpt's): a tiny random reference with its norms and biases pushed
away from their ones/zeros initialisation (so a dropped bias or a ``w`` vs ``1 + w`` gain cannot hide),
converted, compared on logits or last hidden states in float32 with and without padding for both
attention backends, then greedy generation from a left-padded batch. These families compute exactly
Llama's operations in Llama's order, so the logits agree bit for bit (``torch.equal``), not merely to
a tolerance; Gemma's ``sqrt(d)`` scale, ``1 + w`` gain and tanh-GELU gate are each one extra op done
identically on both sides.

The helpers here (``perturbed``, ``padded_batch``, ``output_of``) are shared with ``test_to_hf.py``.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import transformers as tf

from modeling_study import StudyConfig, StudyForCausalLM, StudyModel, from_hf
from modeling_study.norms import StudyRMSNorm, StudyRMSNormPlusOne

VOCAB, PAD, BOS, EOS = 99, 0, 1, 2
# initializer_range=0.2 (not 0.02): attention far from uniform, so a wrong bias or scale shows
BASE = dict(vocab_size=VOCAB, initializer_range=0.2, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
DECODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False)


def mistral(**overrides):
    return tf.MistralConfig(**BASE | DECODER | dict(sliding_window=None) | overrides)


def qwen2(**overrides):
    return tf.Qwen2Config(**BASE | DECODER | overrides)


def gemma(**overrides):
    # head_dim=16 with 4 heads: 64 != hidden_size 32, Gemma's explicit head_dim
    return tf.GemmaConfig(**BASE | DECODER | dict(head_dim=16, tie_word_embeddings=True) | overrides)


CASES = {
    "mistral": (mistral(), tf.MistralModel, tf.MistralForCausalLM),
    "mistral-window-covers-context": (mistral(sliding_window=64), tf.MistralModel, tf.MistralForCausalLM),
    "qwen2": (qwen2(), tf.Qwen2Model, tf.Qwen2ForCausalLM),
    "gemma": (gemma(), tf.GemmaModel, tf.GemmaForCausalLM),
}


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Norm gains and biases moved off their initial ones/zeros, so each one matters; eval mode."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                param.add_(0.2 * torch.randn_like(param))
    return model.eval()


def reference(config, model_class, attn_implementation: str):
    supports = attn_implementation == "eager" or model_class._supports_sdpa  # BLOOM: eager only
    model = model_class._from_config(config, attn_implementation=attn_implementation if supports else "eager")
    return perturbed(model)


def padded_batch(left: bool):
    """Two rows of 12 tokens; row 1 has 4 pads on the left (decoders) or right (encoders)."""
    ids = torch.randint(3, VOCAB, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, slice(None, 4) if left else slice(-4, None)] = 0
    return ids.masked_fill(mask == 0, PAD), mask


def output_of(model, **inputs):
    with torch.no_grad():
        out = model(**inputs)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def reference_positions(model, mask):
    """What generate() passes: positions count real tokens only (BLOOM derives them itself)."""
    if "position_ids" not in inspect.signature(model.forward).parameters:
        return {}
    return {"position_ids": (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)}


def assert_same_function(study, ref, exact: bool):
    """Unpadded and padded outputs agree: bit for bit when ``exact``, else within float32 rounding."""
    check = (lambda a, b: torch.testing.assert_close(a, b, atol=0, rtol=0)) if exact else \
        (lambda a, b: torch.testing.assert_close(a, b, atol=1e-5, rtol=0))  # ~10 ulps of logits of size ~1
    decoder = study.config.is_causal
    ids, mask = padded_batch(left=decoder)
    expected = output_of(ref, input_ids=ids)
    assert expected.std() > 0.1, "degenerate reference: the comparison would prove nothing"
    check(output_of(study, input_ids=ids), expected)
    real = mask.bool()  # outputs at padding are not defined the same way by every implementation
    expected = output_of(ref, input_ids=ids, attention_mask=mask, **reference_positions(ref, mask))[real]
    check(output_of(study, input_ids=ids, attention_mask=mask)[real], expected)


def assert_same_generation(study, ref):
    ids, mask = padded_batch(left=True)
    settings = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=PAD)
    expected = ref.generate(input_ids=ids, attention_mask=mask, **settings)
    assert expected.shape == (2, 12 + 8)
    assert torch.equal(study.generate(input_ids=ids, attention_mask=mask, **settings), expected)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("head", [False, True], ids=["base", "head"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_reference(case, head, attn):
    config, base_class, head_class = CASES[case]
    ref = reference(config, head_class if head else base_class, attn)
    study = from_hf(ref, attn_implementation=attn)
    assert type(study) is (StudyForCausalLM if head else StudyModel)
    assert_same_function(study, ref, exact=True)


@pytest.mark.parametrize("case", ["mistral", "qwen2", "gemma"])  # a window that covers the context changes nothing
def test_greedy_generation_matches_reference(case):
    config, _, head_class = CASES[case]
    ref = reference(config, head_class, "sdpa")
    assert_same_generation(from_hf(ref), ref)


def test_configs_map_what_each_family_adds_to_llama():
    q = StudyConfig.from_hf_config(qwen2())
    assert (q.attention_bias, q.attention_output_bias, q.mlp_bias, q.head_dim) == (True, False, False, 8)
    g = StudyConfig.from_hf_config(gemma())
    assert (g.norm_type, g.ffn_activation, g.head_dim, g.tie_word_embeddings) == ("rmsnorm_plus_one", "geglu_tanh", 16, True)
    assert g.embedding_multiplier == 32**0.5
    m = StudyConfig.from_hf_config(mistral(sliding_window=64))
    assert (m.position_encoding, m.norm_type, m.ffn_activation, m.num_key_value_heads) == ("rope", "rmsnorm", "swiglu", 2)

    attention = from_hf(tf.Qwen2Model(qwen2())).layers[0].self_attn
    assert all(getattr(attention, name).bias is not None for name in ("q_proj", "k_proj", "v_proj"))
    assert attention.o_proj.bias is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (mistral(sliding_window=16), r"mistral with sliding_window=16.*cover max_position_embeddings=64"),
        (qwen2(use_sliding_window=True, sliding_window=16, max_window_layers=1),
         r"qwen2 with sliding_window=16.*cover max_position_embeddings=64"),
        (gemma(use_bidirectional_attention=True), r"gemma with use_bidirectional_attention=True"),
        (gemma(hidden_act="relu"), r"gemma with hidden_act='relu'.*'gelu_pytorch_tanh'"),
    ],
    ids=["mistral-short-window", "qwen2-short-window", "gemma-bidirectional", "gemma-ungated-relu"],
)
def test_variants_a_study_model_cannot_express_raise(config, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig.from_hf_config(config)


def test_qwen2_window_only_on_layers_that_use_it_counts():
    """Qwen2 keeps sliding_window only with use_sliding_window; off, a short window is no obstacle."""
    config = qwen2(use_sliding_window=False, sliding_window=16)
    assert StudyConfig.from_hf_config(config).position_encoding == "rope"


def test_plus_one_rmsnorm_equals_gemmas_in_float32_and_bfloat16():
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm

    ours, theirs = StudyRMSNormPlusOne(32, eps=1e-6), GemmaRMSNorm(32, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        theirs.weight.copy_(ours.weight)
    for dtype in (torch.float32, torch.bfloat16):  # Gemma scales in float32 and casts last; so must we
        x = torch.randn(2, 5, 32).to(dtype)
        assert torch.equal(ours.to(dtype)(x), theirs.to(dtype)(x))


def test_plus_one_rmsnorm_starts_as_the_identity_gain():
    """Its weight initialises at 0 (gain 1), also through from_pretrained, where _init_weights runs."""
    config = StudyConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, norm_type="rmsnorm_plus_one", ffn_activation="geglu_tanh")
    model = StudyModel(config)
    norms = [m for m in model.modules() if isinstance(m, StudyRMSNormPlusOne)]
    assert len(norms) == 3 and all(torch.equal(m.weight, torch.zeros(32)) for m in norms)
    x = torch.randn(3, 32)
    torch.testing.assert_close(norms[0](x), StudyRMSNorm(32, eps=config.norm_eps)(x), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(attention_output_bias="no"), r"attention_output_bias must be True, False or None.*got 'no'"),
        (dict(attention_bias=1), r"attention_bias must be True or False, got 1"),
        (dict(norm_type="gemma"), r"norm_type must be one of \[.*'rmsnorm_plus_one'\], got 'gemma'"),
    ],
)
def test_new_config_fields_are_validated(overrides, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig(**overrides)


def test_attention_output_bias_follows_attention_bias_unless_set():
    assert StudyConfig(attention_bias=True).attention_output_bias is True
    assert StudyConfig(attention_bias=False).attention_output_bias is False
    assert StudyConfig(attention_bias=True, attention_output_bias=False).attention_output_bias is False
