"""``python -m modeling_study COMMAND ...``: the ``modeling-study`` command (modeling_study/commands)."""

import sys

if __name__ == "__main__":  # not in a spawned worker, which imports this module as __mp_main__
    from modeling_study.commands import main

    sys.exit(main(prog="python -m modeling_study"))
