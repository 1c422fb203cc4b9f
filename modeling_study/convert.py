"""Convert Hugging Face reference models (Llama, Mistral, Qwen2, Gemma, GPT-2, BERT, BLOOM) into study
models, weights included (``to_hf.py`` goes back, reading the same rules backwards).

Each family is one small ``Family`` entry in ``FAMILIES``, keyed by ``config.model_type``: a function
mapping its config onto ``StudyConfig`` arguments, and a table of renaming rules from its parameter
names to Study's (Llama's) names, with the few reshapes a family needs (GPT-2's transposed
``Conv1D`` weights and fused qkv, BLOOM's per-head fused qkv). Adding a family is one entry.

    >>> study = from_hf(LlamaForCausalLM.from_pretrained("..."))       # -> StudyForCausalLM
    >>> config = StudyConfig.from_hf_config(GPT2Config())               # config only

The result computes the same function as the reference, to float32 rounding, with the same head:
``*ForCausalLM``/``GPT2LMHeadModel`` -> ``StudyForCausalLM``, ``BertForMaskedLM`` ->
``StudyForMaskedLM``, the bare models -> ``StudyModel``. What a Study model cannot express (e.g.
GPT-2's ``scale_attn_by_inverse_layer_idx``, BERT's cross-attention) raises a ValueError rather than
converting to something different. BERT's pooler is dropped: ``StudyModel`` returns hidden states.

This file travels with checkpoints as remote code (``StudyConfig.from_hf_config`` imports it), so it
imports only the standard library, torch, transformers and its sibling files.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from .configuration_study import StudyConfig
from .modeling_study import StudyForCausalLM, StudyForMaskedLM, StudyModel, StudyPreTrainedModel

# A rule renames every parameter whose name fully matches ``pattern`` (without the base-model prefix)
# to ``target`` (a ``re`` template; a tuple of templates when ``transform`` splits one tensor into
# several; None to drop it). ``transform(tensor, study_config)`` reshapes the weight when needed, and
# ``inverse(study_tensor_or_tensors, study_config)`` undoes it, so ``to_hf`` reads the same table backwards.
Transform = Callable[[torch.Tensor, StudyConfig], "torch.Tensor | tuple[torch.Tensor, ...]"]
Inverse = Callable[["torch.Tensor | tuple[torch.Tensor, ...]", StudyConfig], torch.Tensor]


@dataclass(frozen=True)
class Rule:
    pattern: str
    target: str | tuple[str, ...] | None
    transform: Transform | None = None
    inverse: Inverse | None = None

    @property
    def invertible(self) -> bool:
        return (self.transform is None) == (self.inverse is None)


def _transpose(weight: torch.Tensor, config: StudyConfig) -> torch.Tensor:
    """GPT-2's ``Conv1D`` stores ``(in, out)``; ``nn.Linear`` wants ``(out, in)``."""
    return weight.t().contiguous()


def _split_conv1d_qkv(tensor: torch.Tensor, config: StudyConfig) -> tuple[torch.Tensor, ...]:
    """GPT-2's ``c_attn``: one ``(D, 3D)`` Conv1D whose outputs are ``[q | k | v]``, each head-major."""
    out_first = tensor.t() if tensor.dim() == 2 else tensor  # (3D, D) or (3D,)
    return tuple(part.contiguous() for part in out_first.chunk(3, dim=0))


def _merge_conv1d_qkv(parts: tuple[torch.Tensor, ...], config: StudyConfig) -> torch.Tensor:
    """Inverse of ``_split_conv1d_qkv``: ``[q | k | v]`` stacked on the output axis, stored ``(in, out)``."""
    merged = torch.cat(parts, dim=0)  # (3D, D) or (3D,)
    return (merged.t() if merged.dim() == 2 else merged).contiguous()


def _split_per_head_qkv(tensor: torch.Tensor, config: StudyConfig) -> tuple[torch.Tensor, ...]:
    """BLOOM's ``query_key_value``: outputs grouped per head, ``[h0: q k v | h1: q k v | ...]``."""
    heads, head_dim = config.num_attention_heads, config.head_dim
    grouped = tensor.view(heads, 3, head_dim, *tensor.shape[1:])  # (H, 3, d[, D])
    return tuple(grouped[:, i].reshape(heads * head_dim, *tensor.shape[1:]).contiguous() for i in range(3))


def _merge_per_head_qkv(parts: tuple[torch.Tensor, ...], config: StudyConfig) -> torch.Tensor:
    """Inverse of ``_split_per_head_qkv``: regroup q, k, v head by head."""
    heads, head_dim = config.num_attention_heads, config.head_dim
    grouped = torch.stack([p.view(heads, head_dim, *p.shape[1:]) for p in parts], dim=1)  # (H, 3, d[, D])
    return grouped.reshape(3 * heads * head_dim, *parts[0].shape[1:]).contiguous()


QKV = ("q_proj", "k_proj", "v_proj")


def _qkv_targets(prefix: str, suffix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{name}.{suffix}" for name in QKV)


# Heads: parameter renames outside the base model (keys keep their full name here).
CAUSAL_LM_HEAD = (Rule(r"lm_head\.weight", "lm_head.weight"),)
BERT_MLM_HEAD = (
    Rule(r"cls\.predictions\.transform\.dense\.(weight|bias)", r"head_transform.dense.\1"),
    Rule(r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", r"head_transform.norm.\1"),
    Rule(r"cls\.predictions\.decoder\.weight", "lm_head.weight"),
    Rule(r"cls\.predictions\.(?:decoder\.)?bias", "lm_head.bias"),  # the same tensor under two names
)


@dataclass(frozen=True)
class Family:
    """One reference architecture: its config mapping, parameter renames, and the heads we convert."""

    name: str
    config: Callable[[PreTrainedConfig], dict]  # reference config -> StudyConfig keyword arguments
    rules: tuple[Rule, ...]  # base-model parameter renames
    heads: dict[str, tuple[type[StudyPreTrainedModel], tuple[Rule, ...]]] = field(default_factory=dict)


# -- config mappings ---------------------------------------------------------------------------------

# Reference activation name (transformers' ACT2FN) -> Study's ffn_activation for a plain MLP.
ACTIVATIONS = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",  # the tanh approximation written out; same function as gelu_pytorch_tanh
    "gelu_pytorch_tanh": "gelu_tanh",
    "silu": "silu",
    "swish": "silu",
}
# ... and for a gated MLP (Llama's ``down(act(gate(x)) * up(x))``).
GATED_ACTIVATIONS = {"silu": "swiglu", "swish": "swiglu", "gelu": "geglu", "gelu_pytorch_tanh": "geglu_tanh"}


def _lookup(table: dict, value, family: str, field_name: str) -> str:
    if value not in table:
        raise ValueError(
            f"Cannot convert {family} with {field_name}={value!r}: a study model supports {sorted(table)}."
        )
    return table[value]


def _reject(family: str, **settings) -> None:
    """Raise for reference options a study model cannot express (each given as name=(value, supported))."""
    for name, (value, supported) in settings.items():
        if value != supported:
            raise ValueError(
                f"Cannot convert {family} with {name}={value!r}: a study model only computes the "
                f"{name}={supported!r} variant."
            )


def _common(c: PreTrainedConfig) -> dict:
    return dict(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        initializer_range=c.initializer_range,
        tie_word_embeddings=c.tie_word_embeddings,
        pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
    )


def _rope_decoder(c: PreTrainedConfig, family: str, **overrides) -> dict:
    """Llama and its descendants: RoPE (any of its scalings), grouped-query attention, pre-RMSNorm, gated MLP."""
    return _common(c) | dict(
        intermediate_size=c.intermediate_size,
        num_key_value_heads=c.num_key_value_heads,
        head_dim=getattr(c, "head_dim", None),  # Qwen2's config has none: hidden_size // heads
        max_position_embeddings=c.max_position_embeddings,
        position_encoding="rope",
        rope_parameters=dict(c.rope_parameters),
        rope_layout="half",
        norm_placement="pre",
        norm_type="rmsnorm",
        norm_eps=c.rms_norm_eps,
        ffn_activation=_lookup(GATED_ACTIVATIONS, c.hidden_act, family, "hidden_act"),
        attention_dropout=c.attention_dropout,
        is_causal=True,
    ) | overrides


def _check_sliding_window(c: PreTrainedConfig, family: str, window: int | None) -> None:
    """A study model attends to the whole context; a sliding window that covers it changes nothing."""
    if window is not None and window < c.max_position_embeddings:
        raise ValueError(
            f"Cannot convert {family} with sliding_window={window}: a study model attends to the whole context, "
            f"so the window must be None or cover max_position_embeddings={c.max_position_embeddings}."
        )


def llama_config(c: PreTrainedConfig) -> dict:
    """Llama: RoPE (any of its scalings), grouped-query attention, pre-RMSNorm, gated MLP."""
    return _rope_decoder(c, "llama", attention_bias=c.attention_bias, mlp_bias=c.mlp_bias)


def mistral_config(c: PreTrainedConfig) -> dict:
    """Mistral (arXiv:2310.06825): Llama's architecture plus a sliding attention window."""
    _check_sliding_window(c, "mistral", c.sliding_window)
    return _rope_decoder(c, "mistral")


def qwen2_config(c: PreTrainedConfig) -> dict:
    """Qwen2 (arXiv:2407.10671): Llama with biases on the q, k and v projections, none on o."""
    # Qwen2Config keeps sliding_window only when use_sliding_window is set (then on layers >= max_window_layers)
    _check_sliding_window(c, "qwen2", c.sliding_window if "sliding_attention" in c.layer_types else None)
    return _rope_decoder(c, "qwen2", attention_bias=True, attention_output_bias=False)


def gemma_config(c: PreTrainedConfig) -> dict:
    """Gemma (arXiv:2403.08295): embeddings scaled by sqrt(hidden_size), RMSNorm with gain 1 + weight,
    tanh-GELU gated MLP, an explicit head_dim."""
    _reject("gemma", use_bidirectional_attention=(bool(c.use_bidirectional_attention), False))
    return _rope_decoder(
        c, "gemma", attention_bias=c.attention_bias, norm_type="rmsnorm_plus_one",
        embedding_multiplier=c.hidden_size**0.5,
    )


def gpt2_config(c: PreTrainedConfig) -> dict:
    """GPT-2: learned positions, pre-LayerNorm, tanh-GELU, biases everywhere, tied head."""
    _reject(
        "gpt2",
        scale_attn_weights=(c.scale_attn_weights, True),
        scale_attn_by_inverse_layer_idx=(c.scale_attn_by_inverse_layer_idx, False),
        add_cross_attention=(c.add_cross_attention, False),
    )
    return _common(c) | dict(
        intermediate_size=c.n_inner or 4 * c.hidden_size,
        max_position_embeddings=c.n_positions,
        position_encoding="learned",
        norm_placement="pre",
        norm_type="layernorm",
        norm_eps=c.layer_norm_epsilon,
        ffn_activation=_lookup(ACTIVATIONS, c.activation_function, "gpt2", "activation_function"),
        attention_bias=True,
        mlp_bias=True,
        hidden_dropout=c.resid_pdrop,
        attention_dropout=c.attn_pdrop,
        embedding_dropout=c.embd_pdrop,
        is_causal=True,
    )


def bert_config(c: PreTrainedConfig) -> dict:
    """BERT: learned positions + token types, LayerNorm after the embeddings, post-LayerNorm blocks."""
    _reject("bert", add_cross_attention=(c.add_cross_attention, False))
    return _common(c) | dict(
        intermediate_size=c.intermediate_size,
        max_position_embeddings=c.max_position_embeddings,
        position_encoding="learned",
        type_vocab_size=c.type_vocab_size,
        embedding_norm=True,
        norm_placement="post",
        norm_type="layernorm",
        norm_eps=c.layer_norm_eps,
        ffn_activation=_lookup(ACTIVATIONS, c.hidden_act, "bert", "hidden_act"),
        attention_bias=True,
        mlp_bias=True,
        hidden_dropout=c.hidden_dropout_prob,
        attention_dropout=c.attention_probs_dropout_prob,
        embedding_dropout=c.hidden_dropout_prob,
        is_causal=bool(c.is_decoder),
    )


def bloom_config(c: PreTrainedConfig) -> dict:
    """BLOOM: ALiBi, LayerNorm after the embeddings, pre-LayerNorm, tanh-GELU, 4x MLP."""
    _reject(
        "bloom",
        apply_residual_connection_post_layernorm=(c.apply_residual_connection_post_layernorm, False),
    )
    return _common(c) | dict(
        intermediate_size=4 * c.hidden_size,
        # ALiBi runs at any length; BLOOM has no such field and was trained on 2048-token sequences.
        max_position_embeddings=2048,
        position_encoding="alibi",
        embedding_norm=True,
        norm_placement="pre",
        norm_type="layernorm",
        norm_eps=c.layer_norm_epsilon,
        ffn_activation="gelu_tanh",  # BloomGelu is the tanh approximation with sqrt(2/pi) rounded to 0.79788456
        attention_bias=True,
        mlp_bias=True,
        hidden_dropout=c.hidden_dropout,
        attention_dropout=c.attention_dropout,
        is_causal=True,
    )


# -- the registry -------------------------------------------------------------------------------------

LLAMA_RULES = (Rule(r"(embed_tokens\.weight|layers\..*|norm\.weight)", r"\1"),)  # Study uses Llama's names

FAMILIES: dict[str, Family] = {
    "llama": Family(
        name="llama",
        config=llama_config,
        rules=LLAMA_RULES,
        heads={"LlamaModel": (StudyModel, ()), "LlamaForCausalLM": (StudyForCausalLM, CAUSAL_LM_HEAD)},
    ),
    "mistral": Family(
        name="mistral",
        config=mistral_config,
        rules=LLAMA_RULES,
        heads={"MistralModel": (StudyModel, ()), "MistralForCausalLM": (StudyForCausalLM, CAUSAL_LM_HEAD)},
    ),
    "qwen2": Family(
        name="qwen2",
        config=qwen2_config,
        rules=LLAMA_RULES,
        heads={"Qwen2Model": (StudyModel, ()), "Qwen2ForCausalLM": (StudyForCausalLM, CAUSAL_LM_HEAD)},
    ),
    "gemma": Family(
        name="gemma",
        config=gemma_config,
        rules=LLAMA_RULES,
        heads={"GemmaModel": (StudyModel, ()), "GemmaForCausalLM": (StudyForCausalLM, CAUSAL_LM_HEAD)},
    ),
    "gpt2": Family(
        name="gpt2",
        config=gpt2_config,
        rules=(
            Rule(r"wte\.weight", "embed_tokens.weight"),
            Rule(r"wpe\.weight", "position_encoding.embeddings.weight"),
            Rule(r"h\.(\d+)\.ln_1\.(weight|bias)", r"layers.\1.input_layernorm.\2"),
            Rule(r"h\.(\d+)\.attn\.c_attn\.(weight|bias)", _qkv_targets(r"layers.\1.self_attn.", r"\2"), _split_conv1d_qkv,
                 _merge_conv1d_qkv),
            Rule(r"h\.(\d+)\.attn\.c_proj\.weight", r"layers.\1.self_attn.o_proj.weight", _transpose, _transpose),
            Rule(r"h\.(\d+)\.attn\.c_proj\.bias", r"layers.\1.self_attn.o_proj.bias"),
            Rule(r"h\.(\d+)\.ln_2\.(weight|bias)", r"layers.\1.post_attention_layernorm.\2"),
            Rule(r"h\.(\d+)\.mlp\.c_fc\.weight", r"layers.\1.mlp.up_proj.weight", _transpose, _transpose),
            Rule(r"h\.(\d+)\.mlp\.c_fc\.bias", r"layers.\1.mlp.up_proj.bias"),
            Rule(r"h\.(\d+)\.mlp\.c_proj\.weight", r"layers.\1.mlp.down_proj.weight", _transpose, _transpose),
            Rule(r"h\.(\d+)\.mlp\.c_proj\.bias", r"layers.\1.mlp.down_proj.bias"),
            Rule(r"ln_f\.(weight|bias)", r"norm.\1"),
        ),
        heads={"GPT2Model": (StudyModel, ()), "GPT2LMHeadModel": (StudyForCausalLM, CAUSAL_LM_HEAD)},
    ),
    "bert": Family(
        name="bert",
        config=bert_config,
        rules=(
            Rule(r"embeddings\.word_embeddings\.weight", "embed_tokens.weight"),
            Rule(r"embeddings\.position_embeddings\.weight", "position_encoding.embeddings.weight"),
            Rule(r"embeddings\.token_type_embeddings\.weight", "token_type_embeddings.weight"),
            Rule(r"embeddings\.LayerNorm\.(weight|bias)", r"embedding_norm.\1"),
            Rule(r"encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)", r"layers.\1.self_attn.q_proj.\2"),
            Rule(r"encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)", r"layers.\1.self_attn.k_proj.\2"),
            Rule(r"encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)", r"layers.\1.self_attn.v_proj.\2"),
            Rule(r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.self_attn.o_proj.\2"),
            Rule(r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)",
                 r"layers.\1.post_attention_layernorm.\2"),
            Rule(r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.mlp.up_proj.\2"),
            Rule(r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.mlp.down_proj.\2"),
            Rule(r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"layers.\1.post_feedforward_layernorm.\2"),
            Rule(r"pooler\..*", None),  # the [CLS] pooler: StudyModel returns hidden states only
        ),
        heads={"BertModel": (StudyModel, ()), "BertForMaskedLM": (StudyForMaskedLM, BERT_MLM_HEAD)},
    ),
    "bloom": Family(
        name="bloom",
        config=bloom_config,
        rules=(
            Rule(r"word_embeddings\.weight", "embed_tokens.weight"),
            Rule(r"word_embeddings_layernorm\.(weight|bias)", r"embedding_norm.\1"),
            Rule(r"h\.(\d+)\.input_layernorm\.(weight|bias)", r"layers.\1.input_layernorm.\2"),
            Rule(r"h\.(\d+)\.self_attention\.query_key_value\.(weight|bias)",
                 _qkv_targets(r"layers.\1.self_attn.", r"\2"), _split_per_head_qkv,
                 _merge_per_head_qkv),
            Rule(r"h\.(\d+)\.self_attention\.dense\.(weight|bias)", r"layers.\1.self_attn.o_proj.\2"),
            Rule(r"h\.(\d+)\.post_attention_layernorm\.(weight|bias)", r"layers.\1.post_attention_layernorm.\2"),
            Rule(r"h\.(\d+)\.mlp\.dense_h_to_4h\.(weight|bias)", r"layers.\1.mlp.up_proj.\2"),
            Rule(r"h\.(\d+)\.mlp\.dense_4h_to_h\.(weight|bias)", r"layers.\1.mlp.down_proj.\2"),
            Rule(r"ln_f\.(weight|bias)", r"norm.\1"),
        ),
        heads={"BloomModel": (StudyModel, ()), "BloomForCausalLM": (StudyForCausalLM, CAUSAL_LM_HEAD)},
    ),
}


# Encoder-decoder families (model_type -> (config converter, model converter)), registered by
# convert_seq2seq.py when the package is imported; from_hf and config_from_hf dispatch to them.
SEQ2SEQ_CONVERTERS: dict[str, tuple[Callable, Callable]] = {}


def family_of(config: PreTrainedConfig) -> Family:
    """The ``Family`` for a reference config, or a ValueError naming the supported families."""
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(
            f"Cannot convert model_type={model_type!r} ({type(config).__name__}) to a study model: "
            f"supported families are {', '.join(sorted({*FAMILIES, *SEQ2SEQ_CONVERTERS}))}."
        )
    return FAMILIES[model_type]


def config_from_hf(config: PreTrainedConfig) -> StudyConfig:
    """The ``StudyConfig`` describing the same architecture as a reference config."""
    if getattr(config, "model_type", None) in SEQ2SEQ_CONVERTERS:
        return SEQ2SEQ_CONVERTERS[config.model_type][0](config)
    return StudyConfig(**family_of(config).config(config))


def rename_state_dict(state_dict: dict[str, torch.Tensor], rules, config: StudyConfig) -> dict[str, torch.Tensor]:
    """Apply the first matching rule to every key; a key no rule matches is an error, never dropped silently."""
    renamed = {}
    for key, tensor in state_dict.items():
        rule, match = next(((r, m) for r in rules if (m := re.fullmatch(r.pattern, key))), (None, None))
        if rule is None:
            raise ValueError(f"No conversion rule for the parameter {key!r}; is this a variant the converter does not know?")
        if rule.target is None:
            continue
        value = rule.transform(tensor, config) if rule.transform else tensor
        if isinstance(rule.target, str):
            renamed[match.expand(rule.target)] = value
        else:
            renamed.update({match.expand(target): part for target, part in zip(rule.target, value, strict=True)})
    return renamed


@torch.no_grad()
def from_hf(model: PreTrainedModel, attn_implementation: str | None = None) -> StudyPreTrainedModel:
    """The study model equal to a transformers reference ``model``, carrying its weights.

    Head types carry over (causal LM -> ``StudyForCausalLM``, masked LM -> ``StudyForMaskedLM``, bare
    model -> ``StudyModel``); so do the dtype, the generation config and train/eval mode. A family or
    head the converter does not know raises a ValueError that lists the supported ones.
    ``attn_implementation`` ("eager" or "sdpa") picks the study model's attention backend.
    """
    if getattr(model.config, "model_type", None) in SEQ2SEQ_CONVERTERS:
        return SEQ2SEQ_CONVERTERS[model.config.model_type][1](model, attn_implementation)
    family = family_of(model.config)
    class_name = type(model).__name__
    if class_name not in family.heads:
        raise ValueError(f"Cannot convert {class_name}: for {family.name} the converter supports {sorted(family.heads)}.")
    study_class, head_rules = family.heads[class_name]
    config = config_from_hf(model.config)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation

    # Base-model parameters are renamed by the family's rules; head parameters by the head's.
    prefix = f"{model.base_model_prefix}."
    is_base = model.base_model is model
    base, head = {}, {}
    for key, tensor in model.state_dict().items():
        if is_base:
            base[key] = tensor
        elif key.startswith(prefix):
            base[key[len(prefix):]] = tensor
        else:
            head[key] = tensor
    state_dict = rename_state_dict(head, head_rules, config)
    study_prefix = "" if study_class is StudyModel else "model."
    state_dict |= {study_prefix + k: v for k, v in rename_state_dict(base, family.rules, config).items()}

    study = study_class(config)
    study.load_state_dict(state_dict, strict=True)  # every Study parameter must come from the reference
    study.to(model.dtype)
    if study.can_generate() and getattr(model, "generation_config", None) is not None:
        study.generation_config = copy.deepcopy(model.generation_config)
    return study.train(model.training)


__all__ = ["FAMILIES", "Family", "Rule", "config_from_hf", "from_hf", "rename_state_dict"]
