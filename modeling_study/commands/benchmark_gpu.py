"""Benchmarks on a GPU (``modeling-study benchmark --device cuda``): a Llama-3.2-1B-shaped study model, and
what each position encoding costs on each attention path that can run it.

    modeling-study benchmark --device cuda --json gpu.json         # one GPU, bfloat16: some minutes
    modeling-study benchmark --device cpu --size tiny --repeats 1  # a smoke run of this code, not a figure

1. The model at Llama-3.2-1B's shape (hidden 2048, 16 layers, 32 heads, 8 key/value heads, MLP 8192, vocabulary
   128256, RoPE, tied embeddings): training throughput (forward + backward + AdamW, tokens/s) and MFU, the
   model FLOP/s (6N + 12 * layers * T * d per token, PaLM's count) over a bf16 matmul peak measured in the same
   run; greedy decoding at batch 1 and 32, with the dynamic cache and with a compiled static cache
   (``cache_implementation="static"``, ``model.forward = torch.compile(model.forward)``).
2. Every encoding at 4 x 2048 and 1 x 8192 tokens, one training step, on each attention path it can take
   (``attention_paths.py``: dense sdpa and flex for any encoding, factored for causal ALiBi in float32): time
   and peak memory, each relative to RoPE's on the automatically chosen path.

Timing: ``torch.cuda.synchronize()`` before every clock read; one warm-up call (the compile, when there is one)
outside the timed region; the sides of a comparison interleaved (A B A B ...); medians. Memory:
``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, per measured call. The report names the
GPU, torch and transformers versions and the matmul peak.
"""

from __future__ import annotations

import statistics
import time

import torch

SHAPES = {
    # the model of section 1, the sequences of section 2 ((batch, length) pairs), the section-2 model
    "full": dict(model=dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                            num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192),
                 train=(4, 2048), decode=(128, 64), sequences=((4, 2048), (1, 8192)),
                 encoding_model=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=8,
                                      num_attention_heads=16, num_key_value_heads=4, vocab_size=32000,
                                      max_position_embeddings=8192)),
    "tiny": dict(model=dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, vocab_size=512, max_position_embeddings=256),
                 train=(2, 64), decode=(16, 8), sequences=((2, 64),),
                 encoding_model=dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                     max_position_embeddings=256)),
}
ENCODINGS = ("none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(functions: dict, repeats: int, device) -> dict[str, float]:
    """Median seconds of each function, one warm-up call each first, then the sides interleaved."""
    for function in functions.values():
        timed(function, device)
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            times[name].append(timed(function, device))
    return {name: statistics.median(values) for name, values in times.items()}


def peak_bytes(function, device) -> int | None:
    """Peak allocated memory of one call on a GPU (None on the CPU, which has no allocator high-water mark)."""
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    function()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def matmul_peak(device, dtype, n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of an ``n x n`` matmul in ``dtype``: the denominator of MFU, measured on this GPU now."""
    n = n if device.type == "cuda" else 512
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    seconds = interleaved({"matmul": lambda: a @ b}, repeats, device)["matmul"]
    return 2 * n**3 / seconds


def build(model_shape: dict, encoding: str, device, dtype, path: str | None = None, causal: bool = True):
    from modeling_study import StudyConfig, StudyForCausalLM

    config = StudyConfig(**model_shape, position_encoding=encoding, is_causal=causal, attention_path=path)
    return StudyForCausalLM._from_config(config, attn_implementation="sdpa").to(device=device, dtype=dtype)


def train_step(model, batch: int, length: int, device):
    ids = torch.randint(1, model.config.vocab_size, (batch, length), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)

    def step():
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def flops_per_token(model, length: int) -> float:
    config = model.config
    parameters = sum(p.numel() for p in model.parameters()) - config.vocab_size * config.hidden_size * (
        0 if config.tie_word_embeddings else 1)
    return 6 * parameters + 12 * config.num_hidden_layers * length * config.hidden_size


def section_model(shape: dict, repeats: int, device, dtype) -> dict:
    """Training throughput and MFU; greedy decoding at batch 1 and 32, dynamic and compiled static cache."""
    model = build(shape["model"], "rope", device, dtype).train()
    batch, length = shape["train"]
    step = train_step(model, batch, length, device)
    seconds = interleaved({"train": step}, repeats, device)["train"]
    peak = matmul_peak(device, dtype)
    tokens_per_second = batch * length / seconds
    result = {"train_tokens_per_s": tokens_per_second, "train_step_s": seconds, "matmul_peak_flops": peak,
              "mfu": tokens_per_second * flops_per_token(model, length) / peak,
              "train_peak_bytes": peak_bytes(step, device)}
    model.eval()
    prompt, new_tokens = shape["decode"]
    for decode_batch in (1, 32):
        ids = torch.randint(1, model.config.vocab_size, (decode_batch, prompt), device=device)
        settings = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        compiled = build(shape["model"], "rope", device, dtype).eval()
        compiled.load_state_dict(model.state_dict())
        # inductor on a GPU; dynamo alone on the CPU, where this runs only as a smoke test
        compiled.forward = torch.compile(compiled.forward, fullgraph=True,
                                         backend="inductor" if device.type == "cuda" else "eager")
        sides = {"dynamic": lambda: model.generate(ids, **settings),
                 "static_compiled": lambda: compiled.generate(ids, cache_implementation="static", **settings)}
        with torch.no_grad():
            for name, value in interleaved(sides, repeats, device).items():
                result[f"decode_b{decode_batch}_{name}_tokens_per_s"] = decode_batch * new_tokens / value
    return result


def paths_for(encoding: str, dtype, device) -> list[str | None]:
    """None (the automatic choice) and each path that can train this (causal) encoding in ``dtype`` on ``device``."""
    from modeling_study import StudyConfig
    from modeling_study.attention_paths import ATTENTION_PATHS, FULL_PRECISION
    from modeling_study.position_encodings import POSITION_ENCODINGS

    forms = POSITION_ENCODINGS[encoding](StudyConfig(position_encoding=encoding)).bias_forms
    usable = [name for name, path in ATTENTION_PATHS.items()
              if (path.form is None or path.form in forms) and name != "bucketed"  # the block-wise kernel: CPU only
              and not (name == "factored" and dtype not in FULL_PRECISION)  # round-off: float32/float64 only
              and not (name == "flex" and device.type == "cpu")]  # flex has no backward on the CPU
    return [None, *usable]


def section_encodings(shape: dict, repeats: int, device, dtype) -> dict:
    """Each encoding x path x sequence: a training step's time and peak memory, relative to RoPE's."""
    results = {}
    for batch, length in shape["sequences"]:
        rope = build(shape["encoding_model"], "rope", device, dtype).train()
        rope_step = train_step(rope, batch, length, device)
        for encoding in ENCODINGS:
            for path in paths_for(encoding, dtype, device):
                model = build(shape["encoding_model"], encoding, device, dtype, path).train()
                step = train_step(model, batch, length, device)
                times = interleaved({"this": step, "rope": rope_step}, repeats, device)
                memory, rope_memory = peak_bytes(step, device), peak_bytes(rope_step, device)
                results[f"{batch}x{length}/{encoding}/{path or 'auto'}"] = {
                    "step_s": times["this"], "time_vs_rope": times["this"] / times["rope"], "peak_bytes": memory,
                    "memory_vs_rope": memory / rope_memory if memory else None}
                del model, step
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return results


def run(device: str = "cuda", size: str = "full", repeats: int = 5, sections=("model", "encodings")) -> dict:
    import transformers

    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    shape = SHAPES[size]
    report = {"machine": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "dtype": str(dtype)}
    if "model" in sections:
        report["model"] = section_model(shape, repeats, device, dtype)
    if "encodings" in sections:
        report["encodings"] = section_encodings(shape, repeats, device, dtype)
    return report


def print_report(report: dict) -> None:
    print(f"{report['machine']}, torch {report['torch']}, transformers {report['transformers']}, {report['dtype']}")
    for name, value in report.get("model", {}).items():
        print(f"  {name:40s} {value:.4g}" if isinstance(value, float) else f"  {name:40s} {value}")
    if "encodings" in report:
        print(f"  {'sequence/encoding/path':32s} {'step ms':>9s} {'x rope':>7s} {'peak MiB':>9s} {'x rope':>7s}")
        for name, row in report["encodings"].items():
            memory = f"{row['peak_bytes'] / 2**20:9.0f} {row['memory_vs_rope']:7.2f}" if row["peak_bytes"] else ""
            print(f"  {name:32s} {row['step_s'] * 1e3:9.1f} {row['time_vs_rope']:7.2f} {memory}")


def report_on(device: str, size: str, repeats: int, json_path: str | None = None) -> int:
    """Run, print, and write the JSON report when asked: ``benchmark --device cuda``'s whole job."""
    import json

    report = run(device, size, repeats)
    print_report(report)
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0
