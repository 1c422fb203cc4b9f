"""One build step on top of pyproject.toml: ship the repository's tokenizers inside the package.

``tokenizer/`` (the byte-level BPE) and ``tokenizer/bytes/`` (the byte tokenizer) stay at the top of the
repository, where ``scripts/train_tokenizer.py`` writes them: the one copy. Building a wheel (from the
checkout or from the sdist, which MANIFEST.in gives ``tokenizer/``) copies them into the built package
as ``modeling_study/data/tokenizer/``, where ``modeling_study.data.tokenizer_path`` finds them in an
install. An editable install copies nothing: ``tokenizer_path`` reads the checkout's folder.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path("tokenizer")  # relative to the project root, the working directory of every build
TARGET = ("modeling_study", "data", "tokenizer")


def tokenizer_files() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts))


class BuildPyWithTokenizers(build_py):
    """``build_py``, then the tokenizer files copied into the build (package data from outside the package)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        files = tokenizer_files()
        if not any(p.name == "tokenizer.json" for p in files):
            raise FileNotFoundError(f"{SOURCE.resolve()} has no tokenizer.json: the package's default tokenizers "
                                    "would be missing (run scripts/train_tokenizer.py, see its --help)")
        for source in files:
            target = Path(self.build_lib, *TARGET, source.relative_to(SOURCE))
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode=True):
        extra = [str(Path(self.build_lib, *TARGET, p.relative_to(SOURCE))) for p in tokenizer_files()]
        return super().get_outputs(include_bytecode) + extra


setup(cmdclass={"build_py": BuildPyWithTokenizers})
