"""Fully sharded data parallelism (FSDP2, ``torch.distributed.fsdp.fully_shard``) for a study model.

Each process holds a dim-0 slice of every parameter, gradient and optimizer state; a layer's
parameters are all-gathered just before it runs and freed after. One group per decoder layer and
one for the rest (embeddings, final norm, heads: tied embeddings stay one parameter in one group),
the layout torchtitan and transformers' own ``base_model_fsdp_plan`` use.

This works on CPU with the gloo backend, where accelerate's FSDP does not: on a CPU, accelerate
(1.16) runs ``MULTI_CPU`` with DistributedDataParallel and refuses ``--cpu --use_fsdp``.

>>> # torchrun --nproc_per_node 2 train.py   (inside: dist.init_process_group("gloo"))
>>> model = shard_with_fsdp2(StudyForCausalLM(config))
>>> optimizer = torch.optim.AdamW(model.parameters())   # after sharding: it holds the shards
>>> ...                                                   # forward, backward, step as usual
>>> from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
>>> full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
>>> if dist.get_rank() == 0:                             # every rank gathers; rank 0 holds the result
...     model.save_pretrained("out", state_dict=full)

Not imported by the model files (remote code imports only torch, transformers and the model files).
"""

from __future__ import annotations

import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import fully_shard


def shard_with_fsdp2(model: nn.Module, mesh: DeviceMesh | None = None, **fully_shard_kwargs) -> nn.Module:
    """Apply ``fully_shard`` to each decoder layer, then to the whole model; returns the model (sharded in place).

    ``mesh`` defaults to all processes of the default group on the device type of the model's parameters
    (``"cpu"`` with gloo, ``"cuda"`` with nccl). Other keyword arguments (``mp_policy``,
    ``reshard_after_forward``, ...) go to every ``fully_shard`` call. Create the optimizer afterwards.
    """
    if mesh is None:
        device_type = next(model.parameters()).device.type
        mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    for layer in model.base_model.layers:  # bottom-up: each call takes the parameters no earlier call took
        fully_shard(layer, mesh=mesh, **fully_shard_kwargs)
    fully_shard(model, mesh=mesh, **fully_shard_kwargs)
    return model


__all__ = ["shard_with_fsdp2"]
