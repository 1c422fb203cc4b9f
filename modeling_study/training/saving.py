"""Atomic final save: a final model folder is either complete or absent, never half-written.

Everything (weights, config, tokenizer, results.json, README.md card) is written into
``<output_dir>/.tmp-final-<random>`` and only then renamed to ``<output_dir>/final``; a rename
within one file system is atomic, so a crash or a failed write part-way leaves the temporary folder
(removed on the next save) and whatever ``final`` there was before, untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

FINAL_DIRNAME = "final"
RESULTS_NAME = "results.json"
TRAINING_ARGS_JSON = "training_args.json"  # the final folder's copy of the arguments (Trainer's own is a pickle)
TMP_PREFIX = ".tmp-final-"


def json_safe(value):
    """NaN/Inf -> None (strict JSON has no NaN), tuples -> lists, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(json_safe(data), handle, indent=2, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_final_atomic(
    output_dir: str | os.PathLike,
    write: Callable[[Path], None],
    *,
    is_main: bool = True,
    barrier: Callable[[], None] = lambda: None,
    tmp_name: str | None = None,
) -> Path:
    """Call ``write(tmp_dir)`` to fill a temporary folder, then rename it to ``<output_dir>/final``.

    If ``write`` raises, the temporary folder is deleted and the error re-raised; an existing
    ``final`` is replaced only once the new one is complete. Several processes (FSDP, DeepSpeed
    gather weights collectively) pass ``is_main``, a ``barrier`` and a ``tmp_name`` they agree on;
    every process calls ``write``, only the main one creates, renames and cleans up.
    """
    output_dir = Path(output_dir)
    tmp = output_dir / (tmp_name or f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}")
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        for stale in output_dir.glob(f"{TMP_PREFIX}*"):  # left by a process killed mid-save
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    barrier()
    try:
        write(tmp)
    except BaseException:
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    barrier()
    final = output_dir / FINAL_DIRNAME
    if is_main:
        if final.exists():
            # os.replace cannot replace a non-empty folder: move the old one aside first; in the
            # short gap there is no `final` at all, never an incomplete one.
            old = Path(tempfile.mkdtemp(prefix=".old-final-", dir=output_dir))
            os.replace(final, old / FINAL_DIRNAME)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    barrier()
    return final


__all__ = ["FINAL_DIRNAME", "RESULTS_NAME", "TRAINING_ARGS_JSON", "json_safe", "save_final_atomic", "write_json_atomic"]
