"""What one run of the study is: its spec, its key, and the statuses a result can have.

The bottom layer of the study (docs/architecture.md): it imports nothing of the study, so the
experiments that build specs, the runner that schedules them and the report that reads their
results all depend on this file and not on each other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FINISHED, DIVERGED, NOT_APPLICABLE, FAILED = "finished", "diverged", "not_applicable", "failed"
PENDING = "pending"  # planned but not trained yet (a study stopped by its time budget, or a group not run)


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
                             "convert.py", "model_card.py", "pipeline.py", "store.py", "runner.py",
                             "__main__.py", "cli.py", "translate.py"):  # and the command line's
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _portable(spec: dict) -> dict:
    """The spec with machine-specific paths replaced by what they name.

    A run's ``tokenizer_name`` is the absolute path of one of the package's tokenizer folders; the
    same run trained in another checkout (or an installed package, or the GPU machine's copy) has
    another path but the same tokenizer, so spec ids compare the folder's last two parts.
    """
    train = spec.get("train", {})
    name = train.get("tokenizer_name")
    if isinstance(name, str) and ("/" in name or "\\" in name):
        parts = Path(name).parts
        spec = dict(spec, train=dict(train, tokenizer_name="/".join(parts[-2:]) if parts[-1] == "bytes" else parts[-1]))
    return spec


def spec_id(spec: dict | RunSpec) -> str:
    """A spec's identity across machines and code versions (what ``--report_only`` matches runs by)."""
    if isinstance(spec, RunSpec):
        spec = asdict(spec)
    return json.dumps(_portable(spec), sort_keys=True, default=str)


__all__ = ["DIVERGED", "FAILED", "FINISHED", "NOT_APPLICABLE", "PENDING", "RunSpec", "code_fingerprint", "spec_id"]
