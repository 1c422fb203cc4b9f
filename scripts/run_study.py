"""The study: train variants that differ in one choice, over several seeds, and report what each
choice changes, next to what the papers found, with verdicts the spread between seeds supports.

    python scripts/run_study.py                    # default preset, 3 seeds: 4 min on 2 idle CPU cores
    python scripts/run_study.py --preset smoke     # checks the machinery (the tests run it)
    python scripts/run_study.py --preset long      # the committed report (docs/study): 65 min on 2 idle cores

Writes report.md, results.json and PNG plots to --output_dir (default study_out/<preset>). Every
finished (run, seed) is cached on its own under a hash of its spec in <output_dir>/runs, so an
interrupted study continues where it stopped, and adding a seed trains only that seed.
"""

import argparse
import sys

from modeling_study.study import PRESETS, default_jobs, default_output_dir, parse_seeds, run_study


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS),
                        help="smoke (machinery check), default (the README's run), long (docs/study), full (a GPU)")
    parser.add_argument("--output_dir", default=None,
                        help="where report.md, results.json, plots and the run cache go (default: study_out/<preset>)")
    parser.add_argument("--seeds", default=None,
                        help="seeds, e.g. 42,43,44 or 42-46 (default: the preset's, 3 for default/long/full)")
    parser.add_argument("--force", action="store_true", help="ignore cached runs and train everything again")
    parser.add_argument("--report_only", action="store_true",
                        help="train nothing: rebuild report.md, results.json and plots from the cached runs")
    parser.add_argument("--keep_weights", action="store_true",
                        help="also keep every trained model (safetensors) in <output_dir>/runs/<key>/final")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs trained at once, each in its own process (default: one per CPU core on the "
                             "CPU presets, whose runs use one torch thread each; 1 for full)")
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
                             report_only=args.report_only, jobs=jobs)
    except ValueError as error:  # bad input found before any training (e.g. --report_only with runs missing)
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


if __name__ == "__main__":
    sys.exit(main())
