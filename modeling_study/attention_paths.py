"""Attention paths: the ways hook 3's bias (ALiBi, T5) reaches the attention scores, and the one place that chooses.

A positional bias is an ``H x T x S`` tensor if built whole. Each path below computes the same
``softmax(q k^T * scaling + mask + bias) v`` without building more than it must:

* ``dense``    -- the bias built whole and folded into the mask; any backend of transformers' attention
  interface (``eager``, ``sdpa``, ...). The reference, and the only form that needs nothing of the encoding.
* ``factored`` -- a rank-one bias ``per_head * per_key`` (causal ALiBi) rides as one extra channel of q and
  k, so sdpa keeps its fused causal kernel; float32/float64 only (the channel costs round-off).
* ``bucketed`` -- a learned bucketed bias (T5) built a block of query rows at a time, with its own backward
  (``learned_bias_attention.py``); sdpa on the CPU, where it exists for speed and memory.
* ``flex``     -- PyTorch's FlexAttention (Dong et al. 2024, "Flex Attention: A Programming Model for
  Generating Optimized Attention Kernels", arXiv:2412.05496): the bias as a ``score_mod``, the causal,
  padding and packed-sequence masks as one ``BlockMask``; a fused kernel on a GPU, with the bias's gradient
  reaching its table.

Every path takes the same arguments and returns ``(B, T, H, d)``, as transformers' attention functions do,
so the model never knows which ran. ``choose_attention_path`` reads the device, dtype and encoding once per
forward; ``config.attention_path`` (or ``attn_implementation="flex_attention"``) forces one.

A query that sees no key at all (the pads of a left-padded causal row) outputs zero on every path, as sdpa
does with a boolean mask and FlexAttention does: eager's softmax over an all-minimum row would instead
average every value, the future ones included, and the paths would disagree wherever that row is in the loss
(the last pad predicts the first real token under ``DataCollatorForLanguageModeling``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask

from .learned_bias_attention import bucketed_bias_attention

LOW_PRECISION = (torch.bfloat16, torch.float16)
FULL_PRECISION = (torch.float32, torch.float64)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, kv_heads, S, d) -> (B, kv_heads * n_rep, S, d): each key/value head serves ``n_rep`` query heads."""
    batch, kv_heads, length, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None].expand(batch, kv_heads, n_rep, length, head_dim)
    return hidden_states.reshape(batch, kv_heads * n_rep, length, head_dim)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The readable reference: ``softmax(q k^T * scaling + mask + bias) v``.

    ``attention_mask`` is additive, ``(B, 1 or H, T, S)``; the dense path folds the causal/padding mask
    and any positional bias (ALiBi, T5) into it, so every backend sees one tensor.
    """
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, H, T, S)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()  # (B, T, H, d)
    return output, weights


def add_bias_to_mask(mask: torch.Tensor | None, bias: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Fold a positional bias ``(B or 1, H, T, S)`` into a boolean or additive mask ``(B, 1, T, S)``.

    The bias is freshly built each forward, so it is filled in place when it already has the full
    shape: one ``H x T x S`` tensor instead of two (the dominant memory cost at long sequences).
    """
    bias = bias.to(dtype)
    if mask is None:
        return bias
    full_shape = bias.shape == torch.broadcast_shapes(bias.shape, mask.shape)
    if mask.dtype == torch.bool:  # sdpa masks: True = attend; finfo.min keeps fully masked rows NaN-free
        blocked, lowest = ~mask, torch.finfo(dtype).min
        return bias.masked_fill_(blocked, lowest) if full_shape else bias.masked_fill(blocked, lowest)
    # additive (eager) masks hold 0 or finfo.min; min + a finite bias rounds back to min
    return bias.add_(mask) if full_shape else bias + mask


def append_bias_channel(query, key, value, per_head, per_key, scaling: float):
    """Fold a factored bias ``per_head * per_key`` into one extra channel of q and k (and a zero one of v,
    as sdpa's fused kernels want equal widths): no ``H x T x S`` tensor, and sdpa stays causal."""
    batch, heads, length, _ = query.shape
    query = torch.cat((query, (per_head / scaling).to(query.dtype).expand(batch, heads, length, 1)), dim=-1)
    key = torch.cat((key, per_key.to(key.dtype).expand(batch, key.shape[1], -1, 1)), dim=-1)
    return query, key, nn.functional.pad(value, (0, 1))


def rows_that_see_no_key(mask: torch.Tensor | None) -> torch.Tensor | None:
    """``(B, T, 1, 1)``, True where a query's every key is masked, from a boolean (True = attend) or additive
    ``(B, 1, T, S)`` mask; None when there is no mask or (outside tracing) no such row."""
    if mask is None or not isinstance(mask, torch.Tensor):
        return None
    blocked = ~mask.any(-1) if mask.dtype == torch.bool else mask.amax(-1) <= torch.finfo(mask.dtype).min
    if not torch.compiler.is_compiling() and not blocked.any():
        return None
    return blocked.any(1)[:, :, None, None]  # a row is empty for every head alike


def _mask(config, implementation: str, allow_skip: bool, **arguments):
    """transformers' own mask (causal or bidirectional, padding, packed sequences found from position ids,
    cache offsets) in the form ``implementation`` takes: boolean, additive, or a flex ``BlockMask``.
    ``allow_skip``: None may stand for a plain causal (sdpa's ``is_causal``) or full mask."""
    if implementation != config._attn_implementation:
        config = _Implementation(config, implementation)
    if config.is_causal:
        return create_causal_mask(config=config, allow_is_causal_skip=allow_skip, **arguments)
    # called directly, not through create_causal_mask's dispatch, which drops position_ids (packed sequences)
    return create_bidirectional_mask(config=config, allow_is_bidirectional_skip=allow_skip, **arguments)


class _Implementation:
    """The config, read through, answering another ``_attn_implementation`` (the mask form a path needs
    when the model's own backend is another, e.g. flex chosen for an ``sdpa`` model)."""

    def __init__(self, config, implementation: str):
        self._config, self._attn_implementation = config, implementation

    def __getattr__(self, name):
        return getattr(self._config, name)


@dataclass
class AttentionInputs:
    """What every layer's attention needs beyond q, k, v: built once per forward by a path's ``prepare``.

    ``mask``: boolean/additive ``(B, 1 or H, T, S)`` (the bias folded in on the dense path), a ``BlockMask``,
    or None; ``empty_rows``: ``(B, T, 1, 1)``, queries that see no key (zeroed on the dense path);
    ``bias``: the path's own description of the bias (factors, a ``BucketedBias``, a ``score_mod``) or None.
    """

    path: AttentionPath
    mask: object = None
    empty_rows: torch.Tensor | None = None
    bias: object = None

    def attend(self, module, query, key, value, interface: Callable, scaling: float, dropout: float, **kwargs):
        return self.path.attend(module, query, key, value, self, interface, scaling, dropout, **kwargs)


class AttentionPath:
    """One way to compute attention with hook 3's bias. ``prepare`` runs once per forward, ``attend`` per layer.

    ``prepare(encoding, config, positions, mask_arguments, dtype)``: ``positions`` is ``(query (B or 1, T),
    key (B or 1, S))``, ``mask_arguments`` what ``create_causal_mask`` takes besides the config.
    ``attend(module, query (B, H, T, d), key/value (B, kv_heads, S, d), inputs, interface, scaling, dropout)``
    returns ``((B, T, H, d), weights or None)``; ``interface`` is the backend transformers' attention interface
    gives for ``attn_implementation`` (eager, sdpa, ...), which the paths that need a backend call.
    """

    form: str | None = None  # the form of the bias it needs from the encoding (``bias_forms``); None: any

    def prepare(self, encoding, config, positions, mask_arguments: dict, dtype: torch.dtype) -> AttentionInputs:
        raise NotImplementedError

    def attend(self, module, query, key, value, inputs: AttentionInputs, interface: Callable, scaling: float,
               dropout: float, **kwargs):
        raise NotImplementedError


class DensePath(AttentionPath):
    """The bias built whole, ``(B or 1, H, T, S)``, folded into the mask; any transformers backend."""

    def prepare(self, encoding, config, positions, mask_arguments, dtype):
        bias = encoding.attention_bias(*positions)
        # an unmaterialised causal mask (sdpa's is_causal) is only possible without a bias
        mask = _mask(config, config._attn_implementation, bias is None, **mask_arguments)
        empty_rows = rows_that_see_no_key(mask)
        if bias is not None:
            mask = add_bias_to_mask(mask, bias, dtype)
        return AttentionInputs(self, mask, empty_rows)

    def attend(self, module, query, key, value, inputs, interface, scaling, dropout, **kwargs):
        output, weights = interface(module, query, key, value, inputs.mask, dropout=dropout, scaling=scaling, **kwargs)
        if inputs.empty_rows is not None:
            output = output.masked_fill(inputs.empty_rows, 0)
        return output, weights


class FactoredPath(AttentionPath):
    """A rank-one bias ``q_h . k_j + m_h * p_j`` as one extra channel of q and k (causal ALiBi): no
    ``H x T x S`` tensor, and sdpa keeps its causal kernel (the mask stays a boolean or ``is_causal``)."""

    form = "factored"

    def prepare(self, encoding, config, positions, mask_arguments, dtype):
        mask = _mask(config, config._attn_implementation, True, **mask_arguments)
        return AttentionInputs(self, mask, bias=encoding.attention_bias_factors(*positions))

    def attend(self, module, query, key, value, inputs, interface, scaling, dropout, **kwargs):
        head_dim = query.shape[-1]
        query, key, value = append_bias_channel(query, key, value, *inputs.bias, scaling)
        output, weights = interface(module, query, key, value, inputs.mask, dropout=dropout, scaling=scaling, **kwargs)
        return output[..., :head_dim], weights  # drop the value's zero channel


class BucketedPath(AttentionPath):
    """A learned bucketed bias (T5) built a block of query rows at a time, with its own backward: sdpa
    would leave its fused kernels for a mask that needs a gradient, and hold ``H x T x S`` per layer."""

    form = "bucketed"

    def prepare(self, encoding, config, positions, mask_arguments, dtype):
        mask = _mask(config, config._attn_implementation, False, **mask_arguments)
        return AttentionInputs(self, mask, bias=encoding.attention_bias_buckets(*positions))

    def attend(self, module, query, key, value, inputs, interface, scaling, dropout, **kwargs):
        output = bucketed_bias_attention(query, key, value, inputs.bias, inputs.mask, scaling, module.is_causal)
        return output, None


@dataclass
class FlexSettings:
    """How the flex path calls ``flex_attention``; change the module's ``FLEX`` to tune it.

    ``compile``: compile ``flex_attention`` (its fused kernel); None = on accelerators, not on the CPU,
    where tests run its (forward-only) reference. ``compile_options``: ``torch.compile`` keyword arguments.
    ``kernel_options``: the kernel's (``BLOCK_M``, ``num_stages``, ...); ``kernel_options=`` given to the
    model's forward overrides it per call. Example: on an H200 torch 2.11's default configuration asked for
    278 KB of shared memory (232 KB exist) in backward; ``{"num_stages": 1}`` fit.
    """

    compile: bool | None = None
    compile_options: dict = field(default_factory=dict)
    kernel_options: dict | None = None


FLEX = FlexSettings()


@functools.cache
def _compiled_flex(options: tuple):
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, **dict(options))


def _flex_function(device: torch.device):
    from torch.nn.attention.flex_attention import flex_attention

    compile_it = FLEX.compile if FLEX.compile is not None else device.type != "cpu"
    if not compile_it or torch.compiler.is_compiling():  # inside a compiled model, dynamo compiles it in place
        return flex_attention
    return _compiled_flex(tuple(sorted(FLEX.compile_options.items())))


class FlexPath(AttentionPath):
    """FlexAttention: the bias as the encoding's ``score_mod`` (none for encodings without one), causal,
    padding and packed-sequence masks as transformers' ``BlockMask``; a fully masked row outputs zero."""

    def prepare(self, encoding, config, positions, mask_arguments, dtype):
        mask = _mask(config, "flex_attention", False, **mask_arguments)
        score_mod = None
        if "score_mod" in encoding.bias_forms:
            batch = mask_arguments["inputs_embeds"].shape[0]
            score_mod = encoding.attention_score_mod(*(p.expand(batch, -1) for p in positions))  # indexed by batch
        return AttentionInputs(self, mask, bias=score_mod)

    def attend(self, module, query, key, value, inputs, interface, scaling, dropout, kernel_options=None, **kwargs):
        if dropout > 0:
            raise ValueError("The flex attention path has no attention dropout: set attention_dropout=0.0, or evaluate "
                             "(model.eval()), or choose another path (config.attention_path).")
        output = _flex_function(query.device)(
            query, key, value, score_mod=inputs.bias, block_mask=inputs.mask, scale=scaling,
            enable_gqa=key.shape[1] != query.shape[1],
            kernel_options=kernel_options if kernel_options is not None else FLEX.kernel_options,
        )
        return output.transpose(1, 2).contiguous(), None  # (B, T, H, d)


ATTENTION_PATHS: dict[str, AttentionPath] = {
    "dense": DensePath(),
    "factored": FactoredPath(),
    "bucketed": BucketedPath(),
    "flex": FlexPath(),
}


def choose_attention_path(
    bias_forms: frozenset[str],
    implementation: str,
    device: torch.device | str,
    dtype: torch.dtype,
    query_length: int,
    dropout_active: bool = False,
    compiling: bool = False,
    forced: str | None = None,
) -> str:
    """The path for one forward: ``forced`` if given, else the fastest that computes what ``implementation`` would.

    ``bias_forms`` is the encoding's (``PositionEncoding.bias_forms``): empty without a bias. Rules, measured:

    * ``flex_attention`` asked for: flex.
    * no bias, or one decoded token (its one bias row costs less than any detour): dense.
    * sdpa on CUDA in bfloat16/float16 with a ``score_mod`` and no attention dropout: flex (an H200 at
      T = 8192: ALiBi's dense bias in sdpa 25 ms and 8 GiB, flex 9.6 ms and 68 MiB).
    * sdpa in float32/float64 with a factored bias (causal ALiBi): factored.
    * sdpa on the CPU in float32/float64, eager mode, no attention dropout, with a bucketed bias (T5): bucketed.
    * otherwise dense.
    """
    if forced is not None:
        return forced
    if implementation == "flex_attention":
        return "flex"
    if not bias_forms or query_length == 1 or implementation != "sdpa":
        return "dense"
    device_type = torch.device(device).type
    if device_type == "cuda" and dtype in LOW_PRECISION and "score_mod" in bias_forms and not dropout_active:
        return "flex"
    if dtype in FULL_PRECISION and "factored" in bias_forms:
        return "factored"
    if (device_type == "cpu" and dtype in FULL_PRECISION and "bucketed" in bias_forms and not compiling
            and not dropout_active):
        return "bucketed"
    return "dense"


def check_forced_path(name: str, bias_forms: frozenset[str], encoding: str) -> None:
    """A forced path must exist and fit the encoding's bias; a ValueError names the ones that do."""
    fitting = [p for p, path in ATTENTION_PATHS.items() if path.form is None or path.form in bias_forms]
    if name not in ATTENTION_PATHS or name not in fitting:
        raise ValueError(f"attention_path={name!r} cannot run position_encoding={encoding!r}; "
                         f"choose one of {fitting} (or None to choose automatically).")
