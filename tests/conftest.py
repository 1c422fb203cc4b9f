"""Shared test set-up: offline Hugging Face clients and tiny configs.

The environment is set at import time, before any test module imports transformers, so nothing
waits on the network (this machine has none) and nothing touches the user's cache.
"""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="study-tests-hf-home-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", _HF_HOME)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

ENCODINGS = ["none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5"]
PLACEMENTS = ["pre", "post", "sandwich"]
NORM_TYPES = ["layernorm", "rmsnorm"]

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    pad_token_id=0,
    bos_token_id=None,
    eos_token_id=None,
)


def tiny_config(**overrides):
    from modeling_study import StudyConfig

    return StudyConfig(**{**TINY, **overrides})


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
