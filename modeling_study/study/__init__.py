"""The study: train variants that differ in one choice, over several seeds, and report what that
choice changes with the spread the seeds allow.

``run_study(preset, output_dir, seeds=...)`` plans the (condition, seed) runs of a preset
(``presets.py``), trains each with the package's own Trainer pipeline, caches every finished run on
its own under a hash of its spec (``spec.py``, ``runner.py``, ``store.py``), measures what the papers measured
(``experiments.py``, ``lm.py``, ``tasks.py``), holds the models against n-gram baselines
(``ngram.py``), turns per-seed numbers into verdicts (``stats.py``, ``analysis.py``) and writes
``report.md``, ``results.json`` and plots (``report.py``, ``plots.py``).
"""

from .pipeline import run_study
from .presets import PRESETS, Preset
from .runner import default_jobs, default_output_dir, parse_seeds
from .spec import RunSpec

__all__ = ["PRESETS", "Preset", "RunSpec", "default_jobs", "default_output_dir", "parse_seeds", "run_study"]
