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
    experiment: str  # "extrapolation" | "norm_placement"
    name: str  # e.g. "rope", "post, no warmup"
    train: dict  # keyword arguments of modeling_study.training.make_arguments (no output_dir)
    config_overrides: dict = field(default_factory=dict)  # extra StudyConfig fields (run_training's config_overrides)
    eval_lengths: tuple[int, ...] = ()  # perplexity at these lengths after training
    eval_tokens: int = 0  # validation tokens scored at every length
    init_grad_norms: bool = False  # per-layer gradient norm of the untrained model (Xiong et al. Fig. 3)
    labels: dict = field(default_factory=dict)  # for the report: e.g. {"placement": "post", "warmup": False}

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
        if path.name not in ("report.py", "plots.py", "ambiguity.py", "convert.py", "model_card.py"):  # not in the numbers
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def write_json_atomic(path: Path, data) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


def run_one(spec: RunSpec, cache_dir: Path, force: bool = False) -> dict:
    """Train and measure one spec, or return its cached result."""
    from .experiments import measure

    cached = cache_dir / f"{spec.key()}.json"
    if cached.exists() and not force:
        result = json.loads(cached.read_text())
        result["cached"] = True
        return result
    work_dir = cache_dir / spec.key()
    start = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Trainer's log lines and save bars go to the run's log file; the study shows one bar over the runs
        with open(cache_dir / f"{spec.key()}.log", "w") as log, redirect_stdout(log), redirect_stderr(log):
            result = measure(spec, work_dir)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # one broken run must not stop the study
        return {"experiment": spec.experiment, "name": spec.name, "labels": spec.labels, "status": FAILED,
                "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=5)}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)  # checkpoints and weights are not kept: the numbers are
    result.update(experiment=spec.experiment, name=spec.name, labels=spec.labels, key=spec.key(),
                  spec=asdict(spec), wall_time=time.perf_counter() - start)
    result = _finite(result)
    write_json_atomic(cached, result)
    result["cached"] = False
    return result


def run_study(preset: str | Preset = "default", output_dir: str | os.PathLike = "study_out", *, seed: int = 42,
              force: bool = False, progress: bool = True) -> dict:
    """Run every planned run of ``preset`` (skipping cached ones), then write the report.

    Returns the document written to ``results.json``. Ctrl-C stops after the run in progress is
    abandoned; everything finished before it is cached and reused by the next invocation.
    """
    from .experiments import ambiguity_section, plan, unigram_loss
    from .report import write_report

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        preset = PRESETS[preset]
    output_dir = Path(output_dir)
    cache_dir = output_dir / "runs"
    start = time.perf_counter()
    specs = plan(preset, seed)
    results = []
    bar = tqdm(specs, desc=f"study ({preset.name})", unit="run", disable=not progress)
    for spec in bar:
        bar.set_postfix_str(f"{spec.experiment}: {spec.name}")
        results.append(run_one(spec, cache_dir, force=force))
    bar.close()
    ambiguity = ambiguity_section(preset, seed)
    return write_report(output_dir, preset, seed, results, ambiguity, wall_time=time.perf_counter() - start,
                        unigram_loss=unigram_loss(preset))
