"""The fused-kernel attention with a learned bias against PyTorch's own sdpa (math path), gradients included."""

import copy

import pytest
import torch
from conftest import tiny_config

from modeling_study import StudyForCausalLM, StudyModel
from modeling_study import learned_bias_attention as lba


def reference(query, key, value, bias, scale):
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=scale)
    return out.transpose(1, 2)


def causal_bias(bias, length, key_length, padding=None):
    """Fold a causal (and optional left-padding) mask into ``bias`` as the model does (finfo.min)."""
    allowed = torch.ones(length, key_length, dtype=torch.bool).tril(key_length - length)
    mask = allowed[None, None].expand(bias.shape[0] if padding is None else padding.shape[0], 1, -1, -1)
    if padding is not None:
        mask = mask & padding[:, None, None, :].bool()
    return bias.masked_fill(~mask, torch.finfo(bias.dtype).min)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("bias_batch,kv_heads", [(1, 4), (3, 4), (1, 2)])
@pytest.mark.parametrize("length", [7, 300])  # 300 spans two query blocks of the backward pass
def test_matches_sdpa_forward_and_every_gradient(causal, bias_batch, kv_heads, length):
    torch.manual_seed(0)
    dtype = torch.float64
    query = torch.randn(3, 4, length, 8, dtype=dtype, requires_grad=True)
    key = torch.randn(3, kv_heads, length, 8, dtype=dtype, requires_grad=True)
    value = torch.randn(3, kv_heads, length, 8, dtype=dtype, requires_grad=True)
    table = torch.randn(bias_batch, 4, length, length, dtype=dtype, requires_grad=True)
    grad = torch.randn(3, length, 4, 8, dtype=dtype)

    def run(attention):
        bias = causal_bias(table * 1.0, length, length) if causal else table * 1.0
        out = attention(query, key, value, bias, 0.3)
        return (out, *torch.autograd.grad(out, (query, key, value, table), grad))

    ours = run(lambda q, k, v, b, s: lba.learned_bias_attention(q, k, v, b, s, causal))
    theirs = run(reference)
    for name, a, b in zip(("output", "dq", "dk", "dv", "dbias"), ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=name)


def test_left_padding_rows_and_float32():
    """Pad queries see no key at all; their outputs are never used (the loss ignores them: zero gradient
    there), so only real rows are compared, and every gradient."""
    torch.manual_seed(1)
    padding = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    query, key, value = (torch.randn(2, 2, 6, 4, requires_grad=True) for _ in range(3))
    table = torch.randn(1, 2, 6, 6, requires_grad=True)
    grad = torch.randn(2, 6, 2, 4) * padding[:, :, None, None]
    results = []
    for attention in (lambda q, k, v, b, s: lba.learned_bias_attention(q, k, v, b, s, True), reference):
        out = attention(query, key, value, causal_bias(table * 1.0, 6, 6, padding), 0.5)
        dq, dk, dv, dtable = torch.autograd.grad(out, (query, key, value, table), grad)
        real = padding.bool()
        results.append((out[real], dq.transpose(1, 2)[real], dk, dv, dtable))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_t5_model_uses_it_in_training_and_matches_eager():
    """A T5 model's loss and every parameter gradient equal the eager reference's; sdpa + grad takes this path."""
    torch.manual_seed(0)
    config = tiny_config(position_encoding="t5", num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    sdpa = StudyForCausalLM._from_config(config, attn_implementation="sdpa").train()
    eager = copy.deepcopy(sdpa)
    eager.set_attn_implementation("eager")
    assert sdpa.config._attn_implementation == "sdpa"
    ids = torch.randint(1, config.vocab_size, (2, 40))
    calls = []
    original = lba._LearnedBiasAttention.apply
    lba._LearnedBiasAttention.apply = lambda *a: calls.append(1) or original(*a)
    try:
        loss = sdpa(ids, labels=ids).loss
        loss.backward()
    finally:
        lba._LearnedBiasAttention.apply = original
    assert len(calls) == config.num_hidden_layers
    reference_loss = eager(ids, labels=ids).loss
    reference_loss.backward()
    torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-5)
    for (name, a), (_, b) in zip(sdpa.named_parameters(), eager.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_not_used_without_a_gradient():
    config = tiny_config(position_encoding="t5")
    model = StudyModel(config).eval()
    calls = []
    original = lba._LearnedBiasAttention.apply
    lba._LearnedBiasAttention.apply = lambda *a: calls.append(1) or original(*a)
    try:
        with torch.no_grad():
            model(torch.randint(1, config.vocab_size, (1, 12)))
    finally:
        lba._LearnedBiasAttention.apply = original
    assert calls == []
