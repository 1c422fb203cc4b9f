#!/usr/bin/env python
"""Train a byte-level BPE tokenizer and save it as a transformers PreTrainedTokenizerFast: ``modeling-study tokenizer``, from a checkout.

The code is ``modeling_study/commands/tokenizer.py`` (installed with the package); ``--help`` describes the flags.
This file runs it under its old name for the commands in README.md and docs/, ``accelerate launch`` and the tests.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # allow running from a checkout without `pip install`
    sys.path.insert(0, str(REPO_ROOT))

from modeling_study.commands import run_as_script  # noqa: E402

run_as_script("tokenizer", __name__, globals())
