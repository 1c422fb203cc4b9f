"""Attention with a *learned* additive bias (T5's relative bias) through PyTorch's fused CPU kernel.

``scaled_dot_product_attention`` leaves its fused kernels for the math path as soon as the mask
needs a gradient, because those kernels return none for it. The math path materialises the scores
and saves the ``H x T x S`` probabilities of every layer: measured on 2 CPU cores, a T5 model's
training step at 2048 tokens took 5.5x RoPE's time and 6.9x its memory at 4096.

This function keeps the fused flash kernel for the forward pass and for ``dq, dk, dv``, and computes
the bias gradient itself, a block of queries at a time, from the kernel's saved log-sum-exp:

    P = exp(q k^T * scale + bias - lse)           (recomputed, never stored whole)
    dbias = P * (dO v^T - rowsum(dO * O))          (the softmax backward; Dao et al. 2022, arXiv:2205.14135)

For a causal mask, keys after a block's last query are skipped (their probability is zero).
"""

from __future__ import annotations

import torch

QUERY_BLOCK = 256  # rows of scores recomputed at once in the backward pass


def _flash_forward(query, key, value, bias, scale):
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, 0.0, False, attn_mask=bias, scale=scale
    )


class _LearnedBiasAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, bias, scale: float, causal: bool):
        output, logsumexp = _flash_forward(query, key, value, bias, scale)
        ctx.save_for_backward(query, key, value, bias, output, logsumexp)
        ctx.scale, ctx.causal = scale, causal
        return output

    @staticmethod
    def backward(ctx, grad_output):
        query, key, value, bias, output, logsumexp = ctx.saved_tensors
        grad_output = grad_output.contiguous()
        grad_query, grad_key, grad_value = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad_output, query, key, value, output, logsumexp, 0.0, False, attn_mask=bias, scale=ctx.scale
        )
        grad_bias = None
        if ctx.needs_input_grad[3]:
            grad_bias = _bias_gradient(query, key, value, bias, output, logsumexp, grad_output, ctx.scale, ctx.causal)
        return grad_query, grad_key, grad_value, grad_bias, None, None


def _bias_gradient(query, key, value, bias, output, logsumexp, grad_output, scale, causal):
    """``dL/dbias``, shaped like ``bias`` (summed over the dimensions it broadcasts along)."""
    length, key_length = query.shape[-2], key.shape[-2]
    offset = key_length - length  # queries are the last ``length`` positions of the keys
    delta = (grad_output * output).sum(-1, keepdim=True)  # (B, H, T, 1)
    work = torch.float64 if query.dtype == torch.float64 else torch.float32  # bf16 inputs: float32 arithmetic
    grad_bias = torch.empty(bias.shape, dtype=work, device=bias.device)  # every entry is written below
    for start in range(0, length, QUERY_BLOCK):
        stop = min(start + QUERY_BLOCK, length)
        keys = stop + offset if causal else key_length  # later keys have probability 0 under a causal mask
        rows = slice(start, stop)
        scores = torch.matmul(query[:, :, rows], key[:, :, :keys].transpose(-1, -2)).to(work) * scale
        scores += bias[:, :, rows, :keys]
        probs = torch.exp(scores.sub_(logsumexp[:, :, rows, None].to(work)))
        grad_probs = torch.matmul(grad_output[:, :, rows], value[:, :, :keys].transpose(-1, -2)).to(work)
        grad_scores = probs.mul_(grad_probs.sub_(delta[:, :, rows].to(work)))
        for dim in (0, 1):  # the bias may be shared across the batch or the heads
            if bias.shape[dim] == 1 and grad_scores.shape[dim] != 1:
                grad_scores = grad_scores.sum(dim, keepdim=True)
        grad_bias[:, :, rows, :keys] = grad_scores
        grad_bias[:, :, rows, keys:] = 0
    return grad_bias.to(bias.dtype)


def learned_bias_attention(query, key, value, bias, scale: float, causal: bool) -> torch.Tensor:
    """Softmax attention ``(B, H, T, d)`` with an additive ``bias`` (``(B or 1, H or 1, T, S)``) that may
    require grad; key/value heads are repeated for grouped-query attention. Returns ``(B, T, H, d)``
    as transformers' attention functions do."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    output = _LearnedBiasAttention.apply(query.contiguous(), key.contiguous(), value.contiguous(), bias, scale, causal)
    return output.transpose(1, 2).contiguous()


def can_use(query, attention_mask, dropout: float, output_attentions: bool) -> bool:
    """Only where it helps: a mask that needs a gradient, on the CPU, without dropout or weights to return."""
    return (
        attention_mask is not None
        and attention_mask.requires_grad
        and torch.is_grad_enabled()
        and query.device.type == "cpu"
        and query.dtype in (torch.float32, torch.float64, torch.bfloat16)
        and dropout == 0.0
        and not output_attentions
    )
