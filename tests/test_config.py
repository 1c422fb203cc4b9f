"""Config errors: a ValueError when the config is built, naming the field, the valid values and the value."""

import pytest
from conftest import tiny_config

from modeling_study import StudyConfig

BAD = [
    (dict(position_encoding="absolute"), r"position_encoding must be one of \['alibi', 'binary', .*got 'absolute'"),
    (dict(norm_placement="middle"), r"norm_placement must be one of \['post', 'pre', 'sandwich'\], got 'middle'"),
    (dict(norm_type="batchnorm"), r"norm_type must be one of \['layernorm', 'rmsnorm', 'rmsnorm_plus_one'\], got 'batchnorm'"),
    (dict(ffn_activation="tanh"), r"ffn_activation must be one of \[.*'swiglu'\], got 'tanh'"),
    (dict(rope_layout="spiral"), r"rope_layout must be one of \['half', 'interleaved'\], got 'spiral'"),
    (dict(hidden_size=30), r"hidden_size \(30\) must be divisible by num_attention_heads \(4\)"),
    (dict(num_key_value_heads=3), r"num_attention_heads \(4\) must be divisible by num_key_value_heads \(3\).*\[1, 2, 4\]"),
    (dict(hidden_size=24, num_attention_heads=8, num_key_value_heads=8), r"rotary dimension .* 3 must be even"),
    (dict(partial_rotary_factor=0.1), r"rotary dimension .* 0 must be even and >= 2"),
    (dict(partial_rotary_factor=1.5), r"partial_rotary_factor must be in \(0, 1\], got 1.5"),
    (dict(partial_rotary_factor=0.5, rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.25}), "disagrees"),
    (dict(vocab_size=0), r"vocab_size must be a positive integer, got 0"),
    (dict(hidden_size=-32), r"hidden_size must be a positive integer, got -32"),
    (dict(num_hidden_layers=0), r"num_hidden_layers must be a positive integer"),
    (dict(intermediate_size=0), r"intermediate_size must be a positive integer"),
    (dict(max_position_embeddings=0), r"max_position_embeddings must be a positive integer"),
    (dict(num_attention_heads=0), r"num_attention_heads must be a positive integer"),
    (dict(head_dim=0), r"head_dim must be a positive integer"),
    (dict(hidden_dropout=1.0), r"hidden_dropout must be a probability in \[0, 1\)"),
    (dict(norm_eps=0.0), r"norm_eps must be > 0"),
    (dict(is_causal="yes"), r"is_causal must be True or False"),
    (dict(rope_parameters={"rope_type": "ntk", "rope_theta": 1e4}), r"rope_type'\] must be one of \['default', 'dynamic', 'linear', 'llama3', 'yarn'\], got 'ntk'"),
    (dict(rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}), r"missing \['high_freq_factor', 'low_freq_factor'\]"),
    (dict(rope_parameters={"rope_type": "linear", "rope_theta": 1e4}), r"missing \['factor'\]"),
    (dict(rope_parameters={"rope_type": "default", "rope_theta": 1e4, "factor": 2.0}),
     r"unknown keys \['factor'\]; accepted: \['partial_rotary_factor', 'rope_theta', 'rope_type'\]"),
    (dict(rope_parameters={"rope_type": "linear", "rope_theta": 1e4, "factor": 0.5}), r"factor'\] must be a number >= 1"),
    (dict(rope_parameters={"rope_type": "default", "rope_theta": -1}), r"rope_theta'\] must be a number > 1"),
    (dict(rope_parameters={"rope_type": "default", "rope_theta": 1}), r"rope_theta'\] must be a number > 1, got 1"),
    (dict(partial_rotary_factor=0.0), r"partial_rotary_factor must be in \(0, 1\], got 0.0"),
    (dict(rope_parameters="default"), r"rope_parameters must be a dict, got str"),
    (dict(t5_num_buckets=0), r"t5_num_buckets must be a positive integer"),
    (dict(t5_num_buckets=1), r"t5_num_buckets=1 is too small"),
    (dict(t5_num_buckets=2, is_causal=False), r"t5_num_buckets=2 is too small: it needs at least 4"),
    (dict(t5_max_distance=10), r"t5_max_distance=10 must exceed the 16 exact-distance buckets"),
    (dict(type_vocab_size=-1), r"type_vocab_size must be >= 0"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[str(sorted(o)) + str(i) for i, (o, _) in enumerate(BAD)])
def test_bad_config_raises_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_defaults_are_a_small_llama():
    config = StudyConfig()
    assert config.model_type == "study"
    assert (config.position_encoding, config.norm_placement, config.norm_type, config.ffn_activation) == (
        "rope", "pre", "rmsnorm", "swiglu"
    )
    assert config.head_dim == config.hidden_size // config.num_attention_heads
    assert config.num_key_value_heads == config.num_attention_heads
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0}


def test_explicit_head_dim_frees_hidden_size_from_heads():
    config = tiny_config(hidden_size=30, num_attention_heads=4, head_dim=8)
    assert config.head_dim == 8


def test_partial_rotary_factor_lives_in_rope_parameters_too(tmp_path):
    config = tiny_config(partial_rotary_factor=0.5)
    assert config.rope_parameters["partial_rotary_factor"] == 0.5 and config.rotary_dim == 4
    config.save_pretrained(tmp_path)
    again = StudyConfig.from_pretrained(tmp_path)
    assert again.partial_rotary_factor == 0.5 and again.rope_parameters == config.rope_parameters


def test_partial_rotary_factor_given_only_inside_rope_parameters():
    config = tiny_config(rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5})
    assert config.partial_rotary_factor == 0.5 and config.rotary_dim == 4


def test_rope_type_defaults_to_default():
    config = tiny_config(rope_parameters={"rope_theta": 5e5})
    assert config.rope_parameters["rope_type"] == "default" and config.rope_parameters["rope_theta"] == 5e5


def test_yarn_and_llama3_parameters_accepted():
    tiny_config(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0, "original_max_position_embeddings": 32})
    tiny_config(rope_parameters={
        "rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 32,
    })
