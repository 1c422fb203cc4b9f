"""Properties the encodings must have, checked on whole models."""

import pytest
import torch
from conftest import ENCODINGS, tiny_config

from modeling_study import POSITION_ENCODINGS, StudyForCausalLM, StudyModel
from modeling_study.modeling_study import CACHE_FIELD


def hidden(model, x, **kwargs):
    with torch.no_grad():
        return model(x, **kwargs).last_hidden_state


def test_no_encoding_bidirectional_is_permutation_equivariant():
    model = StudyModel(tiny_config(position_encoding="none", is_causal=False)).eval()
    x = torch.randint(1, 99, (2, 10))
    perm = torch.randperm(10)
    torch.testing.assert_close(hidden(model, x[:, perm]), hidden(model, x)[:, perm], rtol=0, atol=1e-5)


def test_causal_mask_alone_leaks_order():
    """Haviv et al. 2022: with no encoding, a causal model is still not permutation-equivariant."""
    model = StudyModel(tiny_config(position_encoding="none", is_causal=True)).eval()
    x = torch.randint(1, 99, (1, 10))
    perm = torch.arange(9, -1, -1)
    assert not torch.allclose(hidden(model, x[:, perm]), hidden(model, x)[:, perm], atol=1e-3)


@pytest.mark.parametrize("encoding", [e for e in ENCODINGS if e != "none"])
def test_every_encoding_breaks_permutation_equivariance(encoding):
    model = StudyModel(tiny_config(position_encoding=encoding, is_causal=False)).eval()
    x = torch.randint(1, 99, (1, 10))
    perm = torch.tensor([3, 0, 7, 1, 9, 2, 5, 8, 4, 6])  # not a reversal: symmetric ALiBi is reversal-invariant
    assert not torch.allclose(hidden(model, x[:, perm]), hidden(model, x)[:, perm], atol=1e-4)


@pytest.mark.parametrize("encoding", ["rope", "alibi", "t5"])
@pytest.mark.parametrize("is_causal", [True, False])
def test_relative_encodings_are_shift_invariant(encoding, is_causal):
    model = StudyModel(tiny_config(position_encoding=encoding, is_causal=is_causal)).eval()
    x = torch.randint(1, 99, (2, 12))
    base = torch.arange(12)[None]
    for shift in (1, 17, 1000):
        torch.testing.assert_close(
            hidden(model, x, position_ids=base + shift), hidden(model, x, position_ids=base), rtol=0, atol=1e-4
        )


@pytest.mark.parametrize("encoding", ["integer", "binary", "sinusoidal", "learned"])
def test_absolute_encodings_are_not_shift_invariant(encoding):
    """The shift test above can fail: absolute encodings see the shift."""
    model = StudyModel(tiny_config(position_encoding=encoding)).eval()
    x = torch.randint(1, 99, (1, 12))
    base = torch.arange(12)[None]
    assert not torch.allclose(hidden(model, x, position_ids=base + 5), hidden(model, x, position_ids=base), atol=1e-4)


def test_learned_positions_refuse_longer_sequences_and_name_the_alternatives():
    model = StudyForCausalLM(tiny_config(position_encoding="learned", max_position_embeddings=16))
    with pytest.raises(ValueError, match=r"17 tokens is longer than max_position_embeddings=16") as error:
        model(torch.randint(1, 99, (1, 17)))
    for name in POSITION_ENCODINGS:
        if name != "learned":
            assert name in str(error.value)
    with pytest.raises(ValueError, match="max_position_embeddings"):  # reached through the cache, too
        out = model(torch.randint(1, 99, (1, 16)), use_cache=True)
        model(torch.randint(1, 99, (1, 1)), cache=getattr(out, CACHE_FIELD), use_cache=True)


@pytest.mark.parametrize("encoding", [e for e in ENCODINGS if e != "learned"])
def test_other_encodings_run_past_max_position_embeddings(encoding):
    model = StudyForCausalLM(tiny_config(position_encoding=encoding, max_position_embeddings=16)).eval()
    with torch.no_grad():
        logits = model(torch.randint(1, 99, (1, 40))).logits
    assert logits.shape == (1, 40, 99) and torch.isfinite(logits).all()
