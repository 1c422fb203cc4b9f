"""Export study models to native transformers classes: the inverse of ``from_hf``.

A study model whose config one reference family expresses becomes that family's own class (for
instance ``LlamaForCausalLM``), carrying the same weights and computing the same function, so it runs
where only native architectures run (serving engines, converters, ``trust_remote_code=False``):

    >>> llama = to_hf(study)                        # StudyForCausalLM (rope, pre, rmsnorm, swiglu) -> LlamaForCausalLM
    >>> bert = to_hf(encoder, family="bert")        # pick the family; by default the first that fits

Each family is one ``Exporter`` in ``EXPORTERS``: the study config fields it needs (``needs``), a
function building its config, and the native class for each study head. Parameters are renamed by the
same ``Rule`` tables ``from_hf`` uses (``convert.FAMILIES``), read backwards: each native parameter name
is matched against the rules, and the rule's ``inverse`` undoes its reshape. A config no family
expresses (T5 bias, sandwich norm, binary positions, ...) raises a ValueError that names, family by
family, the fields that block it.

BLOOM has no ``max_position_embeddings`` (ALiBi runs at any length), so a BLOOM export converted back
with ``from_hf`` gets 2048 there; everything else round-trips field by field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import transformers as tf
from transformers import PreTrainedConfig, PreTrainedModel

from .configuration_study import FFN_ACTIVATIONS, StudyConfig
from .convert import FAMILIES
from .modeling_study import StudyForCausalLM, StudyForMaskedLM, StudyModel, StudyPreTrainedModel


@dataclass(frozen=True)
class Need:
    """What a family requires of one study config field: ``holds(value, config)``, described by ``text``."""

    text: str
    holds: Callable[[Any, StudyConfig], bool]


def equal(expected) -> Need:
    return Need(repr(expected), lambda value, config: value == expected)


def one_of(*values) -> Need:
    return Need(f"one of {list(values)}", lambda value, config: value in values)


def same_as(other: str) -> Need:
    return Need(f"== {other}", lambda value, config: value == getattr(config, other))


GATED = tuple(name for name, (_, gated) in FFN_ACTIVATIONS.items() if gated)
PLAIN = tuple(name for name, (_, gated) in FFN_ACTIVATIONS.items() if not gated)
MULTI_HEAD = {  # one key/value head per query head, head_dim implied by the width (GPT-2, BERT, BLOOM)
    "num_key_value_heads": same_as("num_attention_heads"),
    "head_dim": Need("hidden_size // num_attention_heads",
                     lambda value, config: value * config.num_attention_heads == config.hidden_size),
}
ALL_BIASES = {"attention_bias": equal(True), "attention_output_bias": equal(True), "mlp_bias": equal(True)}
NO_EXTRAS = {"type_vocab_size": equal(0), "embedding_multiplier": equal(1.0)}
# Llama and its descendants: RoPE in Llama's half-split layout on every channel, pre-norm, gated MLP.
ROPE_DECODER = {
    "position_encoding": equal("rope"),
    "rope_layout": equal("half"),
    "partial_rotary_factor": equal(1.0),
    "norm_placement": equal("pre"),
    "norm_type": equal("rmsnorm"),
    "ffn_activation": one_of(*GATED),
    "is_causal": equal(True),
    "embedding_norm": equal(False),
    "hidden_dropout": equal(0.0),  # these models have attention dropout only
    "embedding_dropout": equal(0.0),
    **NO_EXTRAS,
}


def _common(c: StudyConfig) -> dict:
    return dict(
        vocab_size=c.vocab_size,
        initializer_range=c.initializer_range,
        tie_word_embeddings=c.tie_word_embeddings,
        pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
    )


def _rope_decoder(c: StudyConfig) -> dict:
    return _common(c) | dict(
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        head_dim=c.head_dim,
        max_position_embeddings=c.max_position_embeddings,
        rope_parameters={k: v for k, v in c.rope_parameters.items() if k != "partial_rotary_factor"},
        rms_norm_eps=c.norm_eps,
        hidden_act=FFN_ACTIVATIONS[c.ffn_activation][0],
        attention_dropout=c.attention_dropout,
    )


def llama_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.LlamaConfig(**_rope_decoder(c), attention_bias=c.attention_bias, mlp_bias=c.mlp_bias)


def mistral_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.MistralConfig(**_rope_decoder(c), sliding_window=None)


def qwen2_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.Qwen2Config(**{k: v for k, v in _rope_decoder(c).items() if k != "head_dim"})  # Qwen2: hidden // heads


def gemma_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.GemmaConfig(**_rope_decoder(c), attention_bias=c.attention_bias)


def gpt2_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.GPT2Config(
        **_common(c),
        n_embd=c.hidden_size,
        n_layer=c.num_hidden_layers,
        n_head=c.num_attention_heads,
        n_inner=c.intermediate_size,
        n_positions=c.max_position_embeddings,
        activation_function=FFN_ACTIVATIONS[c.ffn_activation][0],
        layer_norm_epsilon=c.norm_eps,
        resid_pdrop=c.hidden_dropout,
        attn_pdrop=c.attention_dropout,
        embd_pdrop=c.embedding_dropout,
    )


def bert_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.BertConfig(
        **_common(c),
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        intermediate_size=c.intermediate_size,
        max_position_embeddings=c.max_position_embeddings,
        type_vocab_size=c.type_vocab_size,
        hidden_act=FFN_ACTIVATIONS[c.ffn_activation][0],
        layer_norm_eps=c.norm_eps,
        hidden_dropout_prob=c.hidden_dropout,
        attention_probs_dropout_prob=c.attention_dropout,
    )


def bloom_config(c: StudyConfig) -> PreTrainedConfig:
    return tf.BloomConfig(
        **_common(c),
        hidden_size=c.hidden_size,
        n_layer=c.num_hidden_layers,
        n_head=c.num_attention_heads,
        layer_norm_epsilon=c.norm_eps,
        hidden_dropout=c.hidden_dropout,
        attention_dropout=c.attention_dropout,
    )


@dataclass(frozen=True)
class Exporter:
    """One native family: the study fields it needs, its config, and the native class of each study head."""

    family: str  # key of ``convert.FAMILIES``: the renaming rules, read backwards
    needs: dict[str, Need]
    config: Callable[[StudyConfig], PreTrainedConfig]
    classes: dict[type[StudyPreTrainedModel], str]  # study class -> transformers class name
    build: Callable[[type[PreTrainedModel], PreTrainedConfig], PreTrainedModel] = lambda cls, config: cls(config)

    def blockers(self, config: StudyConfig) -> list[str]:
        """Each needed field the config does not satisfy, as ``field=value (needs ...)``."""
        return [
            f"{name}={getattr(config, name)!r} (needs {need.text})"
            for name, need in self.needs.items()
            if not need.holds(getattr(config, name), config)
        ]


# Tried in this order when no family is named: Mistral describes the same function as a bias-free
# Llama, so it is chosen only on request (family="mistral").
EXPORTERS: dict[str, Exporter] = {
    "llama": Exporter(
        family="llama",
        needs=ROPE_DECODER | {"attention_output_bias": same_as("attention_bias")},
        config=llama_config,
        classes={StudyForCausalLM: "LlamaForCausalLM", StudyModel: "LlamaModel"},
    ),
    "qwen2": Exporter(
        family="qwen2",
        needs=ROPE_DECODER | {"attention_bias": equal(True), "attention_output_bias": equal(False),
                              "mlp_bias": equal(False), "head_dim": MULTI_HEAD["head_dim"]},
        config=qwen2_config,
        classes={StudyForCausalLM: "Qwen2ForCausalLM", StudyModel: "Qwen2Model"},
    ),
    "gemma": Exporter(
        family="gemma",
        needs=ROPE_DECODER | {
            "norm_type": equal("rmsnorm_plus_one"),
            "embedding_multiplier": Need("sqrt(hidden_size)", lambda v, c: v == c.hidden_size**0.5),
            "attention_output_bias": same_as("attention_bias"),
            "mlp_bias": equal(False),
        },
        config=gemma_config,
        classes={StudyForCausalLM: "GemmaForCausalLM", StudyModel: "GemmaModel"},
    ),
    "gpt2": Exporter(
        family="gpt2",
        needs={
            "position_encoding": equal("learned"),
            "norm_placement": equal("pre"),
            "norm_type": equal("layernorm"),
            "ffn_activation": one_of(*PLAIN),
            "is_causal": equal(True),
            "embedding_norm": equal(False),
            **ALL_BIASES, **MULTI_HEAD, **NO_EXTRAS,
        },
        config=gpt2_config,
        classes={StudyForCausalLM: "GPT2LMHeadModel", StudyModel: "GPT2Model"},
    ),
    "bert": Exporter(
        family="bert",
        needs={
            "position_encoding": equal("learned"),
            "norm_placement": equal("post"),
            "norm_type": equal("layernorm"),
            "ffn_activation": one_of(*PLAIN),
            "is_causal": equal(False),
            "embedding_norm": equal(True),
            "type_vocab_size": Need(">= 1 (BERT always has token types)", lambda v, c: v >= 1),
            "embedding_multiplier": equal(1.0),
            "embedding_dropout": same_as("hidden_dropout"),  # BERT has one hidden_dropout_prob for both
            **ALL_BIASES, **MULTI_HEAD,
        },
        config=bert_config,
        classes={StudyForMaskedLM: "BertForMaskedLM", StudyModel: "BertModel"},
        # BertModel's pooler has nothing to come from: a study model returns hidden states only
        build=lambda cls, config: cls(config, add_pooling_layer=False) if cls is tf.BertModel else cls(config),
    ),
    "bloom": Exporter(
        family="bloom",
        needs={
            "position_encoding": equal("alibi"),
            "norm_placement": equal("pre"),
            "norm_type": equal("layernorm"),
            "ffn_activation": equal("gelu_tanh"),
            "intermediate_size": Need("4 * hidden_size", lambda v, c: v == 4 * c.hidden_size),
            "is_causal": equal(True),
            "embedding_norm": equal(True),
            "embedding_dropout": equal(0.0),
            **ALL_BIASES, **MULTI_HEAD, **NO_EXTRAS,
        },
        config=bloom_config,
        classes={StudyForCausalLM: "BloomForCausalLM", StudyModel: "BloomModel"},
    ),
    "mistral": Exporter(
        family="mistral",
        needs=ROPE_DECODER | {"attention_bias": equal(False), "attention_output_bias": equal(False),
                              "mlp_bias": equal(False)},
        config=mistral_config,
        classes={StudyForCausalLM: "MistralForCausalLM", StudyModel: "MistralModel"},
    ),
}


def exporter_for(config: StudyConfig, family: str | None = None) -> Exporter:
    """The named family's exporter, or the first that expresses ``config``; ValueError naming what blocks each."""
    if family is not None and family not in EXPORTERS:
        raise ValueError(f"to_hf(family={family!r}): the families it exports to are {', '.join(EXPORTERS)}.")
    tried = [EXPORTERS[family]] if family is not None else list(EXPORTERS.values())
    blocked = {}
    for exporter in tried:
        if not (blockers := exporter.blockers(config)):
            return exporter
        blocked[exporter.family] = blockers
    reasons = "; ".join(f"{name}: {', '.join(fields)}" for name, fields in blocked.items())
    raise ValueError(
        f"No native transformers family expresses this study config (tried {', '.join(blocked)}). "
        f"Fields that block each: {reasons}. Such a model runs only as a study model "
        f"(save_pretrained + trust_remote_code=True)."
    )


def _native_state_dict(study_model: StudyPreTrainedModel, native: PreTrainedModel, exporter: Exporter) -> dict:
    """Every parameter of ``native``, taken from the study model through ``from_hf``'s rules read backwards."""
    study = study_model.state_dict()
    config = study_model.config
    family = FAMILIES[exporter.family]
    head_rules = family.heads[type(native).__name__][1]
    for rule in (*family.rules, *head_rules):  # read backwards, every reshape needs its undo
        if not rule.invertible:
            raise ValueError(f"rule {rule.pattern!r} of {family.name} has a transform without an inverse; "
                             "to_hf cannot read it backwards.")
    native_prefix = f"{native.base_model_prefix}."
    study_prefix = "" if type(study_model) is StudyModel else "model."
    state_dict = {}
    is_base = native.base_model is native
    for key in native.state_dict():
        if is_base:
            name, rules, prefix = key, family.rules, study_prefix
        elif key.startswith(native_prefix):
            name, rules, prefix = key[len(native_prefix):], family.rules, study_prefix
        else:  # the head's parameters keep their full names in the head rules
            name, rules, prefix = key, head_rules, ""
        rule, match = next(((r, m) for r in rules if (m := re.fullmatch(r.pattern, name))), (None, None))
        if rule is None or rule.target is None:
            raise ValueError(f"No study parameter for {type(native).__name__}'s {key!r}; this export is not supported.")
        if isinstance(rule.target, str):
            value = study[prefix + match.expand(rule.target)]
            state_dict[key] = rule.inverse(value, config) if rule.inverse else value
        else:
            parts = tuple(study[prefix + match.expand(target)] for target in rule.target)
            state_dict[key] = rule.inverse(parts, config)
    return state_dict


@torch.no_grad()
def to_hf(model: StudyPreTrainedModel, family: str | None = None) -> PreTrainedModel:
    """The native transformers model equal to a study ``model``: the inverse of ``from_hf``.

    ``family`` picks one of ``EXPORTERS`` (llama, qwen2, gemma, gpt2, bert, bloom, mistral); by default
    the first whose needs the config meets. Heads carry over (``StudyForCausalLM`` -> ``*ForCausalLM`` /
    ``GPT2LMHeadModel``, ``StudyForMaskedLM`` -> ``BertForMaskedLM``, ``StudyModel`` -> the bare model),
    and so do the dtype, the attention backend, the generation config and train/eval mode. A config no
    family expresses raises a ValueError naming the fields that block each family tried.
    """
    if not isinstance(model, StudyPreTrainedModel):
        raise ValueError(f"to_hf takes a study model, got {type(model).__name__}; for the reverse use from_hf.")
    exporter = exporter_for(model.config, family)
    if type(model) not in exporter.classes:
        raise ValueError(
            f"Cannot export {type(model).__name__} to {exporter.family}: it exports "
            f"{', '.join(f'{cls.__name__} (as {name})' for cls, name in exporter.classes.items())}."
        )
    native_class = getattr(tf, exporter.classes[type(model)])
    config = exporter.config(model.config)
    implementation = model.config._attn_implementation
    if implementation == "sdpa" and not native_class._supports_sdpa:  # BLOOM: eager only
        implementation = "eager"
    config._attn_implementation = implementation
    native = exporter.build(native_class, config)
    native.load_state_dict(_native_state_dict(model, native, exporter), strict=True)
    native.to(model.dtype)
    if native.can_generate() and getattr(model, "generation_config", None) is not None:
        native.generation_config = copy.deepcopy(model.generation_config)
    return native.train(model.training)


__all__ = ["EXPORTERS", "Exporter", "Need", "exporter_for", "to_hf"]
