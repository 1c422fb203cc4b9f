"""Where finished runs live: one small JSON file per run, written atomically, read back by spec.

A study's cache folder (``<output_dir>/runs``) holds ``<key>.json`` per finished run. The same files
packed into one archive (``pack_runs``: tar.xz, what comes back from a GPU machine and is committed)
are read by ``load_runs`` exactly like a folder, so a report can be rebuilt on any machine from the
repository alone.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path

from .spec import spec_id


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


def finite(value):
    """NaN/Inf -> None, recursively, so results.json stays strict JSON."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _results_in(source: Path):
    """(mtime, parsed JSON) of every run file in a folder (and in the run archives it holds) or an archive."""
    if source.is_dir():
        for path in source.glob("*.json"):
            try:
                yield path.stat().st_mtime, json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        for path in sorted(source.glob("*.tar.xz")):
            yield from _results_in(path)
    elif source.is_file():
        with tarfile.open(source) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith(".json"):
                    try:
                        yield member.mtime, json.loads(archive.extractfile(member).read())
                    except ValueError:
                        continue


def load_runs(*sources) -> dict:
    """Every run found in ``sources`` (cache folders or run archives) by its spec id; the newest wins."""
    found: list = []
    for source in sources:
        found += [item for item in _results_in(Path(source)) if isinstance(item[1], dict) and "spec" in item[1]]
    return {spec_id(result["spec"]): result for _, result in sorted(found, key=lambda item: item[0])}


def cached_results(cache_dir: Path) -> dict:
    """Every cached run in ``cache_dir`` by its spec (whatever code version trained it), newest first wins."""
    return load_runs(cache_dir)


ARCHIVE_LIMIT = 15 * 2 ** 20  # bytes per archive: what comes back from a GPU machine is at most 16 MiB a file


def pack_runs(cache_dir: Path, archive: Path, keys=None, limit: int = ARCHIVE_LIMIT) -> list[Path]:
    """Pack the run files of ``cache_dir`` (only ``keys`` if given) into tar.xz archives of at most ``limit`` bytes.

    One archive ``archive`` when everything fits, else ``<stem>-1.tar.xz``, ``<stem>-2.tar.xz``, ...
    (each file compressed alone first to know its size; a single run file over the limit is an error).
    Each archive is written atomically. Returns the archives written.
    """
    import io
    import lzma

    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(cache_dir).glob("*.json"))
    if keys is not None:
        wanted = set(keys)
        files = [path for path in files if path.stem in wanted]
    bins: list[list[Path]] = [[]]
    used = 0
    for path in files:
        size = len(lzma.compress(path.read_bytes(), preset=6)) + 1024  # + tar header and slack
        if size > limit:
            raise ValueError(f"{path.name} alone compresses to {size} bytes, over the {limit}-byte archive limit.")
        if used + size > limit and bins[-1]:
            bins.append([])
            used = 0
        bins[-1].append(path)
        used += size
    stem = archive.name.removesuffix(".tar.xz")
    names = [archive] if len(bins) == 1 else [archive.with_name(f"{stem}-{i}.tar.xz") for i in range(1, len(bins) + 1)]
    for name, members in zip(names, bins):
        fd, tmp = tempfile.mkstemp(dir=name.parent, prefix=f".{name.name}.", suffix=".tmp")
        os.close(fd)
        try:
            with tarfile.open(tmp, "w:xz") as out:
                for path in members:
                    data = path.read_bytes()
                    info = tarfile.TarInfo(path.name)
                    info.size, info.mtime, info.mode = len(data), int(path.stat().st_mtime), 0o644
                    out.addfile(info, io.BytesIO(data))
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return names


__all__ = ["cached_results", "finite", "load_runs", "pack_runs", "write_json_atomic"]
