"""Independent references for every encoding, bias and norm placement (issue 17).

Every expected value here is computed without the package's own formula: a closed form written in
the test (Vaswani's sinusoids, exact bit vectors, ``x + p``, ALiBi's ``-m_h |k - q|`` with the
paper's slopes typed out), transformers' own implementation (T5's ``compute_bias``, the RoPE of Llama,
GPT-NeoX and GPT-J), or a transformer layer written out by hand below. A test that compared two of the
package's paths (eager against sdpa, cached against full) would pass on a formula they share.

Tolerances: float32 has a relative rounding error of 6e-8 per operation. Outputs of the tiny models
here are O(1) after a few hundred operations, so a correct implementation agrees with a hand-written
one to about 1e-6 (the measured worst case is quoted next to each tolerance); every planted bug of
issue 17 moves them by 1e-2 or more.
"""

import math

import pytest
import torch
from conftest import tiny_config
from torch.nn import functional as F

from modeling_study import StudyForSequenceClassification, StudyModel
from modeling_study.learned_bias_attention import bucketed_bias_attention
from modeling_study.position_encodings import (
    POSITION_ENCODINGS,
    RotaryPositionEncoding,
    alibi_slopes,
    apply_rotary,
)

# Outputs of one or two hand-written layers in float32 (measured worst case 3e-6 over the tests below, on outputs of size up to ~5).
LAYER_TOLERANCE = 1e-5


# -- hook 1: closed forms ---------------------------------------------------------------------------


def vaswani(positions: list[int], dim: int) -> torch.Tensor:
    """Section 3.5 of arXiv:1706.03762, in float64: sin on even dimensions, cos on odd, base 10000."""
    table = torch.zeros(len(positions), dim, dtype=torch.float64)
    for row, p in enumerate(positions):
        for i in range(0, dim, 2):
            angle = p / 10000 ** (i / dim)
            table[row, i] = math.sin(angle)
            if i + 1 < dim:
                table[row, i + 1] = math.cos(angle)
    return table


def bits(p: int, dim: int) -> list[int]:
    """Bit i of p in dimension i, least significant first, from Python's own binary string."""
    digits = format(p, "b")[::-1]
    return [int(digits[i]) if i < len(digits) else 0 for i in range(dim)]


def encode(name: str, positions, dim: int = 32) -> torch.Tensor:
    """What the encoding adds to zero embeddings at ``positions``: ``(len(positions), dim)``."""
    encoding = POSITION_ENCODINGS[name](tiny_config(hidden_size=dim, head_dim=8, position_encoding=name))
    ids = torch.tensor([positions], dtype=torch.long)
    return encoding.add_to_embeddings(torch.zeros(1, len(positions), dim), ids)[0]


@pytest.mark.parametrize("dim", [32, 33])
def test_sinusoidal_is_vaswanis_formula(dim):
    positions = [0, 1, 2, 7, 50, 63, 500]
    # float32 angles p * 10000^(-i/D) carry a relative error of 6e-8, so sin/cos err by about p * 1e-7
    torch.testing.assert_close(encode("sinusoidal", positions, dim).double(), vaswani(positions, dim), rtol=0, atol=1e-4)
    small = positions[:5]  # p <= 50: error <= 5e-6
    torch.testing.assert_close(encode("sinusoidal", small, dim).double(), vaswani(small, dim), rtol=0, atol=1e-5)


def test_sinusoidal_hand_values():
    """Position 1, D = 4: (sin 1, cos 1, sin 0.01, cos 0.01), typed out."""
    expected = torch.tensor([0.8414709848, 0.5403023059, 0.0099998333, 0.9999500004])
    torch.testing.assert_close(encode("sinusoidal", [1], 4)[0], expected, rtol=0, atol=1e-7)


def test_binary_is_the_bit_vector():
    assert encode("binary", [0], 8)[0].tolist() == [0] * 8
    assert encode("binary", [5], 8)[0].tolist() == [1, 0, 1, 0, 0, 0, 0, 0]
    assert encode("binary", [6], 8)[0].tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    assert encode("binary", [255], 8)[0].tolist() == [1] * 8
    large = [1000, 2**20 + 3, 2**31 - 1]
    assert encode("binary", large, 32).tolist() == [bits(p, 32) for p in large]


def test_binary_wraps_past_two_to_the_dimension():
    """D = 8 holds positions 0..255; 256 + 5 shows the bits of 5 again."""
    assert encode("binary", [256 + 5, 512], 8).tolist() == [bits(5, 8), bits(0, 8)]
    # D = 64 > 62 bits: bits 62 and 63 stay 0 (2**62 wraps to 0), the rest are p's bits
    p = 2**61 + 2**40 + 9
    assert encode("binary", [p, 2**62 + 6], 64).tolist() == [bits(p, 64), bits(6, 64)]


def test_integer_is_x_plus_p():
    x = torch.randn(2, 5, 8)
    positions = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 2, 300]])
    encoding = POSITION_ENCODINGS["integer"](tiny_config(hidden_size=8, position_encoding="integer"))
    expected = torch.stack([x[b, t] + float(positions[b, t]) for b in range(2) for t in range(5)]).view(2, 5, 8)
    assert torch.equal(encoding.add_to_embeddings(x, positions), expected)


def test_learned_adds_the_row_of_its_position():
    encoding = POSITION_ENCODINGS["learned"](tiny_config(position_encoding="learned"))
    x = torch.randn(1, 3, 32)
    got = encoding.add_to_embeddings(x, torch.tensor([[4, 0, 9]]))
    table = encoding.embeddings.weight
    assert torch.equal(got, x + torch.stack([table[4], table[0], table[9]])[None])


@pytest.mark.parametrize("name", ["integer", "binary", "sinusoidal"])
def test_model_feeds_the_closed_form_with_positions_counted_from_the_mask(name):
    """The first layer's input is ``embed(token) + PE(position)``; a left-padded row counts real tokens."""
    model = StudyModel(tiny_config(position_encoding=name)).eval()
    ids = torch.randint(3, 99, (2, 6))
    mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
    seen = []
    model.layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        model(ids, attention_mask=mask)
    closed = {"integer": lambda p: torch.full((32,), float(p), dtype=torch.float64),
              "binary": lambda p: torch.tensor(bits(p, 32), dtype=torch.float64),
              "sinusoidal": lambda p: vaswani([p], 32)[0]}[name]
    positions = [[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 2, 3]]
    expected = model.embed_tokens.weight[ids].double() + torch.stack([torch.stack([closed(p) for p in row]) for row in positions])
    real = mask.bool()
    torch.testing.assert_close(seen[0][real].double(), expected[real], rtol=0, atol=1e-6)


# -- hook 3: biases ---------------------------------------------------------------------------------

# The paper's slopes (Press et al. 2022, arXiv:2108.12409, section 3), typed out: 2^(-8/n), 2^(-16/n), ...
# for a power of two n; otherwise those of the closest smaller power of two, then every other one of 2n.
PAPER_SLOPES = {
    4: [2**-2, 2**-4, 2**-6, 2**-8],
    8: [2**-1, 2**-2, 2**-3, 2**-4, 2**-5, 2**-6, 2**-7, 2**-8],
    6: [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3],
    3: [2**-4, 2**-8, 2**-2],
}


@pytest.mark.parametrize("heads", sorted(PAPER_SLOPES))
def test_alibi_slopes_are_the_papers(heads):
    assert alibi_slopes(heads).tolist() == PAPER_SLOPES[heads]


def hand_alibi(heads: int, length: int) -> torch.Tensor:
    """``-m_h |k - q|``: ``(1, H, T, T)``, written element by element."""
    bias = torch.zeros(1, heads, length, length)
    for h, m in enumerate(PAPER_SLOPES[heads]):
        for q in range(length):
            for k in range(length):
                bias[0, h, q, k] = -m * abs(k - q)
    return bias


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_alibi_bias_is_minus_slope_times_distance(causal):
    encoding = POSITION_ENCODINGS["alibi"](tiny_config(position_encoding="alibi", is_causal=causal))
    positions = torch.arange(9)[None]
    got, expected = encoding.attention_bias(positions, positions), hand_alibi(4, 9)
    factors = encoding.attention_bias_factors(positions, positions)
    if causal:  # keys after the query are masked: only k <= q is defined
        keep = torch.ones(9, 9, dtype=torch.bool).tril()
        # the factored form m_h * k' (k' = k - S // 2, centred to halve float32 round-off) differs from the
        # bias by a constant per query row, which softmax ignores
        per_head, per_key = factors
        factored = per_head * per_key.transpose(-1, -2)  # (1, H, 1, S)
        assert per_key.abs().max() <= 9 // 2
        row_constant = factored - expected
        torch.testing.assert_close(row_constant[..., keep].view(-1), (row_constant[..., :1].expand(-1, -1, -1, 9)[..., keep]).view(-1))
        got, expected = got[..., keep], expected[..., keep]
    else:  # -m |k - q| is not rank one: no factored form
        assert factors is None
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def t5_reference_bias(encoding, causal: bool, length: int) -> torch.Tensor:
    """transformers' ``T5Attention.compute_bias`` with our table: ``(1, H, T, T)``."""
    from transformers import T5Config
    from transformers.models.t5.modeling_t5 import T5Attention

    config = T5Config(d_model=32, d_kv=8, num_heads=encoding.relative_attention_bias.weight.shape[1],
                      relative_attention_num_buckets=encoding.num_buckets,
                      relative_attention_max_distance=encoding.max_distance, is_decoder=causal)
    reference = T5Attention(config, has_relative_attention_bias=True)
    with torch.no_grad():
        reference.relative_attention_bias.weight.copy_(encoding.relative_attention_bias.weight)
    return reference.compute_bias(length, length)


def t5_encoding(causal: bool, **sizes):
    config = tiny_config(position_encoding="t5", is_causal=causal, t5_num_buckets=16, t5_max_distance=40, **sizes)
    encoding = POSITION_ENCODINGS["t5"](config)
    with torch.no_grad():
        encoding.relative_attention_bias.weight.normal_()  # every (bucket, head) distinct
    return encoding


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_t5_bias_matches_transformers_compute_bias(causal):
    encoding = t5_encoding(causal)
    positions = torch.arange(70)[None]  # past max_distance=40: the far buckets too
    expected = t5_reference_bias(encoding, causal, 70)
    assert torch.equal(encoding.attention_bias(positions, positions), expected)
    if causal:  # the causal bias still tells distances apart (a reversed direction would give one bucket)
        assert expected[0, 0, 60, :61].unique().numel() > 8


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_t5_blockwise_attention_matches_attention_with_transformers_bias(causal):
    """The block-wise path (two blocks of rows, 150 > 128) against ``softmax(q k^T s + compute_bias) v``,
    outputs and every gradient (the table's included) against autograd through the reference."""
    encoding = t5_encoding(causal)
    heads, length, dim = 4, 150, 8
    q, k, v = (torch.randn(1, heads, length, dim, requires_grad=True) for _ in range(3))
    positions = torch.arange(length)[None]
    allowed = torch.ones(length, length, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()

    table = encoding.relative_attention_bias.weight
    bias = t5_reference_bias_with_grad(encoding, causal, length)  # autograd reaches our table through it
    scores = (q @ k.transpose(-1, -2)) * dim**-0.5 + bias
    expected = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v  # (1, H, T, d)
    grad = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * grad).sum(), (q, k, v, table))

    described = encoding.attention_bias_buckets(positions, positions)
    got = bucketed_bias_attention(q, k, v, described, allowed[None, None], dim**-0.5, causal)  # (1, T, H, d)
    got_grads = torch.autograd.grad((got.transpose(1, 2) * grad).sum(), (q, k, v, table))
    torch.testing.assert_close(got.transpose(1, 2), expected, rtol=0, atol=LAYER_TOLERANCE)
    for ours, ref in zip(got_grads, expected_grads):
        # the table's gradient sums thousands of terms (values ~10): rounding is relative, measured 3e-6
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def t5_reference_bias_with_grad(encoding, causal, length):
    """``compute_bias`` of a reference whose table *is* ours, so autograd reaches our weight."""
    from transformers import T5Config
    from transformers.models.t5.modeling_t5 import T5Attention

    config = T5Config(d_model=32, d_kv=8, num_heads=encoding.relative_attention_bias.weight.shape[1],
                      relative_attention_num_buckets=encoding.num_buckets,
                      relative_attention_max_distance=encoding.max_distance, is_decoder=causal)
    reference = T5Attention(config, has_relative_attention_bias=True)
    reference.relative_attention_bias = encoding.relative_attention_bias
    return reference.compute_bias(length, length)


# -- a transformer written out by hand --------------------------------------------------------------


def hand_norm(module, x):
    if isinstance(module, torch.nn.Identity):
        return x
    if isinstance(module, torch.nn.LayerNorm):  # Ba et al.: centre, scale by the std, gain and bias
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + module.eps) * module.weight + module.bias
    return x / torch.sqrt((x**2).mean(-1, keepdim=True) + module.variance_epsilon) * module.weight  # RMSNorm


def hand_attention(attn, x, bias, causal: bool):
    """``softmax(q k^T / sqrt(d) + bias) v`` with grouped-query heads, then the output projection."""
    batch, length, _ = x.shape
    heads, kv_heads, d = attn.config.num_attention_heads, attn.config.num_key_value_heads, attn.head_dim
    q = F.linear(x, attn.q_proj.weight, attn.q_proj.bias).view(batch, length, heads, d).transpose(1, 2)
    k = F.linear(x, attn.k_proj.weight, attn.k_proj.bias).view(batch, length, kv_heads, d).transpose(1, 2)
    v = F.linear(x, attn.v_proj.weight, attn.v_proj.bias).view(batch, length, kv_heads, d).transpose(1, 2)
    k, v = k.repeat_interleave(heads // kv_heads, 1), v.repeat_interleave(heads // kv_heads, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if bias is not None:
        scores = scores + bias
    if causal:
        scores = scores.masked_fill(~torch.ones(length, length, dtype=torch.bool).tril(), float("-inf"))
    out = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(batch, length, heads * d)
    return F.linear(out, attn.o_proj.weight, attn.o_proj.bias)


def hand_mlp(mlp, x):
    """The default ``swiglu``: ``down(silu(gate x) * up x)`` (Shazeer 2020, arXiv:2002.05202)."""
    return mlp.down_proj(F.silu(mlp.gate_proj(x)) * mlp.up_proj(x))


def hand_layer(layer, x, placement: str, bias, causal: bool):
    attend = lambda h: hand_attention(layer.self_attn, h, bias, causal)  # noqa: E731
    mlp = lambda h: hand_mlp(layer.mlp, h)  # noqa: E731
    if placement == "pre":  # x + f(norm(x))
        x = x + attend(hand_norm(layer.input_layernorm, x))
        return x + mlp(hand_norm(layer.post_attention_layernorm, x))
    if placement == "post":  # norm(x + f(x))
        x = hand_norm(layer.post_attention_layernorm, x + attend(x))
        return hand_norm(layer.post_feedforward_layernorm, x + mlp(x))
    # sandwich: x + norm(f(norm(x)))
    x = x + hand_norm(layer.post_attention_layernorm, attend(hand_norm(layer.input_layernorm, x)))
    return x + hand_norm(layer.post_feedforward_layernorm, mlp(hand_norm(layer.pre_feedforward_layernorm, x)))


def hand_model(model, ids, bias=None):
    config = model.config
    x = model.embed_tokens.weight[ids]
    for layer in model.layers:
        x = hand_layer(layer, x, config.norm_placement, bias, config.is_causal)
    final = {"pre": True, "post": False, "sandwich": True}[config.norm_placement]  # the README's table
    return hand_norm(model.norm, x) if final else x


def random_model(attn="sdpa", **overrides):
    """A tiny model whose norms are not ones/zeros and whose attention is far from uniform."""
    model = StudyModel(tiny_config(initializer_range=0.2, attn_implementation=attn, **overrides)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(0.3 * torch.randn_like(param))
    return model


@pytest.mark.parametrize("norm_type", ["layernorm", "rmsnorm"])
@pytest.mark.parametrize("placement", ["pre", "post", "sandwich"])
def test_norm_placement_matches_a_hand_written_layer(placement, norm_type):
    model = random_model(position_encoding="none", norm_placement=placement, norm_type=norm_type)
    assert isinstance(model.norm, torch.nn.Identity) == (placement == "post")  # final norm or not
    ids = torch.randint(1, 99, (2, 10))
    with torch.no_grad():
        got, expected = model(ids).last_hidden_state, hand_model(model, ids)
    assert expected.std() > 0.3
    torch.testing.assert_close(got, expected, rtol=0, atol=LAYER_TOLERANCE)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_alibi_model_matches_a_hand_written_model(causal, attn):
    """sdpa causal takes the factored path (one extra channel), the others the materialised bias."""
    model = random_model(attn, position_encoding="alibi", is_causal=causal)
    ids = torch.randint(1, 99, (2, 12))
    with torch.no_grad():
        got, expected = model(ids).last_hidden_state, hand_model(model, ids, hand_alibi(4, 12))
    torch.testing.assert_close(got, expected, rtol=0, atol=LAYER_TOLERANCE)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_t5_model_matches_a_hand_written_model_with_transformers_bias(causal, attn):
    """sdpa takes the block-wise path, eager the whole bias; both against ``compute_bias``."""
    model = random_model(attn, position_encoding="t5", is_causal=causal, t5_num_buckets=16, t5_max_distance=40)
    with torch.no_grad():
        model.position_encoding.relative_attention_bias.weight.normal_()
    ids = torch.randint(1, 99, (2, 50))
    with torch.no_grad():
        got = model(ids).last_hidden_state
        expected = hand_model(model, ids, t5_reference_bias(model.position_encoding, causal, 50))
    torch.testing.assert_close(got, expected, rtol=0, atol=LAYER_TOLERANCE)


# -- hook 2: RoPE against transformers ---------------------------------------------------------------

YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 16}


@pytest.mark.parametrize("rope_parameters", [YARN, YARN | {"attention_factor": 1.3, "beta_fast": 16.0, "beta_slow": 2.0}],
                         ids=["yarn", "yarn-explicit"])
def test_yarn_matches_llama_including_attention_scaling(rope_parameters):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    sizes = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    llama = LlamaRotaryEmbedding(LlamaConfig(**sizes, rope_parameters=dict(rope_parameters)))
    ours = RotaryPositionEncoding(tiny_config(**sizes, rope_parameters=dict(rope_parameters)))
    assert llama.attention_scaling > 1.05  # yarn's 0.1 ln(s) + 1, or the explicit factor
    x, positions = torch.randn(1, 80, 16), torch.arange(80)[None]
    for got, expected in zip(ours.rotary_embeddings(x, positions), llama(x, positions)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)  # cos/sin of the same float32 angles


def test_half_partial_rotation_matches_gpt_neox():
    """``rope_layout="half"`` with ``partial_rotary_factor=0.25``: GPT-NeoX rotates the first d/4 channels."""
    from transformers import GPTNeoXConfig
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding, apply_rotary_pos_emb

    neox_config = GPTNeoXConfig(hidden_size=64, num_attention_heads=4, rotary_pct=0.25, max_position_embeddings=64)
    neox_config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}
    neox = GPTNeoXRotaryEmbedding(neox_config)
    ours = RotaryPositionEncoding(tiny_config(hidden_size=64, num_attention_heads=4, partial_rotary_factor=0.25))
    q, k = torch.randn(2, 4, 30, 16), torch.randn(2, 4, 30, 16)
    positions = torch.arange(30)[None].expand(2, -1)
    cos_ref, sin_ref = neox(q, positions)
    assert cos_ref.shape[-1] == 4
    cos, sin = ours.rotary_embeddings(q, positions)
    torch.testing.assert_close(cos, cos_ref, rtol=0, atol=1e-6)
    rotated = apply_rotary(q, k, cos, sin)
    for got, expected, original in zip(rotated, apply_rotary_pos_emb(q, k, cos_ref, sin_ref), (q, k)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        assert torch.equal(got[..., 4:], original[..., 4:])  # the unrotated channels pass through untouched


# -- heads ------------------------------------------------------------------------------------------


def pooled_against_index(model, ids, mask, index):
    with torch.no_grad():
        out = model(ids, attention_mask=mask).logits if mask is not None else model(ids).logits
        hidden = model.model(ids, attention_mask=mask).last_hidden_state
    expected = hidden[torch.arange(ids.shape[0]), torch.tensor(index)] @ model.score.weight.T
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    others = hidden[torch.arange(ids.shape[0]), torch.tensor(index) - 1] @ model.score.weight.T
    assert not torch.allclose(out, others, atol=1e-3)  # the neighbouring token would give other logits


@pytest.mark.parametrize("case", ["right-mask", "left-mask", "right-no-mask", "full"])
def test_causal_classifier_pools_the_last_real_token(case):
    model = StudyForSequenceClassification(tiny_config(num_labels=3, initializer_range=0.2)).eval()
    ids = torch.randint(3, 99, (2, 8))
    mask = torch.ones_like(ids)
    if case in ("right-mask", "right-no-mask"):
        mask[0, 5:] = 0  # row 0: 5 real tokens then pads -> index 4
        index = [4, 7]
    elif case == "left-mask":
        mask[0, :3] = 0  # row 0: pads then 5 real tokens -> index 7
        index = [7, 7]
    else:
        index = [7, 7]
    ids = ids.masked_fill(mask == 0, 0)  # pad_token_id = 0
    pooled_against_index(model, ids, None if case in ("right-no-mask", "full") else mask, index)


def test_encoder_classifier_pools_the_first_token():
    model = StudyForSequenceClassification(tiny_config(num_labels=3, is_causal=False, initializer_range=0.2)).eval()
    ids = torch.randint(3, 99, (2, 8))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        out = model(ids, attention_mask=mask).logits
        hidden = model.model(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(out, hidden[:, 0] @ model.score.weight.T, rtol=0, atol=1e-6)


# -- the norms themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", ["layernorm", "rmsnorm"])
def test_norm_uses_the_configured_epsilon(norm_type):
    """eps = 0.25 against inputs of size ~0.1: a norm that dropped it (or used its default) differs by 50%."""
    from modeling_study.norms import build_norm

    norm = build_norm(tiny_config(norm_type=norm_type, norm_eps=0.25, hidden_size=8, head_dim=8))
    with torch.no_grad():
        norm.weight.normal_()
    x = 0.1 * torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), hand_norm(norm, x), rtol=1e-6, atol=1e-7)
        assert norm.eps == 0.25 if norm_type == "layernorm" else norm.variance_epsilon == 0.25


@pytest.mark.parametrize("name, eps", [("StudyRMSNorm", 1e-6), ("StudyLayerNorm", 1e-5)])
def test_norm_default_epsilons_are_llamas_and_gpt2s(name, eps):
    """Constructed without eps: Llama's RMSNorm 1e-6, GPT-2's LayerNorm 1e-5, visible on inputs ~1e-3."""
    from modeling_study import norms

    norm = getattr(norms, name)(8)
    x = 1e-3 * torch.randn(2, 8)
    mean = x.mean(-1, keepdim=True) if name == "StudyLayerNorm" else 0.0
    expected = (x - mean) / torch.sqrt(((x - mean) ** 2).mean(-1, keepdim=True) + eps)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), expected, rtol=1e-4, atol=0)
    assert repr(norms.StudyRMSNorm(8)) == "StudyRMSNorm((8,), eps=1e-06)"
    assert repr(norms.StudyRMSNormPlusOne(8)) == "StudyRMSNormPlusOne((8,), eps=1e-06)"  # Gemma's default too


def test_rmsnorm_in_bfloat16_matches_llama_bit_for_bit():
    """Computed in float32 and cast back, as Llama does: the output is bfloat16 and equal to Llama's."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from modeling_study.norms import StudyRMSNorm

    x = torch.randn(3, 5, 32).to(torch.bfloat16)
    ref, ours = LlamaRMSNorm(32, eps=1e-6).to(torch.bfloat16), StudyRMSNorm(32, eps=1e-6).to(torch.bfloat16)
    with torch.no_grad():
        ref.weight.normal_()
        ours.weight.copy_(ref.weight)
        got, expected = ours(x), ref(x)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    in_bfloat16 = ours.weight * (x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6))  # without the float32 step
    assert not torch.equal(got, in_bfloat16)


@pytest.mark.parametrize("name", sorted(POSITION_ENCODINGS))
def test_checkpoints_hold_only_learned_position_weights(name):
    """Frequencies and slopes are recomputed, never saved: a saved ``inv_freq`` would be a checkpoint key
    that older checkpoints lack and that a changed config would silently override."""
    learned = {"learned": {"embeddings.weight"}, "t5": {"relative_attention_bias.weight"}}
    encoding = POSITION_ENCODINGS[name](tiny_config(position_encoding=name))
    assert set(encoding.state_dict()) == learned.get(name, set())


@pytest.mark.parametrize("name", ["integer", "binary", "sinusoidal"])
def test_added_positions_keep_the_embedding_dtype(name):
    """In a bfloat16 model the encodings add in bfloat16 (a float32 table would promote the activations)."""
    encoding = POSITION_ENCODINGS[name](tiny_config(position_encoding=name))
    positions = [0, 1, 5, 9]
    x = torch.zeros(1, 4, 32, dtype=torch.bfloat16)
    got = encoding.add_to_embeddings(x, torch.tensor([positions]))
    assert got.dtype == torch.bfloat16
    expected = {"integer": lambda: torch.tensor(positions, dtype=torch.float64)[:, None].expand(4, 32),
                "binary": lambda: torch.tensor([bits(p, 32) for p in positions], dtype=torch.float64),
                "sinusoidal": lambda: vaswani(positions, 32)}[name]()
    torch.testing.assert_close(got[0].double(), expected, rtol=0, atol=4e-3)  # bfloat16 keeps 8 bits: 2^-8 of 1


def test_t5_blocks_skip_the_keys_a_causal_block_cannot_see():
    """Blocks of 128 query rows; under a causal mask a block reads keys up to its last query only (the
    saving the block-wise path exists for), after any cached keys. Hand-written plan for 300 queries."""
    from modeling_study.learned_bias_attention import _blocks

    rows = [slice(0, 128), slice(128, 256), slice(256, 300)]
    assert list(_blocks(300, 300, causal=True)) == list(zip(rows, [128, 256, 300]))
    assert list(_blocks(300, 300, causal=False)) == list(zip(rows, [300, 300, 300]))
    assert list(_blocks(300, 310, causal=True)) == list(zip(rows, [138, 266, 310]))  # 10 cached keys first


def test_t5_bucket_defaults_are_t5s():
    """Called with its defaults, the bucket function is T5's: bidirectional, 32 buckets, distances to 128."""
    from transformers.models.t5.modeling_t5 import T5Attention

    from modeling_study.position_encodings import t5_relative_position_bucket

    relative = torch.arange(-300, 301)[None]
    assert torch.equal(t5_relative_position_bucket(relative), T5Attention._relative_position_bucket(relative))


def test_inputs_embeds_give_the_logits_of_their_tokens():
    """``inputs_embeds = embed_tokens(ids)`` is the same forward as ``input_ids = ids`` (empty-batch check included)."""
    model = StudyModel(tiny_config()).eval()
    ids = torch.randint(1, 99, (2, 7))
    with torch.no_grad():
        expected = model(input_ids=ids).last_hidden_state
        got = model(inputs_embeds=model.embed_tokens.weight[ids]).last_hidden_state
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match=r"Empty batch: inputs have shape \(2, 0, 32\)"):
        model(inputs_embeds=torch.zeros(2, 0, 32))


def test_padding_embedding_is_zero_and_gets_no_gradient():
    """``pad_token_id``'s row starts at zero and stays there (nn.Embedding's padding_idx, as in Llama)."""
    model = StudyModel(tiny_config(pad_token_id=3))
    weight = model.embed_tokens.weight
    assert torch.equal(weight[3], torch.zeros(32)) and weight[4].abs().sum() > 0
    model(torch.tensor([[3, 4, 5]])).last_hidden_state.sum().backward()
    assert torch.equal(weight.grad[3], torch.zeros(32)) and weight.grad[4].abs().sum() > 0
