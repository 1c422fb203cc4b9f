#!/usr/bin/env python
"""Train a study model (causal or masked LM) with Hugging Face Trainer: ``modeling-study train``, from a checkout.

The code is ``modeling_study/commands/train.py`` (installed with the package); ``--help`` describes the flags.
This file runs it under its old name for the commands in README.md and docs/, ``accelerate launch`` and the tests.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # allow running from a checkout without `pip install`
    sys.path.insert(0, str(REPO_ROOT))

from modeling_study.commands import train as _command  # noqa: E402
from modeling_study.commands.train import *  # noqa: E402,F401,F403  (main, build_parser, ...: what tests read here)

if __name__ == "__main__":
    sys.exit(_command.cli())
elif __name__ != "__mp_main__":  # a spawned worker of the script keeps its own __main__
    # imported (``import train``): be the command module itself, so a monkeypatched name reaches its main()
    sys.modules[__name__] = _command
