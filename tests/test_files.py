"""Bad checkpoint folders get a clear error naming what is wrong."""

import pytest
import torch
from conftest import tiny_config

from modeling_study import StudyConfig, StudyForCausalLM


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "model"
    StudyForCausalLM(tiny_config()).save_pretrained(folder)
    return folder


def test_missing_weights(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(OSError, match="no file named model.safetensors"):
        StudyForCausalLM.from_pretrained(saved)


@pytest.mark.parametrize("by_keyword", [False, True], ids=["positional", "keyword"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_weights(saved, damage, by_keyword):
    import re

    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0" * 64)
    message = rf"safetensors weights of .*{re.escape(str(saved))}.* are corrupted or truncated.*Save the model again"
    with pytest.raises(OSError, match=message):  # the message names the folder, however it was passed
        if by_keyword:
            StudyForCausalLM.from_pretrained(pretrained_model_name_or_path=saved)
        else:
            StudyForCausalLM.from_pretrained(saved)


def test_config_of_another_model_type(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=4)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"model_type='llama', not 'study'.*modeling_study.from_hf"):
        StudyForCausalLM.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type='llama'"):
        StudyConfig.from_pretrained(tmp_path)


def test_good_folder_still_loads(saved):
    model = StudyForCausalLM.from_pretrained(saved)
    assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 99)
