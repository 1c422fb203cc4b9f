"""Plan, run and cache the study's training runs.

Every run is a ``RunSpec``: what to pass to ``make_arguments`` and what to measure afterwards. Its
key is a hash of the spec, the package, torch and transformers versions and the source of the model,
training and study code (an edit there retrains); a finished run's
result is written atomically to ``<output_dir>/runs/<key>.json`` the moment it finishes, so a
restart (after a crash or Ctrl-C) skips it and loses at most the run in progress. Failed runs are
recorded in the report but not cached, so the next invocation tries them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .presets import PRESETS, Preset

FINISHED, DIVERGED, NOT_APPLICABLE, FAILED = "finished", "diverged", "not_applicable", "failed"


@dataclass(frozen=True)
class RunSpec:
    experiment: str  # a key of experiments.MEASURES: "lm", "ablation", "norm_grid", "init_grad", "tasks", ...
    name: str  # unique within the experiment, seed included: e.g. "rope/seed42"
    train: dict  # keyword arguments of modeling_study.training.make_arguments (no output_dir)
    config_overrides: dict = field(default_factory=dict)  # extra StudyConfig fields (run_training's config_overrides)
    labels: dict = field(default_factory=dict)  # for the report: e.g. {"placement": "post", "warmup": False, "seed": 42}
    measure: dict = field(default_factory=dict)  # what to measure after training (the experiment's own settings)

    def key(self) -> str:
        import torch
        import transformers

        from modeling_study import __version__

        versions = {"modeling_study": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                    "code": code_fingerprint()}
        payload = json.dumps({"spec": asdict(self), "versions": versions}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def code_fingerprint() -> str:
    """Hash of the sources that decide a run's numbers (model, training, study), so an edit retrains."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*package.glob("*.py"), *package.glob("training/*.py"), *package.glob("study/*.py")]):
        # not in a run's cached numbers: reporting, analysis and the baselines computed at report time
        if path.name not in ("report.py", "plots.py", "analysis.py", "stats.py", "ngram.py", "ambiguity.py",
                             "convert.py", "model_card.py"):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, data) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file.

    mkstemp creates the file 0600; it gets the mode any other output gets (0666 minus the umask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, allow_nan=False, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value):
    if isinstance(value, float):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value):
    """NaN/Inf -> None, recursively, so results.json stays strict JSON."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class _threads:
    """``torch.set_num_threads(n)`` for the duration of a run (None: leave torch's setting)."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def run_one(spec: RunSpec, cache_dir: Path, force: bool = False, keep_weights: bool = False,
            num_threads: int | None = None, key: str | None = None) -> dict:
    """Train and measure one (condition, seed) spec, or return its cached result.

    ``key``: ``spec.key()`` computed when the study was planned (default: now). The study passes it,
    so a source file edited while the study runs changes neither the key a run is cached under nor
    whether it counts as cached.

    The cached JSON keeps every per-seed measurement (loss curves, per-target and per-position
    losses), so a new analysis of the same runs does not retrain. ``keep_weights`` also keeps the
    trained model (safetensors) in ``<cache_dir>/<key>/final``; otherwise the work folder is deleted.
    """
    from .experiments import measure

    key = key or spec.key()
    cached = cache_dir / f"{key}.json"
    if cached.exists() and not force:
        result = json.loads(cached.read_text())
        result["cached"] = True
        return result
    work_dir = cache_dir / key
    shutil.rmtree(work_dir, ignore_errors=True)  # a forced rerun starts clean (Trainer refuses a used output_dir)
    start = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Trainer's log lines and save bars go to the run's log file; the study shows one bar over the runs
        with open(cache_dir / f"{key}.log", "w") as log, redirect_stdout(log), redirect_stderr(log), _threads(num_threads):
            result = measure(spec, work_dir, keep_weights=keep_weights)
    except KeyboardInterrupt:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    except Exception as error:  # one broken run must not stop the study
        shutil.rmtree(work_dir, ignore_errors=True)
        return {"experiment": spec.experiment, "name": spec.name, "labels": spec.labels, "status": FAILED,
                "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=5)}
    if not keep_weights:
        shutil.rmtree(work_dir, ignore_errors=True)  # checkpoints and weights: the measurements are kept instead
    result.update(experiment=spec.experiment, name=spec.name, labels=spec.labels, key=key,
                  spec=asdict(spec), wall_time=time.perf_counter() - start)
    result = _finite(result)
    write_json_atomic(cached, result)
    result["cached"] = False
    return result


def default_output_dir(preset: str) -> str:
    """Each preset writes to its own folder, so a smoke run never overwrites a default report."""
    return os.path.join("study_out", preset)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"42,43,44"`` or ``"42-46"`` (non-negative integers) -> seeds; a clear ValueError otherwise."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"--seeds takes non-negative integers separated by commas, or a range like 42-44; got {text!r}.")
        seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must list distinct seeds, got {text!r}.")
    return tuple(seeds)


def _spec_id(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def cached_results(cache_dir: Path) -> dict:
    """Every cached run in ``cache_dir`` by its spec (whatever code version trained it), newest first wins."""
    found: dict = {}
    for path in sorted(Path(cache_dir).glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(result, dict) and "spec" in result:
            found[_spec_id(result["spec"])] = result
    return found


def default_jobs(preset: Preset) -> int:
    """Runs at a time: one per usable CPU core when each run uses one torch thread, else 1."""
    if preset.num_threads is None:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // preset.num_threads)


def _worker_init() -> None:
    import signal

    from transformers.utils import logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it terminates the workers
    logging.set_verbosity_error()


def _indexed_run(job: tuple) -> tuple[int, dict]:
    i, spec, key, kwargs = job
    return i, run_one(spec, key=key, **kwargs)


def _run_all(specs: list[RunSpec], cache_dir: Path, *, jobs: int, force: bool, keep_weights: bool,
             num_threads: int | None, bar) -> list[dict]:
    """Every spec's result, in plan order; ``jobs`` > 1 trains that many runs at once in worker processes.

    Workers are spawned (a fork of a process whose OpenMP pool has started can hang). Each run writes
    its own cache file atomically, so results do not depend on ``jobs`` (one torch thread gives the
    same numbers in any process) and Ctrl-C, which terminates the workers, loses only runs in progress.
    """
    kwargs = dict(cache_dir=cache_dir, force=force, keep_weights=keep_weights, num_threads=num_threads)
    keys = [spec.key() for spec in specs]  # now: the code as it is when the study starts
    results: list = [None] * len(specs)
    if jobs == 1:
        for i, spec in enumerate(specs):
            bar.set_postfix_str(f"{spec.experiment}: {spec.name}")
            results[i] = run_one(spec, key=keys[i], **kwargs)
            bar.update()
        return results
    import multiprocessing

    from .experiments import prepare_data

    prepare_data(specs)  # fill the datasets cache once, before workers read it at the same time
    with multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker_init) as pool:  # exit: terminate
        for i, result in pool.imap_unordered(_indexed_run, [(i, spec, keys[i], kwargs) for i, spec in enumerate(specs)]):
            results[i] = result
            bar.set_postfix_str(f"{specs[i].experiment}: {specs[i].name}")
            bar.update()
    return results


def run_study(preset: str | Preset = "default", output_dir: str | os.PathLike | None = None, *, seeds=None,
              force: bool = False, progress: bool = True, keep_weights: bool = False, report_only: bool = False,
              jobs: int = 1) -> dict:
    """Run every planned (condition, seed) run of ``preset`` (skipping cached ones), then write the report.

    ``seeds``: overrides the preset's seeds (at least 2 for any verdict; the presets use 3).
    Returns the document written to ``results.json``. Ctrl-C stops after the run in progress is
    abandoned; everything finished before it is cached and reused by the next invocation.
    ``report_only``: train nothing; rebuild the report from the cached runs of the same specs, even if
    the code has changed since (a new view of the same runs). A planned run not in the cache is a
    ValueError naming how many are missing.
    ``jobs``: runs trained at once, each in its own process (``default_jobs(preset)``: one per CPU core).
    """
    from .experiments import ambiguity_section, ngram_baselines, plan
    from .report import write_report

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        preset = PRESETS[preset]
    seeds = tuple(seeds) if seeds is not None else preset.seeds
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {seeds!r}.")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (runs trained at once), got {jobs!r}.")
    output_dir = Path(output_dir if output_dir is not None else default_output_dir(preset.name))
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output_dir {output_dir} is a file; give a folder (it is created if missing).")
    cache_dir = output_dir / "runs"
    start = time.perf_counter()
    specs = plan(preset, seeds)
    if report_only:
        found = cached_results(cache_dir)
        missing = [spec.name for spec in specs if _spec_id(asdict(spec)) not in found]
        if missing:
            raise ValueError(f"--report_only: {len(missing)} of {len(specs)} planned runs are not in {cache_dir} "
                             f"(e.g. {missing[0]}); run without --report_only to train them.")
        results = [dict(found[_spec_id(asdict(spec))], cached=True) for spec in specs]
        return write_report(output_dir, preset, seeds, results, ambiguity_section(preset, seeds[0]),
                            ngram_baselines(preset), wall_time=time.perf_counter() - start)
    with tqdm(total=len(specs), desc=f"study ({preset.name}, {jobs} at a time)", unit="run",
              disable=not progress) as bar:
        results = _run_all(specs, cache_dir, jobs=jobs, force=force, keep_weights=keep_weights,
                           num_threads=preset.num_threads, bar=bar)
    baselines = ngram_baselines(preset)
    ambiguity = ambiguity_section(preset, seeds[0])
    return write_report(output_dir, preset, seeds, results, ambiguity, baselines,
                        wall_time=time.perf_counter() - start)
