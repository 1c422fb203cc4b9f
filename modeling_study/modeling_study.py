"""The study transformer: a Hugging Face model whose positional encoding and norm placement are
one config string each.

Read top to bottom, as transformers' ``modeling_llama.py``: MLP, attention, decoder layer,
``PreTrainedModel``, the base model, then the heads. The model never branches on the name of its
positional encoding: it calls the encoding's three hooks (``position_encodings.py``) once per forward
and hands the results to every layer. How the bias reaches the scores (built whole, as one channel of q
and k, block by block, or as FlexAttention's score_mod) is the attention path, chosen once per forward
by ``attention_paths.py``, which also holds the readable eager reference.

References: Vaswani et al. 2017 (arXiv:1706.03762); Llama (Touvron et al. 2023, arXiv:2302.13971);
Xiong et al. 2020 on norm placement (arXiv:2002.04745); Shazeer 2020 on gated MLPs (arXiv:2002.05202).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    MaskedLMOutput,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .attention_paths import ATTENTION_PATHS, AttentionInputs, check_forced_path, choose_attention_path
from .attention_paths import add_bias_to_mask, eager_attention_forward, repeat_kv  # noqa: F401  (imported from here)
from .cache_names import CACHE_FIELD, _one_cache, cache_argument  # noqa: F401  (imported from here too)
from .configuration_study import FFN_ACTIVATIONS, StudyConfig
from .norms import NORM_PLACEMENTS, StudyRMSNormPlusOne, build_norm
from .position_encodings import POSITION_ENCODINGS, ROPE_LAYOUTS, PositionEncoding, apply_rotary, positions_of_keys


class StudyMLP(nn.Module):
    """Position-wise feed-forward: ``down(act(up(x)))``, or gated ``down(act(gate(x)) * up(x))``."""

    def __init__(self, config: StudyConfig):
        super().__init__()
        act_name, self.gated = FFN_ACTIVATIONS[config.ffn_activation]
        self.act_fn = ACT2FN[act_name]
        if self.gated:
            self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.mlp_bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.mlp_bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(self.act_fn(self.up_proj(x)))


class StudyAttention(nn.Module):
    """Multi-head or grouped-query self-attention; causal or bidirectional (``config.is_causal``).

    RoPE rotates q and k here (hook 2) when the model hands in ``position_embeddings``; the bias (hook 3)
    and the mask arrive as ``attention``, built once per forward by the attention path the model chose
    (``attention_paths.py``), which also runs the attention. Called alone, with only an ``attention_mask``
    (bias folded in), it runs the dense path: transformers' attention interface for ``attn_implementation``.
    """

    def __init__(self, config: StudyConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = config.is_causal
        self.rotate = ROPE_LAYOUTS[config.rope_layout]
        q_width, kv_width = config.num_attention_heads * self.head_dim, config.num_key_value_heads * self.head_dim
        self.q_proj = nn.Linear(config.hidden_size, q_width, bias=config.attention_bias)
        self.k_proj = nn.Linear(config.hidden_size, kv_width, bias=config.attention_bias)
        self.v_proj = nn.Linear(config.hidden_size, kv_width, bias=config.attention_bias)
        self.o_proj = nn.Linear(q_width, config.hidden_size, bias=config.attention_output_bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        attention: AttentionInputs | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, H, T, d)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, kv_heads, T, d)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        if position_embeddings is not None:
            query, key = apply_rotary(query, key, *position_embeddings, rotate=self.rotate)
        if cache is not None:  # keys are cached already rotated
            key, value = cache.update(key, value, self.layer_idx)

        if attention is None:
            attention = AttentionInputs(ATTENTION_PATHS["dense"], attention_mask)
        # the backend (eager, sdpa, ...) for the paths that call one; the block-wise and flex paths run their own
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        dropout = self.attention_dropout if self.training else 0.0
        output, weights = attention.attend(
            self, query, key, value, attention_interface, scaling=self.scaling, dropout=dropout, **kwargs
        )
        output = self.o_proj(output.reshape(*input_shape, -1).contiguous())
        return output, weights


class StudyDecoderLayer(GradientCheckpointingLayer):
    """One block: attention then MLP, each a residual step whose norms ``config.norm_placement`` sets.

    ::

        pre       x ──┬──────────────────────────(+)──▶      x + f(norm(x))
                      └─ norm ─ f ───────────────┘
        post      x ──┬──────────────────(+)─ norm ──▶      norm(x + f(x))
                      └─ f ──────────────┘
        sandwich  x ──┬──────────────────────────(+)──▶      x + norm(f(norm(x)))
                      └─ norm ─ f ─ norm ────────┘
    """

    def __init__(self, config: StudyConfig, layer_idx: int):
        super().__init__()
        self.self_attn = StudyAttention(config, layer_idx)
        self.mlp = StudyMLP(config)
        self.placement = NORM_PLACEMENTS[config.norm_placement]
        for name in self.placement.attention + self.placement.mlp:
            if name is not None:
                self.add_module(name, build_norm(config))
        self.dropout = nn.Dropout(config.hidden_dropout) if config.hidden_dropout > 0 else None  # skip the call when off

    def _residual(self, x: torch.Tensor, sublayer: Callable, norms: tuple[str | None, ...]) -> torch.Tensor:
        before, on_branch, on_sum = (getattr(self, name) if name else None for name in norms)
        h = sublayer(before(x) if before is not None else x)
        if self.dropout is not None:
            h = self.dropout(h)
        if on_branch is not None:
            h = on_branch(h)
        x = x + h
        return on_sum(x) if on_sum is not None else x

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        def attend(x):
            return self.self_attn(
                x,
                position_embeddings=position_embeddings,
                attention_mask=attention_mask,
                cache=cache,
                **kwargs,
            )[0]

        hidden_states = self._residual(hidden_states, attend, self.placement.attention)
        return self._residual(hidden_states, self.mlp, self.placement.mlp)


def _tensor_parallel_requested(kwargs: dict) -> bool:
    """``tp_plan=`` or a ``distributed_config`` that asks for a plan or a tensor-parallel size."""
    distributed = kwargs.get("distributed_config")
    get = distributed.get if isinstance(distributed, dict) else lambda name: getattr(distributed, name, None)
    return kwargs.get("tp_plan") is not None or (
        distributed is not None and (get("tp_plan") is not None or (get("tp_size") or 1) > 1))


def _check_tensor_parallel(config, where, kwargs: dict) -> None:
    """Tensor parallelism gives each rank some of the heads; a bias built for every head cannot follow."""
    if not isinstance(config, StudyConfig):  # AutoModel passes the config; a direct call reads it (small)
        where_from = {k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only", "subfolder") if k in kwargs}
        config = StudyConfig.from_pretrained(where, **where_from)
    encoding = POSITION_ENCODINGS[config.position_encoding]
    if encoding.attention_bias is not PositionEncoding.attention_bias:
        servable = [name for name, cls in POSITION_ENCODINGS.items() if cls.attention_bias is PositionEncoding.attention_bias]
        raise ValueError(
            f"Tensor parallelism splits the attention heads across ranks, but position_encoding="
            f"{config.position_encoding!r} adds a bias to every head's scores, built for all heads at once. "
            f"Load this model without tp_plan (one process, or accelerate / data parallelism); tensor parallelism "
            f"serves {', '.join(servable)}."
        )


class StudyPreTrainedModel(PreTrainedModel):
    config_class = StudyConfig
    config: StudyConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["StudyDecoderLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = False  # ALiBi and T5 need an additive bias, which flash kernels do not take
    _supports_flex_attn = True  # the bias as a score_mod, the masks as a BlockMask (attention_paths.py)
    _supports_attention_backend = True
    _can_compile_fullgraph = True  # every encoding, tested (tests/test_deploy.py): static cache, fullgraph, no host syncs
    _can_record_outputs = {"hidden_states": StudyDecoderLayer, "attentions": StudyAttention}

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """Load like any transformers model, but weights come in as safetensors only: never unpickled."""
        if kwargs.get("use_safetensors") is False:
            raise ValueError("Study models load safetensors weights only; drop use_safetensors=False.")
        kwargs["use_safetensors"] = True
        if _tensor_parallel_requested(kwargs):
            _check_tensor_parallel(kwargs.get("config"), args[0] if args else kwargs.get("pretrained_model_name_or_path"),
                                   kwargs)
        try:
            return super().from_pretrained(*args, **kwargs)
        except Exception as error:  # safetensors is not imported here: remote code needs only torch/transformers
            if type(error).__name__ != "SafetensorError":
                raise
            where = args[0] if args else kwargs.get("pretrained_model_name_or_path")
            raise OSError(
                f"The safetensors weights of {where!r} are corrupted or truncated ({error}). "
                f"Save the model again, or delete the file and download it again."
            ) from error

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save like any transformers model. When the classes are registered for remote code, ``auto_map``
        names every registered study class, not only the saved one (all transformers writes), so
        AutoModel, AutoModelForCausalLM, ... each load any saved study checkpoint."""
        if self._auto_class is not None:
            registered = [type(self.config), *StudyPreTrainedModel.__subclasses__()]
            self.config.auto_map = (getattr(self.config, "auto_map", None) or {}) | {
                cls._auto_class: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
                for cls in registered
                if getattr(cls, "_auto_class", None) is not None
            }
        return super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # normal(0, initializer_range) for linears/embeddings, ones/zeros for norms
        if isinstance(module, PositionEncoding):
            module.init_buffers()  # built on the meta device by from_pretrained: recompute, don't trust
        elif isinstance(module, StudyRMSNormPlusOne):
            init.zeros_(module.weight)  # its gain is 1 + weight: zeros start it at the identity
        std = self.config.embedding_initializer_range
        if std is not None and module is self.get_input_embeddings():
            init.normal_(module.weight, mean=0.0, std=std)  # fairseq: d^-0.5, so sqrt(d)-scaled tokens have RMS 1
            if module.padding_idx is not None:
                init.zeros_(module.weight[module.padding_idx])


class StudyModel(StudyPreTrainedModel):
    """The bare transformer: embeddings, positional encoding, ``num_hidden_layers`` blocks, final norm."""

    def __init__(self, config: StudyConfig):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        if config.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.position_encoding = POSITION_ENCODINGS[config.position_encoding](config)
        self.embedding_norm = build_norm(config) if config.embedding_norm else nn.Identity()
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(StudyDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = build_norm(config) if NORM_PLACEMENTS[config.norm_placement].final_norm else nn.Identity()
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def _check_inputs(self, input_ids, inputs_embeds, attention_mask, kv_length: int, position_ids=None) -> None:
        """Fail early, with the fix, on inputs that would otherwise crash deep inside torch."""
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference.shape[0] == 0 or reference.shape[1] == 0:
            raise ValueError(f"Empty batch: inputs have shape {tuple(reference.shape)}; pass at least one token.")
        # On CPU the embedding lookup itself raises IndexError (turned into this message in forward), so
        # only accelerators, where a bad id is a device-side assert, pay a host sync per forward.
        if input_ids is not None and input_ids.device.type != "cpu" and not torch.compiler.is_compiling():
            self._check_token_ids(input_ids)
        if attention_mask is not None and attention_mask.dim() == 2:
            if attention_mask.shape[0] != reference.shape[0] or attention_mask.shape[1] != kv_length:
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)} but the inputs need "
                    f"({reference.shape[0]}, {kv_length}) (batch, cached + new tokens)."
                )
        # Without position ids or a padding mask, positions run 0..kv_length-1: a long row is the error.
        # Given ids (packed sequences) or a mask, the ids themselves are checked in forward, once computed.
        derived_from_length = position_ids is None and not (attention_mask is not None and attention_mask.dim() == 2)
        if self.position_encoding.bounded and derived_from_length and kv_length > self.config.max_position_embeddings:
            unbounded = [name for name, cls in POSITION_ENCODINGS.items() if not cls.bounded]
            raise ValueError(
                f"A sequence of {kv_length} tokens is longer than max_position_embeddings="
                f"{self.config.max_position_embeddings}, the number of positions the "
                f"{self.config.position_encoding!r} encoding has. Shorten the input, or train with an "
                f"encoding that runs at any length: {', '.join(unbounded)}."
            )

    def attention_path(self, inputs_embeds: torch.Tensor, query_length: int) -> str:
        """The attention path of this forward (``attention_paths.choose_attention_path``), or the forced
        ``config.attention_path``. The dtype is the one attention computes in: autocast's, under autocast."""
        if self.config.attention_path is not None:
            check_forced_path(self.config.attention_path, self.position_encoding.bias_forms,
                              self.config.position_encoding)
        device, dtype = inputs_embeds.device, inputs_embeds.dtype
        if torch.is_autocast_enabled(device.type):  # Trainer's bf16=True: float32 weights, bfloat16 matmuls
            dtype = torch.get_autocast_dtype(device.type)
        return choose_attention_path(
            self.position_encoding.bias_forms, self.config._attn_implementation, device, dtype, query_length,
            dropout_active=self.training and self.config.attention_dropout > 0,
            compiling=torch.compiler.is_compiling(), forced=self.config.attention_path,
        )

    def _check_token_ids(self, input_ids) -> None:
        """Every id in ``[0, vocab_size)``, read on the host (one sync): where a bad id would be a device-side assert."""
        low, high = torch.aminmax(input_ids)
        if ((low < 0) | (high >= self.config.vocab_size)).item():
            raise self._token_id_error(input_ids)

    def _token_id_error(self, input_ids) -> ValueError:
        low, high = torch.aminmax(input_ids)
        return ValueError(
            f"Token ids must lie in [0, vocab_size={self.config.vocab_size}); got ids from "
            f"{int(low)} to {int(high)}. Does the tokenizer match the model? "
            f"If it has more tokens, call model.resize_token_embeddings(len(tokenizer))."
        )

    @cache_argument
    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        cache = _one_cache(cache, past_key_values)
        past_seen = cache.get_seq_length() if cache is not None else 0
        if isinstance(past_seen, torch.Tensor) and not torch.compiler.is_compiling():
            past_seen = int(past_seen)  # a static cache counts in a tensor, so compiled decoding never recompiles
        query_length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        kv_length = past_seen + query_length
        if not isinstance(kv_length, torch.Tensor):  # a compiled static-cache step has no host-side length to check
            self._check_inputs(input_ids, inputs_embeds, attention_mask, kv_length, position_ids)
        if inputs_embeds is None:
            try:
                inputs_embeds = self.embed_tokens(input_ids)
            except IndexError:  # CPU: an id outside the table
                raise self._token_id_error(input_ids) from None
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        # Positions of the new tokens and of every key the cache returns (a static cache returns all its
        # slots, the empty ones masked); counted only when needed: decoding with RoPE reads position_ids only.
        key_positions = None
        if position_ids is None or self.position_encoding.uses_key_positions:
            key_length = cache.get_mask_sizes(query_length, 0)[0] if cache is not None else query_length
            key_positions = positions_of_keys(attention_mask, position_ids, past_seen, query_length, key_length,
                                              inputs_embeds.device)
        if position_ids is None:
            if attention_mask is not None and attention_mask.dim() == 2:
                position_ids = key_positions[:, kv_length - query_length : kv_length]
            else:
                position_ids = (torch.arange(query_length, device=inputs_embeds.device) + past_seen).unsqueeze(0)
        if self.position_encoding.bounded and not torch.compiler.is_compiling():
            if position_ids.max() >= self.config.max_position_embeddings:
                raise ValueError(
                    f"position_ids reach {int(position_ids.max())} but the {self.config.position_encoding!r} "
                    f"encoding has only max_position_embeddings={self.config.max_position_embeddings} positions."
                )

        # Hook 3: the bias and the mask, once per forward, in the form of the attention path chosen here
        # (attention_paths.py: dense, factored, bucketed or flex), which every layer then runs.
        path = self.attention_path(inputs_embeds, query_length)
        attention = ATTENTION_PATHS[path].prepare(
            self.position_encoding, self.config, (position_ids, key_positions),
            dict(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                 **{CACHE_FIELD: cache}),  # the mask is bidirectional when config.is_causal is False
            inputs_embeds.dtype,
        )

        # Hook 1: positions added to the embeddings. Hook 2: cos/sin for rotating q and k.
        if self.config.embedding_multiplier != 1.0:  # Vaswani's sqrt(d): tokens on the scale of fixed sinusoids
            inputs_embeds = inputs_embeds * self.config.embedding_multiplier
        hidden_states = self.position_encoding.add_to_embeddings(inputs_embeds, position_ids)
        if self.config.type_vocab_size > 0:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(position_ids).expand(hidden_states.shape[0], -1)
            hidden_states = hidden_states + self.token_type_embeddings(token_type_ids)
        hidden_states = self.embedding_norm(hidden_states)
        if self.embedding_dropout.p > 0:  # skip the call when off (it runs once per decoded token)
            hidden_states = self.embedding_dropout(hidden_states)
        position_embeddings = self.position_encoding.rotary_embeddings(hidden_states, position_ids)

        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                attention_mask=attention.mask,  # as Llama's layers take it; ``attention`` carries it with the bias
                position_embeddings=position_embeddings,
                cache=cache,
                attention=attention,
                **kwargs,
            )
        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, **{CACHE_FIELD: cache})


class StudyForCausalLM(StudyPreTrainedModel, GenerationMixin):
    """Decoder language model: ``StudyModel`` + a linear head over the vocabulary."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}  # as LlamaForCausalLM: each rank a vocabulary slice, then gathered

    def __init__(self, config: StudyConfig):
        super().__init__(config)
        self.model = StudyModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    @cache_argument
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=_one_cache(cache, past_key_values),  # before transformers 5.24 generate() passes past_key_values
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:  # shifts inside; honours Trainer's num_items_in_batch
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class StudyMaskedLMHead(nn.Module):
    """BERT's prediction-head transform: ``norm(act(dense(x)))`` before the vocabulary projection."""

    def __init__(self, config: StudyConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act_fn = ACT2FN[FFN_ACTIVATIONS[config.ffn_activation][0]]
        self.norm = build_norm(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act_fn(self.dense(hidden_states)))


class StudyForMaskedLM(StudyPreTrainedModel):
    """Masked language model (BERT-style): ``StudyModel`` + head transform + vocabulary projection."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    # a vocabulary slice per rank, then gathered; tied, it shares embed_tokens' row shards (as UltrabertForMaskedLM)
    _tp_plan = {"lm_head": "colwise_gather_output"}

    def __init__(self, config: StudyConfig):
        super().__init__(config)
        self.model = StudyModel(config)
        self.head_transform = StudyMaskedLMHead(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            token_type_ids=token_type_ids,
            use_cache=False,
            **kwargs,
        )
        logits = self.lm_head(self.head_transform(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class StudyForSequenceClassification(StudyPreTrainedModel):
    """Sequence classifier: pools the last real token (causal models) or the first token (encoders)."""

    _tp_plan = {"score": "replicate"}  # num_labels columns: too few to split, every rank keeps the whole head

    def __init__(self, config: StudyConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = StudyModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            token_type_ids=token_type_ids,
            use_cache=False,
            **kwargs,
        )
        logits = self.score(outputs.last_hidden_state)  # (B, T, num_labels)
        batch = logits.shape[0]
        if not self.config.is_causal:
            pool_index = torch.zeros(batch, dtype=torch.long, device=logits.device)
        elif attention_mask is not None and attention_mask.dim() == 2:
            # rightmost real token, for left and right padding alike
            positions = torch.arange(attention_mask.shape[-1], device=logits.device)
            pool_index = (positions * attention_mask.to(logits.device).long()).argmax(-1)
        elif input_ids is not None and self.config.pad_token_id is not None:
            positions = torch.arange(input_ids.shape[-1], device=logits.device)
            pool_index = (positions * (input_ids != self.config.pad_token_id).long()).argmax(-1)
        else:
            pool_index = torch.full((batch,), logits.shape[1] - 1, device=logits.device)
        pooled_logits = logits[torch.arange(batch, device=logits.device), pool_index]
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=pooled_logits, config=self.config)
        return SequenceClassifierOutputWithPast(
            loss=loss, logits=pooled_logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = [
    "StudyPreTrainedModel",
    "StudyModel",
    "StudyForCausalLM",
    "StudyForMaskedLM",
    "StudyForSequenceClassification",
]
