"""Bad inputs get a clear ValueError before any heavy work."""

import pytest
import torch
from conftest import tiny_config

from modeling_study import StudyForCausalLM


@pytest.fixture(scope="module")
def model():
    return StudyForCausalLM(tiny_config()).eval()


def test_token_ids_outside_vocab(model):
    with pytest.raises(ValueError, match=r"Token ids must lie in \[0, vocab_size=99\); got ids from 1 to 150.*resize_token_embeddings"):
        model(torch.tensor([[1, 150]]))
    with pytest.raises(ValueError, match="got ids from -1"):
        model(torch.tensor([[-1, 5]]))


def test_attention_mask_of_wrong_shape(model):
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\) but the inputs need \(1, 4\)"):
        model(torch.tensor([[1, 2, 3, 4]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\) but the inputs need \(1, 4\)"):
        model(torch.tensor([[1, 2, 3, 4]]), attention_mask=torch.ones(2, 4, dtype=torch.long))


def test_empty_batch(model):
    with pytest.raises(ValueError, match="Empty batch"):
        model(torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="Empty batch"):
        model(torch.zeros(2, 0, dtype=torch.long))


def test_both_or_neither_input(model):
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model(torch.tensor([[1]]), inputs_embeds=torch.zeros(1, 1, 32))


def test_learned_position_ids_beyond_table():
    model = StudyForCausalLM(tiny_config(position_encoding="learned", max_position_embeddings=16))
    with pytest.raises(ValueError, match=r"position_ids reach 20 .* max_position_embeddings=16"):
        model(torch.tensor([[1, 2]]), position_ids=torch.tensor([[19, 20]]))
