"""StudyConfig.embedding_multiplier: Vaswani's sqrt(d) scaling of the token embeddings."""

import pytest
import torch

from modeling_study import StudyConfig, StudyForCausalLM

TINY = dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)


@pytest.mark.parametrize("bad", [0, -1.0, True, "8"])
def test_bad_multiplier(bad):
    with pytest.raises(ValueError, match="embedding_multiplier must be a positive number"):
        StudyConfig(**TINY, embedding_multiplier=bad)


def test_multiplier_scales_tokens_and_not_positions():
    torch.manual_seed(0)
    model = StudyForCausalLM(StudyConfig(**TINY, position_encoding="sinusoidal")).eval()
    ids = torch.randint(0, 99, (2, 7))
    with torch.no_grad():
        unscaled = model(ids).logits
        manual = model(inputs_embeds=model.model.embed_tokens(ids) * 4.0).logits
        model.config.embedding_multiplier = 4.0
        scaled = model(ids).logits
    torch.testing.assert_close(scaled, manual)  # 4 * tokens, then the (unscaled) sinusoids
    assert not torch.allclose(scaled, unscaled)


def test_cached_decoding_and_save_load(tmp_path):
    torch.manual_seed(0)
    model = StudyForCausalLM(StudyConfig(**TINY, position_encoding="sinusoidal", embedding_multiplier=32 ** 0.5)).eval()
    ids = torch.randint(0, 99, (1, 5))
    generated = model.generate(ids, max_new_tokens=6, do_sample=False)
    with torch.no_grad():
        full = model(generated).logits[0, 4:-1].argmax(-1)
    assert torch.equal(full, generated[0, 5:])  # the cached path applies the multiplier as the full forward does
    model.save_pretrained(tmp_path)
    loaded = StudyForCausalLM.from_pretrained(tmp_path)
    assert loaded.config.embedding_multiplier == pytest.approx(32 ** 0.5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
