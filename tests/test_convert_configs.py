"""convert.py's config mappings field by field, its messages, and rename_state_dict's rules.

The parity tests (test_convert*.py) compare outputs, which a field left at a default that happens to
equal the reference's cannot change: a converter that forgot ``initializer_range`` or the special token
ids, or spelled a field wrong (a config keeps unknown keyword arguments as attributes), passed them
(found by mutation testing, docs/mutation/). Here every family's config is built with values no
default has, and the converted config must carry each one, and nothing StudyConfig does not know.
"""

import pytest
import torch
from transformers import (
    BertConfig,
    BloomConfig,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
    T5Config,
)

from modeling_study import StudyConfig
from modeling_study.configuration_seq2seq import StudySeq2SeqConfig
from modeling_study.convert import Rule, config_from_hf, family_of, rename_state_dict

# Values no default has: a dropped field shows up as the default, a misspelt one as an unknown key.
COMMON = dict(vocab_size=96, initializer_range=0.037, pad_token_id=3, bos_token_id=4, eos_token_id=5,
              tie_word_embeddings=False)
ROPE = dict(COMMON, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=96, rms_norm_eps=1e-4, attention_dropout=0.125)
ROPE_EXPECTED = dict(COMMON, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=96, norm_eps=1e-4, attention_dropout=0.125,
                     position_encoding="rope", rope_layout="half", norm_placement="pre", is_causal=True)

CASES = {
    "llama": (LlamaConfig(**ROPE, attention_bias=True, mlp_bias=True),
              dict(ROPE_EXPECTED, norm_type="rmsnorm", ffn_activation="swiglu", attention_bias=True, mlp_bias=True)),
    "mistral": (MistralConfig(**ROPE, sliding_window=None),
                dict(ROPE_EXPECTED, norm_type="rmsnorm", ffn_activation="swiglu", attention_bias=False)),
    "qwen2": (Qwen2Config(**ROPE), dict(ROPE_EXPECTED, norm_type="rmsnorm", attention_bias=True,
                                        attention_output_bias=False)),
    "gemma": (GemmaConfig(**ROPE, head_dim=8, attention_bias=True),
              dict(ROPE_EXPECTED, head_dim=8, norm_type="rmsnorm_plus_one", ffn_activation="geglu_tanh",
                   attention_bias=True, embedding_multiplier=32**0.5)),
    "gpt2": (GPT2Config(**COMMON, n_embd=32, n_layer=2, n_head=4, n_inner=48, n_positions=80, layer_norm_epsilon=1e-4,
                        activation_function="relu", resid_pdrop=0.125, attn_pdrop=0.25, embd_pdrop=0.375),
             dict(COMMON, hidden_size=32, num_hidden_layers=2, intermediate_size=48, max_position_embeddings=80,
                  position_encoding="learned", norm_placement="pre", norm_type="layernorm", norm_eps=1e-4,
                  ffn_activation="relu", hidden_dropout=0.125, attention_dropout=0.25, embedding_dropout=0.375,
                  is_causal=True)),
    "bert": (BertConfig(**COMMON, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                        max_position_embeddings=80, type_vocab_size=3, layer_norm_eps=1e-4, hidden_act="relu",
                        hidden_dropout_prob=0.125, attention_probs_dropout_prob=0.25),
             dict(COMMON, hidden_size=32, intermediate_size=48, max_position_embeddings=80, type_vocab_size=3,
                  embedding_norm=True, norm_placement="post", norm_type="layernorm", norm_eps=1e-4,
                  ffn_activation="relu", hidden_dropout=0.125, attention_dropout=0.25, embedding_dropout=0.125,
                  is_causal=False)),
    "bloom": (BloomConfig(**COMMON, hidden_size=32, n_layer=2, n_head=4, layer_norm_epsilon=1e-4,
                          hidden_dropout=0.125, attention_dropout=0.25),
              dict(COMMON, hidden_size=32, intermediate_size=128, max_position_embeddings=2048,
                   position_encoding="alibi", embedding_norm=True, norm_placement="pre", norm_type="layernorm",
                   norm_eps=1e-4, ffn_activation="gelu_tanh", hidden_dropout=0.125, attention_dropout=0.25,
                   is_causal=True)),
}


@pytest.mark.parametrize("family", CASES)
def test_every_field_carries_over(family):
    reference, expected = CASES[family]
    converted = config_from_hf(reference)
    assert isinstance(converted, StudyConfig)
    got = {name: getattr(converted, name) for name in expected}
    assert got == pytest.approx(expected), family


@pytest.mark.parametrize("family", CASES)
def test_a_converted_config_holds_no_field_study_config_does_not_know(family):
    known = set(StudyConfig().to_dict())
    assert set(config_from_hf(CASES[family][0]).to_dict()) - known == set()


def test_bert_as_a_decoder_is_causal():
    reference, _ = CASES["bert"]
    decoder = BertConfig(**{**reference.to_dict(), "is_decoder": True})
    assert config_from_hf(decoder).is_causal is True


def test_bloom_is_converted_for_its_training_length():
    """BLOOM has no length field; ALiBi runs at any length, and 2048 is what BLOOM was trained on."""
    assert config_from_hf(CASES["bloom"][0]).max_position_embeddings == 2048


# -- what cannot be converted, and why -------------------------------------------------------------


@pytest.mark.parametrize("family, field_name, value, message", [
    ("llama", "hidden_act", "relu", "Cannot convert llama with hidden_act='relu': a study model supports "
                                    "['gelu', 'gelu_pytorch_tanh', 'silu', 'swish']."),
    ("mistral", "hidden_act", "relu", "Cannot convert mistral with hidden_act='relu': a study model supports "
                                      "['gelu', 'gelu_pytorch_tanh', 'silu', 'swish']."),
    ("qwen2", "hidden_act", "relu", "Cannot convert qwen2 with hidden_act='relu': a study model supports "
                                    "['gelu', 'gelu_pytorch_tanh', 'silu', 'swish']."),
    ("gpt2", "activation_function", "quick_gelu",
     "Cannot convert gpt2 with activation_function='quick_gelu': a study model supports "),
    ("bert", "hidden_act", "quick_gelu", "Cannot convert bert with hidden_act='quick_gelu': a study model supports "),
    ("gpt2", "scale_attn_weights", False, "Cannot convert gpt2 with scale_attn_weights=False: a study model only "
                                          "computes the scale_attn_weights=True variant."),
    ("gpt2", "scale_attn_by_inverse_layer_idx", True, "Cannot convert gpt2 with scale_attn_by_inverse_layer_idx=True: "
                                                      "a study model only computes the "
                                                      "scale_attn_by_inverse_layer_idx=False variant."),
    ("gpt2", "add_cross_attention", True, "Cannot convert gpt2 with add_cross_attention=True: a study model only "
                                          "computes the add_cross_attention=False variant."),
    ("bert", "add_cross_attention", True, "Cannot convert bert with add_cross_attention=True: a study model only "
                                          "computes the add_cross_attention=False variant."),
    ("bloom", "apply_residual_connection_post_layernorm", True,
     "Cannot convert bloom with apply_residual_connection_post_layernorm=True: a study model only computes the "
     "apply_residual_connection_post_layernorm=False variant."),
])
def test_what_a_study_model_cannot_compute_is_named(family, field_name, value, message):
    reference, _ = CASES[family]
    changed = type(reference)(**{**reference.to_dict(), field_name: value})
    with pytest.raises(ValueError) as error:
        config_from_hf(changed)
    assert str(error.value).startswith(message)


def test_qwen2_sliding_window_counts_only_when_used():
    reference, _ = CASES["qwen2"]
    # a window on layers >= max_window_layers, and there are only 2: no layer slides
    unused = Qwen2Config(**{**reference.to_dict(), "use_sliding_window": True, "sliding_window": 16,
                            "max_window_layers": 2, "layer_types": None})
    assert unused.sliding_window == 16 and "sliding_attention" not in unused.layer_types
    assert config_from_hf(unused).max_position_embeddings == 96
    used = Qwen2Config(**{**reference.to_dict(), "use_sliding_window": True, "sliding_window": 16,
                          "max_window_layers": 0, "layer_types": None})
    with pytest.raises(ValueError, match=r"^Cannot convert qwen2 with sliding_window=16: "):
        config_from_hf(used)


def test_an_unknown_family_lists_the_supported_ones():
    with pytest.raises(ValueError, match=r"^Cannot convert model_type=None \(object\) to a study model: supported "
                                         r"families are bart, bert, bloom, gemma, gpt2, llama, marian, mistral, qwen2, t5"):
        family_of(object())


def test_an_encoder_decoder_config_goes_to_the_seq2seq_converter():
    t5 = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4)
    converted = config_from_hf(t5)
    assert isinstance(converted, StudySeq2SeqConfig) and converted.position_encoding == "t5"


# -- rename_state_dict ---------------------------------------------------------------------------------


def test_rename_applies_the_first_matching_rule_and_drops_only_what_a_rule_drops():
    rules = (Rule(r"masked_bias", None), Rule(r"h\.(\d+)\.w", r"layers.\1.weight"), Rule(r"h\.\d+\.w", "never"),
             Rule(r"emb", "embed"))
    tensors = {name: torch.full((1,), float(i)) for i, name in enumerate(["masked_bias", "h.0.w", "h.1.w", "emb"])}
    assert rename_state_dict(tensors, rules, None) == {"layers.0.weight": tensors["h.0.w"],
                                                       "layers.1.weight": tensors["h.1.w"], "embed": tensors["emb"]}


def test_rename_refuses_a_parameter_no_rule_knows():
    with pytest.raises(ValueError) as error:
        rename_state_dict({"new.weight": torch.zeros(1)}, (Rule(r"old\.weight", "old"),), None)
    assert str(error.value) == ("No conversion rule for the parameter 'new.weight'; is this a variant the converter "
                                "does not know?")


def test_rename_refuses_a_split_into_the_wrong_number_of_parts():
    rule = Rule(r"qkv", ("q", "k", "v"), transform=lambda tensor, config: tensor.chunk(2))
    with pytest.raises(ValueError, match="zip"):
        rename_state_dict({"qkv": torch.zeros(4)}, (rule,), None)
