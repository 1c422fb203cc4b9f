"""Components against transformers' own implementations, one function at a time."""

import pytest
import torch
from conftest import tiny_config

from modeling_study.norms import StudyRMSNorm
from modeling_study.position_encodings import (
    ALiBiPositionEncoding,
    RotaryPositionEncoding,
    alibi_slopes,
    apply_rotary,
    rotate_every_two,
    t5_relative_position_bucket,
)

LLAMA3 = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}


@pytest.mark.parametrize(
    "rope_parameters",
    [
        {"rope_type": "default", "rope_theta": 10000.0},
        {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
        {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
        LLAMA3,
    ],
    ids=["default", "linear", "dynamic", "llama3"],
)
def test_rope_matches_llama(rope_parameters):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    sizes = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    llama = LlamaRotaryEmbedding(LlamaConfig(**sizes, rope_parameters=dict(rope_parameters)))
    ours = RotaryPositionEncoding(tiny_config(**sizes, rope_parameters=dict(rope_parameters)))

    position_ids = torch.arange(70)[None]  # past max_position_embeddings, where dynamic scaling kicks in
    q, k = torch.randn(1, 4, 70, 16), torch.randn(1, 2, 70, 16)
    cos_ref, sin_ref = llama(q, position_ids)
    cos, sin = ours.rotary_embeddings(q, position_ids)
    # the same float32 operations in the same order as Llama's: bit-for-bit equal, so no tolerance
    torch.testing.assert_close(cos, cos_ref, rtol=0, atol=0)
    torch.testing.assert_close(sin, sin_ref, rtol=0, atol=0)
    q_ref, k_ref = apply_rotary_pos_emb(q, k, cos_ref, sin_ref)
    q_ours, k_ours = apply_rotary(q, k, cos, sin)
    torch.testing.assert_close(q_ours, q_ref, rtol=0, atol=0)
    torch.testing.assert_close(k_ours, k_ref, rtol=0, atol=0)


def test_interleaved_partial_rope_matches_gptj():
    """GPT-J rotates interleaved pairs of the first ``rotary_dim`` channels only."""
    from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb, create_sinusoidal_positions

    head_dim, rotary_dim, length = 16, 8, 20
    config = tiny_config(hidden_size=64, num_attention_heads=4, rope_layout="interleaved", partial_rotary_factor=0.5)
    assert config.rotary_dim == rotary_dim
    position_ids = torch.arange(length)[None]
    q = torch.randn(1, length, 4, head_dim)  # GPT-J's (B, T, H, d)

    sin_ref, cos_ref = torch.split(create_sinusoidal_positions(length, rotary_dim)[position_ids], rotary_dim // 2, dim=-1)
    q_ref = torch.cat([apply_rotary_pos_emb(q[..., :rotary_dim], sin_ref, cos_ref), q[..., rotary_dim:]], dim=-1)

    cos, sin = RotaryPositionEncoding(config).rotary_embeddings(q, position_ids)
    q_ours, _ = apply_rotary(q.transpose(1, 2), q.transpose(1, 2), cos, sin, rotate=rotate_every_two)
    torch.testing.assert_close(q_ours.transpose(1, 2), q_ref, rtol=0, atol=0)  # same products and sums: exact


@pytest.mark.parametrize("num_heads", [1, 2, 4, 6, 8, 12, 16, 20])
def test_alibi_slopes_match_bloom(num_heads):
    from transformers.models.bloom.modeling_bloom import _get_alibi_slopes

    torch.testing.assert_close(alibi_slopes(num_heads), _get_alibi_slopes(num_heads, torch.device("cpu")).float())


@pytest.mark.parametrize("num_heads", [4, 6])
def test_alibi_matches_bloom_after_softmax(num_heads):
    """BLOOM adds ``m * key_position`` (a per-row constant away from ours): equal after softmax."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    batch, length = 2, 9
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    attention_mask[1, :3] = 0  # left padding
    scores = torch.randn(batch, num_heads, length, length)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
    allowed = allowed | ~allowed.any(-1, keepdim=True)  # fully padded query rows: compare a defined softmax

    bloom = build_alibi_tensor(attention_mask, num_heads, torch.float32).view(batch, num_heads, 1, length)
    ref = torch.softmax((scores + bloom).masked_fill(~allowed, float("-inf")), dim=-1)

    config = tiny_config(num_attention_heads=num_heads, num_key_value_heads=num_heads, hidden_size=8 * num_heads)
    positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    bias = ALiBiPositionEncoding(config).attention_bias(positions, positions)
    ours = torch.softmax((scores + bias).masked_fill(~allowed, float("-inf")), dim=-1)
    real_rows = attention_mask.bool()[:, None, :, None].expand_as(ours)
    # BLOOM's bias differs from ours by a constant per row, which softmax removes up to rounding of its
    # shifted inputs: probabilities <= 1 differ by an ulp or two (measured 1.2e-7)
    torch.testing.assert_close(ours[real_rows], ref[real_rows], rtol=0, atol=5e-7)


def test_alibi_bidirectional_is_symmetric():
    config = tiny_config(is_causal=False, position_encoding="alibi")
    positions = torch.arange(7)[None]
    bias = ALiBiPositionEncoding(config).attention_bias(positions, positions)
    torch.testing.assert_close(bias, bias.transpose(-1, -2))
    assert (bias <= 0).all() and (torch.diagonal(bias, dim1=-2, dim2=-1) == 0).all()
    slopes = torch.tensor([2**-2, 2**-4, 2**-6, 2**-8])  # the paper's for 4 heads, not alibi_slopes' output
    torch.testing.assert_close(bias[0, :, 0, 6], -6 * slopes, rtol=0, atol=0)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (8, 20), (16, 40)])
def test_t5_buckets_match_transformers(bidirectional, num_buckets, max_distance):
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = torch.arange(-300, 301)[None, :] - torch.zeros(5, 1, dtype=torch.long)
    ref = T5Attention._relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    ours = t5_relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    assert torch.equal(ours, ref)


def test_t5_bias_is_shared_by_all_layers_and_computed_once():
    """One bias tensor per forward, the same object handed to every layer."""
    from modeling_study import StudyModel

    model = StudyModel(tiny_config(position_encoding="t5")).eval()
    calls, seen = [], []
    original = model.position_encoding.attention_bias

    def counting(*args):
        calls.append(1)
        return original(*args)

    model.position_encoding.attention_bias = counting
    for layer in model.layers:
        layer.register_forward_pre_hook(
            lambda m, args, kwargs: seen.append((kwargs["attention_mask"], kwargs["attention"].bias)), with_kwargs=True
        )
    model.config._attn_implementation = "eager"  # eager: the bias is built whole, once
    model(torch.randint(1, 99, (1, 6)))
    assert len(calls) == 1
    assert len(seen) == 2 and seen[0][0] is seen[1][0] and seen[0][1] is None
    # sdpa: one described bias shared by all layers, built block by block inside them
    model.config._attn_implementation = "sdpa"
    calls.clear(), seen.clear()
    model(torch.randint(1, 99, (1, 6)))
    assert calls == [] and len(seen) == 2 and seen[0][1] is not None and seen[0][1] is seen[1][1]


def test_rmsnorm_matches_llama():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    x = torch.randn(3, 5, 32)
    ref, ours = LlamaRMSNorm(32, eps=1e-6), StudyRMSNorm(32, eps=1e-6)
    with torch.no_grad():
        ref.weight.normal_()
        ours.weight.copy_(ref.weight)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
