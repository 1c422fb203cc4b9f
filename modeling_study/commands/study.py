"""The study: train variants that differ in one choice, over several seeds, and report what each
choice changes, next to what the papers found, with verdicts the spread between seeds supports.

    python scripts/run_study.py                    # default preset, 3 seeds: 4 min on 2 idle CPU cores
    python scripts/run_study.py --preset smoke     # checks the machinery (the tests run it)
    python scripts/run_study.py --preset long      # the committed report (docs/study): 65 min on 2 idle cores
    python scripts/run_study.py --preset gpu --group lm --time_budget 420 --pack runs-lm.tar.xz
                                                   # one group of the GPU preset in one short GPU window

Writes report.md, results.json and PNG plots to --output_dir (default study_out/<preset>). Every
finished (run, seed) is cached on its own under a hash of its spec in <output_dir>/runs, so an
interrupted study continues where it stopped, and adding a seed trains only that seed. With
--time_budget it stops cleanly in time (no run half-written) and the same command continues; --group
trains one group; --pack archives its runs, which --runs_from reads back on any machine.
"""

from __future__ import annotations

import sys

from modeling_study.cli import ArgumentParser
from modeling_study.commands import describe
from modeling_study.study import PRESETS, default_jobs, default_output_dir, parse_seeds, run_study
from modeling_study.study.presets import GROUPS

SCRIPT = "run_study.py"  # the checkout's scripts/run_study.py


def main(argv=None, prog: str | None = None) -> int:
    """``prog`` None: argparse's own (the script's file name)."""
    parser = ArgumentParser(prog=prog, description=describe(__doc__, SCRIPT, prog))  # one-line errors
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS),
                        help="smoke (machinery check), default (the README's run), long (docs/study), gpu (a GPU, "
                             "in groups), gpu_smoke (the gpu workflow at smoke size)")
    parser.add_argument("--output_dir", default=None,
                        help="where report.md, results.json, plots and the run cache go (default: study_out/<preset>)")
    parser.add_argument("--seeds", default=None,
                        help="seeds, e.g. 42,43,44 or 42-46 (default: the preset's, 3 for default/long/gpu)")
    parser.add_argument("--force", action="store_true", help="ignore cached runs and train everything again")
    parser.add_argument("--report_only", action="store_true",
                        help="train nothing: rebuild report.md, results.json and plots from the cached runs")
    parser.add_argument("--keep_weights", action="store_true",
                        help="also keep every trained model (safetensors) in <output_dir>/runs/<key>/final")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs trained at once, each in its own process (default: one per CPU core on the "
                             "CPU presets, whose runs use one torch thread each; 1 for gpu)")
    parser.add_argument("--group", default=None, choices=list(GROUPS),
                        help="train only this group of the preset; the report lists the others' runs as pending")
    parser.add_argument("--time_budget", type=float, default=None, metavar="SECONDS",
                        help="stop training in time to write the report within this many seconds; a run that cannot "
                             "finish is abandoned (nothing of it written) and the same command continues it")
    parser.add_argument("--runs_from", nargs="+", default=(), metavar="FOLDER_OR_ARCHIVE",
                        help="run folders or archives (--pack) of earlier pieces: not trained again, and reported")
    parser.add_argument("--pack", default=None, metavar="ARCHIVE",
                        help="afterwards, pack this invocation's runs into ARCHIVE (.tar.xz; numbered parts past 15 MiB)")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    except ValueError as error:
        parser.error(str(error))
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1 (runs trained at once), got {args.jobs}.")
    output_dir = args.output_dir or default_output_dir(args.preset)
    from pathlib import Path

    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        parser.error(f"--output_dir {output_dir} is a file; give a folder (it is created if missing).")

    from transformers.utils import logging

    logging.set_verbosity_error()  # the run progress bar and the report carry the information
    try:
        jobs = args.jobs if args.jobs is not None else default_jobs(PRESETS[args.preset])
        document = run_study(args.preset, output_dir, seeds=seeds, force=args.force, keep_weights=args.keep_weights,
                             report_only=args.report_only, jobs=jobs, group=args.group, time_budget=args.time_budget,
                             runs_from=args.runs_from, pack=args.pack)
    except ValueError as error:  # bad input found before any training (e.g. a --runs_from that does not exist)
        parser.error(str(error))
    except KeyboardInterrupt:
        print(f"\nInterrupted. Finished runs are cached in {output_dir}/runs; run the same command to continue.",
              file=sys.stderr)
        return 130
    statuses = [run["status"] for run in document["runs"]]
    tally = document["meta"]["tally"]
    print(f"Wrote {output_dir}/report.md, results.json and plots in {document['meta']['wall_time_s']} s: "
          + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
          + f"; verdicts: " + ", ".join(f"{v} {k}" for k, v in tally.items()))
    return 1 if "failed" in statuses else 0


def cli(argv=None, prog: str | None = None) -> int:
    """``modeling-study study`` / ``python scripts/run_study.py``: the exit status."""
    return main(argv, prog)


if __name__ == "__main__":
    sys.exit(cli())
