"""Attention with a learned, bucketed relative bias (T5's) that never materialises its ``H x T x S`` tensor.

``scaled_dot_product_attention`` leaves its fused kernels for the math path as soon as the mask
needs a gradient, because those kernels return none for it; the math path then saves the
``H x T x S`` probabilities of every layer, and the bias itself and its gradient are ``H x T x S``
tensors too. Measured on 2 CPU cores: a T5 model's training step at 2048 tokens took 5.5x RoPE's
time, and 6.9x its memory at 4096.

Here the bias is a ``table (num_buckets, H)`` looked up by ``bucket(key - query)``, and attention runs a
block of queries at a time (Dao et al. 2022, FlashAttention, arXiv:2205.14135, for the recomputation):

* forward, per block: the block's bias rows are built from the table, PyTorch's fused flash kernel
  attends over the keys the block can see (under a causal mask, none after its last query), and
  only the output and the log-sum-exp are kept;
* backward, per block: ``P = exp(q k^T * scale + bias - lse)`` is recomputed, then
  ``dV += P^T dO``, ``dS = P * (dO V^T - rowsum(dO * O))``, ``dQ = dS K * scale``,
  ``dK += dS^T Q * scale``, and ``dS`` is summed into the table's gradient by bucket.

Peak memory beyond RoPE is one block of scores, not one ``H x T x S`` tensor per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

    def buckets(self, rows: slice, keys: int) -> torch.Tensor:
        relative = self.key_positions[:, None, :keys] - self.query_positions[:, rows, None]
        return self.bucket(relative)  # (B or 1, t, keys)

    def rows(self, table: torch.Tensor, rows: slice, keys: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The bias of query rows ``rows`` against the first ``keys`` keys: ``(B or 1, H, t, keys)``, and the buckets."""
        buckets = self.buckets(rows, keys)
        return table.to(dtype).t()[:, buckets].transpose(0, 1), buckets  # (H, B, t, keys) gathered: contiguous for B = 1


def _block_bias(bias: BucketedBias, table, mask, rows, keys, dtype):
    values, buckets = bias.rows(table, rows, keys, dtype)
    if mask is not None and mask.dtype == torch.bool:  # sdpa's boolean mask (B, 1, T, S): True = attend
        values = values.masked_fill(~mask[:, :, rows, :keys], torch.finfo(dtype).min)
    elif mask is not None:  # an additive mask
        values = values + mask[:, :, rows, :keys].to(dtype)
    return values.contiguous(), buckets


class _BucketedBiasAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, table, bias: BucketedBias, mask, scale: float, causal: bool):
        length, key_length = query.shape[-2], key.shape[-2]
        offset = key_length - length  # queries are the last ``length`` positions of the keys
        output = query.new_empty(query.shape)
        logsumexp = query.new_empty(query.shape[:-1], dtype=torch.float32 if query.dtype != torch.float64 else query.dtype)
        for start in range(0, length, QUERY_BLOCK):
            rows = slice(start, min(start + QUERY_BLOCK, length))
            keys = rows.stop + offset if causal else key_length
            block_bias, _ = _block_bias(bias, table, mask, rows, keys, query.dtype)
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                query[:, :, rows], key[:, :, :keys], value[:, :, :keys], 0.0, False, attn_mask=block_bias, scale=scale
            )
            output[:, :, rows] = out
            logsumexp[:, :, rows] = lse
        ctx.save_for_backward(query, key, value, table, mask, output, logsumexp)
        ctx.bias, ctx.scale, ctx.causal = bias, scale, causal
        return output

    @staticmethod
    def backward(ctx, grad_output):
        query, key, value, table, mask, output, logsumexp = ctx.saved_tensors
        bias, scale = ctx.bias, ctx.scale
        work = torch.float64 if query.dtype == torch.float64 else torch.float32
        length, key_length = query.shape[-2], key.shape[-2]
        offset = key_length - length
        grad_query = torch.empty_like(query)
        grad_key = torch.zeros_like(key, dtype=work)
        grad_value = torch.zeros_like(value, dtype=work)
        grad_table = torch.zeros(table.shape[::-1], dtype=work, device=table.device)  # (H, num_buckets)
        delta = (grad_output.to(work) * output.to(work)).sum(-1, keepdim=True)  # rowsum(dO * O): (B, H, T, 1)
        q, k, v, g = (t.to(work) for t in (query, key, value, grad_output))
        for start in range(0, length, QUERY_BLOCK):
            rows = slice(start, min(start + QUERY_BLOCK, length))
            keys = rows.stop + offset if ctx.causal else key_length
            block_bias, buckets = _block_bias(bias, table.detach(), mask, rows, keys, work)
            probs = torch.matmul(q[:, :, rows], k[:, :, :keys].transpose(-1, -2)).mul_(scale).add_(block_bias)
            probs = probs.sub_(logsumexp[:, :, rows, None].to(work)).exp_()  # (B, H, t, keys)
            grad_value[:, :, :keys] += torch.matmul(probs.transpose(-1, -2), g[:, :, rows])
            grad_scores = torch.matmul(g[:, :, rows], v[:, :, :keys].transpose(-1, -2))
            grad_scores = probs.mul_(grad_scores.sub_(delta[:, :, rows]))  # dS, reusing the buffer of P
            grad_query[:, :, rows] = torch.matmul(grad_scores, k[:, :, :keys]).mul_(scale).to(query.dtype)
            grad_key[:, :, :keys] += torch.matmul(grad_scores.transpose(-1, -2), q[:, :, rows]).mul_(scale)
            if ctx.needs_input_grad[3]:
                if buckets.shape[0] == 1:  # positions shared by the batch: sum it first
                    grad_scores = grad_scores.sum(0, keepdim=True)
                per_head = grad_scores.transpose(0, 1).reshape(grad_scores.shape[1], -1)  # (H, B*t*keys)
                grad_table.index_add_(1, buckets.expand(grad_scores.shape[0], -1, -1).reshape(-1), per_head)
        grad_table = grad_table.t().to(table.dtype) if ctx.needs_input_grad[3] else None
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


def can_use(inputs_embeds: torch.Tensor, attn_implementation: str, attention_dropout: float, training: bool) -> bool:
    """sdpa on the CPU (where the flash kernel is called directly), for a training step or a prefill."""
    return (
        attn_implementation == "sdpa"
        and inputs_embeds.device.type == "cpu"
        and inputs_embeds.dtype in (torch.float32, torch.float64)
        and (attention_dropout == 0.0 or not training)
    )
