"""Sharded training on 2 CPU processes: FSDP2 (``fully_shard``) under torchrun (gloo) equals one process.

``shard_with_fsdp2`` shards each decoder layer and then the model; every parameter becomes a DTensor
sharded on dim 0, each rank holding about half. Each rank trains on its half of the batch (equal
label counts per row, so the mean of the two ranks' mean losses is the full batch's mean loss, and
FSDP averages the gradients). The reference is the same steps on the whole batch in this process:
the trained weights must agree to 1e-5 (float32 rounding of the split sums, through AdamW). The
full state dict gathered with ``get_model_state_dict(full_state_dict=True, cpu_offload=True)`` is
saved by ``save_pretrained`` and must reload through the Auto classes bit for bit.

Run as a script by the test (``python -m torch.distributed.run --nproc_per_node 2 tests/test_fsdp.py DIR``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

CASES = {  # name -> (head, StudyConfig overrides): a rotation and two per-head score biases, decoder and encoder
    f"{encoding}_{head}": (head, dict(position_encoding=encoding, is_causal=head == "causal"))
    for encoding in ("rope", "alibi", "t5") for head in ("causal", "masked")
}
STEPS, LR, MASK_ID = 3, 1e-3, 3


def batch(head: str) -> tuple[torch.Tensor, torch.Tensor]:
    """4 rows of 12 tokens; every row has the same number of labels, so halves weigh equally."""
    ids = torch.randint(4, 99, (4, 12), generator=torch.Generator().manual_seed(1))
    if head == "causal":
        return ids, ids.clone()
    labels = torch.full_like(ids, -100)
    labels[:, 1::3] = ids[:, 1::3]  # 4 masked positions in every row
    masked = ids.clone()
    masked[:, 1::3] = MASK_ID
    return masked, labels


def train(model, ids, labels) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    for _ in range(STEPS):
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def head_class(head: str):
    from modeling_study import StudyForCausalLM, StudyForMaskedLM

    return {"causal": StudyForCausalLM, "masked": StudyForMaskedLM}[head]


def worker(directory: Path) -> None:
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.tensor import DTensor, Shard

    from modeling_study.training.sharding import shard_with_fsdp2

    dist.init_process_group("gloo")
    rank, world, results = dist.get_rank(), dist.get_world_size(), {}
    for name, (head, _) in CASES.items():
        model = shard_with_fsdp2(head_class(head).from_pretrained(directory / name / "init"))
        parameters = dict(model.named_parameters())
        results[name] = dict(
            not_sharded=[n for n, p in parameters.items()
                         if not (isinstance(p, DTensor) and p.placements == (Shard(0),))],
            not_smaller=[n for n, p in parameters.items() if p.to_local().numel() >= p.numel()],
            parameters=len(parameters),
        )
        ids, labels = batch(head)
        rows = slice(rank * len(ids) // world, (rank + 1) * len(ids) // world)
        train(model, ids[rows], labels[rows])
        # every rank takes part in the gather; with cpu_offload only rank 0 receives the tensors
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if rank == 0:
            model.save_pretrained(directory / name / "trained", state_dict=full)
            torch.save(full, directory / name / "gathered.pt")
    (directory / f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
else:
    import pytest
    import torch.distributed as dist
    from conftest import tiny_config
    from torchrun import run_two_processes

    @pytest.mark.slow
    @pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
    def test_fsdp2_on_two_cpu_processes_shards_saves_and_matches_one_process(tmp_path):
        from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

        import modeling_study  # noqa: F401  registers the study classes with the Auto classes

        references = {}
        for name, (head, overrides) in CASES.items():
            torch.manual_seed(0)
            model = head_class(head)(tiny_config(**overrides, initializer_range=0.2))
            model.save_pretrained(tmp_path / name / "init")
            train(model, *batch(head))  # the whole batch, one process
            references[name] = model

        run_two_processes(__file__, str(tmp_path))

        auto = {"causal": AutoModelForCausalLM, "masked": AutoModelForMaskedLM}
        for name, (head, _) in CASES.items():
            for rank in (0, 1):
                sharding = json.loads((tmp_path / f"rank{rank}.json").read_text())[name]
                assert sharding["parameters"] == len(dict(references[name].named_parameters()))
                assert sharding["not_sharded"] == [] and sharding["not_smaller"] == [], sharding

            gathered = torch.load(tmp_path / name / "gathered.pt")
            reloaded = auto[head].from_pretrained(tmp_path / name / "trained")
            assert type(reloaded) is type(references[name])
            state = reloaded.state_dict()
            assert set(state) == set(gathered), set(state) ^ set(gathered)
            for key, tensor in gathered.items():
                assert torch.equal(state[key], tensor), f"{name}: {key} changed between the gather and the reload"

            for key, tensor in references[name].state_dict().items():
                torch.testing.assert_close(state[key], tensor, atol=1e-5, rtol=0, msg=lambda m: f"{name} {key}: {m}")
