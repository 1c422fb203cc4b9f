"""``past_key_values=`` warns exactly when, and as, transformers' own Llama warns.

transformers 5.24 renamed the cache argument ``past_key_values`` -> ``cache``; in-tree models mark the
old name deprecated with ``deprecate_kwarg`` (a FutureWarning). The reference here is
``LlamaForCausalLM`` itself: whatever it emits for the old name (a FutureWarning from 5.24 on, nothing
before) the study model must emit too, word for word up to the class name. The new name, and
``generate()``, stay silent.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers as tf
from conftest import tiny_config

from modeling_study import StudyForCausalLM
from modeling_study.modeling_study import CACHE_FIELD


def future_warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def prefix_then_step(model, name: str):
    x = torch.randint(1, 99, (1, 6))
    with torch.no_grad():
        cache = getattr(model(x[:, :5], use_cache=True), CACHE_FIELD)
        return lambda: model(x[:, 5:], use_cache=True, **{name: cache})


def test_old_cache_name_warns_as_llama_does():
    llama = tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                               num_attention_heads=4)).eval()
    study = StudyForCausalLM(tiny_config()).eval()
    expected = future_warnings(prefix_then_step(llama, "past_key_values"))
    got = future_warnings(prefix_then_step(study, "past_key_values"))
    assert got == [m.replace("LlamaForCausalLM", "StudyForCausalLM") for m in expected]
    if CACHE_FIELD == "cache":  # transformers >= 5.24: the old name is deprecated
        assert got and "`past_key_values` is deprecated" in got[0] and "Use `cache` instead" in got[0]
    else:
        assert got == []


def test_current_name_and_generate_are_silent_and_both_names_refused():
    study = StudyForCausalLM(tiny_config()).eval()
    assert future_warnings(prefix_then_step(study, CACHE_FIELD)) == []
    ids = torch.randint(1, 99, (1, 4))
    assert future_warnings(lambda: study.generate(ids, max_new_tokens=3, do_sample=False)) == []
    x = torch.randint(1, 99, (1, 6))
    with torch.no_grad():
        cache = getattr(study(x[:, :5], use_cache=True), CACHE_FIELD)
    with pytest.raises(ValueError, match="not both"):
        study(x[:, 5:], cache=cache, past_key_values=cache)
    with pytest.raises(ValueError, match="not both"):
        study.model(x[:, 5:], cache=cache, past_key_values=cache)
