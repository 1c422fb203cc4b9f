"""The study: train variants that differ in one choice and report what that choice changes.

``run_study(preset, output_dir)`` plans the runs of a preset (``presets.py``), trains each with the
package's own Trainer pipeline (``modeling_study.training.run_training``), caches every finished run
under a hash of its spec (``runner.py``), measures what the papers measured (``experiments.py``)
and writes ``report.md``, ``results.json`` and plots (``report.py``).
"""

from .presets import PRESETS, Preset
from .runner import RunSpec, run_study

__all__ = ["PRESETS", "Preset", "RunSpec", "run_study"]
