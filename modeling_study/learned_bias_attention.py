"""Attention with a learned, bucketed relative bias (T5's) that never materialises its ``H x T x S`` tensor.

``scaled_dot_product_attention`` leaves its fused kernels for the math path as soon as the mask
needs a gradient, because those kernels return none for it; the math path then saves the
``H x T x S`` probabilities of every layer, and the bias itself and its gradient are ``H x T x S``
tensors too. Measured on 2 CPU cores: a T5 model's training step at 2048 tokens took 5.5x RoPE's
time, and 6.9x its memory at 4096.

Here the bias is a ``table (num_buckets, H)`` looked up by ``bucket(key - query)``, and attention runs a
block of queries at a time (Dao et al. 2022, FlashAttention, arXiv:2205.14135, for the recomputation):

* once per forward: the bucket of every distance that occurs (T + S values, not T x S);
* forward, per block: the block's bias rows are gathered by distance, PyTorch's fused flash kernel
  attends over the keys the block can see (under a causal mask, none after its last query), and
  only the output and the log-sum-exp are kept;
* backward, per block: ``P = exp(q k^T * scale + bias - lse)`` is recomputed, then
  ``dV += P^T dO``, ``dS = P * (dO V^T - rowsum(dO * O))``, ``dQ = dS K * scale``,
  ``dK += dS^T Q * scale``, and ``dS`` is summed by distance (then by bucket) into the table's gradient.

Peak memory beyond RoPE is one block of scores, not one ``H x T x S`` tensor per layer.

A query row that sees no key at all (a left-padded causal row's pads) outputs zero, as sdpa does with a
boolean mask and FlexAttention does: forward zeroes it, and its log-sum-exp is stored as ``+inf`` so that
backward's recomputed probabilities are exactly zero there too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

QUERY_BLOCK = 128  # query rows per block


@dataclass
class BucketedBias:
    """A bias ``table[bucket(key_position - query_position), head]``, described, not built.

    ``table``: ``(num_buckets, H)`` (the encoding's learned weights); ``bucket``: maps relative
    positions ``(B or 1, t, s)`` to bucket ids; positions are ``(B or 1, T)`` and ``(B or 1, S)``.
    """

    table: torch.Tensor
    bucket: Callable[[torch.Tensor], torch.Tensor]
    query_positions: torch.Tensor
    key_positions: torch.Tensor
    _lookup: tuple[int, torch.Tensor] | None = field(default=None, init=False, repr=False)

    def distances(self) -> tuple[int, torch.Tensor]:
        """``(low, buckets)``: the bucket of every distance ``low, low + 1, ...`` that occurs (T + S values),
        computed once per forward and shared by all blocks and layers."""
        if self._lookup is None:
            low = int(self.key_positions.min() - self.query_positions.max())
            high = int(self.key_positions.max() - self.query_positions.min())
            distances = torch.arange(low, high + 1, device=self.key_positions.device)
            self._lookup = (low, self.bucket(distances))
        return self._lookup

    def distance_index(self, rows: slice, keys: int) -> torch.Tensor:
        """``(B or 1, t, keys)``: for query rows ``rows`` and the first ``keys`` keys, the index of their
        distance in ``distances()``."""
        low, _ = self.distances()
        return self.key_positions[:, None, :keys] - self.query_positions[:, rows, None] - low

    def buckets(self, rows: slice, keys: int) -> torch.Tensor:
        """Bucket ids ``(B or 1, t, keys)``. Traced (torch.compile, torch.export), the range of distances
        is data-dependent, so each (query, key) pair gets its bucket directly: t x keys values."""
        if torch.compiler.is_compiling():
            return self.bucket(self.key_positions[:, None, :keys] - self.query_positions[:, rows, None])
        return self.distances()[1][self.distance_index(rows, keys)]

    def per_distance(self, table: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(H, number of distances)``: the bias of each distance that occurs."""
        return table.to(dtype).t()[:, self.distances()[1]]


def _blocks(length: int, key_length: int, causal: bool):
    """``(rows, keys)`` per block: a slice of query rows and how many keys they see (queries are the last
    ``length`` of the ``key_length`` positions; under a causal mask no key after a block's last query)."""
    for start in range(0, length, QUERY_BLOCK):
        rows = slice(start, min(start + QUERY_BLOCK, length))
        yield rows, (rows.stop + key_length - length if causal else key_length)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays; anything else is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _block_bias(bias: BucketedBias, per_distance, mask, rows, keys, dtype):
    """The bias of a block of query rows, ``(B or 1, H, t, keys)``, masked; and its distance indices."""
    index = bias.distance_index(rows, keys)
    values = per_distance.index_select(1, index.reshape(-1)).view(per_distance.shape[0], *index.shape).transpose(0, 1)
    if mask is not None and mask.dtype == torch.bool:  # sdpa's boolean mask (B, 1, T, S): True = attend
        values = values.masked_fill(~mask[:, :, rows, :keys], torch.finfo(dtype).min)
    elif mask is not None:  # an additive mask
        values = values + mask[:, :, rows, :keys].to(dtype)
    return values.contiguous(), index


def _sees_no_key(mask, rows, keys) -> torch.Tensor | None:
    """``(B, 1, t)``: True for the query rows of a block whose every key is masked (a left-padded causal row's
    pads), or None without a mask. Their scores are all the mask's minimum, so a kernel would spread them
    uniformly over the keys it was given (a block's, not eager's), and ``lse`` would round to that minimum,
    making backward's recomputed ``exp(score - lse)`` 1 instead of ``1 / keys``."""
    if mask is None:
        return None
    block = mask[:, :, rows, :keys]
    if block.dtype == torch.bool:
        return ~block.any(-1)
    return block.amax(-1) <= torch.finfo(block.dtype).min


class _BucketedBiasAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, table, bias: BucketedBias, mask, scale: float, causal: bool):
        output = query.new_empty(query.shape)
        logsumexp = query.new_empty(query.shape[:-1], dtype=_work_dtype(query.dtype))
        per_distance = bias.per_distance(table, query.dtype)
        for rows, keys in _blocks(query.shape[-2], key.shape[-2], causal):
            block_bias, _ = _block_bias(bias, per_distance, mask, rows, keys, query.dtype)
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                query[:, :, rows], key[:, :, :keys], value[:, :, :keys], 0.0, False, attn_mask=block_bias, scale=scale
            )
            empty = _sees_no_key(mask, rows, keys)
            if empty is not None:  # as sdpa's boolean mask: zero output, and +inf so backward's P is exactly 0
                out, lse = out.masked_fill(empty[..., None], 0), lse.masked_fill(empty, float("inf"))
            output[:, :, rows] = out
            logsumexp[:, :, rows] = lse
        ctx.save_for_backward(query, key, value, table, mask, output, logsumexp)
        ctx.bias, ctx.scale, ctx.causal = bias, scale, causal
        return output

    @staticmethod
    def backward(ctx, grad_output):
        query, key, value, table, mask, output, logsumexp = ctx.saved_tensors
        bias, scale = ctx.bias, ctx.scale
        work = _work_dtype(query.dtype)
        grad_query = torch.empty_like(query)
        grad_key = torch.zeros_like(key, dtype=work)
        grad_value = torch.zeros_like(value, dtype=work)
        per_distance = bias.per_distance(table.detach(), work)
        grad_per_distance = torch.zeros_like(per_distance)  # (H, number of distances)
        delta = (grad_output.to(work) * output.to(work)).sum(-1, keepdim=True)  # rowsum(dO * O): (B, H, T, 1)
        q, k, v, g = (t.to(work) for t in (query, key, value, grad_output))
        for rows, keys in _blocks(query.shape[-2], key.shape[-2], ctx.causal):
            block_bias, index = _block_bias(bias, per_distance, mask, rows, keys, work)
            probs = torch.matmul(q[:, :, rows], k[:, :, :keys].transpose(-1, -2)).mul_(scale).add_(block_bias)
            probs = probs.sub_(logsumexp[:, :, rows, None].to(work)).exp_()  # (B, H, t, keys)
            grad_value[:, :, :keys] += torch.matmul(probs.transpose(-1, -2), g[:, :, rows])
            grad_scores = torch.matmul(g[:, :, rows], v[:, :, :keys].transpose(-1, -2))
            grad_scores = probs.mul_(grad_scores.sub_(delta[:, :, rows]))  # dS, reusing the buffer of P
            grad_query[:, :, rows] = torch.matmul(grad_scores, k[:, :, :keys]).mul_(scale).to(query.dtype)
            grad_key[:, :, :keys] += torch.matmul(grad_scores.transpose(-1, -2), q[:, :, rows]).mul_(scale)
            if ctx.needs_input_grad[3]:
                if index.shape[0] == 1:  # positions shared by the batch: sum it first
                    grad_scores = grad_scores.sum(0, keepdim=True)
                per_head = grad_scores.transpose(0, 1).reshape(grad_scores.shape[1], -1)  # (H, B*t*keys)
                grad_per_distance.index_add_(1, index.expand(grad_scores.shape[0], -1, -1).reshape(-1), per_head)
        grad_table = None
        if ctx.needs_input_grad[3]:  # distances -> their buckets
            grad_table = torch.zeros(table.shape[::-1], dtype=work, device=table.device)
            grad_table = grad_table.index_add_(1, bias.distances()[1], grad_per_distance).t().to(table.dtype)
        return grad_query, grad_key.to(key.dtype), grad_value.to(value.dtype), grad_table, None, None, None, None


def bucketed_bias_attention(query, key, value, bias: BucketedBias, mask, scale: float, causal: bool) -> torch.Tensor:
    """Softmax attention of ``(B, H, T, d)`` queries with ``bias`` added to the scaled scores and the
    boolean ``mask`` (``(B, 1, T, S)``, True = attend, or None); key/value heads are repeated for
    grouped-query attention. Returns ``(B, T, H, d)``, as transformers' attention functions do."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    output = _BucketedBiasAttention.apply(
        query.contiguous(), key.contiguous(), value.contiguous(), bias.table, bias, mask, scale, causal
    )
    return output.transpose(1, 2).contiguous()
