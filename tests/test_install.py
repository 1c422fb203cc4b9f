"""The package installed from a wheel, as a user gets it: defaults work from any folder, commands on the PATH.

One slow test builds an sdist and wheels from a clean copy of the checkout, installs the sdist's wheel
into a fresh virtual environment outside the checkout and runs ``modeling-study`` there from an empty
folder. The fresh environment sees the dependencies already installed here (a ``.pth`` line naming
this environment's site-packages: Python adds the folder but does not run the ``.pth`` files inside
it, so the checkout's editable install does not come along) and nothing of the checkout itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("train", "study", "train-translation", "translate", "tokenizer", "demo", "benchmark")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "bytes/tokenizer.json", "bytes/tokenizer_config.json")
# not part of a build: environments, build output, caches, run outputs
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "runs", "study_out", "output", "mutants",
                                    "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "*.pyc")


def run(argv, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def wheel_tokenizers(wheel: Path) -> dict[str, bytes]:
    prefix = "modeling_study/data/tokenizer/"
    with zipfile.ZipFile(wheel) as archive:
        return {name[len(prefix):]: archive.read(name) for name in archive.namelist() if name.startswith(prefix)}


def build(tmp: Path) -> Path:
    """sdist and wheel from a clean copy of the checkout, and a wheel from the sdist; returns the sdist's wheel."""
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=NOT_COPIED)
    run([sys.executable, "-c", "import sys; from setuptools.build_meta import build_sdist; build_sdist(sys.argv[1])",
         tmp / "sdist"], cwd=source)
    (sdist,) = (tmp / "sdist").glob("modeling_study-*.tar.gz")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-q"]
    run([*pip_wheel, "-w", tmp / "from_tree", source], cwd=tmp)
    run([*pip_wheel, "-w", tmp / "from_sdist", sdist], cwd=tmp)
    (from_tree,) = (tmp / "from_tree").glob("*.whl")
    (from_sdist,) = (tmp / "from_sdist").glob("*.whl")
    # the repository's tokenizer/ (the one copy) went into both wheels, byte for byte
    repository = {name: (REPO / "tokenizer" / name).read_bytes() for name in TOKENIZER_FILES}
    assert wheel_tokenizers(from_tree) == repository
    assert wheel_tokenizers(from_sdist) == repository
    with zipfile.ZipFile(from_tree) as a, zipfile.ZipFile(from_sdist) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        entry_points = a.read(next(n for n in a.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "modeling-study = modeling_study.commands:entry_point" in entry_points
    return from_sdist


def fresh_environment(tmp: Path, wheel: Path) -> dict:
    """A virtual environment with only the wheel installed and this environment's packages visible."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp)
    site_packages = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp)
                         .stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "_dependencies_of_the_test_environment.pth").write_text("\n".join(ours) + "\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


PROBE = """
import contextlib, io, json, sys
import modeling_study
from modeling_study.commands import COMMANDS, main
from modeling_study.data import tokenizer_path
helps = {}
for name in [None, *COMMANDS]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([name, "--help"] if name else ["--help"])
        except SystemExit as exit:
            assert exit.code == 0, (name, exit.code)
    helps[name] = out.getvalue()
print(json.dumps({"file": modeling_study.__file__, "helps": helps,
                  "tokenizers": [str(tokenizer_path(n)) for n in ("bpe", "bytes")],
                  "editable_finders": [m for m in sys.modules if "editable" in m]}))
"""


@pytest.mark.slow
def test_wheel_installs_and_its_commands_and_defaults_work_from_an_empty_folder(tmp_path):
    """About 90 s on 2 shared CPU cores: build 10 s, the smoke study (one seed) 30-40 s, three training steps 15 s."""
    env = fresh_environment(tmp_path, build(tmp_path))
    venv = Path(env["VIRTUAL_ENV"]).resolve()
    work = tmp_path / "empty"
    work.mkdir()

    probe = json.loads(run([venv / "bin" / "python", "-c", PROBE], cwd=work, env=env).stdout.strip().splitlines()[-1])
    assert Path(probe["file"]).resolve().is_relative_to(venv), probe["file"]  # not the checkout
    assert probe["editable_finders"] == []  # the checkout's editable install did not come along
    for folder in probe["tokenizers"]:  # shipped inside the installed package
        assert Path(folder).resolve().is_relative_to(venv) and (Path(folder) / "tokenizer.json").is_file()
    listing = probe["helps"].pop("null")
    assert all(f"\n  {name} " in listing for name in SUBCOMMANDS)
    assert list(probe["helps"]) == list(SUBCOMMANDS)
    for name, text in probe["helps"].items():
        assert text.startswith(f"usage: modeling-study {name} "), text[:200]
        assert "python scripts/" not in text  # the examples name the installed command

    assert shutil.which("modeling-study", path=env["PATH"]) == str(venv / "bin" / "modeling-study")
    demo = run(["modeling-study", "demo", "--help"], cwd=work, env=env).stdout
    assert demo.startswith("usage: modeling-study demo [-h]") and "--encodings" in demo

    # the defaults: the packaged tokenizers and corpus, from a folder that has neither
    study = run(["modeling-study", "study", "--preset", "smoke", "--seeds", "42", "--output_dir", "out"],
                cwd=work, env=env, timeout=600)
    assert "Wrote out/report.md" in study.stdout
    assert (work / "out" / "report.md").is_file() and (work / "out" / "results.json").is_file()
    train = run(["modeling-study", "train", "--max_steps", "3", "--max_eval_samples", "8", "--logging_steps", "1"],
                cwd=work, env=env, timeout=600)
    assert "done: step 3" in train.stdout
    final = work / "runs" / "train" / "final"  # --output_dir's default, under the working folder
    assert (final / "tokenizer.json").read_bytes() == (REPO / "tokenizer" / "tokenizer.json").read_bytes()
    assert json.loads((work / "runs" / "train" / "results.json").read_text())["global_step"] == 3
