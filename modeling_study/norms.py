"""Normalization layers and where they sit in a residual block.

Two registries, so that `norm_type` and `norm_placement` stay one config string each:

- ``NORM_TYPES``: ``"layernorm"`` (Ba et al. 2016, arXiv:1607.06450: centre, scale, learned gain and
  bias) and ``"rmsnorm"`` (Zhang & Sennrich 2019, arXiv:1910.07467: scale by the root mean square
  only, learned gain; Llama's norm); ``"rmsnorm_plus_one"`` is Gemma's RMSNorm, gain ``1 + weight``.
- ``NORM_PLACEMENTS``: which norms a block has around each sub-layer ``f`` (attention or MLP):

  ======== ============================= =============================================
  name     residual step                 used by
  ======== ============================= =============================================
  pre      ``x + f(norm(x))``            GPT-2, Llama, BLOOM (Xiong et al. 2020)
  post     ``norm(x + f(x))``            Vaswani et al. 2017, BERT
  sandwich ``x + norm(f(norm(x)))``      Gemma 2 (Ding et al. 2021, CogView)
  ======== ============================= =============================================

Pre- and sandwich-norm stacks end with a final norm; a post-norm stack is already normalized.

Module names follow Llama (``input_layernorm`` before attention, ``post_attention_layernorm``
before the MLP in pre-norm) and Gemma 2 for the extra sandwich norms, so checkpoints convert by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class StudyRMSNorm(nn.Module):
    """RMSNorm (arXiv:1910.07467), computed in float32 as Llama does: ``w * x / sqrt(mean(x^2) + eps)``."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class StudyRMSNormPlusOne(nn.Module):
    """Gemma's RMSNorm (arXiv:2403.08295): gain ``1 + w`` with ``w`` initialised at 0, so weight decay
    pulls the gain towards 1, not 0. Scaled in float32 and cast last, exactly as ``GemmaRMSNorm``."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = hidden_states.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return (x * (1.0 + self.weight.float())).type_as(hidden_states)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class StudyLayerNorm(nn.LayerNorm):
    """LayerNorm (arXiv:1607.06450) with gain and bias, as in GPT-2, BERT and BLOOM."""

    def __init__(self, hidden_size: int, eps: float = 1e-5):
        super().__init__(hidden_size, eps=eps)


NORM_TYPES: dict[str, type[nn.Module]] = {
    "layernorm": StudyLayerNorm,
    "rmsnorm": StudyRMSNorm,
    "rmsnorm_plus_one": StudyRMSNormPlusOne,  # Gemma
}


@dataclass(frozen=True)
class NormPlacement:
    """Which norms wrap one sub-layer ``f``; each entry is a module name or None.

    ``before``: applied to the sub-layer's input; ``on_branch``: applied to the sub-layer's output
    before it joins the residual stream; ``on_sum``: applied to the residual sum.
    """

    attention: tuple[str | None, str | None, str | None]
    mlp: tuple[str | None, str | None, str | None]
    final_norm: bool


NORM_PLACEMENTS: dict[str, NormPlacement] = {
    "pre": NormPlacement(
        attention=("input_layernorm", None, None),
        mlp=("post_attention_layernorm", None, None),
        final_norm=True,
    ),
    "post": NormPlacement(
        attention=(None, None, "post_attention_layernorm"),
        mlp=(None, None, "post_feedforward_layernorm"),
        final_norm=False,
    ),
    "sandwich": NormPlacement(
        attention=("input_layernorm", "post_attention_layernorm", None),
        mlp=("pre_feedforward_layernorm", "post_feedforward_layernorm", None),
        final_norm=True,
    ),
}


def build_norm(config) -> nn.Module:
    """The norm named by ``config.norm_type``, of width ``hidden_size``."""
    return NORM_TYPES[config.norm_type](config.hidden_size, eps=config.norm_eps)
