"""Positional encodings, each a small module behind one of three hooks.

Every scheme in the literature enters a transformer at exactly one of three points
(the x-transformers observation):

1. ``add_to_embeddings``  -- a vector per position added to the token embeddings
   (integer, binary, sinusoidal, learned);
2. ``rotary_embeddings`` / ``rotate_queries_keys`` -- queries and keys rotated by the position
   (RoPE);
3. ``attention_bias`` -- a per-head bias added to the attention scores (ALiBi, T5).

The base class implements all three as no-ops, a subclass overrides the one it needs, and the model
calls all three without ever asking which encoding it holds. Position information is computed
once per forward at model level (embeddings, cos/sin, the bias) and handed to every layer; during
cached decoding the model passes the true positions of the new tokens and of every cached key.

Adding an encoding is one subclass and one ``POSITION_ENCODINGS`` entry.

Shapes: ``B`` batch, ``T`` query length, ``S`` key length (cache + new), ``H`` heads, ``D`` hidden
size, ``d`` head dim. Position ids are integer tensors of shape ``(B or 1, T)`` / ``(B or 1, S)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update

from .learned_bias_attention import BucketedBias


class PositionEncoding(nn.Module):
    """Base class: three hooks, each a no-op.

    Class attributes a subclass may set:

    - ``bounded``: True when the encoding only knows ``max_position_embeddings`` positions.
    """

    bounded: bool = False

    def __init__(self, config):
        super().__init__()
        self.max_position_embeddings = config.max_position_embeddings

    @property
    def uses_key_positions(self) -> bool:
        """True when the encoding has an ``attention_bias``, which reads every key's position."""
        return type(self).attention_bias is not PositionEncoding.attention_bias

    def add_to_embeddings(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Hook 1: ``(B, T, D)`` embeddings -> ``(B, T, D)`` embeddings with positions added."""
        return inputs_embeds

    def rotary_embeddings(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Hook 2a, once per forward: ``(cos, sin)`` of shape ``(B, T, rotary_dim)``, or None."""
        return None

    def attention_bias(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> torch.Tensor | None:
        """Hook 3, once per forward: a bias ``(B or 1, H, T, S)`` added to the scaled scores, or None."""
        return None

    def attention_bias_factors(
        self, query_positions: torch.Tensor, key_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Hook 3 in factored form, or None: ``(per_head (1, H, 1, 1), per_key (B or 1, 1, S, 1))`` whose
        product equals ``attention_bias`` up to a constant per query row, which softmax ignores.

        A bias of that form never needs its ``H x T x S`` tensor: the model appends one channel to
        queries and keys instead, and sdpa keeps its causal kernel. None means "use ``attention_bias``".
        """
        return None

    def attention_bias_buckets(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> BucketedBias | None:
        """Hook 3 as a lookup, or None: ``attention_bias`` described as ``table[bucket(key - query)]``, so
        attention can build it a block of rows at a time (``learned_bias_attention.py``) and never hold
        its ``H x T x S`` tensor or that tensor's gradient. None means "use ``attention_bias``"."""
        return None

    def attention_score_mod(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> Callable | None:
        """Hook 3 as FlexAttention's ``score_mod(score, b, h, q_idx, kv_idx) -> score + bias``, or None.
        Positions are ``(B, T)`` and ``(B, S)``; the captured tensors it reads may need gradients (flex
        returns them). None means the flex path runs this encoding with its block mask only."""
        return None

    @property
    def bias_forms(self) -> frozenset[str]:
        """The forms this encoding's bias comes in, which decide the attention paths open to it
        (``attention_paths.py``): empty without a bias, else "dense" and any of "factored", "bucketed",
        "score_mod" (the hooks above that return something)."""
        return frozenset()

    def init_buffers(self) -> None:
        """Recompute non-persistent buffers (models are built on the meta device in ``from_pretrained``)."""


def positions_of_keys(attention_mask, position_ids, past_seen, query_length: int, key_length: int, device) -> torch.Tensor:
    """The position of every key the cache returns, ``(B or 1, key_length)``; slots the mask blocks get any value.

    With a 2D padding mask, real tokens are counted (as generate() does), so a left-padded row sees the
    positions it would see unpadded. Otherwise, without a cache, the given ``position_ids`` are the keys'
    (packed sequences keep theirs); with one, keys continue the last query's position slot by slot,
    which is exact for the contiguous (left-padded) rows generate() makes and needs no host sync, so a
    compiled static-cache step reads its position from the tensors alone.
    """
    if attention_mask is not None and attention_mask.dim() == 2:
        positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # (B, past + T)
        return nn.functional.pad(positions, (0, key_length - positions.shape[-1]))  # static cache: empty slots
    slots = torch.arange(key_length, device=device).unsqueeze(0)  # (1, S)
    if position_ids is None:
        return slots
    if query_length == key_length:
        return position_ids
    return slots + (position_ids[:, -1:] - (past_seen + query_length - 1))  # the last query's offset, (B, 1)


# --------------------------------------------------------------------------------------------------
# Hook 1: added to the embeddings
# --------------------------------------------------------------------------------------------------


class NoPositionEncoding(PositionEncoding):
    """No position information at all ("NoPE").

    With bidirectional attention the model is then permutation-equivariant: shuffling the tokens
    shuffles the outputs, so "The dog chased another dog" cannot tell its two dogs apart. With a
    causal mask order still leaks, because token ``t`` sees exactly ``t + 1`` tokens (Haviv et al.
    2022, "Transformer Language Models without Positional Encodings Still Learn Positional
    Information", arXiv:2203.16634; Kazemnejad et al. 2023, arXiv:2305.19466). Runs at any length.
    """


class IntegerPositionEncoding(PositionEncoding):
    """The naive scheme: the position index ``p`` itself added to every dimension, ``x + p``.

    Hook 1, no parameters. Unique per position, but the values grow without bound and soon drown
    the token embeddings (|x| ~ 1, p ~ 1000): the reason real models do something else. Shown for
    study, as in the lecture notes this package grew from. Runs at any length (badly).
    """

    def add_to_embeddings(self, inputs_embeds, position_ids):
        return inputs_embeds + position_ids.to(inputs_embeds.dtype).unsqueeze(-1)  # (B, T, 1) broadcast over D


class BinaryPositionEncoding(PositionEncoding):
    """The bits of the position as a vector: dimension ``i`` holds bit ``i`` of ``p`` (0 or 1).

    Hook 1, no parameters. Bounded values and unique codes for ``p < 2**D``; neighbouring positions
    can differ in many bits at once (7 -> 8 flips four), the discontinuity the sinusoids smooth out:
    the low bits are square waves of period 2, 4, 8, ... just as the sinusoids' are sine waves.
    Runs at any length; positions beyond ``2**D`` (or 2**62) wrap.
    """

    def add_to_embeddings(self, inputs_embeds, position_ids):
        dim = inputs_embeds.shape[-1]
        n_bits = min(dim, 62)
        powers = 2 ** torch.arange(n_bits, device=position_ids.device)  # 1, 2, 4, ...: exact in int64
        # floor division, not `>>`: ONNX has no arithmetic shift for int64 (same bits, two's complement)
        bits = torch.div(position_ids.unsqueeze(-1), powers, rounding_mode="floor").remainder(2)  # (B, T, n_bits), LSB first
        if n_bits < dim:
            bits = nn.functional.pad(bits, (0, dim - n_bits))
        return inputs_embeds + bits.to(inputs_embeds.dtype)


class SinusoidalPositionEncoding(PositionEncoding):
    """Sinusoids of geometric wavelengths (Vaswani et al. 2017, arXiv:1706.03762, section 3.5).

    ``PE(p, 2i) = sin(p / 10000^(2i/D))``, ``PE(p, 2i+1) = cos(p / 10000^(2i/D))``; hook 1, no
    parameters, computed on the fly for any position. ``PE(p + k)`` is a linear function of
    ``PE(p)`` for each offset ``k``, but the model must learn to use that; Press et al. 2022 find
    perplexity degrades sharply past the training length.
    """

    base = 10000.0

    def __init__(self, config):
        super().__init__(config)
        self.hidden_size = config.hidden_size
        self.inv_freq = nn.Buffer(self._inv_freq(), persistent=False)

    def _inv_freq(self) -> torch.Tensor:
        dim = self.hidden_size
        return 1.0 / (self.base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))  # (ceil(D/2),)

    def init_buffers(self):
        init.copy_(self.inv_freq, self._inv_freq())

    def add_to_embeddings(self, inputs_embeds, position_ids):
        dim = inputs_embeds.shape[-1]
        angles = position_ids.unsqueeze(-1).float() * self.inv_freq.float()  # (B, T, ceil(D/2))
        pe = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)[..., :dim]  # sin, cos interleaved
        return inputs_embeds + pe.to(inputs_embeds.dtype)


class LearnedPositionEncoding(PositionEncoding):
    """A trained table of ``max_position_embeddings`` vectors (GPT-2, BERT; Gehring et al. 2017,
    arXiv:1705.03122). Hook 1, learnable, initialised like the token embeddings.

    It knows nothing past its last row: a longer sequence raises a ValueError before any work.
    """

    bounded = True

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def add_to_embeddings(self, inputs_embeds, position_ids):
        return inputs_embeds + self.embeddings(position_ids)


# --------------------------------------------------------------------------------------------------
# Hook 2: rotate queries and keys
# --------------------------------------------------------------------------------------------------


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Half-split pairs (GPT-NeoX, Llama): dimension ``j`` pairs with ``j + d/2``."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    """Interleaved pairs (GPT-J, the RoFormer paper): dimension ``2j`` pairs with ``2j + 1``."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


ROPE_LAYOUTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "half": rotate_half,
    "interleaved": rotate_every_two,
}


def apply_rotary(
    query: torch.Tensor, key: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotate: Callable = rotate_half
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first ``rotary_dim`` channels of ``(B, h, T, d)`` queries and keys; the rest pass through."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, rotary_dim), broadcast over heads
    rotary_dim = cos.shape[-1]

    def rotate_one(x):
        if rotary_dim == x.shape[-1]:
            return x * cos + rotate(x) * sin
        x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
        return torch.cat((x_rot * cos + rotate(x_rot) * sin, x_pass), dim=-1)

    return rotate_one(query), rotate_one(key)


class RotaryPositionEncoding(PositionEncoding):
    """Rotary position embedding, RoPE (Su et al. 2021, RoFormer, arXiv:2104.09864).

    Hook 2: channel pair ``j`` of every query and key at position ``p`` is rotated by the angle
    ``p * theta_j`` with ``theta_j = base^(-2j/d_rot)``, so ``q_m . k_n`` depends on ``m - n`` only.
    No parameters. Frequencies come from transformers' own ``ROPE_INIT_FUNCTIONS`` for the scaled
    variants (``linear``, ``dynamic``, ``yarn``, ``llama3``, ...), so they match Llama exactly.

    Conventions that trip people: pairs are half-split (``rope_layout="half"``, Llama/NeoX) or
    interleaved (``"interleaved"``, GPT-J/RoFormer): the same maths with permuted channels, not
    interchangeable checkpoints. ``partial_rotary_factor < 1`` rotates only the first
    ``d * factor`` channels (GPT-NeoX, Phi). Runs at any length; past the training length
    perplexity degrades moderately (Press et al. 2022), which the scalings aim to fix.
    """

    def __init__(self, config):
        super().__init__(config)
        self.config = config
        self.rope_type = config.rope_parameters["rope_type"]
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.layout = config.rope_layout
        inv_freq, self.attention_scaling = self._rope_init_fn(config)
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config, device=None, seq_len=None, **kwargs) -> tuple[torch.Tensor, float]:
        """Unscaled RoPE frequencies ``base^(-2j/d_rot)``, honouring ``partial_rotary_factor``."""
        base = config.rope_parameters["rope_theta"]
        dim = int(config.head_dim * config.rope_parameters.get("partial_rotary_factor", 1.0))
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim))
        return inv_freq, 1.0

    @property
    def _rope_init_fn(self) -> Callable:
        return ROPE_INIT_FUNCTIONS.get(self.rope_type, self.compute_default_rope_parameters)

    def init_buffers(self):
        inv_freq, self.attention_scaling = self._rope_init_fn(self.config)
        init.copy_(self.inv_freq, inv_freq)
        init.copy_(self.original_inv_freq, inv_freq)

    @torch.no_grad()
    @dynamic_rope_update  # recomputes inv_freq for the "dynamic" and "longrope" types, as in Llama
    def _cos_sin(self, x, position_ids):
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)  # (B, T, d_rot/2)
        emb = torch.cat((freqs, freqs), dim=-1) if self.layout == "half" else freqs.repeat_interleave(2, dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)

    def rotary_embeddings(self, x, position_ids):
        return self._cos_sin(x, position_ids)


# --------------------------------------------------------------------------------------------------
# Hook 3: a bias on the attention scores
# --------------------------------------------------------------------------------------------------


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's head slopes, the geometric sequence ``2^(-8/n), 2^(-16/n), ...`` (Press et al. 2022).

    For a head count that is not a power of two, the paper takes the slopes of the closest smaller
    power of two ``m`` and fills the rest with every other slope of ``2m``.
    """
    closest = 2 ** math.floor(math.log2(num_heads))

    def geometric(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    slopes = geometric(closest)
    if closest < num_heads:
        slopes += geometric(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


class ALiBiPositionEncoding(PositionEncoding):
    """Attention with Linear Biases (Press et al. 2022, "Train Short, Test Long", arXiv:2108.12409).

    Hook 3: head ``h`` adds ``-m_h * distance`` to the scaled scores, with fixed geometric slopes
    ``m_h`` (no parameters). Causal form: ``m_h * (k - q)`` for keys at or before the query (the
    paper's; BLOOM's). Bidirectional form: the symmetric ``-m_h * |k - q|``. Length extrapolation is
    ALiBi's point: perplexity holds far past the training length.
    """

    def __init__(self, config):
        super().__init__(config)
        self.num_heads = config.num_attention_heads
        self.is_causal = config.is_causal
        self.slopes = nn.Buffer(alibi_slopes(self.num_heads), persistent=False)

    def init_buffers(self):
        init.copy_(self.slopes, alibi_slopes(self.num_heads))

    def attention_bias(self, query_positions, key_positions):
        distance = (key_positions[:, None, :] - query_positions[:, :, None]).float()  # (B, T, S), k - q
        if not self.is_causal:
            distance = -distance.abs()
        return self.slopes.float()[None, :, None, None] * distance[:, None]  # (B, H, T, S)

    def attention_bias_factors(self, query_positions, key_positions):
        """Causal ALiBi is rank one up to a row constant: ``m_h (k - q) = m_h k - m_h q``, and softmax
        drops ``- m_h q``. Bidirectional ALiBi (``-m_h |k - q|``) is not, so it returns None.

        The price is float32 round-off on scores of size ``m_h * S / 2`` instead of ``m_h * |k - q|``
        (about 1e-4 in the outputs at S = 2048), so the model uses this form in float32/float64 only.
        Keys are centred on ``S // 2`` to halve that size.
        """
        if not self.is_causal:
            return None
        centred = (key_positions - key_positions.shape[-1] // 2).float()  # (B or 1, S)
        return self.slopes.float()[None, :, None, None], centred[:, None, :, None]

    def attention_score_mod(self, query_positions, key_positions):
        """``score + m_h (k - q)`` (causal) or ``score - m_h |k - q|``, elementwise: no bias tensor at all."""
        slopes, causal = self.slopes.float(), self.is_causal

        def alibi(score, b, h, q_idx, kv_idx):
            distance = (key_positions[b, kv_idx] - query_positions[b, q_idx]).float()
            return score + slopes[h] * (distance if causal else -distance.abs())

        return alibi

    @property
    def bias_forms(self):
        return frozenset({"dense", "score_mod", "factored"} if self.is_causal else {"dense", "score_mod"})


def t5_relative_position_bucket(
    relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """T5's bucket of ``relative_position = key - query`` (Raffel et al. 2020, arXiv:1910.10683).

    Half the buckets (per direction) hold exact small distances, the rest cover distances up to
    ``max_distance`` logarithmically; everything farther shares the last bucket, which is why T5's
    bias extends to any length. Bidirectional: the buckets are split between keys before and after
    the query; causal: only the past (``key <= query``) gets distinct buckets.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    scaled = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    large = torch.clamp(max_exact + scaled.to(torch.long), max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class T5RelativeBias(PositionEncoding):
    """T5's learned, bucketed relative position bias (Raffel et al. 2020, arXiv:1910.10683).

    Hook 3: a learned scalar per (bucket, head) added to the scores, computed once per forward and
    shared by all layers (T5 computes it in the first layer and reuses it). T5 itself does not
    scale ``q . k`` by ``1/sqrt(d)``; here the scores are scaled as in every other encoding and the
    bias is added unscaled. Distances beyond ``t5_max_distance`` share one bucket, so it runs at any
    length and extrapolates well (Press et al. 2022), at the cost of a gather per forward.
    """

    def __init__(self, config):
        super().__init__(config)
        self.bidirectional = not config.is_causal
        self.num_buckets = config.t5_num_buckets
        self.max_distance = config.t5_max_distance
        self.relative_attention_bias = nn.Embedding(config.t5_num_buckets, config.num_attention_heads)

    def attention_bias(self, query_positions, key_positions):
        buckets = self.attention_bias_buckets(query_positions, key_positions).buckets(slice(None), key_positions.shape[-1])
        return self.relative_attention_bias(buckets).permute(0, 3, 1, 2).contiguous()  # (B, H, T, S), rows contiguous for the kernels

    def attention_bias_buckets(self, query_positions, key_positions):
        bucket = partial(t5_relative_position_bucket, bidirectional=self.bidirectional, num_buckets=self.num_buckets,
                         max_distance=self.max_distance)
        return BucketedBias(self.relative_attention_bias.weight, bucket, query_positions, key_positions)

    def attention_score_mod(self, query_positions, key_positions):
        """``score + table[bucket(k - q), h]`` read from a per-distance row ``(2R + 1, H)`` gathered from the
        table (so flex's gradient for it flows on to the table). Distances are clamped to ``R =
        max(t5_max_distance, t5_num_buckets)``: every distance that far or farther is in the last bucket
        of its direction already, so the clamp changes no bias, and the row's size is fixed (no host sync)."""
        reach = max(self.max_distance, self.num_buckets)
        distances = torch.arange(-reach, reach + 1, device=key_positions.device)
        bucket = t5_relative_position_bucket(distances, self.bidirectional, self.num_buckets, self.max_distance)
        per_distance = self.relative_attention_bias(bucket)  # (2R + 1, H); flex adds in float32 at least
        per_distance = per_distance.to(torch.promote_types(per_distance.dtype, torch.float32))

        def t5(score, b, h, q_idx, kv_idx):
            distance = (key_positions[b, kv_idx] - query_positions[b, q_idx]).clamp(-reach, reach)
            return score + per_distance[distance + reach, h]

        return t5

    @property
    def bias_forms(self):
        return frozenset({"dense", "bucketed", "score_mod"})


POSITION_ENCODINGS: dict[str, type[PositionEncoding]] = {
    "none": NoPositionEncoding,
    "integer": IntegerPositionEncoding,
    "binary": BinaryPositionEncoding,
    "sinusoidal": SinusoidalPositionEncoding,
    "learned": LearnedPositionEncoding,
    "rope": RotaryPositionEncoding,
    "alibi": ALiBiPositionEncoding,
    "t5": T5RelativeBias,
}
