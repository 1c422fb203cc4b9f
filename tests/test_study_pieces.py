"""The study in pieces that add up: a time budget that stops cleanly and resumes, groups, run archives.

What a GPU window does (train one group within a budget, pack its runs) and what a CPU machine does
afterwards (rebuild the report from the committed archives), on the CPU at smoke size.
"""

import json
import tarfile
import time
from dataclasses import replace

import pytest

from modeling_study.study import PRESETS, run_study
from modeling_study.study import experiments, pipeline, runner
from modeling_study.study.experiments import plan
from modeling_study.study.presets import GROUPS
from modeling_study.study.spec import FINISHED, PENDING
from modeling_study.study.store import load_runs, pack_runs

pytestmark = pytest.mark.slow
NUMBERS = ("lm", "ablations", "norm_placement", "tasks")
TWO_RUNS = replace(PRESETS["smoke"], encodings=("rope",), ablations=(), tasks=False,
                   norm=replace(PRESETS["smoke"].norm, placements=()))  # rope x seeds 42, 43


def _bar():
    return type("Bar", (), {"set_postfix_str": lambda *a: None, "update": lambda *a: None})()


def test_a_budget_stops_cleanly_and_the_next_call_gives_the_uninterrupted_numbers(tmp_path, monkeypatch):
    uninterrupted = run_study(TWO_RUNS, tmp_path / "whole", progress=False)

    real = experiments.measure

    def second_run_hangs(spec, work_dir, keep_weights=False):
        if spec.labels["seed"] == 43:
            (work_dir / "half-written").mkdir(parents=True)
            time.sleep(600)  # a run that cannot finish inside the budget
        return real(spec, work_dir, keep_weights)

    monkeypatch.setattr(experiments, "measure", second_run_hangs)
    monkeypatch.setattr(pipeline, "REPORT_RESERVE_S", 0)
    started = time.monotonic()
    stopped = run_study(TWO_RUNS, tmp_path / "pieces", progress=False, time_budget=20)
    assert time.monotonic() - started < 60  # the budget, plus the report
    status = {r["name"]: r["status"] for r in stopped["runs"]}
    assert status["rope/seed43"] == PENDING and set(status.values()) <= {FINISHED, PENDING}
    cache = tmp_path / "pieces" / "runs"
    files = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    assert all(f["status"] == FINISHED for f in files) and len(files) == list(status.values()).count(FINISHED)
    assert not [p for p in cache.iterdir() if p.is_dir()]  # the abandoned run's work folder is gone
    assert not list(cache.glob(".*.tmp"))  # and nothing half-written
    assert "Pending: " in (tmp_path / "pieces" / "report.md").read_text()

    monkeypatch.setattr(experiments, "measure", real)
    resumed = run_study(TWO_RUNS, tmp_path / "pieces", progress=False)
    assert {r["status"] for r in resumed["runs"]} == {FINISHED}
    for key in NUMBERS:
        assert resumed[key] == uninterrupted[key]


def test_worker_processes_past_the_deadline_are_terminated_and_leave_nothing(tmp_path):
    """--jobs > 1: a run still training at the deadline is abandoned with its worker (spawning alone takes
    longer than this budget, so the run cannot have finished)."""
    specs = [s for s in plan(TWO_RUNS) if s.experiment == "lm"]
    results = runner._run_all(specs, tmp_path, jobs=2, force=False, keep_weights=False, num_threads=1, bar=_bar(),
                              deadline=time.monotonic() + 1.0)
    assert results == [None, None]
    assert not list(tmp_path.glob("*.json")) and not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_a_budget_too_small_for_the_report_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must exceed the 30 s kept for the report"):
        run_study(TWO_RUNS, tmp_path, time_budget=30)
    with pytest.raises(ValueError, match="group must be one of lm, ablations, norm, tasks, translation"):
        run_study(TWO_RUNS, tmp_path, group="everything")
    with pytest.raises(ValueError, match="--runs_from .* no such folder or archive"):
        run_study(TWO_RUNS, tmp_path, runs_from=[tmp_path / "missing.tar.xz"])


def test_the_gpu_workflow_group_by_group_rebuilds_from_the_archives_alone(tmp_path, monkeypatch):
    """Each group trained on its own and packed, as on a GPU machine; the report rebuilt from the archives only."""
    preset = PRESETS["gpu_smoke"]
    assert set(GROUPS) == {"lm", "ablations", "norm", "tasks", "translation"}
    archives = []
    for i, group in enumerate(GROUPS):
        window = tmp_path / f"window{i}"  # a fresh machine each time: only the committed archives come along
        document = run_study(preset, window, progress=False, group=group, runs_from=archives,
                             pack=tmp_path / "committed" / f"runs-{group}.tar.xz")
        mine = [r for r in document["runs"] if r["experiment"] in GROUPS[group]]
        assert mine and all(r["status"] == FINISHED for r in mine), [r.get("error") for r in mine]
        archives.append(tmp_path / "committed" / f"runs-{group}.tar.xz")
        with tarfile.open(archives[-1]) as archive:
            assert len(archive.getnames()) == len(mine)
    # nothing is retrained once committed, whatever the code
    monkeypatch.setattr(experiments, "measure", lambda *a, **k: pytest.fail("a committed run was trained again"))
    run_study(preset, tmp_path / "again", progress=False, group="lm", runs_from=archives)
    rebuilt = run_study(preset, tmp_path / "report", progress=False, report_only=True, runs_from=archives)
    assert len(rebuilt["runs"]) == len(plan(preset)) and {r["status"] for r in rebuilt["runs"]} == {FINISHED}
    assert "## 6. Translation" in (tmp_path / "report" / "report.md").read_text()
    assert rebuilt["meta"]["tally"] == run_study(preset, tmp_path / "report", progress=False, report_only=True,
                                                 runs_from=archives)["meta"]["tally"]


def test_archives_split_at_the_size_limit_and_read_back_like_folders(tmp_path):
    cache = tmp_path / "runs"
    cache.mkdir()
    for i in range(5):
        spec = {"experiment": "lm", "name": f"r{i}", "train": {"tokenizer_name": "/a/checkout/tokenizer/bytes"}}
        (cache / f"key{i}.json").write_text(json.dumps({"spec": spec, "status": FINISHED, "payload": str(i) * 4000}))
    one = pack_runs(cache, tmp_path / "all.tar.xz")
    assert one == [tmp_path / "all.tar.xz"]
    import lzma

    each = max(len(lzma.compress(p.read_bytes(), preset=6)) for p in cache.glob("*.json")) + 1024
    parts = pack_runs(cache, tmp_path / "small.tar.xz", limit=2 * each + 8)  # two run files per archive
    assert [p.name for p in parts] == ["small-1.tar.xz", "small-2.tar.xz", "small-3.tar.xz"]
    assert load_runs(*parts).keys() == load_runs(cache).keys() == load_runs(one[0]).keys()
    assert load_runs(tmp_path).keys() == load_runs(cache).keys()  # a folder's archives are read too
    assert len(load_runs(*parts)) == 5
    # a run trained in another checkout is the same run: the tokenizer folder is compared by what it names
    moved = {"experiment": "lm", "name": "r0", "train": {"tokenizer_name": "/elsewhere/site-packages/tokenizer/bytes"}}
    from modeling_study.study.spec import spec_id

    assert spec_id(moved) in load_runs(cache)
    with pytest.raises(ValueError, match="over the 100-byte archive limit"):
        pack_runs(cache, tmp_path / "tiny.tar.xz", limit=100)


def test_the_gpu_preset_meets_the_study_issue_targets():
    """Sizes the study's questions need (before any GPU run): checked from the plan, no training."""
    import torch

    from modeling_study import StudyConfig, StudyForCausalLM
    from modeling_study.study.tasks import TASK_SETTINGS

    preset = PRESETS["gpu"]
    specs = plan(preset)
    assert {s.experiment for s in specs} == {e for group in GROUPS.values() for e in group}
    lm = preset.lm
    assert lm.train_length >= 256 and lm.steps * lm.batch_size * lm.train_length >= 20_000_000
    assert lm.context_targets >= 16_384 and lm.factor == 8 and len(preset.seeds) >= 3
    with torch.device("meta"):
        model = StudyForCausalLM(StudyConfig(**lm.model, vocab_size=261))
    assert 8e6 < sum(p.numel() for p in model.parameters()) < 12e6  # "about 10M parameters"
    assert TASK_SETTINGS["gpu"].train_max_length == 20 and {1, 1.5, 2} <= set(TASK_SETTINGS["gpu"].test_multipliers)
    grid = preset.norm
    assert grid.model["num_hidden_layers"] >= 12 and len(grid.learning_rates) >= 4 and grid.warmup_steps > 0
    assert preset.translation and preset.num_threads is None
