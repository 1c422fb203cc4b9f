"""The study: train variants that differ in one choice, report what it changes, next to the papers.

    python scripts/run_study.py                    # default preset: about 10 minutes on 2 CPU cores
    python scripts/run_study.py --preset smoke     # under 2 minutes: checks the machinery

Writes report.md, results.json and PNG plots to --output_dir. Every finished run is cached under a
hash of its spec in <output_dir>/runs, so an interrupted study continues where it stopped.
"""

import argparse
import sys

from modeling_study.study import PRESETS, run_study


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS),
                        help="smoke (< 2 min, for tests), default (about 10 min on 2 CPU cores), full (GPU or big machine)")
    parser.add_argument("--output_dir", default="study_out", help="where report.md, results.json, plots and the run cache go")
    parser.add_argument("--seed", type=int, default=42, help="seed for weights, data order and the ambiguity demo")
    parser.add_argument("--force", action="store_true", help="ignore cached runs and train everything again")
    args = parser.parse_args(argv)

    from transformers.utils import logging

    logging.set_verbosity_error()  # the run progress bar and the report carry the information
    try:
        document = run_study(args.preset, args.output_dir, seed=args.seed, force=args.force)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Finished runs are cached in {args.output_dir}/runs; run the same command to continue.",
              file=sys.stderr)
        return 130
    statuses = [run["status"] for run in document["runs"]]
    print(f"Wrote {args.output_dir}/report.md, results.json and plots in {document['meta']['wall_time_s']} s: "
          + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))))
    return 1 if "failed" in statuses else 0


if __name__ == "__main__":
    sys.exit(main())
