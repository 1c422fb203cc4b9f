"""Block-wise attention with a bucketed learned bias (T5) against PyTorch's own sdpa, every gradient included."""

import copy

import pytest
import torch
from conftest import ENCODINGS, tiny_config

from modeling_study import StudyForCausalLM, StudyForMaskedLM
from modeling_study import learned_bias_attention as lba
from modeling_study.modeling_study import CACHE_FIELD
from modeling_study.position_encodings import t5_relative_position_bucket


def bucketed(table, length, bidirectional, batch_positions=None):
    positions = torch.arange(length)[None] if batch_positions is None else batch_positions
    bucket = lambda relative: t5_relative_position_bucket(relative, bidirectional, table.shape[0], 20)  # noqa: E731
    return lba.BucketedBias(table, bucket, positions, positions)


def reference(query, key, value, bias, mask, scale):
    """sdpa (math path, as the bias needs a gradient) on the materialised bias."""
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    full = bias.table[bias.buckets(slice(None), key.shape[-2])].permute(0, 3, 1, 2)
    if mask is not None:
        full = full.masked_fill(~mask, torch.finfo(full.dtype).min)
    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=full, scale=scale).transpose(1, 2)


def causal_mask(batch, length, padding=None):
    mask = torch.ones(length, length, dtype=torch.bool).tril()[None, None].expand(batch, 1, -1, -1)
    return mask if padding is None else mask & padding[:, None, None, :].bool()


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kv_heads", [4, 2])
@pytest.mark.parametrize("length", [7, 300])  # 300 spans two query blocks
def test_matches_sdpa_forward_and_every_gradient(causal, kv_heads, length):
    torch.manual_seed(0)
    dtype = torch.float64
    query = torch.randn(3, 4, length, 8, dtype=dtype, requires_grad=True)
    key = torch.randn(3, kv_heads, length, 8, dtype=dtype, requires_grad=True)
    value = torch.randn(3, kv_heads, length, 8, dtype=dtype, requires_grad=True)
    table = torch.randn(16, 4, dtype=dtype, requires_grad=True)
    grad = torch.randn(3, length, 4, 8, dtype=dtype)
    bias = bucketed(table, length, bidirectional=not causal)
    mask = causal_mask(3, length) if causal else None

    ours = lba.bucketed_bias_attention(query, key, value, bias, mask, 0.3, causal)
    theirs = reference(query, key, value, bias, mask, 0.3)
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-9)
    for name, a, b in zip(("dq", "dk", "dv", "dtable"), torch.autograd.grad(ours, (query, key, value, table), grad),
                          torch.autograd.grad(theirs, (query, key, value, table), grad)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=name)


def test_left_padding_per_row_positions_and_float32():
    """Per-row positions (left padding); pad queries see no key and their outputs are never used (the
    loss ignores them: zero gradient there), so only real rows are compared, and every gradient."""
    torch.manual_seed(1)
    padding = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    positions = (padding.cumsum(-1) - 1).clamp(min=0)
    query, key, value = (torch.randn(2, 2, 6, 4, requires_grad=True) for _ in range(3))
    table = torch.randn(8, 2, requires_grad=True)
    grad = torch.randn(2, 6, 2, 4) * padding[:, :, None, None]
    bias, mask, real = bucketed(table, 6, False, positions), causal_mask(2, 6, padding), padding.bool()
    results = []
    for out in (lba.bucketed_bias_attention(query, key, value, bias, mask, 0.5, True),
                reference(query, key, value, bias, mask, 0.5)):
        dq, dk, dv, dtable = torch.autograd.grad(out, (query, key, value, table), grad)
        results.append((out[real], dq.transpose(1, 2)[real], dk, dv, dtable))
    for a, b in zip(*results):  # float32 values of size ~1, a handful of ops apart: measured 1.8e-7
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def count_calls(monkeypatch):
    calls = []
    original = lba._BucketedBiasAttention.apply
    monkeypatch.setattr(lba._BucketedBiasAttention, "apply", lambda *a: calls.append(1) or original(*a))
    return calls


@pytest.mark.parametrize("cls,causal", [(StudyForCausalLM, True), (StudyForMaskedLM, False)])
@pytest.mark.parametrize("padded", [False, True])
def test_t5_model_in_training_matches_eager(cls, causal, padded, monkeypatch):
    """Loss and every parameter gradient equal the eager reference's; sdpa with gradients takes this path."""
    torch.manual_seed(0)
    config = tiny_config(position_encoding="t5", is_causal=causal, num_attention_heads=4, num_key_value_heads=2)
    sdpa = cls._from_config(config, attn_implementation="sdpa").train()
    eager = copy.deepcopy(sdpa)
    eager.set_attn_implementation("eager")
    ids = torch.randint(1, config.vocab_size, (2, 300))
    attention_mask = torch.ones_like(ids)
    if padded:
        attention_mask[0, :37] = 0
    labels = ids.masked_fill(attention_mask == 0, -100)
    if padded and causal:  # the last pad position's logits predict the first real token: garbage in any model
        labels[0, 37] = -100
    calls = count_calls(monkeypatch)
    loss = sdpa(ids, attention_mask=attention_mask, labels=labels).loss
    loss.backward()
    assert len(calls) == config.num_hidden_layers
    reference_loss = eager(ids, attention_mask=attention_mask, labels=labels).loss
    reference_loss.backward()
    torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-5)
    for (name, a), (_, b) in zip(sdpa.named_parameters(), eager.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_prefill_uses_it_and_decoding_builds_one_row(monkeypatch):
    """Inference too: the prompt goes block by block (same logits as eager), each decoded token's bias
    row is built whole (cheap), and cached decoding equals the full forward."""
    config = tiny_config(position_encoding="t5")
    model = StudyForCausalLM(config).eval()
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    ids = torch.randint(1, config.vocab_size, (2, 20))
    calls = count_calls(monkeypatch)
    with torch.no_grad():
        out = model(ids[:, :19], use_cache=True)
        assert len(calls) == config.num_hidden_layers
        # float32 logits of a 2-layer model, kernels summing in another order: measured 1.2e-7
        torch.testing.assert_close(out.logits, eager(ids[:, :19]).logits, rtol=0, atol=1e-6)
        step = model(ids[:, 19:], cache=getattr(out, CACHE_FIELD), use_cache=True)
        assert len(calls) == config.num_hidden_layers  # not for the one decoded token
        torch.testing.assert_close(step.logits[:, -1], model(ids).logits[:, -1], rtol=0, atol=1e-6)


# -- the promises mutation testing found unguarded (docs/mutation/) ------------------------------------


def test_buckets_of_a_block_are_t5_buckets_of_key_minus_query(monkeypatch):
    """Both ways of finding buckets (the shared distance lookup, and the direct one used when traced)
    give ``bucket(key - query)`` for a block of rows and its first keys, as T5 defines it."""
    positions = torch.tensor([[3, 4, 5, 6, 7, 8]])
    keys = torch.arange(9)[None]
    bucket = lambda relative: t5_relative_position_bucket(relative, True, 8, 20)  # noqa: E731
    expected = bucket(keys[0, None, :5] - positions[0, 1:4, None])[None]  # rows 1-3 (positions 4-6), keys 0-4
    bias = lba.BucketedBias(torch.zeros(8, 1), bucket, positions, keys)
    assert torch.equal(bias.buckets(slice(1, 4), 5), expected)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert torch.equal(bias.buckets(slice(1, 4), 5), expected)


def test_an_additive_mask_acts_as_the_boolean_one():
    """A float mask (0 = attend, the dtype's minimum = not) gives what the boolean mask gives."""
    torch.manual_seed(2)
    query, key, value = (torch.randn(2, 2, 5, 4, dtype=torch.float64) for _ in range(3))
    bias = bucketed(torch.randn(8, 2, dtype=torch.float64), 5, False)
    mask = causal_mask(2, 5)
    additive = torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, torch.finfo(torch.float64).min)
    expected = reference(query, key, value, bias, mask, 0.5)
    torch.testing.assert_close(lba.bucketed_bias_attention(query, key, value, bias, additive, 0.5, True), expected,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("requires_grad", [True, False])
def test_per_row_positions_across_a_one_row_block_and_a_frozen_table(requires_grad):
    """129 queries make a second block of one row; per-row positions (left padding) keep one index per row
    there too. With the table frozen (e.g. LoRA on the attention weights) only q, k, v get gradients."""
    torch.manual_seed(3)
    length = lba.QUERY_BLOCK + 1
    padding = torch.ones(2, length, dtype=torch.long)
    padding[0, :3] = 0
    positions = (padding.cumsum(-1) - 1).clamp(min=0)
    query, key, value = (torch.randn(2, 2, length, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    table = torch.randn(8, 2, dtype=torch.float64, requires_grad=requires_grad)
    grad = torch.randn(2, length, 2, 4, dtype=torch.float64) * padding[:, :, None, None]
    bias, mask, real = bucketed(table, length, False, positions), causal_mask(2, length, padding), padding.bool()
    inputs = (query, key, value, table) if requires_grad else (query, key, value)
    results = []
    for out in (lba.bucketed_bias_attention(query, key, value, bias, mask, 0.5, True),
                reference(query, key, value, bias, mask, 0.5)):
        grads = torch.autograd.grad(out, inputs, grad)
        results.append((out[real], grads[0].transpose(1, 2)[real], *grads[1:]))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_work_dtype_is_float32_unless_float64():
    """Backward works in float32 for float32 inputs (memory), float64 only for float64."""
    assert [lba._work_dtype(d) for d in (torch.float32, torch.float64)] == [torch.float32, torch.float64]


# -- rows that attend to nothing (a left-padded causal row's pads, a row of padding only) ----------------


def test_a_row_that_sees_no_key_outputs_zero_and_gets_exact_gradients():
    """Such a row outputs zero, as sdpa with a boolean mask does, and backward is that of its own forward:
    before the fix its log-sum-exp rounded to the mask's minimum and backward took every probability as 1."""
    torch.manual_seed(4)
    length = lba.QUERY_BLOCK + 40  # empty rows in the first block, real ones in both
    padding = torch.ones(2, length, dtype=torch.long)
    padding[1, :37] = 0
    positions = (padding.cumsum(-1) - 1).clamp(min=0)
    query, key, value = (torch.randn(2, 2, length, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    table = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, length, 2, 4, dtype=torch.float64)  # every row in the loss, empty ones included
    bias, mask = bucketed(table, length, False, positions), causal_mask(2, length, padding)
    sees_something = mask.any(-1).transpose(1, 2)[..., None]  # (B, T, 1, 1)
    ours = lba.bucketed_bias_attention(query, key, value, bias, mask, 0.5, True)
    theirs = reference(query, key, value, bias, mask, 0.5) * sees_something
    assert not ours[1, :37].any()
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-9)
    for name, a, b in zip(("dq", "dk", "dv", "dtable"), torch.autograd.grad(ours, (query, key, value, table), grad),
                          torch.autograd.grad(theirs, (query, key, value, table), grad)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=name)


def paths_for(encoding: str, causal: bool) -> list[str]:
    """The paths that run this encoding with a backward on the CPU (flex's backward needs a GPU: test_cuda.py)."""
    from modeling_study.attention_paths import ATTENTION_PATHS
    from modeling_study.position_encodings import POSITION_ENCODINGS

    forms = POSITION_ENCODINGS[encoding](tiny_config(position_encoding=encoding, is_causal=causal)).bias_forms
    return [name for name, path in ATTENTION_PATHS.items() if name != "flex" and (path.form is None or path.form in forms)]


CASES = [(encoding, causal, path) for encoding in ENCODINGS for causal in (True, False)
         for path in paths_for(encoding, causal)]


@pytest.mark.parametrize("encoding, causal, path", CASES, ids=[f"{e}-{'causal' if c else 'bidir'}-{p}" for e, c, p in CASES])
def test_every_path_matches_eager_on_rows_that_attend_to_nothing(encoding, causal, path):
    """Loss and every gradient equal eager's when rows that see no key are in the loss: row 1 left-padded
    (its pads see nothing under a causal mask; the last pad's logits predict the first real token, as
    DataCollatorForLanguageModeling's labels make it), row 2 padding only. Every position is weighted."""
    torch.manual_seed(0)
    config = tiny_config(position_encoding=encoding, is_causal=causal, attention_path=path,
                         max_position_embeddings=320)
    cls = StudyForCausalLM if causal else StudyForMaskedLM
    model = cls._from_config(config, attn_implementation="sdpa").train()
    eager = copy.deepcopy(model)
    eager.config.attention_path = None
    eager.set_attn_implementation("eager")
    ids = torch.randint(1, config.vocab_size, (3, 300))
    attention_mask = torch.ones_like(ids)
    attention_mask[1, :37] = 0
    attention_mask[2] = 0
    weights = torch.randn(3, 300, config.vocab_size)
    assert model.model.attention_path(model.model.embed_tokens(ids), 300) == path
    results = []
    for m in (model, eager):
        loss = (m(ids, attention_mask=attention_mask).logits * weights).sum()
        loss.backward()
        results.append((loss, {name: p.grad for name, p in m.named_parameters()}))
    (loss, grads), (reference_loss, reference_grads) = results
    torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-4)
    for name, grad in grads.items():  # float32, kernels summing in another order
        torch.testing.assert_close(grad, reference_grads[name], rtol=1e-4, atol=1e-4, msg=name)
