"""The study runner, end to end on the smoke preset (2 seeds, one task), and its caching contract."""

import json
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from modeling_study.study import PRESETS, default_output_dir, run_study
from modeling_study.study.experiments import plan
from modeling_study.study.runner import run_one
from modeling_study.study.spec import DIVERGED, FAILED, FINISHED

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    output = tmp_path_factory.mktemp("study")
    document = run_study("smoke", output, progress=False)
    return output, document


def test_every_planned_run_is_accounted_for(smoke):
    output, document = smoke
    preset = PRESETS["smoke"]
    planned = plan(preset)
    assert [(r["experiment"], r["name"]) for r in document["runs"]] == [(s.experiment, s.name) for s in planned]
    seeds = {r["labels"]["seed"] for r in document["runs"]}
    assert seeds == set(preset.seeds) and len(seeds) == 2
    experiments = {r["experiment"] for r in document["runs"]}
    assert experiments == {"lm", "ablation", "init_grad", "norm_grid", "tasks"}
    assert {r["labels"]["task"] for r in document["runs"] if r["experiment"] == "tasks"} == {"copy"}
    for run in document["runs"]:
        assert run["status"] in (FINISHED, DIVERGED), run.get("error")
    # each (run, seed) is cached on its own, with the measurements a new analysis needs
    cached = [json.loads(p.read_text()) for p in (output / "runs").glob("*.json")]
    assert len(cached) == len(planned)
    lm = [c for c in cached if c["experiment"] == "lm"]
    assert all(len(c["context"]["nll"]["1"]) == preset.lm.context_targets for c in lm)
    assert all(len(c["position_nll"]) == preset.lm.factor * preset.lm.train_length - 1 for c in lm)


def test_report_has_every_question_with_spread(smoke):
    output, document = smoke
    report = (output / "report.md").read_text()
    for heading in ("## 1. Language models", "## 2. The other choices", "## 3. Norm placement",
                    "## 4. Synthetic length generalisation", "## 5. Positional ambiguity", "## Runs"):
        assert heading in report
    assert "seeds 42, 43 (n = 2 per condition)" in report and "95%" in report and " ± " in report
    assert "Noise floor" in report and "trigram" in report and "Kneser-Ney" in report
    for name in document["plots"].values():
        assert (output / name).stat().st_size > 10_000 and f"]({name})" in report
    on_disk = json.loads((output / "results.json").read_text())
    assert set(on_disk) >= {"meta", "preset", "runs", "lm", "ablations", "norm_placement", "tasks", "ambiguity"}
    assert on_disk["meta"]["seeds"] == [42, 43] and on_disk["meta"]["hardware"]["cpu_count"]
    tally = on_disk["meta"]["tally"]
    assert sum(tally.values()) > 0
    # outputs are written like any other file (mkstemp's 0600 is not kept)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.json", "report.md"):
        assert stat.S_IMODE((output / name).stat().st_mode) == 0o666 & ~umask


def test_second_invocation_uses_the_cache_and_gives_the_same_numbers(smoke):
    output, document = smoke
    again = run_study("smoke", output, progress=False)
    assert again["meta"]["runs_from_cache"] == len(again["runs"])
    for key in ("lm", "ablations", "norm_placement", "tasks"):
        assert again[key] == document[key]


def test_report_only_rebuilds_from_the_cache_without_training(smoke, tmp_path, monkeypatch):
    output, document = smoke
    from modeling_study.study import experiments, runner
    from modeling_study.study import spec as spec_module

    monkeypatch.setattr(experiments, "measure", lambda *a, **k: pytest.fail("report_only must not train"))
    monkeypatch.setattr(spec_module, "code_fingerprint", lambda: "the code changed since")  # other keys: still found
    again = run_study("smoke", output, progress=False, report_only=True)
    for key in ("lm", "ablations", "norm_placement", "tasks"):
        assert again[key] == document[key]
    # nothing trained yet: every planned run is listed as pending, and the report says how to train them
    empty = run_study("smoke", tmp_path, progress=False, report_only=True)
    assert {r["status"] for r in empty["runs"]} == {"pending"} and len(empty["runs"]) == len(document["runs"])
    assert f"Pending: {len(empty['runs'])} of {len(empty['runs'])} planned runs" in (tmp_path / "report.md").read_text()
    assert "--preset smoke --group lm" in (tmp_path / "report.md").read_text()


def test_same_seed_same_numbers_and_another_seed_other_numbers(tmp_path):
    spec42, spec43 = (s for s in plan(PRESETS["smoke"], seeds=(42, 43)) if s.experiment == "lm" and
                      s.labels["encoding"] == "rope")
    first = run_one(spec42, tmp_path / "a")
    second = run_one(spec42, tmp_path / "b")
    other = run_one(spec43, tmp_path / "a")
    assert first["training"]["loss_history"] == second["training"]["loss_history"]
    assert first["context"] == second["context"] and first["position_nll"] == second["position_nll"]
    assert first["training"]["loss_history"] != other["training"]["loss_history"]
    assert first["context"]["nll"] != other["context"]["nll"]


def test_force_retrains_and_keep_weights_keeps_the_model(tmp_path):
    spec = next(s for s in plan(PRESETS["smoke"], seeds=(42,)) if s.experiment == "ablation")
    cached = run_one(spec, tmp_path)
    assert run_one(spec, tmp_path)["cached"] is True
    forced = run_one(spec, tmp_path, force=True, keep_weights=True)
    assert forced["cached"] is False and forced["training"]["loss_history"] == cached["training"]["loss_history"]
    final = Path(forced["weights"])
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()


def test_a_failing_run_is_reported_and_the_study_goes_on(tmp_path, monkeypatch):
    from modeling_study.study import experiments

    real = experiments.measure

    def flaky(spec, work_dir, keep_weights=False):
        if spec.name == "alibi/seed42":
            raise RuntimeError("simulated crash")
        return real(spec, work_dir, keep_weights)

    monkeypatch.setattr(experiments, "measure", flaky)
    preset = replace(PRESETS["smoke"], ablations=(), tasks=False, norm=replace(PRESETS["smoke"].norm, placements=()))
    document = run_study(preset, tmp_path, seeds=(42,), progress=False)
    statuses = {r["name"]: r["status"] for r in document["runs"]}
    assert statuses["alibi/seed42"] == FAILED and statuses["rope/seed42"] == FINISHED
    assert "simulated crash" in (tmp_path / "report.md").read_text()
    assert not any("alibi/seed42" in p.read_text() for p in (tmp_path / "runs").glob("*.json"))  # not cached


def test_an_edit_while_the_study_runs_does_not_change_the_keys_of_its_runs(tmp_path, monkeypatch):
    """Keys are fixed when the study starts: runs after a mid-study edit are cached where the plan put them."""
    from modeling_study.study import experiments, runner
    from modeling_study.study import spec as spec_module

    fingerprint = {"now": "the code at the start"}
    monkeypatch.setattr(spec_module, "code_fingerprint", lambda: fingerprint["now"])

    def measure_then_edit(spec, work_dir, keep_weights=False):
        fingerprint["now"] = "a source file edited while the study runs"
        return {"status": FINISHED}

    monkeypatch.setattr(experiments, "measure", measure_then_edit)
    preset = replace(PRESETS["smoke"], ablations=(), tasks=False, norm=replace(PRESETS["smoke"].norm, placements=()))
    specs = [s for s in plan(preset, seeds=(42,)) if s.experiment == "lm"]
    assert len(specs) >= 2
    planned = {s.key() for s in specs}
    results = runner._run_all(specs, tmp_path, jobs=1, force=False, keep_weights=False, num_threads=None,
                              bar=type("Bar", (), {"set_postfix_str": lambda *a: None, "update": lambda *a: None})())
    assert {r["key"] for r in results} == planned == {p.stem for p in tmp_path.glob("*.json")}


def test_unknown_preset_and_bad_output_dir(tmp_path):
    with pytest.raises(ValueError, match=r"preset must be one of \['default', 'gpu', 'gpu_smoke', 'long', 'smoke'\], got 'huge'"):
        run_study("huge")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        run_study("smoke", a_file)


def test_runs_in_parallel_workers_give_the_numbers_of_one_process(tmp_path):
    """--jobs 2 trains two runs at once in spawned workers: same results, same cache, plan order kept."""
    from modeling_study.study import default_jobs

    preset = replace(PRESETS["smoke"], ablations=(), tasks=False, norm=replace(PRESETS["smoke"].norm, placements=()))
    one = run_study(preset, tmp_path / "one", seeds=(42,), progress=False)
    two = run_study(preset, tmp_path / "two", seeds=(42,), progress=False, jobs=2)
    assert [r["name"] for r in two["runs"]] == [r["name"] for r in one["runs"]] == ["rope/seed42", "alibi/seed42"]
    for a, b in zip(one["runs"], two["runs"]):
        assert b["status"] == FINISHED and not b["cached"] and a["key"] == b["key"]
        a, b = (json.loads((tmp_path / name / "runs" / f"{a['key']}.json").read_text()) for name in ("one", "two"))
        assert a["context"] == b["context"] and a["position_nll"] == b["position_nll"]
        assert a["training"]["loss_history"] == b["training"]["loss_history"]
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_study(preset, tmp_path / "three", jobs=0)
    assert default_jobs(PRESETS["gpu"]) == 1 and default_jobs(PRESETS["default"]) == len(os.sched_getaffinity(0))


def test_each_preset_has_its_own_output_folder():
    assert default_output_dir("smoke") != default_output_dir("default")
    assert default_output_dir("smoke") == os.path.join("study_out", "smoke")


def test_script_turns_bad_arguments_into_one_line(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import run_study as script
    finally:
        sys.path.pop(0)
    a_file = tmp_path / "report.txt"
    a_file.write_text("x")
    for args, expected in ((["--output_dir", str(a_file)], f"--output_dir {a_file} is a file"),
                           (["--seeds", "4x"], "--seeds takes non-negative integers"),
                           (["--jobs", "0"], "--jobs must be at least 1")):
        with pytest.raises(SystemExit) as exit_info:
            script.main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and expected in err and "Traceback" not in err
        lines = err.strip().splitlines()
        assert lines[0].startswith("usage:") and expected in lines[-1] and len(lines) <= 5  # usage + the error only


def test_run_key_changes_with_the_code_and_the_seed(monkeypatch):
    """An edit to the model, training or study code retrains; another seed is another run."""
    from modeling_study.study import runner
    from modeling_study.study import spec as spec_module

    a, b = plan(PRESETS["smoke"], seeds=(42, 43))[:2]
    assert a.labels["seed"] == 42 and b.labels["seed"] == 43 and a.key() != b.key()
    before = a.key()
    assert a.key() == before
    monkeypatch.setattr(spec_module, "code_fingerprint", lambda: "edited")
    assert a.key() != before


def test_translation_questions_run_inside_the_study(tmp_path):
    """The gpu preset plans the translation runs; a reduced smoke study trains and reports them."""
    assert any(s.experiment == "translation" for s in plan(PRESETS["gpu"]))
    assert not any(s.experiment == "translation" for s in plan(PRESETS["default"]))
    preset = replace(PRESETS["smoke"], encodings=("rope",), ablations=(), tasks=False, translation=True,
                     norm=replace(PRESETS["smoke"].norm, placements=()))
    document = run_study(preset, tmp_path, progress=False)
    runs = [r for r in document["runs"] if r["experiment"] == "translation"]
    assert runs and all(r["status"] in (FINISHED, DIVERGED) for r in runs), [r.get("error") for r in runs]
    assert {r["labels"]["seed"] for r in runs} == {42, 43}
    report = (tmp_path / "report.md").read_text()
    assert "## 6. Translation" in report and "BLEU" in report
