"""End-to-end parity of the study encoder-decoder with transformers' MarianMTModel and T5ForConditionalGeneration.

Each reference is built tiny with random weights (no download), converted with ``from_hf``, and must give
the same logits on a padded batch (to float32 rounding: 1e-4 absolute on logits of size ~1; summation
order differs, and Marian's hidden channels are permuted, see convert_seq2seq.py) and the same greedy
and beam-search output. A wrong formula anywhere (sinusoid layout, post-norm order, unscaled T5 attention,
T5 buckets in either direction, the cross-attention mask, the tied-head scaling, the logits bias) moves
the logits far beyond that.
"""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    MarianConfig,
    MarianMTModel,
    T5Config,
    T5ForConditionalGeneration,
)

from modeling_study import StudyForConditionalGeneration, StudySeq2SeqConfig, from_hf
from modeling_study.convert_seq2seq import seq2seq_config_from_hf

ATOL = 1e-4  # float32 rounding of logits ~1 after 4+ layers with reordered sums


def marian(**overrides):
    config = MarianConfig(**dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                 decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                 max_position_embeddings=64, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
                          | overrides)
    model = MarianMTModel(config).eval()
    with torch.no_grad():  # a random logits bias, so its conversion is tested (zeros at init)
        model.final_logits_bias.normal_(0, 1)
    return model


def t5(**overrides):
    config = T5Config(vocab_size=99, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, relative_attention_max_distance=20, pad_token_id=0,
                      eos_token_id=1, decoder_start_token_id=0, **overrides)
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():  # T5 initialises its bias table near zero; make it matter
        for stack in (model.encoder, model.decoder):
            stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight.normal_(0, 1)
    return model


def bart(**overrides):
    config = BartConfig(**dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                               decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                               max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                               decoder_start_token_id=2, forced_eos_token_id=None) | overrides)
    model = BartForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_(0, 1)
    return model


REFERENCES = {
    "marian": marian,
    "marian-relu-scaled-embeddings": lambda: marian(activation_function="relu", scale_embedding=True),
    # a deeper decoder than encoder: T5's own generate() cannot cache it (transformers 5.24 sizes the cache by
    # num_layers), so that one is compared on logits and loss only
    "t5-relu-tied": lambda: t5(num_decoder_layers=3),
    "t5-gated-gelu-untied": lambda: t5(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "bart": bart,  # learned positions with BART's offset of 2, LayerNorm after the embeddings
}


def batch():
    torch.manual_seed(1)
    # 30 source tokens reach past T5's max_distance=20 (the logarithmic buckets and the last one)
    source = torch.randint(2, 99, (3, 30))
    mask = torch.ones_like(source)
    mask[1, 22:] = 0  # right padding, as seq2seq tokenizers pad
    mask[2, 9:] = 0
    source = source.masked_fill(mask == 0, 0)
    target = torch.randint(2, 99, (3, 25))
    return source, mask, target


@pytest.mark.parametrize("name", REFERENCES)
def test_logits_match_with_padding(name):
    reference = REFERENCES[name]()
    study = from_hf(reference).eval()
    assert isinstance(study, StudyForConditionalGeneration)
    source, mask, target = batch()
    with torch.no_grad():
        expected = reference(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
        got = study(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
    assert expected.abs().max() > 0.1  # not a degenerate comparison
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["marian", "t5-gated-gelu-untied", "bart"])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_generation_matches(name, num_beams):
    """Same tokens, and the same score at every step: a tiny random model may repeat a token, but the
    per-step scores still check each cached decoding step (position, cached keys, cross-attention)."""
    reference = REFERENCES[name]()
    if name.startswith("t5"):  # T5's small init makes a tiny model's logits nearly flat; weights of order 1
        with torch.no_grad():
            for parameter in reference.parameters():
                parameter.normal_(0, 0.5)
    study = from_hf(reference).eval()
    source, mask, _ = batch()
    settings = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, num_beams=num_beams,
                    output_scores=True, return_dict_in_generate=True)
    expected = reference.generate(input_ids=source, attention_mask=mask, **settings)
    got = study.generate(input_ids=source, attention_mask=mask, **settings)
    torch.testing.assert_close(got.sequences, expected.sequences, atol=0, rtol=0)
    assert len(got.scores) == len(expected.scores) == 12
    for step_got, step_expected in zip(got.scores, expected.scores, strict=True):
        finite = step_expected.isfinite()
        assert torch.equal(step_got.isfinite(), finite)
        torch.testing.assert_close(step_got[finite], step_expected[finite], atol=ATOL, rtol=0)


def test_t5_loss_with_labels_matches():
    reference = REFERENCES["t5-relu-tied"]()
    study = from_hf(reference).eval()
    source, mask, target = batch()
    labels = target.masked_fill(torch.arange(25) >= 20, -100)
    with torch.no_grad():
        expected = reference(input_ids=source, attention_mask=mask, labels=labels).loss
        got = study(input_ids=source, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_config_mapping():
    config = seq2seq_config_from_hf(t5(feed_forward_proj="gated-gelu", num_decoder_layers=3).config)
    assert isinstance(config, StudySeq2SeqConfig)
    assert (config.num_hidden_layers, config.num_decoder_layers, config.head_dim) == (2, 3, 8)
    assert (config.position_encoding, config.norm_placement, config.ffn_activation) == ("t5", "pre", "geglu_tanh")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: marian(decoder_ffn_dim=48), "decoder_ffn_dim=48"),
        (lambda: marian(activation_dropout=0.1), "activation_dropout=0.1"),
        (lambda: marian(share_encoder_decoder_embeddings=False, decoder_vocab_size=50), "decoder_vocab_size=50"),
        (lambda: t5(feed_forward_proj="gated-relu"), "feed_forward_proj='gated-relu'"),
    ],
)
def test_unsupported_settings_raise(build, match):
    with pytest.raises(ValueError, match=match):
        from_hf(build())
