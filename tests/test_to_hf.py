"""``to_hf``: study models out to native transformers classes, the inverse of ``from_hf``.

Both directions of the round trip, for every family: a native reference -> ``from_hf`` -> ``to_hf``
gives back the same class with bit-identical parameters; and a study model built directly with
``StudyConfig`` (never converted) -> ``to_hf`` computes what the study model computes (logits with and
without padding, greedy generation; the native implementation is the reference), then ``from_hf``
returns its parameters bit for bit. Llama-family exports agree exactly; GPT-2, BERT and BLOOM to
float32 rounding (their attention and norms order the same sums differently).
"""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from test_convert_families import (
    BASE,
    VOCAB,
    assert_same_function,
    assert_same_generation,
    gemma,
    mistral,
    perturbed,
    qwen2,
)

from modeling_study import StudyConfig, StudyForCausalLM, StudyForMaskedLM, StudyForSequenceClassification, StudyModel
from modeling_study import from_hf, to_hf

LLAMA = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64)
NATIVE = {  # name -> (reference config, native bare class, native head class)
    "llama": (tf.LlamaConfig(**BASE | LLAMA | dict(attention_bias=True)), tf.LlamaModel, tf.LlamaForCausalLM),
    "mistral": (mistral(), tf.MistralModel, tf.MistralForCausalLM),
    "qwen2": (qwen2(), tf.Qwen2Model, tf.Qwen2ForCausalLM),
    "gemma": (gemma(), tf.GemmaModel, tf.GemmaForCausalLM),
    "gpt2": (tf.GPT2Config(**BASE | dict(n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                         activation_function="gelu_pytorch_tanh")), tf.GPT2Model, tf.GPT2LMHeadModel),
    "bert": (tf.BertConfig(**BASE | dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=64, max_position_embeddings=64)), tf.BertModel,
             tf.BertForMaskedLM),
    "bloom": (tf.BloomConfig(**BASE | dict(hidden_size=32, n_layer=2, n_head=4)), tf.BloomModel, tf.BloomForCausalLM),
}


def build_native(model_class, config):
    # BertModel's pooler has no study counterpart (from_hf drops it), so the round trip starts without one
    return model_class(config, add_pooling_layer=False) if model_class is tf.BertModel else model_class(config)


@pytest.mark.parametrize("head", [False, True], ids=["base", "head"])
@pytest.mark.parametrize("family", list(NATIVE))
def test_native_to_study_and_back_is_the_identity(family, head):
    config, base_class, head_class = NATIVE[family]
    native = perturbed(build_native(head_class if head else base_class, config))
    back = to_hf(from_hf(native), family=family)
    assert type(back) is type(native)
    expected, got = native.state_dict(), back.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "tie_word_embeddings"):
        assert getattr(back.config, name) == getattr(native.config, name), name


TINY = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=64, initializer_range=0.2, pad_token_id=0, bos_token_id=1, eos_token_id=2)
LEARNED_LN = dict(position_encoding="learned", norm_type="layernorm", attention_bias=True, mlp_bias=True)
DIRECT = {  # name -> (StudyConfig arguments, study class, expected native class); none went through from_hf
    "llama": (dict(num_key_value_heads=2), StudyForCausalLM, tf.LlamaForCausalLM),  # StudyConfig's defaults
    "llama-bare": (dict(rope_parameters={"rope_type": "linear", "rope_theta": 500.0, "factor": 2.0}), StudyModel,
                   tf.LlamaModel),
    "qwen2": (dict(attention_bias=True, attention_output_bias=False, tie_word_embeddings=False), StudyForCausalLM,
              tf.Qwen2ForCausalLM),
    "gemma": (dict(norm_type="rmsnorm_plus_one", ffn_activation="geglu_tanh", embedding_multiplier=32**0.5,
                   head_dim=16), StudyForCausalLM, tf.GemmaForCausalLM),
    "gpt2": (LEARNED_LN | dict(ffn_activation="gelu_tanh"), StudyForCausalLM, tf.GPT2LMHeadModel),
    "bert": (LEARNED_LN | dict(norm_placement="post", is_causal=False, embedding_norm=True, type_vocab_size=2,
                               ffn_activation="gelu"), StudyForMaskedLM, tf.BertForMaskedLM),
    "bloom": (dict(position_encoding="alibi", norm_type="layernorm", ffn_activation="gelu_tanh", intermediate_size=128,
                   embedding_norm=True, attention_bias=True, mlp_bias=True), StudyForCausalLM, tf.BloomForCausalLM),
}
EXACT = {tf.LlamaForCausalLM, tf.LlamaModel, tf.Qwen2ForCausalLM, tf.GemmaForCausalLM}


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("case", list(DIRECT))
def test_a_study_model_built_directly_exports_to_the_family_that_fits(case, attn):
    overrides, study_class, native_class = DIRECT[case]
    study = perturbed(study_class(StudyConfig(**TINY | overrides, attn_implementation=attn)))
    native = to_hf(study)  # no family named: the first that expresses the config
    assert type(native) is native_class
    assert_same_function(study, native, exact=native_class in EXACT)

    again = from_hf(native)
    expected, got = study.state_dict(), again.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


@pytest.mark.parametrize("case", ["llama", "gemma", "gpt2", "bloom"])  # rotation, scaled embeddings, table, bias
def test_exported_model_generates_what_the_study_model_generates(case):
    overrides, study_class, _ = DIRECT[case]
    study = perturbed(study_class(StudyConfig(**TINY | overrides)))
    assert_same_generation(study, to_hf(study))


def test_mistral_on_request_and_what_carries_over(tmp_path):
    study = perturbed(StudyForCausalLM(StudyConfig(**TINY))).to(torch.float64).train()
    study.generation_config.max_new_tokens = 7
    native = to_hf(study, family="mistral")
    assert type(native) is tf.MistralForCausalLM and native.config.sliding_window is None
    assert native.dtype == torch.float64 and native.training
    assert native.generation_config.max_new_tokens == 7
    assert native.lm_head.weight is native.model.embed_tokens.weight  # tied as in the study model

    # saved, it loads with the Auto classes alone: model_type "mistral", no remote code
    native.save_pretrained(tmp_path)
    loaded = tf.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float64).eval()
    assert type(loaded) is tf.MistralForCausalLM
    ids = torch.randint(3, VOCAB, (1, 10))
    with torch.no_grad():
        # Two implementations (MistralForCausalLM's and ours) of the same float64 arithmetic, not the same
        # code: transformers 5.25 reorders some operations (8.9e-16 apart). 1e-13 is ~500 float64 ulps at
        # logits of order 1, far below any formula error (a wrong scale or rotation moves them by >1e-3).
        torch.testing.assert_close(loaded(ids).logits, study.eval()(ids).logits, atol=1e-13, rtol=1e-13)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(position_encoding="t5"), r"tried llama, qwen2, gemma, gpt2, bert, bloom, mistral.*"
                                       r"llama: position_encoding='t5' \(needs 'rope'\)"),
        (dict(norm_placement="sandwich"), r"llama: norm_placement='sandwich' \(needs 'pre'\).*"
                                          r"bert: .*norm_placement='sandwich' \(needs 'post'\)"),
        (dict(position_encoding="binary", norm_type="layernorm"), r"gpt2: position_encoding='binary' \(needs 'learned'\)"),
        (dict(rope_layout="interleaved"), r"llama: rope_layout='interleaved' \(needs 'half'\)"),
        (dict(partial_rotary_factor=0.5), r"llama: partial_rotary_factor=0.5 \(needs 1.0\)"),
        (dict(hidden_dropout=0.1), r"llama: hidden_dropout=0.1 \(needs 0.0\)"),
    ],
    ids=["t5", "sandwich", "binary", "interleaved-rope", "partial-rope", "residual-dropout"],
)
def test_a_config_no_family_expresses_names_what_blocks_it(overrides, message):
    with pytest.raises(ValueError, match=message):
        to_hf(StudyForCausalLM(StudyConfig(**TINY | overrides)))


def test_a_named_family_that_does_not_fit_names_only_its_own_blockers():
    study = StudyForCausalLM(StudyConfig(**TINY))  # a Llama
    with pytest.raises(ValueError, match=r"tried gpt2\)\..*gpt2: position_encoding='rope' \(needs 'learned'\)") as info:
        to_hf(study, family="gpt2")
    assert "bloom" not in str(info.value)
    with pytest.raises(ValueError, match=r"to_hf\(family='opt'\).*llama, qwen2, gemma, gpt2, bert, bloom, mistral"):
        to_hf(study, family="opt")


def test_heads_and_models_it_cannot_export_raise():
    classifier = StudyForSequenceClassification(StudyConfig(**TINY))
    with pytest.raises(ValueError, match=r"Cannot export StudyForSequenceClassification to llama.*LlamaForCausalLM"):
        to_hf(classifier)
    with pytest.raises(ValueError, match=r"to_hf takes a study model, got LlamaForCausalLM"):
        to_hf(tf.LlamaForCausalLM(NATIVE["llama"][0]))


def test_every_rule_to_hf_reads_backwards_has_its_inverse():
    from modeling_study.convert import FAMILIES, Rule

    for family in FAMILIES.values():
        for rule in (*family.rules, *(r for _, head in family.heads.values() for r in head)):
            assert rule.invertible, f"{family.name}: {rule.pattern}"
    assert not Rule("a", "b", transform=lambda t, c: t).invertible  # a one-way reshape is flagged
    assert Rule("a", "b").invertible
