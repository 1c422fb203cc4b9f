"""Hugging Face features: Auto classes, heads, loss, attentions, checkpointing, resizing, compile."""

import pytest
import torch
from conftest import tiny_config

from modeling_study import (
    POSITION_ENCODINGS,
    StudyConfig,
    StudyForCausalLM,
    StudyForMaskedLM,
    StudyForSequenceClassification,
    StudyModel,
)


def test_auto_classes_are_registered():
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
    )

    config = AutoConfig.for_model("study", **{"vocab_size": 99, "hidden_size": 32, "num_attention_heads": 4})
    assert isinstance(config, StudyConfig)
    assert type(AutoModel.from_config(config)) is StudyModel
    assert type(AutoModelForCausalLM.from_config(config)) is StudyForCausalLM
    assert type(AutoModelForMaskedLM.from_config(config)) is StudyForMaskedLM
    assert type(AutoModelForSequenceClassification.from_config(config)) is StudyForSequenceClassification


@pytest.mark.parametrize("encoding", list(POSITION_ENCODINGS))
def test_buffers_recomputed_after_meta_device_load(encoding, tmp_path):
    """from_pretrained builds on the meta device: every buffer must come back exactly as built."""
    model = StudyForCausalLM(tiny_config(position_encoding=encoding))
    model.save_pretrained(tmp_path)
    reloaded = StudyForCausalLM.from_pretrained(tmp_path)
    fresh = dict(model.named_buffers())
    for name, buffer in reloaded.named_buffers():
        torch.testing.assert_close(buffer, fresh[name], rtol=0, atol=0, msg=f"buffer {name} differs")


def test_tied_and_untied_embeddings(tmp_path):
    tied = StudyForCausalLM(tiny_config())
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert StudyForCausalLM._tied_weights_keys == {"lm_head.weight": "model.embed_tokens.weight"}
    untied = StudyForCausalLM(tiny_config(tie_word_embeddings=False))
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    untied.save_pretrained(tmp_path)
    again = StudyForCausalLM.from_pretrained(tmp_path)
    torch.testing.assert_close(again.lm_head.weight, untied.lm_head.weight)
    assert not torch.equal(again.lm_head.weight, again.model.embed_tokens.weight)


def test_loss_is_transformers_causal_lm_loss_and_honours_num_items_in_batch():
    model = StudyForCausalLM(tiny_config())
    x = torch.randint(1, 99, (2, 10))
    labels = x.clone()
    labels[0, :4] = -100
    out = model(x, labels=labels)
    logits = out.logits[:, :-1].reshape(-1, 99)
    reference = torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, reference)
    # Trainer passes the token count of the whole accumulated batch: the loss becomes sum / that count
    summed = model(x, labels=labels, num_items_in_batch=torch.tensor(100)).loss
    torch.testing.assert_close(summed, reference * (labels[:, 1:] != -100).sum() / 100)


def test_masked_lm_loss_and_tied_head():
    model = StudyForMaskedLM(tiny_config(is_causal=False, position_encoding="learned", type_vocab_size=2))
    assert model.lm_head.weight is model.model.embed_tokens.weight and model.lm_head.bias is not None
    x = torch.randint(1, 99, (2, 8))
    labels = torch.full_like(x, -100)
    labels[:, 2] = x[:, 2]
    out = model(x, labels=labels, token_type_ids=torch.ones_like(x))
    reference = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 99), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, reference)


@pytest.mark.parametrize("is_causal", [True, False])
def test_sequence_classification_pools_the_right_token(is_causal):
    model = StudyForSequenceClassification(tiny_config(is_causal=is_causal, num_labels=3)).eval()
    x = torch.randint(1, 99, (2, 7))
    mask = torch.ones_like(x)
    mask[1, 5:] = 0  # right padding
    out = model(x, attention_mask=mask, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    with torch.no_grad():
        all_logits = model.score(model.model(x, attention_mask=mask).last_hidden_state)
    expected = all_logits[[0, 1], [6, 4]] if is_causal else all_logits[:, 0]
    torch.testing.assert_close(out.logits, expected)


def test_output_attentions_and_hidden_states_with_eager():
    model = StudyModel._from_config(tiny_config(position_encoding="alibi"), attn_implementation="eager").eval()
    out = model(torch.randint(1, 99, (2, 6)), output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 6, 6)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 4, 6))
    assert torch.all(out.attentions[0].triu(1) == 0), "causal: no weight on future tokens"
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (2, 6, 32)


def test_gradient_checkpointing_gives_the_same_gradients():
    x = torch.randint(1, 99, (2, 10))
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = StudyForCausalLM(tiny_config(position_encoding="t5")).train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.is_activation_checkpointing
        model(x, labels=x).loss.backward()
        grads.append(model.model.layers[0].self_attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_resize_token_embeddings():
    model = StudyForCausalLM(tiny_config())
    model.resize_token_embeddings(120)
    assert model.config.vocab_size == 120
    assert model.model.embed_tokens.weight.shape == (120, 32) and model.lm_head.weight.shape == (120, 32)
    logits = model(torch.tensor([[110, 119]])).logits
    assert logits.shape == (1, 2, 120)


# The first torch.compile imports inductor, which imports torch.utils.mkldnn, whose MkldnnLinear is
# decorated with the deprecated torch.jit.script_method at class definition: torch warning about
# torch, once per process, nothing this package calls. Filtered by its exact message and module.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning:torch.jit._script")
@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["rope", "alibi", "learned"])
def test_torch_compile_runs_the_forward(encoding):
    model = StudyForCausalLM(tiny_config(position_encoding=encoding)).eval()
    x = torch.randint(1, 99, (2, 8))
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x).logits, model(x).logits, rtol=1e-4, atol=1e-5)
