"""The tensor-parallel plan names only what the model builds, and covers every projection it builds.

transformers applies each rule of ``model.tp_plan`` (the config's ``base_model_tp_plan`` under
``model.``, ``embed_tokens: embedding_rowwise`` it adds itself, and the head class's ``_tp_plan``)
to the modules whose names match it, with the layer numbers as ``*``; a rule that matches nothing is
dropped with a warning, and a projection no rule names stays whole on every rank. Fast: no processes.
"""

import re

import pytest
from conftest import tiny_config
from torch import nn

from modeling_study import StudyForCausalLM, StudyForMaskedLM, StudyForSequenceClassification


def wildcard(name: str) -> str:
    """Layer numbers as ``*``, as transformers' ``replace_layer_number_by_wildcard``."""
    return re.sub(r"\.\d+(\.|$)", lambda m: ".*" + m.group(1), name)


HEADS = [StudyForCausalLM, StudyForMaskedLM, StudyForSequenceClassification]
CONFIGS = {  # gated and ungated MLPs, decoders and encoders, biases on and off
    "llama": dict(position_encoding="rope"),
    "gpt2": dict(position_encoding="learned", ffn_activation="gelu", attention_bias=True, mlp_bias=True),
    "bert": dict(position_encoding="learned", ffn_activation="gelu", is_causal=False, norm_placement="post",
                 norm_type="layernorm", type_vocab_size=2),
    "encoder_geglu": dict(position_encoding="sinusoidal", ffn_activation="geglu", is_causal=False),
}


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("head", HEADS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("name", CONFIGS)
def test_every_plan_rule_matches_the_model_and_every_projection_is_planned(name, head, tied):
    model = head(tiny_config(**CONFIGS[name], tie_word_embeddings=tied))
    plan = model.tp_plan
    names = {wildcard(n) for n, _ in [*model.named_modules(), *model.named_parameters()]}
    assert not plan.keys() - names, f"rules naming nothing in {head.__name__}: {sorted(plan.keys() - names)}"

    projections = {wildcard(n) for n, m in model.model.layers.named_modules(prefix="model.layers")
                   if isinstance(m, nn.Linear)}
    assert projections <= plan.keys(), f"projections left whole on every rank: {sorted(projections - plan.keys())}"
    gated = "model.layers.*.mlp.gate_proj" in projections
    assert gated == (CONFIGS[name].get("ffn_activation", "swiglu") in ("swiglu", "geglu"))

    assert plan["model.embed_tokens"] == "embedding_rowwise"  # added by transformers: vocabulary rows per rank
    if head is StudyForSequenceClassification:
        assert plan["score"] == "replicate"
    else:
        # the vocabulary rows per rank, as the embedding: a tied head shares its shards, untied it matches them
        assert plan["lm_head"] == "colwise_gather_output"
        assert (model.lm_head.weight is model.model.embed_tokens.weight) == tied


def test_plan_is_not_saved_with_the_config(tmp_path):
    """Computed from the config's fields, never stored: an old config.json cannot carry a stale plan."""
    config = tiny_config(ffn_activation="gelu")
    assert "base_model_tp_plan" not in config.to_dict()
    config.save_pretrained(tmp_path)
    assert "gate_proj" not in (tmp_path / "config.json").read_text()
    assert "layers.*.mlp.gate_proj" not in type(config).from_pretrained(tmp_path).base_model_tp_plan
