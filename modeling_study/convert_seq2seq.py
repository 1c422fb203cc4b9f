"""Convert Hugging Face encoder-decoders (Marian, T5, BART) into ``StudyForConditionalGeneration``, weights included.

Same scheme as ``convert.py`` (whose ``Rule`` and ``rename_state_dict`` it reuses): per family, a config
mapping and a table of renaming rules; ``from_hf`` in ``convert.py`` dispatches here through
``SEQ2SEQ_CONVERTERS``, which this module fills when the package is imported.

Two facts make the references expressible without new model code:

* **Marian's sinusoids are concatenated** (``[sin(p w_0) .. sin(p w_{D/2-1}) | cos(p w_0) ..]``), Study's
  interleaved (``sin(p w_0), cos(p w_0), ...``; Vaswani et al. 2017). Every operation of the model is
  equivariant to a permutation of the hidden channels (LayerNorm's mean and variance ignore their
  order), so the converter permutes the hidden dimension of every weight instead: hidden states
  are the reference's with channels reordered, logits are the same.
* **T5 does not scale ``q . k`` by ``1/sqrt(d)``** (Raffel et al. 2020, arXiv:1910.10683); Study does, so
  the query projections are multiplied by ``sqrt(d)``. T5's tied head multiplies the decoder output by
  ``d_model**-0.5``; a (pre-)RMSNorm's gain commutes with that scalar, so it is folded into the
  decoder's final norm.

What a study model cannot express (different encoder/decoder widths, a separate decoder vocabulary,
activation dropout, layer drop, a gated relu) raises a ValueError naming the setting.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from .configuration_seq2seq import StudySeq2SeqConfig
from .convert import ACTIVATIONS, SEQ2SEQ_CONVERTERS, Rule, _lookup, _reject, rename_state_dict
from .modeling_seq2seq import StudyForConditionalGeneration

QKV = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj"}


# -- Marian ----------------------------------------------------------------------------------------------


def marian_config(c: PreTrainedConfig) -> dict:
    """Marian: post-LayerNorm, biases everywhere, concatenated sinusoids, sqrt(d)-scaled embeddings."""
    _reject(
        "marian",
        decoder_attention_heads=(c.decoder_attention_heads, c.encoder_attention_heads),
        decoder_ffn_dim=(c.decoder_ffn_dim, c.encoder_ffn_dim),
        decoder_vocab_size=(getattr(c, "decoder_vocab_size", None) or c.vocab_size, c.vocab_size),
        activation_dropout=(c.activation_dropout, 0.0),
        encoder_layerdrop=(c.encoder_layerdrop, 0.0),
        decoder_layerdrop=(c.decoder_layerdrop, 0.0),
    )
    return dict(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        intermediate_size=c.encoder_ffn_dim,
        num_hidden_layers=c.encoder_layers,
        num_decoder_layers=c.decoder_layers,
        num_attention_heads=c.encoder_attention_heads,
        max_position_embeddings=c.max_position_embeddings,
        position_encoding="sinusoidal",
        norm_placement="post",
        norm_type="layernorm",
        norm_eps=1e-5,  # nn.LayerNorm's default, which Marian uses
        ffn_activation=_lookup(ACTIVATIONS, c.activation_function, "marian", "activation_function"),
        attention_bias=True,
        mlp_bias=True,
        embedding_multiplier=math.sqrt(c.d_model) if c.scale_embedding else 1.0,
        hidden_dropout=c.dropout,
        attention_dropout=c.attention_dropout,
        embedding_dropout=c.dropout,
        initializer_range=c.init_std,
        share_encoder_decoder_embeddings=getattr(c, "share_encoder_decoder_embeddings", True),
        tie_word_embeddings=c.tie_word_embeddings,
        lm_head_bias=True,
        pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        decoder_start_token_id=c.decoder_start_token_id,
    )


def _interleave_order(hidden_size: int) -> torch.Tensor:
    """Study channel ``i`` holds Marian channel ``order[i]``: ``2j <- j`` (sin), ``2j+1 <- D/2 + j`` (cos)."""
    half = hidden_size // 2
    return torch.stack((torch.arange(half), torch.arange(half) + half), dim=-1).flatten()


def _hidden_in(weight, config):  # (out, D) linears reading the residual stream, embeddings (V, D)
    return weight[:, _interleave_order(config.hidden_size)].contiguous()


def _hidden_out(tensor, config):  # (D, in) linears writing to it, their biases, norm gains and biases
    return tensor[_interleave_order(config.hidden_size)].contiguous()


def _marian_layer_rules(stack: str, _hidden_in=_hidden_in, _hidden_out=_hidden_out) -> tuple[Rule, ...]:
    """Marian's (and BART's) block: q/k/v/out_proj, fc1/fc2 and three post-norms, renamed to Study's; the
    hidden-dimension transforms permute Marian's channels (BART passes None: no permutation)."""
    layer = rf"{stack}\.layers\.(\d+)\."
    target = rf"{stack}.layers.\1."
    rules = [
        Rule(layer + r"self_attn\.([qkv])_proj\.weight", target + r"self_attn.\2_proj.weight", _hidden_in),
        Rule(layer + r"self_attn\.([qkv])_proj\.bias", target + r"self_attn.\2_proj.bias"),
        Rule(layer + r"self_attn\.out_proj\.(weight|bias)", target + r"self_attn.o_proj.\2", _hidden_out),
        Rule(layer + r"self_attn_layer_norm\.(weight|bias)", target + r"post_attention_layernorm.\2", _hidden_out),
        Rule(layer + r"fc1\.weight", target + "mlp.up_proj.weight", _hidden_in),
        Rule(layer + r"fc1\.bias", target + "mlp.up_proj.bias"),
        Rule(layer + r"fc2\.(weight|bias)", target + r"mlp.down_proj.\2", _hidden_out),
        Rule(layer + r"final_layer_norm\.(weight|bias)", target + r"post_feedforward_layernorm.\2", _hidden_out),
    ]
    if stack == "decoder":
        rules += [
            Rule(layer + r"encoder_attn\.([qkv])_proj\.weight", target + r"cross_attn.\2_proj.weight", _hidden_in),
            Rule(layer + r"encoder_attn\.([qkv])_proj\.bias", target + r"cross_attn.\2_proj.bias"),
            Rule(layer + r"encoder_attn\.out_proj\.(weight|bias)", target + r"cross_attn.o_proj.\2", _hidden_out),
            Rule(layer + r"encoder_attn_layer_norm\.(weight|bias)", target + r"post_cross_attention_layernorm.\2",
                 _hidden_out),
        ]
    return tuple(rules)


MARIAN_RULES = (
    Rule(r"model\.shared\.weight", None),  # the same tensor as both stacks' embed_tokens
    Rule(r"model\.(encoder|decoder)\.embed_tokens\.weight", r"model.\1.embed_tokens.weight", _hidden_in),
    Rule(r"model\.(encoder|decoder)\.embed_positions\.weight", None),  # fixed sinusoids: computed, not stored
    *(Rule("model\\." + r.pattern, "model." + r.target, r.transform) for r in _marian_layer_rules("encoder")),
    *(Rule("model\\." + r.pattern, "model." + r.target, r.transform) for r in _marian_layer_rules("decoder")),
    Rule(r"lm_head\.weight", "lm_head.weight", _hidden_in),
    Rule(r"final_logits_bias", "lm_head.bias", lambda bias, config: bias.reshape(-1)),
)


# -- BART -----------------------------------------------------------------------------------------------


def bart_config(c: PreTrainedConfig) -> dict:
    """BART (Lewis et al. 2020, arXiv:1910.13461): Marian's block with learned positions (offset by 2) and a
    LayerNorm after the embeddings."""
    return marian_config(c) | dict(
        position_encoding="learned",
        embedding_norm=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=c.tie_word_embeddings,
    )


def _drop_bart_offset(table, config):
    """BART's table has two extra leading rows (position p reads row p + 2); Study's row p is position p."""
    return table[2:].contiguous()


BART_RULES = (
    Rule(r"model\.shared\.weight", None),
    Rule(r"model\.(encoder|decoder)\.embed_tokens\.weight", r"model.\1.embed_tokens.weight"),
    Rule(r"model\.(encoder|decoder)\.embed_positions\.weight", r"model.\1.position_encoding.embeddings.weight",
         _drop_bart_offset),
    Rule(r"model\.(encoder|decoder)\.layernorm_embedding\.(weight|bias)", r"model.\1.embedding_norm.\2"),
    *(Rule("model\\." + r.pattern, "model." + r.target, r.transform) for r in _marian_layer_rules("encoder", None, None)),
    *(Rule("model\\." + r.pattern, "model." + r.target, r.transform) for r in _marian_layer_rules("decoder", None, None)),
    Rule(r"lm_head\.weight", "lm_head.weight"),
    Rule(r"final_logits_bias", "lm_head.bias", lambda bias, config: bias.reshape(-1)),
)


# -- T5 --------------------------------------------------------------------------------------------------

# T5's feed_forward_proj -> Study's ffn_activation ("gated-gelu" computes gelu_new, the tanh form).
T5_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "silu": "silu",
                  "gated-gelu": "geglu_tanh", "gated-gelu_new": "geglu_tanh", "gated-silu": "swiglu"}


def _t5_scale_decoder_output(config: PreTrainedConfig) -> bool:
    """Whether T5 multiplies the decoder output by ``d_model**-0.5`` before its head (original T5 with a
    tied head: yes; v1.1: no). transformers >= 5 records it as ``scale_decoder_outputs``."""
    return bool(getattr(config, "scale_decoder_outputs", config.tie_word_embeddings))


def t5_config(c: PreTrainedConfig) -> dict:
    """T5: bucketed relative bias shared by a stack's layers, pre-RMSNorm, no biases, unscaled attention."""
    return dict(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        intermediate_size=c.d_ff,
        num_hidden_layers=c.num_layers,
        num_decoder_layers=c.num_decoder_layers,
        num_attention_heads=c.num_heads,
        head_dim=c.d_kv,
        max_position_embeddings=512,  # the bias runs at any length; T5 was trained on 512-token inputs
        position_encoding="t5",
        t5_num_buckets=c.relative_attention_num_buckets,
        t5_max_distance=c.relative_attention_max_distance,
        norm_placement="pre",
        norm_type="rmsnorm",
        norm_eps=c.layer_norm_epsilon,
        ffn_activation=_lookup(T5_ACTIVATIONS, c.feed_forward_proj, "t5", "feed_forward_proj"),
        hidden_dropout=c.dropout_rate,
        embedding_dropout=c.dropout_rate,
        initializer_range=c.initializer_factor,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=c.tie_word_embeddings,
        pad_token_id=c.pad_token_id,
        eos_token_id=c.eos_token_id,
        decoder_start_token_id=getattr(c, "decoder_start_token_id", None) or c.pad_token_id,
    )


def _unscaled_attention(weight, config):
    """T5 scores are ``q . k``; Study's are ``q . k / sqrt(d)``: scale the query projection by ``sqrt(d)``."""
    return weight * math.sqrt(config.head_dim)


def _t5_rules(config: PreTrainedConfig) -> tuple[Rule, ...]:
    def final_norm(weight, study_config):
        return weight * study_config.hidden_size**-0.5 if _t5_scale_decoder_output(config) else weight

    def attention(block: str, module: str, study: str) -> tuple[Rule, ...]:
        return (
            Rule(block + rf"{module}\.q\.weight", rf"model.\1.layers.\2.{study}.q_proj.weight", _unscaled_attention),
            Rule(block + rf"{module}\.([kvo])\.weight", rf"model.\1.layers.\2.{study}.\3_proj.weight"),
        )

    encoder, decoder, either = r"(encoder)\.block\.(\d+)\.layer\.", r"(decoder)\.block\.(\d+)\.layer\.", r"(encoder|decoder)\.block\.(\d+)\.layer\."
    mlp = (
        Rule(r"DenseReluDense\.wi\.weight", r"mlp.up_proj.weight"),
        Rule(r"DenseReluDense\.wi_0\.weight", r"mlp.gate_proj.weight"),
        Rule(r"DenseReluDense\.wi_1\.weight", r"mlp.up_proj.weight"),
        Rule(r"DenseReluDense\.wo\.weight", r"mlp.down_proj.weight"),
    )
    return (
        Rule(r"shared\.weight", None),  # the same tensor as both stacks' embed_tokens
        Rule(r"(encoder|decoder)\.embed_tokens\.weight", r"model.\1.embed_tokens.weight"),
        Rule(r"(encoder|decoder)\.block\.0\.layer\.0\.SelfAttention\.relative_attention_bias\.weight",
             r"model.\1.position_encoding.relative_attention_bias.weight"),
        *attention(either + r"0\.", "SelfAttention", "self_attn"),
        Rule(either + r"0\.layer_norm\.weight", r"model.\1.layers.\2.input_layernorm.weight"),
        *attention(decoder + r"1\.", "EncDecAttention", "cross_attn"),
        Rule(decoder + r"1\.layer_norm\.weight", r"model.\1.layers.\2.pre_cross_attention_layernorm.weight"),
        *(Rule(encoder + r"1\." + r.pattern, rf"model.\1.layers.\2.{r.target}") for r in mlp),
        *(Rule(decoder + r"2\." + r.pattern, rf"model.\1.layers.\2.{r.target}") for r in mlp),
        Rule(encoder + r"1\.layer_norm\.weight", r"model.\1.layers.\2.post_attention_layernorm.weight"),
        Rule(decoder + r"2\.layer_norm\.weight", r"model.\1.layers.\2.post_attention_layernorm.weight"),
        Rule(r"encoder\.final_layer_norm\.weight", "model.encoder.norm.weight"),
        Rule(r"decoder\.final_layer_norm\.weight", "model.decoder.norm.weight", final_norm),
        Rule(r"lm_head\.weight", "lm_head.weight"),
    )


# -- the registry --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seq2SeqFamily:
    """One reference encoder-decoder: its config mapping, its renaming rules, the class it converts."""

    name: str
    config: callable  # reference config -> StudySeq2SeqConfig keyword arguments
    rules: callable  # reference config -> tuple of Rule over the reference's full parameter names
    model_class: str  # the reference class converted (its bare model is not)


SEQ2SEQ_FAMILIES: dict[str, Seq2SeqFamily] = {
    "marian": Seq2SeqFamily("marian", marian_config, lambda c: MARIAN_RULES, "MarianMTModel"),
    "t5": Seq2SeqFamily("t5", t5_config, _t5_rules, "T5ForConditionalGeneration"),
    "bart": Seq2SeqFamily("bart", bart_config, lambda c: BART_RULES, "BartForConditionalGeneration"),
}


def seq2seq_config_from_hf(config: PreTrainedConfig) -> StudySeq2SeqConfig:
    """The ``StudySeq2SeqConfig`` of a Marian or T5 config."""
    return StudySeq2SeqConfig(**SEQ2SEQ_FAMILIES[config.model_type].config(config))


@torch.no_grad()
def seq2seq_from_hf(model: PreTrainedModel, attn_implementation: str | None = None) -> StudyForConditionalGeneration:
    """The ``StudyForConditionalGeneration`` computing what ``model`` computes, with its weights, dtype,
    generation config and train/eval mode. Weights the study model ties must be equal in the reference."""
    family = SEQ2SEQ_FAMILIES[model.config.model_type]
    if type(model).__name__ != family.model_class:
        raise ValueError(f"Cannot convert {type(model).__name__}: for {family.name} the converter supports "
                         f"{family.model_class} only.")
    config = seq2seq_config_from_hf(model.config)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    state_dict = rename_state_dict(model.state_dict(), family.rules(model.config), config)
    study = StudyForConditionalGeneration(config)
    study.load_state_dict(state_dict, strict=True)
    mine = study.state_dict()
    for key, value in state_dict.items():  # a tied study tensor was written once per name: all must agree
        if not torch.equal(mine[key], value.to(mine[key].dtype)):
            raise ValueError(f"{key} is tied to another weight in the study model (share_encoder_decoder_embeddings="
                             f"{config.share_encoder_decoder_embeddings}, tie_word_embeddings={config.tie_word_embeddings}) "
                             f"but differs from it in the reference.")
    study.to(model.dtype)
    if getattr(model, "generation_config", None) is not None:
        study.generation_config = copy.deepcopy(model.generation_config)
        if study.generation_config.decoder_start_token_id is None:
            study.generation_config.decoder_start_token_id = config.decoder_start_token_id
    return study.train(model.training)


SEQ2SEQ_CONVERTERS.update({name: (seq2seq_config_from_hf, seq2seq_from_hf) for name in SEQ2SEQ_FAMILIES})

__all__ = ["SEQ2SEQ_FAMILIES", "seq2seq_config_from_hf", "seq2seq_from_hf"]
