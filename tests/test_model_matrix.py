"""Every positional encoding x norm placement x norm type, end to end on a tiny model.

Forward shapes; finite gradients; save/load gives identical logits; cached greedy generation equals
uncached; step-by-step cached logits equal the full forward; a left-padded row equals its
unpadded self; eager equals sdpa. Causal LMs for the whole grid, and bidirectional masked LMs for
every encoding.
"""

import copy
import itertools

import pytest
import torch
from conftest import ENCODINGS, NORM_TYPES, PLACEMENTS, tiny_config

from modeling_study import StudyForCausalLM, StudyForMaskedLM
from modeling_study.modeling_study import CACHE_FIELD

GRID = list(itertools.product(ENCODINGS, PLACEMENTS, NORM_TYPES))
IDS = [f"{e}-{p}-{n}" for e, p, n in GRID]


def build(cls=StudyForCausalLM, attn="sdpa", **overrides):
    torch.manual_seed(0)
    model = cls._from_config(tiny_config(**overrides), attn_implementation=attn)
    return model.eval()


def with_attn(model, attn):
    other = copy.deepcopy(model)
    other.set_attn_implementation(attn)
    return other.eval()


def tokens(batch=2, length=12, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, 99, (batch, length), generator=generator)


@pytest.mark.parametrize("encoding,placement,norm", GRID, ids=IDS)
def test_forward_backward(encoding, placement, norm):
    model = build(position_encoding=encoding, norm_placement=placement, norm_type=norm).train()
    x = tokens()
    out = model(x, labels=x)
    assert out.logits.shape == (2, 12, 99)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), "missing or non-finite gradients"
    assert any(g.abs().sum() > 0 for g in grads.values())


@pytest.mark.parametrize("encoding,placement,norm", GRID, ids=IDS)
def test_save_load_identical(encoding, placement, norm, tmp_path):
    from transformers import AutoModelForCausalLM

    model = build(position_encoding=encoding, norm_placement=placement, norm_type=norm)
    x = tokens()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    expected = model.state_dict()
    assert reloaded.state_dict().keys() == expected.keys()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x).logits, model(x).logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("encoding,placement,norm", GRID, ids=IDS)
def test_cached_decoding_matches_full_forward(encoding, placement, norm):
    model = build(position_encoding=encoding, norm_placement=placement, norm_type=norm)
    x = tokens(batch=2, length=10)
    with torch.no_grad():
        cached = model.generate(x, max_new_tokens=8, do_sample=False, use_cache=True)
        uncached = model.generate(x, max_new_tokens=8, do_sample=False, use_cache=False)
        assert torch.equal(cached, uncached)

        full = model(cached).logits
        out = model(cached[:, :4], use_cache=True)  # prefill 4 tokens, then one token at a time
        step_logits = [out.logits]
        past = getattr(out, CACHE_FIELD)  # `cache` from transformers 5.24 on, `past_key_values` before
        for t in range(4, cached.shape[1]):
            out = model(cached[:, t : t + 1], cache=past, use_cache=True)
            past = getattr(out, CACHE_FIELD)
            step_logits.append(out.logits)
        torch.testing.assert_close(torch.cat(step_logits, dim=1), full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("encoding,placement,norm", GRID, ids=IDS)
def test_left_padding_gives_unpadded_result(encoding, placement, norm):
    model = build(position_encoding=encoding, norm_placement=placement, norm_type=norm)
    long, short = tokens(1, 9, seed=2)[0], tokens(1, 5, seed=3)[0]
    pad = torch.zeros(4, dtype=torch.long)
    batch = torch.stack([long, torch.cat([pad, short])])
    mask = torch.stack([torch.ones(9, dtype=torch.long), torch.cat([torch.zeros(4), torch.ones(5)]).long()])
    with torch.no_grad():
        padded = model(batch, attention_mask=mask).logits
        torch.testing.assert_close(padded[0], model(long[None]).logits[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(padded[1, 4:], model(short[None]).logits[0], rtol=0, atol=1e-5)
        # and generation from the padded batch continues each row as it would alone
        generated = model.generate(batch, attention_mask=mask, max_new_tokens=5, do_sample=False)
        alone = model.generate(short[None], max_new_tokens=5, do_sample=False)
        assert torch.equal(generated[1, 4:], alone[0])


@pytest.mark.parametrize("encoding,placement,norm", GRID, ids=IDS)
def test_eager_equals_sdpa(encoding, placement, norm):
    model = build(position_encoding=encoding, norm_placement=placement, norm_type=norm)
    eager = with_attn(model, "eager")
    x = tokens()
    mask = torch.ones_like(x)
    mask[1, :3] = 0
    with torch.no_grad():
        torch.testing.assert_close(eager(x).logits, model(x).logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(
            eager(x, attention_mask=mask).logits[1, 3:], model(x, attention_mask=mask).logits[1, 3:], rtol=0, atol=1e-5
        )


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_bidirectional_masked_lm(encoding, placement, tmp_path):
    from transformers import AutoModelForMaskedLM

    model = build(StudyForMaskedLM, position_encoding=encoding, norm_placement=placement, is_causal=False)
    x = tokens()
    labels = torch.full_like(x, -100)
    labels[:, 3] = x[:, 3]
    out = model(x, labels=labels)
    assert out.logits.shape == (2, 12, 99) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    model.zero_grad()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    eager = with_attn(model, "eager")
    mask = torch.ones_like(x)
    mask[1, 8:] = 0  # right padding, as encoders are usually fed
    with torch.no_grad():
        reference = model(x, attention_mask=mask).logits
        torch.testing.assert_close(reloaded(x, attention_mask=mask).logits, reference, rtol=0, atol=1e-6)
        torch.testing.assert_close(eager(x, attention_mask=mask).logits, reference, rtol=0, atol=1e-5)
        torch.testing.assert_close(reference[1, :8], model(x[1:, :8]).logits[0], rtol=0, atol=1e-5)


def test_cache_argument_takes_either_name_and_refuses_both():
    """transformers 5.24 renamed `past_key_values` to `cache`; scripts written for either name keep working."""
    model = build(position_encoding="rope")
    x = tokens(batch=1, length=6)
    with torch.no_grad():
        steps = {}
        for name in ("cache", "past_key_values"):
            out = model(x[:, :5], use_cache=True)
            steps[name] = model(x[:, 5:], use_cache=True, **{name: getattr(out, CACHE_FIELD)}).logits
        assert torch.equal(steps["cache"], steps["past_key_values"])
        torch.testing.assert_close(steps["cache"], model(x).logits[:, 5:], rtol=0, atol=1e-5)
        cache = getattr(model(x[:, :5], use_cache=True), CACHE_FIELD)
        with pytest.raises(ValueError, match="not both"):
            model(x[:, 5:], cache=cache, past_key_values=cache)
