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
    assert all({"target", "value", "met"} <= set(check) for check in report["targets"])


def test_bad_arguments_are_refused(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark_script", SCRIPT)
    benchmark = sys.modules["benchmark_script"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
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
    assert [check["target"] for check in report["targets"]] == ["study / Llama speed, train_step >= 1.0",
                                                                 "study / Llama speed, decode >= 1.0"]
