"""A smoke run of scripts/benchmark.py (tiny size, one repeat), so the benchmark keeps working."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "benchmark.py"


@pytest.mark.slow
def test_benchmark_smoke_run_writes_every_section(tmp_path):
    """Tiny size, one repeat: 47 s on 2 shared CPU cores (load average 2.3), section 5 (compiled, dynamo's
    eager backend) included; about 15 s without it."""
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--size", "tiny", "--repeats", "1", "--json", str(out)],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for heading in ("1. Study (converted) vs transformers' LlamaForCausalLM", "2. Cost of each position encoding",
                    "3. Scaling with sequence length", "4. CPU utilisation", "5. Compiled", "Targets:"):
        assert heading in run.stdout
    report = json.loads(out.read_text())
    for name in ("train_step", "prefill", "decode"):
        row = report["versus_llama"][name]
        assert row["llama_s"] > 0 and row["study_s"] > 0 and row["speed_ratio"] > 0
    assert set(report["versus_llama"]["peak_memory_train_step_mb"]) == {"llama", "study"}
    for length, costs in report["encoding_costs"].items():
        assert set(costs) == {"none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5"}
        assert costs["none"]["train_vs_none"] == 1.0
    for row in report["scaling"].values():
        assert {"sdpa_train_step_s", "eager_train_step_s", "sdpa_peak_mb", "eager_peak_mb", "alibi_sdpa_peak_mb",
                "t5_sdpa_peak_mb"} <= set(row)
    assert 0 < report["utilisation"]["utilisation"] < 1.5
    compiled = report["compiled"]  # tiny: dynamo's eager backend, rope and t5 only (see plan_for)
    assert compiled["backend"] == "eager"
    for name in ("train_step", "decode"):
        assert compiled[name]["llama_s"] > 0 and compiled[name]["study_s"] > 0 and compiled[name]["speed_ratio"] > 0
    assert compiled["decode"]["study_eager_s"] > 0 and compiled["decode"]["compiled_vs_eager_speed"] > 0
    costs = compiled["encodings"]["64"]
    assert set(costs) == {"rope", "t5"} and costs["rope"]["compiled_vs_rope"] == 1.0
    assert all(row["compiled_train_step_s"] > 0 and row["eager_train_step_s"] > 0 for row in costs.values())
    assert all({"target", "value", "threshold", "met"} <= set(check) for check in report["targets"])
    # a smoke run: said so up front, no verdicts, no memory figures to misread
    assert report["meta"]["smoke"] is True and all(check["met"] is None for check in report["targets"])
    assert "SMOKE RUN (--size tiny and --repeats 1)" in run.stdout and "MISSED" not in run.stdout
    assert "Targets: (smoke run: not judged)" in run.stdout and "   peak memory           -MB          -MB" in run.stdout


def load_benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark_script", SCRIPT)
    benchmark = sys.modules["benchmark_script"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    return benchmark


def fake_report(train_ratio: float, decode_ratio: float, size: str, repeats: int) -> dict:
    row = lambda ratio: {"llama_s": 1.0, "study_s": 1.0 / ratio, "speed_ratio": ratio,  # noqa: E731
                         "llama_tokens_per_s": 100.0, "study_tokens_per_s": 100.0 * ratio}
    return {"versus_llama": {"train_step": row(train_ratio), "prefill": row(1.0), "decode": row(decode_ratio),
                             "peak_memory_train_step_mb": {"llama": 7.2, "study": 0.0}},
            "meta": {"size": size, "sizes": {}, "cpu_count": 2, "torch": "t", "transformers": "t", "repeats": repeats,
                     "wall_time_s": 1.0}}


def test_targets_print_the_threshold_they_use_and_a_smoke_run_is_not_judged(capsys):
    benchmark = load_benchmark()
    report = fake_report(0.985, 0.975, "small", 5)  # just above and just below 0.98
    report["meta"]["smoke"] = benchmark.is_smoke("small", 5)
    report["targets"] = benchmark.targets(report, report["meta"]["smoke"])
    benchmark.print_report(report)
    out = capsys.readouterr().out
    assert "   met    study / Llama speed, train_step >= 0.98: 0.98\n" in out  # 0.985: met, and the line says why
    assert "   MISSED study / Llama speed, decode >= 0.98: 0.97\n" in out
    assert "SMOKE" not in out and "   peak memory           7MB          0MB" in out

    for size, repeats, why in (("tiny", 1, "--size tiny and --repeats 1"), ("tiny", 5, "--size tiny"),
                               ("small", 1, "--repeats 1")):
        smoke = fake_report(0.81, 0.5, size, repeats)
        smoke["meta"]["smoke"] = benchmark.is_smoke(size, repeats)
        smoke["targets"] = benchmark.targets(smoke, smoke["meta"]["smoke"])
        benchmark.print_report(smoke)
        out = capsys.readouterr().out
        assert f"SMOKE RUN ({why}): it checks that every section runs; its ratios and memory figures are noise" in out
        assert "MISSED" not in out and "met   " not in out and "Targets: (smoke run: not judged)" in out
        assert "   smoke  study / Llama speed, train_step >= 0.98: 0.81" in out
        assert "   peak memory           -MB          -MB" in out
        assert all(check["met"] is None for check in smoke["targets"])


def test_bad_arguments_are_refused(capsys):
    benchmark = load_benchmark()
    for argv, message in ((["--repeats", "0"], "--repeats must be >= 1"), (["--size", "huge"], "invalid choice: 'huge'"),
                          (["--sections", "llama,speed"], "--sections takes a comma-separated subset of"),
                          (["--compiled_encodings", "rope,foo"], "--compiled_encodings takes a comma-separated subset of")):
        with pytest.raises(SystemExit) as exit_info:
            benchmark.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_one_section_only(tmp_path):
    """--sections runs a subset (e.g. the Llama comparison at medium size, which is slow in full)."""
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--size", "tiny", "--repeats", "1", "--sections", "llama",
                          "--json", str(out)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "1. Study (converted)" in run.stdout and "2. Cost" not in run.stdout
    report = json.loads(out.read_text())
    assert set(report) == {"versus_llama", "targets", "meta"}
    assert [check["target"] for check in report["targets"]] == ["study / Llama speed, train_step >= 0.98",
                                                                 "study / Llama speed, decode >= 0.98"]
