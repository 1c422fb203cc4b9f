"""Property-based tests (hypothesis) over random configs.

Valid configs: forward and backward stay finite and save/load reproduces the logits exactly.
Invalid configs: always a ValueError from the config, never an IndexError or a crash inside torch.
"""

import re
import tempfile

import pytest
import torch
from conftest import ENCODINGS, NORM_TYPES, PLACEMENTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeling_study import FFN_ACTIVATIONS, StudyConfig, StudyForCausalLM

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def valid_configs(draw):
    kv_heads = draw(st.sampled_from([1, 2]))
    heads = kv_heads * draw(st.sampled_from([1, 2, 3]))
    head_dim = draw(st.sampled_from([4, 6, 8]))
    return dict(
        vocab_size=draw(st.integers(8, 64)),
        hidden_size=heads * head_dim,
        intermediate_size=draw(st.integers(4, 48)),
        num_hidden_layers=draw(st.integers(1, 3)),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=draw(st.integers(16, 40)),
        position_encoding=draw(st.sampled_from(ENCODINGS)),
        norm_placement=draw(st.sampled_from(PLACEMENTS)),
        norm_type=draw(st.sampled_from(NORM_TYPES)),
        ffn_activation=draw(st.sampled_from(sorted(FFN_ACTIVATIONS))),
        is_causal=draw(st.booleans()),
        partial_rotary_factor=draw(st.sampled_from([0.5, 1.0])) if head_dim % 4 == 0 else 1.0,
        rope_layout=draw(st.sampled_from(["half", "interleaved"])),
        attention_bias=draw(st.booleans()),
        mlp_bias=draw(st.booleans()),
        embedding_norm=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
        t5_num_buckets=draw(st.sampled_from([8, 16, 32])),
        t5_max_distance=draw(st.sampled_from([40, 128])),
    )


@SETTINGS
@given(kwargs=valid_configs(), length=st.integers(1, 16), batch=st.integers(1, 3))
def test_random_valid_configs_train_and_round_trip(kwargs, length, batch):
    torch.manual_seed(0)
    model = StudyForCausalLM(StudyConfig(**kwargs))
    x = torch.randint(0, kwargs["vocab_size"], (batch, length))
    out = model(x, labels=x)
    assert torch.isfinite(out.logits).all()
    if length > 1:
        assert torch.isfinite(out.loss)
        out.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        model.save_pretrained(folder)
        reloaded = StudyForCausalLM.from_pretrained(folder).eval()
        expected = model.state_dict()
        for name, tensor in reloaded.state_dict().items():
            assert torch.equal(tensor, expected[name]), name
        # same weights, same maths; CPU kernels may still round differently across allocations
        torch.testing.assert_close(reloaded(x).logits, model(x).logits, rtol=0, atol=1e-6)


INVALID_FIELDS = {
    "position_encoding": st.text(max_size=8).filter(lambda s: s not in ENCODINGS),
    "norm_placement": st.text(max_size=8).filter(lambda s: s not in PLACEMENTS),
    "norm_type": st.text(max_size=8).filter(lambda s: s not in NORM_TYPES),
    "ffn_activation": st.text(max_size=8).filter(lambda s: s not in FFN_ACTIVATIONS),
    "vocab_size": st.integers(-5, 0),
    "hidden_size": st.integers(-64, 0),
    "num_hidden_layers": st.integers(-3, 0),
    "num_attention_heads": st.integers(-3, 0),
    "intermediate_size": st.integers(-3, 0),
    "max_position_embeddings": st.integers(-3, 0),
    "num_key_value_heads": st.sampled_from([3, 5, 7]),  # 8 heads by default below
    "partial_rotary_factor": st.one_of(st.floats(1.01, 10), st.floats(-1, 0)),
    "hidden_dropout": st.one_of(st.floats(1.0, 5.0), st.floats(-1.0, -0.01)),
    "t5_num_buckets": st.integers(-2, 1),
    "t5_max_distance": st.integers(-2, 16),
    "rope_parameters": st.sampled_from([
        {"rope_type": "yarn", "rope_theta": 1e4},
        {"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0, "beta": 1},
        {"rope_type": "unknown", "rope_theta": 1e4},
        {"rope_type": "default", "rope_theta": 0.5},
    ]),
}


@SETTINGS
@given(data=st.data(), fields=st.sets(st.sampled_from(sorted(INVALID_FIELDS)), min_size=1, max_size=3))
def test_random_invalid_configs_always_raise_value_error(data, fields):
    kwargs = dict(hidden_size=64, num_attention_heads=8, intermediate_size=32, vocab_size=50)
    for field in fields:
        kwargs[field] = data.draw(INVALID_FIELDS[field], label=field)
    named = "|".join(re.escape(field) for field in fields)  # the message names a field it received
    with pytest.raises(ValueError, match=named):
        StudyConfig(**kwargs)
