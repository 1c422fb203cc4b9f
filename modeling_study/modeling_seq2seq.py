"""The study encoder-decoder: the Transformer of Vaswani et al. 2017 (arXiv:1706.03762), built from the
decoder-only model's parts.

The encoder is a bidirectional ``StudyModel``; the decoder is a causal ``StudyModel`` whose blocks add a
cross-attention step between self-attention and the MLP. Both stacks call their positional encoding's
three hooks exactly as the decoder-only model does (nothing here asks which encoding it holds);
cross-attention gets no position information, as in the paper, Marian and T5: a target position
reads the source by content, and the source already carries its positions.

Read top to bottom: cross-attention, the decoder block, the decoder stack, ``PreTrainedModel``, the bare
encoder-decoder, the model with a language-model head (``GenerationMixin``: greedy and beam search
decode incrementally from an ``EncoderDecoderCache``; the source's keys and values are computed once).

References: Vaswani et al. 2017 (arXiv:1706.03762); Raffel et al. 2020, T5 (arXiv:1910.10683);
Junczys-Dowmunt et al. 2018, Marian (arXiv:1804.00344).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils.generic import can_return_tuple

from .configuration_seq2seq import StudySeq2SeqConfig
from .modeling_study import (
    CACHE_FIELD,
    StudyAttention,
    StudyDecoderLayer,
    StudyModel,
    StudyPreTrainedModel,
    _one_cache,
    eager_attention_forward,
)
from .norms import build_norm

# The cross-attention step is wrapped like self-attention (same placement), under its own names: slot i of
# a placement's (before, on_branch, on_sum) gets name i here when the placement has a norm in that slot.
CROSS_ATTENTION_NORMS = ("pre_cross_attention_layernorm", "post_cross_attention_layernorm", "post_cross_attention_layernorm")


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int | None, decoder_start_token_id: int | None) -> torch.Tensor:
    """Teacher forcing: the decoder reads ``[start, y_1, ..., y_{n-1}]`` to predict ``[y_1, ..., y_n]``;
    ignored labels (-100) become padding."""
    if decoder_start_token_id is None or pad_token_id is None:
        raise ValueError(
            f"Training on labels needs config.decoder_start_token_id and config.pad_token_id (got "
            f"{decoder_start_token_id!r} and {pad_token_id!r}); set them (Marian and T5 start from the pad token)."
        )
    shifted = labels.new_full(labels.shape, decoder_start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)


class StudyCrossAttention(StudyAttention):
    """Attention from the decoder's positions to the encoder's outputs: queries from the target, keys and
    values from the source. No positional hook and no causal mask (every target token reads the whole
    source); the source's keys and values enter the cache once and are reused at every decoding step."""

    def __init__(self, config, layer_idx: int):
        super().__init__(config, layer_idx)
        self.is_causal = False  # read by sdpa when there is no mask

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        query = self.q_proj(hidden_states).view(*input_shape, -1, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        if cache is not None and cache.is_updated.get(self.layer_idx):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            key, value = layer.keys, layer.values
        else:
            source_shape = (*encoder_hidden_states.shape[:-1], -1, self.head_dim)
            key = self.k_proj(encoder_hidden_states).view(source_shape).transpose(1, 2)  # (B, kv_heads, S, d)
            value = self.v_proj(encoder_hidden_states).view(source_shape).transpose(1, 2)
            if cache is not None:
                key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
                cache.is_updated[self.layer_idx] = True
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, weights = attention_interface(
            self, query, key, value, attention_mask,
            dropout=self.attention_dropout if self.training else 0.0, scaling=self.scaling,
        )
        return self.o_proj(output.reshape(*input_shape, -1).contiguous()), weights


class StudySeq2SeqDecoderLayer(StudyDecoderLayer):
    """A decoder block: self-attention, cross-attention, MLP; each a residual step whose norms
    ``config.norm_placement`` sets (the cross-attention step wrapped like the self-attention one).

    ::

        x ─▶ [causal self-attention] ─▶ [cross-attention to the source] ─▶ [MLP] ─▶
    """

    def __init__(self, config, layer_idx: int):
        super().__init__(config, layer_idx)
        self.cross_attn = StudyCrossAttention(config, layer_idx)
        self.cross_placement = tuple(
            name if slot is not None else None for slot, name in zip(self.placement.attention, CROSS_ATTENTION_NORMS)
        )
        for name in dict.fromkeys(n for n in self.cross_placement if n is not None):
            self.add_module(name, build_norm(config))

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: EncoderDecoderCache | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        def attend(x):
            return self.self_attn(
                x,
                position_embeddings=position_embeddings,
                attention_mask=attention_mask,
                cache=cache.self_attention_cache if cache is not None else None,
                **kwargs,
            )[0]

        def cross_attend(x):
            return self.cross_attn(x, encoder_hidden_states, attention_mask=encoder_attention_mask, cache=cache)[0]

        hidden_states = self._residual(hidden_states, attend, self.placement.attention)
        hidden_states = self._residual(hidden_states, cross_attend, self.cross_placement)
        return self._residual(hidden_states, self.mlp, self.placement.mlp)


class StudySeq2SeqDecoder(StudyModel):
    """The decoder stack: a causal ``StudyModel`` (embeddings, the three position hooks, final norm) whose
    blocks also attend to the source. ``encoder_hidden_states`` and ``encoder_attention_mask`` travel to
    the blocks with the other keyword arguments."""

    _no_split_modules = ["StudySeq2SeqDecoderLayer"]

    def __init__(self, config):
        super().__init__(config)
        self.layers = nn.ModuleList(StudySeq2SeqDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.post_init()


class StudySeq2SeqPreTrainedModel(StudyPreTrainedModel):
    config_class = StudySeq2SeqConfig
    config: StudySeq2SeqConfig
    _no_split_modules = ["StudyDecoderLayer", "StudySeq2SeqDecoderLayer"]
    main_input_name = "input_ids"

    def _ties(self, prefix: str) -> dict[str, str]:
        """Which weights are one tensor, from this config's two switches (transformers ties only when
        ``tie_word_embeddings`` is set; sharing the two input embeddings is a separate choice here)."""
        source = f"{prefix}encoder.embed_tokens.weight"
        ties = {f"{prefix}decoder.embed_tokens.weight": source} if self.config.share_encoder_decoder_embeddings else {}
        if self.config.tie_word_embeddings and hasattr(self, "lm_head"):
            ties["lm_head.weight"] = ties.get(f"{prefix}decoder.embed_tokens.weight", f"{prefix}decoder.embed_tokens.weight")
        return ties

    def get_expanded_tied_weights_keys(self, all_submodels: bool = False) -> dict:
        if all_submodels:
            return super().get_expanded_tied_weights_keys(all_submodels=True)
        return self._ties(self._tie_prefix)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save like any transformers model; ``auto_map`` names both seq2seq classes and their config."""
        if self._auto_class is not None:
            registered = [type(self.config), *StudySeq2SeqPreTrainedModel.__subclasses__()]
            self.config.auto_map = {
                cls._auto_class: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
                for cls in registered
                if getattr(cls, "_auto_class", None) is not None
            }
        return PreTrainedModel.save_pretrained(self, save_directory, *args, **kwargs)


class StudySeq2SeqModel(StudySeq2SeqPreTrainedModel):
    """The bare encoder-decoder: returns the decoder's last hidden states (and the encoder's)."""

    _tie_prefix = ""

    def __init__(self, config: StudySeq2SeqConfig):
        super().__init__(config)
        self.encoder = StudyModel(config.stack_config(decoder=False))
        self.decoder = StudySeq2SeqDecoder(config.stack_config(decoder=True))
        if config.share_encoder_decoder_embeddings:
            self.decoder.embed_tokens = self.encoder.embed_tokens
        self._tied_weights_keys = self._ties(self._tie_prefix)  # read by save_pretrained
        self.post_init()

    def get_encoder(self) -> StudyModel:
        return self.encoder

    def get_decoder(self) -> StudySeq2SeqDecoder:
        return self.decoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.embed_tokens = value
        if self.config.share_encoder_decoder_embeddings:
            self.decoder.embed_tokens = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput:
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            raise ValueError(
                "The decoder has no input: pass labels (the decoder then reads them shifted right behind "
                "decoder_start_token_id), decoder_input_ids or decoder_inputs_embeds. For a Trainer, build "
                "batches with DataCollatorForSeq2Seq(tokenizer, model=model), which adds decoder_input_ids."
            )
        cache = _one_cache(cache, past_key_values)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, use_cache=False, **kwargs)
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        source = encoder_outputs.last_hidden_state  # (B, S, D)

        if use_cache is None:
            use_cache = self.config.use_cache
        if use_cache and cache is None:
            cache = EncoderDecoderCache(DynamicCache(config=self.decoder.config), DynamicCache(config=self.decoder.config))
        if not use_cache:
            cache = None
        # The source's padding is the same for every target position: one query row broadcasts over all.
        cross_mask = create_bidirectional_mask(
            config=self.decoder.config, inputs_embeds=source[:, :1], attention_mask=attention_mask,
            encoder_hidden_states=source,
        )
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            inputs_embeds=decoder_inputs_embeds,
            cache=cache,
            use_cache=use_cache,
            encoder_hidden_states=source,
            encoder_attention_mask=cross_mask,
            **kwargs,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            **{CACHE_FIELD: cache},
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            encoder_last_hidden_state=source,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class StudyForConditionalGeneration(StudySeq2SeqPreTrainedModel, GenerationMixin):
    """Encoder-decoder with a language-model head: translation, summarisation, any text-to-text task.

    ``labels`` give the loss (the decoder inputs are the labels shifted right when not given);
    ``generate()`` runs greedy or beam search over the cached decoder.
    """

    _tie_prefix = "model."

    def __init__(self, config: StudySeq2SeqConfig):
        super().__init__(config)
        self.model = StudySeq2SeqModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=config.lm_head_bias)
        self._tied_weights_keys = self._ties(self._tie_prefix)  # read by save_pretrained
        self.post_init()

    def get_encoder(self) -> StudyModel:
        return self.model.encoder

    def get_decoder(self) -> StudySeq2SeqDecoder:
        return self.model.decoder

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Used by ``DataCollatorForSeq2Seq(model=...)``, so a Trainer that pops labels (label smoothing) still
        hands the decoder its inputs."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        outputs: Seq2SeqModelOutput = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:  # labels are already aligned with the logits: no shift
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size,
                                      shift_labels=labels, **kwargs)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )


__all__ = ["StudySeq2SeqPreTrainedModel", "StudySeq2SeqModel", "StudyForConditionalGeneration"]
