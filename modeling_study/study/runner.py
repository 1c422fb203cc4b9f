"""Schedule and cache the study's training runs (the runner: it plans nothing and reports nothing).

Every run is a ``RunSpec`` (``spec.py``): what to pass to ``make_arguments`` and what to measure afterwards. Its
key is a hash of the spec, the package, torch and transformers versions and the source of the model,
training and study code (an edit there retrains); a finished run's
result is written atomically to ``<output_dir>/runs/<key>.json`` the moment it finishes, so a
restart (after a crash or Ctrl-C) skips it and loses at most the run in progress. Failed runs are
recorded in the report but not cached, so the next invocation tries them again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict
from pathlib import Path

from .spec import FAILED, RunSpec
from .store import finite, write_json_atomic


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
    from .experiments import measure  # the experiments layer: below the runner, which only schedules

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
    except (KeyboardInterrupt, BudgetExceeded):
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
    result = finite(result)
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


def default_jobs(preset) -> int:
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


class BudgetExceeded(BaseException):
    """The study's time budget ran out while a run was training (a BaseException, like Ctrl-C: never a failed run)."""


class _alarm:
    """Raise ``BudgetExceeded`` in this (main) thread at ``deadline`` (a ``time.monotonic()`` value; None: never)."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline

    def _fire(self, *args):
        raise BudgetExceeded

    def __enter__(self):
        import signal

        if self.deadline is not None:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, max(self.deadline - time.monotonic(), 1e-3))

    def __exit__(self, *exc):
        import signal

        if self.deadline is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def _is_cached(spec_key: str, cache_dir: Path, force: bool) -> bool:
    return not force and (cache_dir / f"{spec_key}.json").exists()


def _fits(spec: RunSpec, durations: dict, deadline: float | None) -> bool:
    """Start a run only if it can finish before the deadline: its experiment's longest run so far must fit."""
    if deadline is None:
        return True
    return time.monotonic() + durations.get(spec.experiment, 0.0) < deadline


def _abandon(cache_dir: Path, key: str) -> None:
    shutil.rmtree(cache_dir / key, ignore_errors=True)  # its work folder; its result file was never written


def _run_all(specs: list[RunSpec], cache_dir: Path, *, jobs: int, force: bool, keep_weights: bool,
             num_threads: int | None, bar, deadline: float | None = None) -> list[dict | None]:
    """Every spec's result, in plan order; ``jobs`` > 1 trains that many runs at once in worker processes.

    Workers are spawned (a fork of a process whose OpenMP pool has started can hang). Each run writes
    its own cache file atomically, so results do not depend on ``jobs`` (one torch thread gives the
    same numbers in any process) and Ctrl-C, which terminates the workers, loses only runs in progress.

    ``deadline`` (a ``time.monotonic()`` value): no run starts unless the longest run of its experiment
    trained so far would end before it, and a run still training at the deadline is abandoned (its
    worker terminated, or interrupted in this process, its work folder removed; a result file is only
    ever written whole). A spec not run has ``None`` in the returned list: the next call trains it.
    """
    kwargs = dict(cache_dir=cache_dir, force=force, keep_weights=keep_weights, num_threads=num_threads)
    keys = [spec.key() for spec in specs]  # now: the code as it is when the study starts
    results: list = [None] * len(specs)
    durations: dict = {}  # experiment -> longest training time seen in this call (s)

    def record(i: int, result: dict, seconds: float) -> None:
        results[i] = result
        if not result.get("cached"):
            durations[specs[i].experiment] = max(durations.get(specs[i].experiment, 0.0), seconds)
        bar.set_postfix_str(f"{specs[i].experiment}: {specs[i].name}")
        bar.update()

    if jobs == 1:
        for i, spec in enumerate(specs):
            cached = _is_cached(keys[i], cache_dir, force)
            if not (cached or _fits(spec, durations, deadline)):
                continue
            bar.set_postfix_str(f"{spec.experiment}: {spec.name}")
            started = time.monotonic()
            try:
                with _alarm(None if cached else deadline):
                    result = run_one(spec, key=keys[i], **kwargs)
            except BudgetExceeded:
                _abandon(cache_dir, keys[i])
                break
            record(i, result, time.monotonic() - started)
        return results
    import multiprocessing

    from .experiments import prepare_data

    prepare_data(specs)  # fill the datasets cache once, before workers read it at the same time
    waiting = list(range(len(specs)))
    running: dict = {}  # plan index -> (AsyncResult, start time)
    with multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker_init) as pool:  # exit: terminate
        while waiting or running:
            while waiting and len(running) < jobs:
                i = waiting.pop(0)
                if _is_cached(keys[i], cache_dir, force) or _fits(specs[i], durations, deadline):
                    running[i] = (pool.apply_async(_indexed_run, ((i, specs[i], keys[i], kwargs),)), time.monotonic())
            done = [i for i, (job, _) in running.items() if job.ready()]
            for i in done:
                job, started = running.pop(i)
                record(i, job.get()[1], time.monotonic() - started)
            if deadline is not None and time.monotonic() >= deadline and running:
                pool.terminate()  # the runs in progress: abandoned, nothing of them written
                pool.join()
                for i in running:
                    _abandon(cache_dir, keys[i])
                break
            if not done:
                time.sleep(0.05)
    return results
