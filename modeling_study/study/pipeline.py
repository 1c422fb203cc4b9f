"""``run_study``: plan a preset's runs, train what is missing (within a time budget), write the report.

The top of the study (docs/architecture.md): it joins the layers below it and nothing imports it but
the package's ``__init__`` and the commands. Planning and measuring are the experiments'
(``experiments.py``), scheduling and caching the runner's (``runner.py``), verdicts and the report
``analysis.py`` and ``report.py``'s.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from .presets import GROUPS, PRESETS, Preset
from .runner import _run_all, default_output_dir
from .spec import PENDING, spec_id
from .store import load_runs, pack_runs

REPORT_RESERVE_S = 30  # of a --time_budget, kept for the baselines and the report after training (measured: < 10 s)


def _pending(spec) -> dict:
    return {"experiment": spec.experiment, "name": spec.name, "labels": spec.labels, "status": PENDING,
            "spec": asdict(spec)}


def resolve_preset(preset: str | Preset) -> Preset:
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        return PRESETS[preset]
    return preset


def run_study(preset: str | Preset = "default", output_dir: str | os.PathLike | None = None, *, seeds=None,
              force: bool = False, progress: bool = True, keep_weights: bool = False, report_only: bool = False,
              jobs: int = 1, group: str | None = None, time_budget: float | None = None, runs_from=(),
              pack: str | os.PathLike | None = None) -> dict:
    """Run every planned (condition, seed) run of ``preset`` (skipping cached ones), then write the report.

    ``seeds``: overrides the preset's seeds (at least 2 for any verdict; the presets use 3).
    Returns the document written to ``results.json``. Ctrl-C stops after the run in progress is
    abandoned; everything finished before it is cached and reused by the next invocation.
    ``group``: train only one group of the preset (``presets.GROUPS``: lm, tasks, norm, ablations,
    translation); the report covers every planned run and lists those not trained yet as pending.
    ``time_budget``: seconds for this invocation: no run starts that its experiment's longest run so
    far says cannot finish, a run still training ``REPORT_RESERVE_S`` before the end is abandoned
    (nothing of it written), and the report is written from what is finished. Running again continues.
    ``runs_from``: run folders or archives (``store.pack_runs``) of earlier pieces: their runs count as
    finished whatever code trained them (a GPU window does not retrain what an earlier one committed).
    ``report_only``: train nothing; rebuild the report from the runs found (the cache and ``runs_from``)
    whatever code trained them; planned runs not found are listed as pending.
    ``pack``: afterwards, pack the run files this invocation trained or found in its cache (the chosen
    group's) into this tar.xz (split into numbered parts past ``store.ARCHIVE_LIMIT``).
    ``jobs``: runs trained at once, each in its own process (``default_jobs(preset)``: one per CPU core).
    """
    from .experiments import ambiguity_section, ngram_baselines, plan
    from .report import write_report

    preset = resolve_preset(preset)
    seeds = tuple(seeds) if seeds is not None else preset.seeds
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {seeds!r}.")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (runs trained at once), got {jobs!r}.")
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {group!r}.")
    if time_budget is not None and not time_budget > REPORT_RESERVE_S:
        raise ValueError(f"--time_budget is in seconds and must exceed the {REPORT_RESERVE_S} s kept for the report, "
                         f"got {time_budget!r}.")
    output_dir = Path(output_dir if output_dir is not None else default_output_dir(preset.name))
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output_dir {output_dir} is a file; give a folder (it is created if missing).")
    for source in runs_from:
        if not Path(source).exists():
            raise ValueError(f"--runs_from {source}: no such folder or archive.")
    cache_dir = output_dir / "runs"
    start, clock = time.perf_counter(), time.monotonic()
    specs = plan(preset, seeds)
    earlier = load_runs(*runs_from)
    chosen = [spec for spec in specs if (group is None or spec.experiment in GROUPS[group]) and spec_id(spec) not in earlier]
    trained: dict = {}  # this invocation's results (failed runs included: they are never cached) by spec id
    if not report_only:
        deadline = None if time_budget is None else clock + time_budget - REPORT_RESERVE_S
        with tqdm(total=len(chosen), desc=f"study ({preset.name}{'/' + group if group else ''}, {jobs} at a time)",
                  unit="run", disable=not progress) as bar:
            done = _run_all(chosen, cache_dir, jobs=jobs, force=force, keep_weights=keep_weights,
                            num_threads=preset.num_threads, bar=bar, deadline=deadline)
        trained = {spec_id(spec): result for spec, result in zip(chosen, done) if result is not None}
    if pack is not None:
        pack_runs(cache_dir, Path(pack), keys=[r["key"] for r in trained.values() if r.get("key")])
    found = {**earlier, **load_runs(cache_dir)}  # the archives read once; this folder's runs over theirs
    results = [trained.get(spec_id(spec)) or (dict(found[spec_id(spec)], cached=True) if spec_id(spec) in found
                                              else _pending(spec)) for spec in specs]
    return write_report(output_dir, preset, seeds, results, ambiguity_section(preset, seeds[0]),
                        ngram_baselines(preset), wall_time=time.perf_counter() - start)
