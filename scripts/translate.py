#!/usr/bin/env python
"""Translate a file (or stdin) of English lines to Spanish with a trained model: ``modeling-study translate``.

    python scripts/translate.py runs/translate/final verses.en.txt --output verses.es.txt --num_beams 4

The code is ``modeling_study/translate.py`` (``modeling_study/commands/translate.py`` runs it); ``--help``
describes the flags. This file runs it from a checkout.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # allow running from a checkout without `pip install`
    sys.path.insert(0, str(REPO_ROOT))

from modeling_study.commands import run_as_script  # noqa: E402

run_as_script("translate", __name__, globals())
