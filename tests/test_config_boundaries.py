"""StudyConfig's validation at its exact boundaries, and the exact messages it gives.

Written against the survivors of the full mutation run of ``configuration_study.py`` (issue 17,
``docs/mutation/README.md``): each test names the wrong rule it catches (``<`` read as ``<=``, a
bool accepted as an integer, a default dropped, a message garbled). Values on each side of every
boundary are typed out here, not computed by the code under test.
"""

import re

import pytest

from modeling_study import StudyConfig


def refuses(message: str, **kwargs):
    """The whole message, from its first character: a prefix or a case change is a different message."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        StudyConfig(**kwargs)


# ----------------------------------------------------------------------------- attention_output_bias


def test_attention_output_bias_follows_attention_bias_unless_set():
    assert StudyConfig().attention_output_bias is False
    assert StudyConfig(attention_bias=True).attention_output_bias is True          # None follows attention_bias
    assert StudyConfig(attention_bias=True, attention_output_bias=False).attention_output_bias is False  # Qwen2
    assert StudyConfig(attention_output_bias=True).attention_output_bias is True   # True is a valid value
    refuses("StudyConfig.attention_output_bias must be True, False or None (= attention_bias), got 'yes'.",
            attention_output_bias="yes")


# ------------------------------------------------------------------------------------------- sizes


def test_sizes_accept_one_and_refuse_zero_and_bools():
    config = StudyConfig(num_hidden_layers=1, num_key_value_heads=1, num_attention_heads=1, hidden_size=8)
    assert (config.num_hidden_layers, config.num_key_value_heads) == (1, 1)
    refuses("StudyConfig.num_hidden_layers must be a positive integer, got 0.", num_hidden_layers=0)
    refuses("StudyConfig.num_hidden_layers must be a positive integer, got True.", num_hidden_layers=True)


def test_head_dim_is_checked_even_when_num_key_value_heads_is_left_unset():
    # num_key_value_heads=None is skipped; the check must go on to head_dim, not stop there
    refuses("StudyConfig.head_dim must be a positive integer, got -2.", head_dim=-2)


@pytest.mark.parametrize("value", [0.5, 1.5, 1, 64 ** -0.5])
def test_embedding_initializer_range_accepts_any_positive_number(value):
    assert StudyConfig(embedding_initializer_range=value).embedding_initializer_range == value


@pytest.mark.parametrize("value", [0, 0.0, -0.1, True, "0.1"])
def test_embedding_initializer_range_refuses_zero_negatives_bools_and_strings(value):
    refuses("StudyConfig.embedding_initializer_range must be a positive number or None (= initializer_range), "
            f"got {value!r}.", embedding_initializer_range=value)


# ------------------------------------------------------------------------------------------- heads


def test_grouped_query_error_lists_exactly_the_divisors():
    refuses("StudyConfig.num_attention_heads (6) must be divisible by num_key_value_heads (4): each key/value head "
            "serves a whole group of query heads. Valid values here: [1, 2, 3, 6].",
            hidden_size=48, num_attention_heads=6, num_key_value_heads=4)


# -------------------------------------------------------------------------------------------- RoPE


def test_legacy_rope_theta_keyword_fills_rope_parameters():
    assert StudyConfig(rope_theta=500000.0).rope_parameters["rope_theta"] == 500000.0
    assert StudyConfig().rope_parameters["rope_theta"] == 10000.0


def test_rope_theta_boundary_is_one():
    config = StudyConfig(rope_parameters={"rope_type": "default", "rope_theta": 1.5})
    assert config.rope_parameters["rope_theta"] == 1.5
    refuses("StudyConfig.rope_parameters['rope_theta'] must be a number > 1, got 1.",
            rope_parameters={"rope_type": "default", "rope_theta": 1})
    refuses("StudyConfig.rope_parameters['rope_theta'] must be a number > 1, got '10000'.",
            rope_parameters={"rope_type": "default", "rope_theta": "10000"})


def test_rope_scaling_factor_boundary_is_one():
    for factor in (1.0, 1.5):
        config = StudyConfig(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": factor})
        assert config.rope_parameters["factor"] == factor
    refuses("StudyConfig.rope_parameters['factor'] must be a number >= 1, got 0.5.",
            rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 0.5})


def test_unknown_rope_key_error_lists_required_and_optional_keys():
    refuses("StudyConfig.rope_parameters for rope_type='yarn' has unknown keys ['bogus']; accepted: "
            "['attention_factor', 'beta_fast', 'beta_slow', 'factor', 'mscale', 'mscale_all_dim', "
            "'original_max_position_embeddings', 'partial_rotary_factor', 'rope_theta', 'rope_type', 'truncate'].",
            rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0,
                             "original_max_position_embeddings": 64, "bogus": 1})


def test_the_smallest_rotary_dimension_is_two():
    assert StudyConfig(hidden_size=8, num_attention_heads=4, position_encoding="rope").head_dim == 2
    refuses("RoPE rotates channel pairs, so the rotary dimension head_dim * partial_rotary_factor = 2 * 0.5 -> 1 "
            "must be even and >= 2", hidden_size=8, num_attention_heads=4, partial_rotary_factor=0.5)


# ---------------------------------------------------------------------------------------------- T5


def test_t5_sizes_refuse_bools():
    refuses("StudyConfig.t5_num_buckets must be a positive integer, got True.", t5_num_buckets=True)


@pytest.mark.parametrize("is_causal, buckets", [(True, 2), (False, 4)])
def test_t5_smallest_bucket_counts_are_accepted(is_causal, buckets):
    config = StudyConfig(position_encoding="t5", is_causal=is_causal, t5_num_buckets=buckets, t5_max_distance=2)
    assert config.t5_num_buckets == buckets


def test_t5_too_few_buckets_message_names_the_minimum_and_the_mask():
    refuses("StudyConfig.t5_num_buckets=1 is too small: it needs at least 2 buckets (causal).",
            position_encoding="t5", t5_num_buckets=1)
    refuses("StudyConfig.t5_num_buckets=3 is too small: it needs at least 4 buckets (bidirectional).",
            position_encoding="t5", is_causal=False, t5_num_buckets=3)


def test_t5_max_distance_must_exceed_the_exact_buckets():
    # causal: 32 buckets, half of them (16) exact; bidirectional: 16 per direction, 8 exact
    refuses("StudyConfig.t5_max_distance=16 must exceed the 16 exact-distance buckets that t5_num_buckets=32 gives",
            position_encoding="t5", t5_num_buckets=32, t5_max_distance=16)
    assert StudyConfig(position_encoding="t5", t5_num_buckets=32, t5_max_distance=17).t5_max_distance == 17
    refuses("StudyConfig.t5_max_distance=8 must exceed the 8 exact-distance buckets that t5_num_buckets=32 gives",
            position_encoding="t5", is_causal=False, t5_num_buckets=32, t5_max_distance=8)
    assert StudyConfig(position_encoding="t5", is_causal=False, t5_num_buckets=32, t5_max_distance=9).t5_max_distance == 9


# ----------------------------------------------------------------------------------------- loading


def test_from_dict_refuses_another_model_type_with_its_name():
    with pytest.raises(ValueError, match=re.escape("This config has model_type='llama', not 'study': it describes "
                                                   "another architecture.")):
        StudyConfig.from_dict({"model_type": "llama", "hidden_size": 8})
    assert StudyConfig.from_dict({"model_type": "study", "hidden_size": 64}).hidden_size == 64


def test_from_hf_config_reads_the_llama_config_it_is_given():
    from transformers import LlamaConfig

    llama = LlamaConfig(vocab_size=99, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                        num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=77)
    config = StudyConfig.from_hf_config(llama)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_key_value_heads,
            config.max_position_embeddings, config.position_encoding, config.norm_type) == \
        (99, 48, 3, 2, 77, "rope", "rmsnorm")
