"""Benchmarks: the study model against transformers' own Llama, and what each position encoding costs.

    python scripts/benchmark.py --size tiny --repeats 1          # smoke: 97 s measured on 2 shared CPU cores (load 12)
    python scripts/benchmark.py --size small --json bench.json   # docs/performance.md's table: a few minutes on 2 CPU cores

Everything is measured in one run, the two sides of each comparison interleaved (A B A B ...) after
a warm-up, and reported as medians with the ratio taken pair by pair, so a noisy machine moves both
sides together. Sections:

1. ``StudyForCausalLM`` set like Llama (rope, pre, rmsnorm, swiglu, GQA) with weights converted by
   ``modeling_study.from_hf`` from a random ``LlamaForCausalLM``, against that Llama, both sdpa:
   training-step throughput (forward + backward + AdamW), prefill latency, greedy decoding with the
   KV cache, peak memory of a training step.
2. The cost of each position encoding relative to ``none`` at sequence 512 and 2048: training step
   and decoding.
3. Scaling with sequence length (256 to 4096): training-step time and peak memory, eager vs sdpa,
   and the peak memory of ALiBi and T5 against RoPE.
4. CPU utilisation: achieved model FLOP/s (6N + 12·layers·T·d per token for training, PaLM's count)
   divided by the matmul FLOP/s of this machine, measured in the same run.
5. Compiled (``--sections compiled``): both sides compiled the same way (``torch.compile(...,
   fullgraph=True)``, inductor), in the same run: the study model against Llama, training step and
   static-cache greedy decoding (transformers' recipe: ``model.forward = torch.compile(model.forward)``,
   ``cache_implementation="static"``); the study's compiled static-cache decoding against its own eager
   (dynamic-cache) decoding; and each encoding's compiled training step relative to compiled RoPE and
   to its own eager step. Compile time (the first call) is reported, not timed. ``--size tiny`` uses the
   ``eager`` backend (dynamo only) and two encodings: a smoke run of the code path, not a figure.

Peak memory: there is no allocator high-water mark on CPU, so each memory figure is measured in a
forked child process: it builds its inputs, notes its resident set size, runs one training step and
reports how far its peak RSS rose (Linux's ``VmHWM``, reset with ``/proc/self/clear_refs`` just before
the step). That is what the operating system had to give the step (activations, gradients, AdamW
state), allocator caching included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import torch

SIZES = {
    # name: (hidden, intermediate, layers, heads, kv_heads, vocab, batch, seq, new_tokens)
    "tiny": dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, batch=2, seq=64, new_tokens=8),
    "small": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=4, vocab_size=4096, batch=4, seq=256, new_tokens=128),
    "medium": dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                   num_key_value_heads=2, vocab_size=8192, batch=4, seq=512, new_tokens=128),
}
ENCODINGS = ("none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5")


@dataclass
class Plan:
    size: str
    repeats: int
    encoding_lengths: tuple[int, ...]
    scaling_lengths: tuple[int, ...]
    decode_tokens: int
    compiled_lengths: tuple[int, ...] = (2048,)
    compiled_encodings: tuple[str, ...] = ENCODINGS
    compile_backend: str = "inductor"


def plan_for(size: str, repeats: int) -> Plan:
    if size == "tiny":  # a smoke run: every section, seconds; the compiled one traces but does not generate code
        return Plan(size, repeats, (64,), (32, 64), 4, (64,), ("rope", "t5"), "eager")
    return Plan(size, repeats, (512, 2048), (256, 512, 1024, 2048, 4096), 32)


def model_sizes(size: str) -> dict:
    return {k: v for k, v in SIZES[size].items() if k not in ("batch", "seq", "new_tokens")}


def llama_pair(size: str):
    """A random LlamaForCausalLM and the study model converted from it, both sdpa, in eval-free train mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from modeling_study import from_hf

    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(**model_sizes(size), max_position_embeddings=8192, attn_implementation="sdpa"))
    study = from_hf(llama, attn_implementation="sdpa")
    ids = torch.randint(0, llama.config.vocab_size, (1, 16))
    with torch.no_grad():
        difference = (study(ids).logits - llama(ids).logits).abs().max().item()
    assert difference < 1e-4, f"converted model differs from Llama by {difference}"
    return llama, study


def study_model(size: str, encoding: str, attn: str = "sdpa", max_positions: int = 8192):
    from modeling_study import StudyConfig, StudyForCausalLM

    torch.manual_seed(0)
    config = StudyConfig(**model_sizes(size), position_encoding=encoding, max_position_embeddings=max_positions)
    return StudyForCausalLM._from_config(config, attn_implementation=attn)


# -- timing ---------------------------------------------------------------------------------------


def train_step_fn(model, batch: int, seq: int):
    """One forward + backward + AdamW step on random tokens."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    model.train()

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def prefill_fn(model, batch: int, seq: int):
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    model.eval()

    def step():
        with torch.no_grad():
            model(input_ids=ids, use_cache=True)

    return step


def decode_fn(model, batch: int, prompt: int, new_tokens: int):
    """Greedy generation with the KV cache after a prompt of ``prompt`` tokens (its prefill is included)."""
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt))
    model.eval()

    def step():
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=0)

    return step


def compiled_decode_fn(model, batch: int, prompt: int, new_tokens: int, backend: str):
    """``decode_fn`` as transformers documents compiled decoding: ``model.forward`` compiled once (fullgraph),
    a static cache, so the prefill and the one-token step are each one graph, reused every token."""
    model.forward = torch.compile(model.forward, fullgraph=True, backend=backend)
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt))
    model.eval()

    def step():
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=0, cache_implementation="static")

    return step


def compile_seconds(functions: dict) -> dict:
    """Run each function once (its compilation, or a warm-up when eager); seconds each."""
    seconds = {}
    for name, fn in functions.items():
        start = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - start
    return seconds


def interleaved(functions: dict, repeats: int, warmup: int = 1) -> dict:
    """Run the named functions in turn (A B A B ...), ``repeats`` times after ``warmup``; seconds per call."""
    for _ in range(warmup):
        for fn in functions.values():
            fn()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_of_medians_pairwise(numerator: list[float], denominator: list[float]) -> float:
    return statistics.median(n / d for n, d in zip(numerator, denominator))


# -- memory -----------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_for_memory(spec: dict):
    """The training step a memory measurement runs: {"model": "llama"|"study"|"encoding", ...}."""
    if spec["model"] in ("llama", "study"):
        model = dict(zip(("llama", "study"), llama_pair(spec["size"])))[spec["model"]]
    else:
        model = study_model(spec["size"], spec["encoding"], spec["attn"])
    return train_step_fn(model, spec["batch"], spec["seq"])


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_memory_here(spec: dict) -> int:
    step = build_for_memory(spec)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # Linux: reset the peak resident set (VmHWM) to the current one
    before = _rss_bytes()
    step()
    return _peak_rss_bytes() - before


_shared_worker = None  # --size tiny: one child process answers every measurement (a smoke run, not a figure)
WORKER_MODULE = "modeling_study.commands.benchmark"  # what the memory children run (python -m): this module


def peak_memory(**spec) -> float:
    """Growth of the peak resident set over one training step, in a fresh Python process (MB).

    A fresh process (not a fork: a forked child of a process that already ran torch's thread pool
    can deadlock) builds the model and inputs, resets its peak resident set, runs one step and
    reports how far the peak rose above the resident set before the step. For ``--size tiny`` one
    child answers all measurements in turn (memory freed by one can hide growth in the next), which
    keeps the smoke run to seconds; its memory figures are not to be quoted.
    """
    import subprocess

    if spec["size"] == "tiny":
        global _shared_worker
        if _shared_worker is None:
            _shared_worker = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, "--_memory_worker"],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        _shared_worker.stdin.write(json.dumps(spec) + "\n")
        _shared_worker.stdin.flush()
        return max(0, int(_shared_worker.stdout.readline())) / 2**20
    out = subprocess.run([sys.executable, "-m", WORKER_MODULE, "--_measure_memory", json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return max(0, int(out.stdout.strip().splitlines()[-1])) / 2**20


def matmul_flops(n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def training_flops_per_token(model, seq: int) -> float:
    config = model.config
    non_embedding = model.num_parameters(exclude_embeddings=True) + config.vocab_size * config.hidden_size  # lm head
    return 6 * non_embedding + 12 * config.num_hidden_layers * seq * config.num_attention_heads * config.head_dim


# -- sections ---------------------------------------------------------------------------------------


def versus_llama(size: str, repeats: int) -> dict:
    s = SIZES[size]
    llama, study = llama_pair(size)
    result = {}
    pairs = {
        "train_step": lambda m: train_step_fn(m, s["batch"], s["seq"]),
        "prefill": lambda m: prefill_fn(m, s["batch"], s["seq"]),
        "decode": lambda m: decode_fn(m, 1, 8, s["new_tokens"]),
    }
    for name, make in pairs.items():
        times = interleaved({"llama": make(llama), "study": make(study)}, repeats)
        tokens = s["batch"] * s["seq"] if name != "decode" else s["new_tokens"]
        result[name] = {
            "llama_s": statistics.median(times["llama"]),
            "study_s": statistics.median(times["study"]),
            # throughput ratio study / llama (>= 1.0: at least as fast), pair by pair
            "speed_ratio": ratio_of_medians_pairwise(times["llama"], times["study"]),
            "llama_tokens_per_s": tokens / statistics.median(times["llama"]),
            "study_tokens_per_s": tokens / statistics.median(times["study"]),
        }
    result["peak_memory_train_step_mb"] = {
        name: peak_memory(model=name, size=size, batch=s["batch"], seq=s["seq"]) for name in ("llama", "study")
    }
    return result


def encoding_costs(plan: Plan) -> dict:
    result = {}
    for length in plan.encoding_lengths:
        models = {e: study_model(plan.size, e) for e in ENCODINGS}
        train = interleaved({e: train_step_fn(m, 1, length) for e, m in models.items()}, plan.repeats)
        decode = interleaved({e: decode_fn(m, 1, length, plan.decode_tokens) for e, m in models.items()}, plan.repeats)
        result[str(length)] = {
            e: {
                "train_step_s": statistics.median(train[e]),
                "train_vs_none": ratio_of_medians_pairwise(train[e], train["none"]),
                "train_vs_rope": ratio_of_medians_pairwise(train[e], train["rope"]),
                "decode_s": statistics.median(decode[e]),
                "decode_vs_none": ratio_of_medians_pairwise(decode[e], decode["none"]),
            }
            for e in ENCODINGS
        }
    return result


def scaling(plan: Plan) -> dict:
    result = {}
    for length in plan.scaling_lengths:
        row = {}
        models = {"sdpa": study_model(plan.size, "rope", "sdpa"), "eager": study_model(plan.size, "rope", "eager")}
        times = interleaved({k: train_step_fn(m, 1, length) for k, m in models.items()}, max(1, plan.repeats // 2))
        for attn in models:
            row[f"{attn}_train_step_s"] = statistics.median(times[attn])
            row[f"{attn}_peak_mb"] = peak_memory(model="encoding", size=plan.size, encoding="rope", attn=attn,
                                                 batch=1, seq=length)
        for encoding in ("alibi", "t5"):
            row[f"{encoding}_sdpa_peak_mb"] = peak_memory(model="encoding", size=plan.size, encoding=encoding,
                                                          attn="sdpa", batch=1, seq=length)
        result[str(length)] = row
    return result


def utilisation(size: str, repeats: int) -> dict:
    s = SIZES[size]
    model = study_model(size, "rope")
    times = interleaved({"train": train_step_fn(model, s["batch"], s["seq"])}, repeats)
    achieved = training_flops_per_token(model, s["seq"]) * s["batch"] * s["seq"] / statistics.median(times["train"])
    peak = matmul_flops()
    return {"model_flops_per_s": achieved, "matmul_flops_per_s": peak, "utilisation": achieved / peak}


def compiled(plan: Plan) -> dict:
    """Section 5: compiled against compiled (see the module docstring)."""
    from modeling_study import from_hf

    torch._dynamo.config.recompile_limit = 64  # many models share StudyForCausalLM.forward's code object
    backend = plan.compile_backend
    s = SIZES[plan.size]
    llama, study = llama_pair(plan.size)
    result = {"backend": backend}

    steps = {name: train_step_fn(torch.compile(m, fullgraph=True, backend=backend), s["batch"], s["seq"])
             for name, m in (("llama", llama), ("study", study))}
    first = compile_seconds(steps)
    times = interleaved(steps, plan.repeats, warmup=0)
    result["train_step"] = {
        "llama_s": statistics.median(times["llama"]), "study_s": statistics.median(times["study"]),
        "speed_ratio": ratio_of_medians_pairwise(times["llama"], times["study"]), "compile_s": first,
    }

    eager_study = from_hf(llama, attn_implementation="sdpa")  # the same weights, not compiled
    decodes = {"llama": compiled_decode_fn(llama, 1, 8, s["new_tokens"], backend),
               "study": compiled_decode_fn(study, 1, 8, s["new_tokens"], backend),
               "study_eager": decode_fn(eager_study, 1, 8, s["new_tokens"])}
    first = compile_seconds(decodes)
    times = interleaved(decodes, plan.repeats, warmup=0)
    result["decode"] = {
        "llama_s": statistics.median(times["llama"]), "study_s": statistics.median(times["study"]),
        "study_eager_s": statistics.median(times["study_eager"]),
        "speed_ratio": ratio_of_medians_pairwise(times["llama"], times["study"]),
        "compiled_vs_eager_speed": ratio_of_medians_pairwise(times["study_eager"], times["study"]),
        "tokens_per_s": s["new_tokens"] / statistics.median(times["study"]), "compile_s": first,
    }

    result["encodings"] = {}
    for length in plan.compiled_lengths:
        models = {e: study_model(plan.size, e) for e in plan.compiled_encodings}
        steps = {e: train_step_fn(torch.compile(m, fullgraph=True, backend=backend), 1, length) for e, m in models.items()}
        steps |= {f"{e}_eager": train_step_fn(study_model(plan.size, e), 1, length) for e in plan.compiled_encodings}
        first = compile_seconds(steps)
        times = interleaved(steps, plan.repeats, warmup=0)
        result["encodings"][str(length)] = {
            e: {
                "compiled_train_step_s": statistics.median(times[e]),
                "eager_train_step_s": statistics.median(times[f"{e}_eager"]),
                "compiled_vs_rope": ratio_of_medians_pairwise(times[e], times["rope"]),
                "eager_vs_rope": ratio_of_medians_pairwise(times[f"{e}_eager"], times["rope_eager"]),
                "compiled_vs_eager_speed": ratio_of_medians_pairwise(times[f"{e}_eager"], times[e]),
                "compile_s": first[e],
            }
            for e in plan.compiled_encodings
        }
    return result


# Study / Llama speed ratio counted as parity: 1.0 within the 2% run-to-run noise of a shared machine.
SPEED_PARITY = 0.98
SMOKE_BANNER = ("SMOKE RUN ({why}): it checks that every section runs; its ratios and memory figures are noise "
                "and mean nothing. Targets are not judged. For numbers: --size small (5 repeats).")


def is_smoke(size: str, repeats: int) -> bool:
    """A tiny model or a single repeat: the run checks the machinery, its numbers are not measurements."""
    return size == "tiny" or repeats == 1


def smoke_reason(size: str, repeats: int) -> str:
    return " and ".join(why for why, hit in (("--size tiny", size == "tiny"), ("--repeats 1", repeats == 1)) if hit)


def targets(report: dict, smoke: bool = False) -> list[dict]:
    """docs/performance.md's targets, each with the threshold the verdict actually uses; no verdict (met=None) in a smoke run."""
    checks = []
    for name in ("train_step", "decode") if "versus_llama" in report else ():
        ratio = report["versus_llama"][name]["speed_ratio"]
        checks.append({"target": f"study / Llama speed, {name} >= {SPEED_PARITY}", "value": ratio,
                       "threshold": SPEED_PARITY, "met": ratio >= SPEED_PARITY,
                       "note": f"parity: 1.0 within 2% measurement noise ({SPEED_PARITY})"})
    longest = report.get("encoding_costs", {}).get("2048")
    if longest:
        for encoding in ("alibi", "t5"):
            ratio = longest[encoding]["train_vs_rope"]
            checks.append({"target": f"{encoding} training step at 2048 <= 1.15x RoPE", "value": ratio, "threshold": 1.15,
                           "met": ratio <= 1.15})
    if "compiled" in report:
        ratio = report["compiled"]["decode"]["speed_ratio"]
        checks.append({"target": f"compiled study / compiled Llama speed, static-cache decode >= {SPEED_PARITY}",
                       "value": ratio, "threshold": SPEED_PARITY, "met": ratio >= SPEED_PARITY,
                       "note": f"parity: 1.0 within 2% measurement noise ({SPEED_PARITY})"})
        longest = report["compiled"]["encodings"].get("2048", {}).get("t5")
        if longest:
            ratio = longest["compiled_vs_rope"]
            checks.append({"target": "t5 compiled training step at 2048 <= 1.15x compiled RoPE", "value": ratio,
                           "threshold": 1.15,
                           "met": ratio <= 1.15})
    row = report.get("scaling", {}).get("4096")
    if row:
        for encoding in ("alibi", "t5"):
            ratio = row[f"{encoding}_sdpa_peak_mb"] / max(row["sdpa_peak_mb"], 1e-9)
            checks.append({"target": f"{encoding} peak memory at 4096 <= 1.25x RoPE", "value": ratio, "threshold": 1.25,
                           "met": ratio <= 1.25})
    if smoke:
        for check in checks:
            check["met"] = None  # a smoke run's ratio is noise: no verdict either way
    return checks


def _mb(value: float, smoke: bool) -> str:
    """A memory figure, or "-" in a smoke run (one shared worker measures them all: not comparable)."""
    return "-" if smoke else f"{value:.0f}"


def print_report(report: dict) -> None:
    meta = report["meta"]
    smoke = meta.get("smoke", False)
    print(f"\nmodeling-study benchmark, size {meta['size']} ({meta['sizes']}), {meta['cpu_count']} CPU cores, "
          f"torch {meta['torch']}, transformers {meta['transformers']}, {meta['repeats']} repeats, {meta['wall_time_s']:.0f} s\n")
    if smoke:
        print(SMOKE_BANNER.format(why=smoke_reason(meta["size"], meta["repeats"])) + "\n")
    if "versus_llama" in report:
        print("1. Study (converted) vs transformers' LlamaForCausalLM, sdpa")
        print(f"   {'':12} {'Llama':>12} {'Study':>12} {'speed ratio':>12}")
        for name, row in report["versus_llama"].items():
            if name.startswith("peak"):
                continue
            print(f"   {name:12} {row['llama_tokens_per_s']:10.0f}/s {row['study_tokens_per_s']:10.0f}/s {row['speed_ratio']:12.3f}")
        memory = report["versus_llama"]["peak_memory_train_step_mb"]
        print(f"   {'peak memory':12} {_mb(memory['llama'], smoke):>10}MB {_mb(memory['study'], smoke):>10}MB")
    if "encoding_costs" in report:
        print("\n2. Cost of each position encoding (time relative to none; training step, and decoding)")
        lengths = list(report["encoding_costs"])
        print("   " + f"{'encoding':12}" + "".join(f"{'train@' + L:>12}{'decode@' + L:>13}" for L in lengths))
        for encoding in ENCODINGS:
            cells = "".join(f"{report['encoding_costs'][L][encoding]['train_vs_none']:12.2f}"
                            f"{report['encoding_costs'][L][encoding]['decode_vs_none']:13.2f}" for L in lengths)
            print(f"   {encoding:12}{cells}")
    if "scaling" in report:
        print("\n3. Scaling with sequence length (rope; training step, batch 1)")
        print(f"   {'length':>8} {'sdpa s':>9} {'eager s':>9} {'sdpa MB':>9} {'eager MB':>9} {'alibi MB':>9} {'t5 MB':>9}")
        for L, row in report["scaling"].items():
            memory = "".join(f" {_mb(row[key], smoke):>9}" for key in ("sdpa_peak_mb", "eager_peak_mb",
                                                                          "alibi_sdpa_peak_mb", "t5_sdpa_peak_mb"))
            print(f"   {L:>8} {row['sdpa_train_step_s']:9.3f} {row['eager_train_step_s']:9.3f}{memory}")
    if "utilisation" in report:
        u = report["utilisation"]
        print(f"\n4. CPU utilisation: {u['model_flops_per_s'] / 1e9:.1f} GFLOP/s achieved (training step) / "
              f"{u['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s matmul = {u['utilisation']:.0%}")
    if "compiled" in report:
        c = report["compiled"]
        print(f"\n5. Compiled (torch.compile fullgraph, backend {c['backend']}), both sides the same way")
        print(f"   {'':28} {'Llama s':>9} {'Study s':>9} {'speed ratio':>12}")
        for name in ("train_step", "decode"):
            row = c[name]
            print(f"   {name + (' (static cache)' if name == 'decode' else ''):28} {row['llama_s']:9.3f} {row['study_s']:9.3f} "
                  f"{row['speed_ratio']:12.3f}")
        print(f"   study decode, compiled static cache vs eager dynamic cache: {c['decode']['compiled_vs_eager_speed']:.2f}x "
              f"the speed ({c['decode']['study_eager_s']:.3f} s -> {c['decode']['study_s']:.3f} s)")
        for L, costs in c["encodings"].items():
            print(f"   training step at {L} tokens: {'encoding':10} {'compiled s':>10} {'vs rope':>8} {'eager s':>8} "
                  f"{'vs rope':>8} {'compile s':>9}")
            for e, row in costs.items():
                print(f"   {'':28}{e:10} {row['compiled_train_step_s']:10.3f} {row['compiled_vs_rope']:8.2f} "
                      f"{row['eager_train_step_s']:8.3f} {row['eager_vs_rope']:8.2f} {row['compile_s']:9.1f}")
    print("\nTargets:" + (" (smoke run: not judged)" if smoke else ""))
    for check in report["targets"]:
        verdict = {None: "smoke ", True: "met   ", False: "MISSED"}[check["met"]]
        print(f"   {verdict} {check['target']}: {check['value']:.2f}")


SECTIONS = ("llama", "encodings", "scaling", "utilisation", "compiled")


def run(size: str = "small", repeats: int = 5, sections: tuple[str, ...] = SECTIONS,
        compiled_encodings: tuple[str, ...] | None = None) -> dict:
    import transformers

    start = time.perf_counter()
    plan = plan_for(size, repeats)
    if compiled_encodings:
        plan.compiled_encodings = compiled_encodings
    report = {}
    if "llama" in sections:
        report["versus_llama"] = versus_llama(size, repeats)
    if "encodings" in sections:
        report["encoding_costs"] = encoding_costs(plan)
    if "scaling" in sections:
        report["scaling"] = scaling(plan)
    if "utilisation" in sections:
        report["utilisation"] = utilisation(size, repeats)
    if "compiled" in sections:
        report["compiled"] = compiled(plan)
    smoke = is_smoke(size, repeats)
    report["targets"] = targets(report, smoke)
    report["meta"] = {"size": size, "sizes": SIZES[size], "repeats": repeats, "cpu_count": os.cpu_count(),
                      "sections": list(sections), "smoke": smoke, "compiled_encodings": list(plan.compiled_encodings),
                      "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                      "torch": torch.__version__, "transformers": transformers.__version__,
                      "wall_time_s": time.perf_counter() - start}
    return report


def main(argv=None, prog: str | None = None) -> int:
    from modeling_study.commands import describe

    parser = argparse.ArgumentParser(prog=prog, description=describe(__doc__, "benchmark.py", prog),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", choices=sorted(SIZES), help="model size (tiny is a smoke run)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement, after one warm-up")
    parser.add_argument("--json", help="also write the full results to this JSON file")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--compiled_encodings", default="",
                        help="comma-separated encodings for section 5's per-encoding costs (default: all; rope is "
                             "always added, as the reference); each compile takes a minute or more on 2 CPU cores")
    parser.add_argument("--device", default="cpu",
                        help="cpu: the sections above; cuda (or cuda:N): the GPU sections of benchmark_gpu.py instead, "
                             "bfloat16, at a Llama-3.2-1B shape (--size tiny: a smoke run); --sections is ignored")
    parser.add_argument("--_measure_memory", help=argparse.SUPPRESS)  # internal: one memory measurement
    parser.add_argument("--_memory_worker", action="store_true", help=argparse.SUPPRESS)  # internal: one per line
    args = parser.parse_args(argv)
    if args._measure_memory:
        print(measure_memory_here(json.loads(args._measure_memory)))
        return 0
    if args._memory_worker:
        for line in sys.stdin:
            print(measure_memory_here(json.loads(line)), flush=True)
        return 0
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.device != "cpu":  # GPU timing and memory differ in kind (synchronised clocks, the allocator's peak)
        from modeling_study.commands.benchmark_gpu import report_on

        return report_on(args.device, "tiny" if args.size == "tiny" else "full", args.repeats, args.json)
    sections = tuple(name.strip() for name in args.sections.split(",") if name.strip())
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown or not sections:
        parser.error(f"--sections takes a comma-separated subset of {','.join(SECTIONS)}; got {args.sections!r}")
    compiled_encodings = tuple(name.strip() for name in args.compiled_encodings.split(",") if name.strip())
    if any(name not in ENCODINGS for name in compiled_encodings):
        parser.error(f"--compiled_encodings takes a comma-separated subset of {','.join(ENCODINGS)}; "
                     f"got {args.compiled_encodings!r}")
    if compiled_encodings and "rope" not in compiled_encodings:
        compiled_encodings = ("rope", *compiled_encodings)
    from transformers.utils import logging

    logging.set_verbosity_error()
    report = run(args.size, args.repeats, sections, compiled_encodings)
    print_report(report)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else str(v))
    return 0


def cli(argv=None, prog: str | None = None) -> int:
    """``modeling-study benchmark`` / ``python scripts/benchmark.py``: the exit status."""
    return main(argv, prog)


if __name__ == "__main__":
    sys.exit(cli())
