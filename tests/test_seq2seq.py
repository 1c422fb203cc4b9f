"""The study encoder-decoder: config errors, every encoding/placement/norm, cached decoding, ties, saving,
remote code in a fresh process, and the bad inputs that must fail with a clear message.

End-to-end correctness against Marian and T5 is in test_seq2seq_parity.py; here the closed forms are
the model's own definition: a decoder position must not see later targets (causality), a source token
behind the padding must change nothing, and the cached step-by-step logits must equal one full forward.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from conftest import ENCODINGS, NORM_TYPES, PLACEMENTS, TINY
from transformers import AutoConfig, AutoModelForSeq2SeqLM

from modeling_study import StudyForConditionalGeneration, StudySeq2SeqConfig, StudySeq2SeqModel

SEQ2SEQ = TINY | dict(decoder_start_token_id=0, eos_token_id=1, num_decoder_layers=2)


def seq2seq_config(**overrides) -> StudySeq2SeqConfig:
    return StudySeq2SeqConfig(**SEQ2SEQ | overrides)


def inputs():
    torch.manual_seed(3)
    source = torch.randint(2, 99, (2, 9))
    mask = torch.ones_like(source)
    mask[1, 6:] = 0
    return source, mask, torch.randint(2, 99, (2, 7))


# -- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(num_decoder_layers=0), "num_decoder_layers must be a positive integer, got 0"),
        (dict(decoder_start_token_id=99), r"decoder_start_token_id must be a token id in \[0, vocab_size=99\), got 99"),
        (dict(share_encoder_decoder_embeddings="yes"), "share_encoder_decoder_embeddings must be True or False"),
        (dict(is_encoder_decoder=False), "is_encoder_decoder is always True"),
        (dict(position_encoding="sinusoid"), "position_encoding must be one of"),
    ],
)
def test_config_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        seq2seq_config(**overrides)


def test_stack_configs():
    config = seq2seq_config(num_hidden_layers=3, num_decoder_layers=1, position_encoding="t5")
    encoder, decoder = config.stack_config(decoder=False), config.stack_config(decoder=True)
    assert (encoder.is_causal, encoder.num_hidden_layers) == (False, 3)
    assert (decoder.is_causal, decoder.num_hidden_layers) == (True, 1)
    assert config.get_text_config(decoder=True).num_hidden_layers == 1  # how generate() sizes its cache


# -- every encoding x placement x norm: causal, padding-blind, cached == full -----------------------------------


def incremental_logits(model, source, mask, target):
    """Logits of ``target`` one token at a time through the EncoderDecoderCache."""
    encoder_outputs = model.get_encoder()(input_ids=source, attention_mask=mask)
    cache, steps = None, []
    for t in range(target.shape[1]):
        out = model(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=target[:, t:t + 1],
                    cache=cache, use_cache=True)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        steps.append(out.logits)
    return torch.cat(steps, dim=1)


# every encoding once, the placements and norm types in rotation (the decoder-only matrix covers all products)
MATRIX = [(encoding, PLACEMENTS[i % 3], NORM_TYPES[i % 2]) for i, encoding in enumerate(ENCODINGS)]


@pytest.mark.parametrize(("encoding", "placement", "norm"), MATRIX)
def test_causal_padding_blind_and_cached(encoding, placement, norm):
    config = seq2seq_config(position_encoding=encoding, norm_placement=placement, norm_type=norm,
                            ffn_activation="relu" if placement == "post" else "swiglu")
    model = StudyForConditionalGeneration(config).eval()
    source, mask, target = inputs()
    with torch.no_grad():
        full = model(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
        # causal decoder: changing the last target token changes no earlier position
        changed = target.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 99
        other = model(input_ids=source, attention_mask=mask, decoder_input_ids=changed).logits
        torch.testing.assert_close(other[:, :-1], full[:, :-1], atol=1e-5, rtol=0)
        # source tokens behind the padding mask change nothing
        noisy = source.clone()
        noisy[1, 6:] = 5
        padded = model(input_ids=noisy, attention_mask=mask, decoder_input_ids=target).logits
        torch.testing.assert_close(padded, full, atol=1e-5, rtol=0)
        # ...while a real source token does change the output (cross-attention is wired)
        noisy[1, 0] = (noisy[1, 0] + 1) % 99
        assert not torch.equal(model(input_ids=noisy, attention_mask=mask, decoder_input_ids=target).logits[1], full[1])
        torch.testing.assert_close(incremental_logits(model, source, mask, target), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("placement", "norm"), [("pre", "rmsnorm"), ("post", "layernorm"), ("sandwich", "rmsnorm")])
def test_every_placement_and_norm_trains(placement, norm):
    model = StudyForConditionalGeneration(seq2seq_config(norm_placement=placement, norm_type=norm))
    source, mask, target = inputs()
    loss = model(input_ids=source, attention_mask=mask, labels=target).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()
               if "position_encoding" not in n or p.requires_grad), "a parameter got no gradient"


def test_loss_is_cross_entropy_without_shift():
    """labels y: decoder reads [start, y_1..y_{n-1}], loss = mean CE(logits_t, y_t) over non-ignored t."""
    model = StudyForConditionalGeneration(seq2seq_config()).eval()
    source, mask, target = inputs()
    labels = target.clone()
    labels[0, 5:] = -100
    with torch.no_grad():
        out = model(input_ids=source, attention_mask=mask, labels=labels)
        start = torch.zeros(2, 1, dtype=torch.long)
        decoder_inputs = torch.cat((start, labels[:, :-1].clamp(min=0)), dim=1)
        decoder_inputs[0, 6] = 0  # the ignored label becomes the pad token (id 0)
        logits = model(input_ids=source, attention_mask=mask, decoder_input_ids=decoder_inputs).logits
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 99), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.logits, logits)


def test_eager_equals_sdpa_with_padding():
    source, mask, target = inputs()
    torch.manual_seed(0)
    eager = StudyForConditionalGeneration(seq2seq_config(position_encoding="t5"))
    eager.set_attn_implementation("eager")
    sdpa = StudyForConditionalGeneration(seq2seq_config(position_encoding="t5"))
    sdpa.load_state_dict(eager.state_dict())
    sdpa.set_attn_implementation("sdpa")
    assert eager.model.decoder.config._attn_implementation == "eager"
    with torch.no_grad():
        a = eager.eval()(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
        b = sdpa.eval()(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


# -- embeddings: shared / separate / tied ---------------------------------------------------------------------


@pytest.mark.parametrize(("share", "tie"), [(True, True), (True, False), (False, True), (False, False)])
def test_embedding_ties_survive_save_and_reload(tmp_path, share, tie):
    model = StudyForConditionalGeneration(seq2seq_config(share_encoder_decoder_embeddings=share, tie_word_embeddings=tie))
    encoder, decoder, head = (model.model.encoder.embed_tokens.weight, model.model.decoder.embed_tokens.weight,
                              model.lm_head.weight)
    assert (encoder is decoder) == share and (head is decoder) == tie
    model.save_pretrained(tmp_path)
    loaded = StudyForConditionalGeneration.from_pretrained(tmp_path)
    assert (loaded.model.encoder.embed_tokens.weight is loaded.model.decoder.embed_tokens.weight) == share
    assert (loaded.lm_head.weight is loaded.model.decoder.embed_tokens.weight) == tie
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, atol=0, rtol=0, msg=name)


# -- generation ----------------------------------------------------------------------------------------------


def test_greedy_generate_equals_argmax_of_full_forward():
    """Greedy decoding re-derived by hand: each next token is the argmax of a full (uncached) forward."""
    model = StudyForConditionalGeneration(seq2seq_config(position_encoding="alibi")).eval()
    source, mask, _ = inputs()
    generated = model.generate(input_ids=source, attention_mask=mask, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    target = torch.zeros(2, 1, dtype=torch.long)
    with torch.no_grad():
        for _ in range(6):
            logits = model(input_ids=source, attention_mask=mask, decoder_input_ids=target, use_cache=False).logits
            step = logits[:, -1].clone()
            step[:, 1] = -float("inf")  # min_new_tokens forbids eos
            target = torch.cat((target, step.argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(generated, target)


def test_beam_search_runs_and_scores_its_best_beam():
    model = StudyForConditionalGeneration(seq2seq_config(position_encoding="sinusoidal")).eval()
    source, mask, _ = inputs()
    out = model.generate(input_ids=source, attention_mask=mask, max_new_tokens=5, min_new_tokens=5, num_beams=3,
                         do_sample=False, length_penalty=1.0, output_scores=True, return_dict_in_generate=True)
    assert out.sequences.shape == (2, 6)
    with torch.no_grad():  # the returned score is the sum of the beam's token log-probabilities / its length
        logits = model(input_ids=source, attention_mask=mask, decoder_input_ids=out.sequences[:, :-1]).logits
    # (min_new_tokens masks eos after the log-softmax, so the beam's log-probabilities are the plain ones)
    log_probs = logits.log_softmax(-1).gather(-1, out.sequences[:, 1:, None]).squeeze(-1).sum(-1)
    torch.testing.assert_close(out.sequences_scores, log_probs / 5, atol=1e-4, rtol=0)


# -- bad inputs ------------------------------------------------------------------------------------------------


def test_no_labels_and_no_decoder_inputs():
    model = StudyForConditionalGeneration(seq2seq_config())
    source, mask, _ = inputs()
    with pytest.raises(ValueError, match="The decoder has no input: pass labels"):
        model(input_ids=source, attention_mask=mask)


def test_source_longer_than_the_learned_table():
    model = StudyForConditionalGeneration(seq2seq_config(position_encoding="learned", max_position_embeddings=8))
    source, mask, target = inputs()  # 9 source tokens
    with pytest.raises(ValueError, match="position_ids reach 8 but the 'learned' encoding has only max_position_embeddings=8"):
        model(input_ids=source, attention_mask=mask, decoder_input_ids=target[:, :4])


def test_token_ids_beyond_the_vocabulary():
    model = StudyForConditionalGeneration(seq2seq_config())
    source, mask, target = inputs()
    with pytest.raises(ValueError, match=r"Token ids must lie in \[0, vocab_size=99\); got ids from 0 to 150"):
        model(input_ids=source, attention_mask=mask, labels=target.index_fill(1, torch.tensor([0]), 150))


def test_labels_need_a_start_token():
    model = StudyForConditionalGeneration(seq2seq_config(decoder_start_token_id=None))
    source, mask, target = inputs()
    with pytest.raises(ValueError, match="needs config.decoder_start_token_id"):
        model(input_ids=source, attention_mask=mask, labels=target)


# -- saving and remote code -----------------------------------------------------------------------------------


def test_auto_classes_and_saved_auto_map(tmp_path):
    model = StudyForConditionalGeneration(seq2seq_config()).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "study_seq2seq"
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_seq2seq.StudySeq2SeqConfig",
        "AutoModel": "modeling_seq2seq.StudySeq2SeqModel",
        "AutoModelForSeq2SeqLM": "modeling_seq2seq.StudyForConditionalGeneration",
    }
    assert {"configuration_seq2seq.py", "modeling_seq2seq.py", "configuration_study.py", "modeling_study.py"} <= set(
        os.listdir(tmp_path))
    assert isinstance(AutoConfig.from_pretrained(tmp_path), StudySeq2SeqConfig)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, StudyForConditionalGeneration)
    source, mask, target = inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits,
                                   model(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits,
                                   atol=0, rtol=0)
    assert isinstance(StudySeq2SeqModel.from_pretrained(tmp_path), StudySeq2SeqModel)


@pytest.mark.slow  # one fresh interpreter importing torch and transformers
def test_fresh_process_loads_with_remote_code(tmp_path):
    from test_hub import WITHOUT_PACKAGE, offline_env, run_python

    model = StudyForConditionalGeneration(seq2seq_config(position_encoding="t5")).eval()
    model.save_pretrained(tmp_path / "model")
    source, mask, _ = inputs()
    expected = model.generate(input_ids=source, attention_mask=mask, max_new_tokens=5, num_beams=2, do_sample=False)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = run_python(WITHOUT_PACKAGE + f"""
import json, torch
from transformers import AutoModelForSeq2SeqLM
model = AutoModelForSeq2SeqLM.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
assert_package_never_imported(model)
source = torch.tensor({source.tolist()})
mask = torch.tensor({mask.tolist()})
out = model.generate(input_ids=source, attention_mask=mask, max_new_tokens=5, num_beams=2, do_sample=False)
print(json.dumps({{"class": type(model).__name__, "generated": out.tolist()}}))
""", offline_env(tmp_path / "hf_home"), outside, isolated=True)
    assert result["class"] == "StudyForConditionalGeneration"
    assert result["generated"] == expected.tolist()
