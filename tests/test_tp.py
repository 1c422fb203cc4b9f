"""Tensor parallelism on 2 CPU processes: ``from_pretrained(..., tp_plan="auto")`` under torchrun (gloo).

``StudyConfig.base_model_tp_plan`` is Llama's plan by Llama's module names; transformers shards the
projections across the ranks (each holds half of q/k/v/gate/up by output and of o/down by input) and
all-reduces. The reference is the same checkpoint run unsharded in this process: the sharded logits
must equal it to float32 rounding (the all-reduce sums two half-width partial products instead of one
full-width dot product), and greedy generation must be identical. Every head runs in the one launch
(startup is the cost): causal LM, masked LM (its tied vocabulary projection shares the embedding's
row shards) and sequence classification (its small head replicated). An encoding that biases each head's
scores (ALiBi, T5) is refused before loading with a ValueError that names the encodings TP serves.

Run as a script by the test (``python -m torch.distributed.run --nproc_per_node 2 tests/test_tp.py DIR``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

CASES = {  # name -> (head, StudyConfig overrides); rope: Llama-like, learned: GPT-2-like (biases, ungated MLP)
    "rope": ("causal", dict(position_encoding="rope")),
    "learned": ("causal", dict(position_encoding="learned", ffn_activation="gelu", attention_bias=True, mlp_bias=True)),
    "masked": ("masked", dict(position_encoding="learned", ffn_activation="gelu", is_causal=False,  # BERT-like, tied
                              norm_placement="post", norm_type="layernorm", tie_word_embeddings=True)),
    "classify": ("classify", dict(position_encoding="rope", num_labels=3)),
}
AUTO_CLASSES = {"causal": "AutoModelForCausalLM", "masked": "AutoModelForMaskedLM",
                "classify": "AutoModelForSequenceClassification"}
IDS = [[5, 17, 42, 8, 91, 3, 66, 23, 11, 70]]


def load_tensor_parallel(path, head="causal"):
    import transformers

    auto = getattr(transformers, AUTO_CLASSES[head])
    try:
        from transformers import DistributedConfig  # the current spelling; tp_plan= alone is deprecated
    except ImportError:
        return auto.from_pretrained(path, tp_plan="auto")
    return auto.from_pretrained(path, distributed_config=DistributedConfig(tp_plan="auto"))


def worker(directory: Path) -> None:
    import modeling_study  # noqa: F401  registers the study classes with the Auto classes

    rank, results = int(os.environ["RANK"]), {}
    ids = torch.tensor(IDS)
    for name, (head, _) in CASES.items():
        model = load_tensor_parallel(directory / name, head).eval()
        q_proj = model.model.layers[0].self_attn.q_proj.weight
        with torch.no_grad():
            logits = model(ids).logits
        generated = ids  # the encoder heads do not generate
        if head == "causal":
            generated = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
        results[name] = dict(local_q_rows=q_proj.to_local().shape[0] if hasattr(q_proj, "to_local") else None,
                             logits=logits.tolist(), generated=generated.tolist())
    try:
        load_tensor_parallel(directory / "alibi")
        results["alibi"] = "loaded"
    except ValueError as error:
        results["alibi"] = str(error)
    (directory / f"rank{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
else:
    import pytest
    import torch.distributed as dist
    from conftest import tiny_config
    from torchrun import run_two_processes

    from modeling_study import StudyForCausalLM, StudyForMaskedLM, StudyForSequenceClassification

    HEADS = {"causal": StudyForCausalLM, "masked": StudyForMaskedLM, "classify": StudyForSequenceClassification}

    @pytest.mark.slow
    @pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
    def test_tensor_parallel_on_two_cpu_processes_matches_one_process(tmp_path):
        expected = {}
        for name, (head, overrides) in {**CASES, "alibi": ("causal", dict(position_encoding="alibi"))}.items():
            model = HEADS[head](tiny_config(**overrides, num_key_value_heads=2, initializer_range=0.2)).eval()
            model.save_pretrained(tmp_path / name)
            ids = torch.tensor(IDS)
            with torch.no_grad():
                logits = model(ids).logits
            if head == "causal":
                ids = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
            expected[name] = (logits, ids)

        run_two_processes(__file__, str(tmp_path))

        for rank in (0, 1):
            results = json.loads((tmp_path / f"rank{rank}.json").read_text())
            for name in CASES:
                logits, generated = expected[name]
                assert results[name]["local_q_rows"] == 32 // 2  # each rank holds half the query heads
                torch.testing.assert_close(torch.tensor(results[name]["logits"]), logits, atol=1e-5, rtol=0)
                assert results[name]["generated"] == generated.tolist()
            assert "position_encoding='alibi' adds a bias to every head" in results["alibi"]
            assert "tensor parallelism serves none, integer, binary, sinusoidal, learned, rope" in results["alibi"]

    @pytest.mark.parametrize("encoding", ["alibi", "t5"])
    def test_per_head_bias_encodings_are_refused_before_loading(tmp_path, encoding):
        """Called directly (no Auto class, so no config passed in), in one process: the check reads the config."""
        StudyForCausalLM(tiny_config(position_encoding=encoding)).save_pretrained(tmp_path)
        (tmp_path / "model.safetensors").unlink()  # nothing to load: the refusal must come first
        with pytest.raises(ValueError, match=rf"position_encoding='{encoding}' adds a bias to every head"):
            StudyForCausalLM.from_pretrained(tmp_path, tp_plan="auto")
