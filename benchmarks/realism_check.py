"""How far the synthetic corpus is from real crowds, measured on a folder of labelled recordings.

Renders the synthetic corpus (``--preset``, ``--seed``, ``--set`` overrides; or
reads one with ``--synthetic``), then runs :func:`crowdnb.realism.realism_check`
against ``--reference``: the baselines and (unless ``--no-network``) the image
network are trained on the synthetic blocks only and score every block of the
real recordings (balanced accuracy against chance, confusion, what each file
was called), and the crowd statistics of the two sides are compared class by
class (Cliff's delta, largest gap first). Writes everything, with the figures,
into ``--out``.

The reference is anything ``crowdnb collect --source folder`` reads: a folder
with one sub-folder per label, or a CSV list of files (``--path-column`` and
``--label-column`` when its columns are not ``path`` and ``label``). Files
with other labels (goal, no_goal) are left out and named.

Usage::

    python benchmarks/realism_check.py --reference ~/my_crowds --out /tmp/realism
    python benchmarks/realism_check.py --reference ../shared/realcal/manifest.csv \\
        --path-column file --label-column proposed_label --out /tmp/realism
    python benchmarks/realism_check.py --reference DIR --set class_overlap=0.3 --no-network
    python benchmarks/realism_check.py --reference DIR --seeds 0-4 --out /tmp/realism

With ``--seeds`` the corpus is rendered and checked once per seed (in
``--out``/seed-<n>), and a table gives each method's balanced accuracy per
seed with its mean and range (``seeds.csv``): the paper preset's 18 events
move the score by a tenth or more from one corpus seed to the next, so a
change to the synthesizer is judged on several.

The reference is checked (it exists, a CSV has its columns) before anything
is rendered. Then an ``--out`` folder that holds an earlier check's results
is refused unless ``--replace`` (which deletes them first); one that holds
other files is always refused. The preprocessing cache is ``--out``/cache,
shared by the seeds of one check and by nobody else.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from crowdnb.errors import CrowdnbError, DataError
from crowdnb.realism import check_reference, realism_check, realism_markdown

#: What a check writes into --out (:func:`crowdnb.realism.realism_check`, this script).
OUTPUTS = ("corpus", "reference_collection", "synthetic", "reference", "network",
           "predictions_*.csv", "files.csv", "metrics.json", "summary.json",
           "statistics_synthetic.csv", "statistics_reference.csv", "comparison.csv",
           "realism_*.png", "seed-*", "seeds.csv", "cache")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", metavar="PATH",
                        help="labelled real recordings: a folder per label, or a CSV list "
                             "(default: the calibration set named by $CROWDNB_REALCAL)")
    parser.add_argument("--out", metavar="DIR", help="the check's folder (default: a "
                        "temporary one, removed at the end)")
    parser.add_argument("--replace", action="store_true",
                        help="--out holds an earlier check: delete its results and check afresh")
    parser.add_argument("--synthetic", metavar="DIR",
                        help="an emotions collection already rendered (default: render one)")
    parser.add_argument("--preset", default="paper", help="synthesizer preset (default: paper)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus and the check")
    parser.add_argument("--seeds", type=_seed_list, metavar="LIST",
                        help="check several corpus seeds: 0-4 or 0,3,7 (replaces --seed)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="synthesizer override (repeatable)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder a CSV's paths are relative to")
    parser.add_argument("--path-column", default="path")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--no-network", action="store_true",
                        help="only the baselines (skips minutes of network training)")
    parser.add_argument("--baselines", metavar="LIST",
                        help="comma-separated short names of the baselines to run: mfcc, cnn, "
                             "constant (default: all); with --no-network, --baselines mfcc "
                             "is the quick check for iterating on the synthesizer")
    parser.add_argument("--no-statistics", action="store_true",
                        help="skip the crowd statistics and their figures")
    args = parser.parse_args(argv)
    if not args.reference and os.environ.get("CROWDNB_REALCAL"):
        # the project's calibration set: a folder with manifest.csv (file, proposed_label)
        args.reference = str(Path(os.environ["CROWDNB_REALCAL"]) / "manifest.csv")
        args.path_column, args.label_column = "file", "proposed_label"
    if not args.reference:
        # `make bench` runs every script without arguments
        print("realism check skipped: no reference recordings (--reference PATH, or "
              "CROWDNB_REALCAL)")
        return 0
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            return _run(args, Path(tmp))
    return _run(args, Path(args.out))


def _seed_list(text: str) -> list[int]:
    """``0-4`` or ``0,3,7`` as a list of seeds."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: give a range (0-4) or a "
                                         f"list (0,3,7) of integers") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: no seed in it")
    return seeds


#: Short names of the baselines for --baselines.
BASELINE_SHORT_NAMES = {"constant": "constant classifier",
                        "mfcc": "MFCC statistics + logistic regression",
                        "cnn": "small CNN on the log-mel matrix"}


def _baseline_names(text: str | None) -> list[str] | None:
    """--baselines as the baselines' full names (None: all)."""
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in BASELINE_SHORT_NAMES]
    if unknown:
        raise DataError(f"--baselines: unknown {', '.join(unknown)} "
                        f"(known: {', '.join(BASELINE_SHORT_NAMES)})")
    return [BASELINE_SHORT_NAMES[s] for s in names]


def _earlier_results(out: Path, *, replace: bool) -> list[Path]:
    """What an earlier check left in ``out`` (refused unless ``replace``).

    Raises
    ------
    DataError
        When ``out`` is a file, holds files no check writes, or holds an
        earlier check's results and ``replace`` is false.
    """
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: not a folder (it is a file); --out is the check's folder")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    others = [p.name for p in entries if not any(fnmatch.fnmatch(p.name, g) for g in OUTPUTS)]
    if others:
        raise DataError(f"{out}: holds files the realism check did not write "
                        f"({', '.join(others[:4])}{', ...' if len(others) > 4 else ''}); "
                        "choose a new or empty --out")
    if entries and not replace:
        raise DataError(f"{out}: holds the results of an earlier check "
                        f"({', '.join(p.name for p in entries[:4])}"
                        f"{', ...' if len(entries) > 4 else ''}); nothing was changed. Pass "
                        "--replace to delete them and check afresh, or choose another --out")
    return entries


def _run(args, out: Path) -> int:
    if args.seeds and args.synthetic:
        print("error: --seeds renders a corpus per seed; it cannot be used with --synthetic",
              file=sys.stderr)
        return 2
    try:
        args.baseline_names = _baseline_names(args.baselines)
        check_reference(args.reference, data_dir=args.data_dir, path_column=args.path_column,
                        label_column=args.label_column)
        for path in _earlier_results(out, replace=args.replace):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        # the preprocessing cache (keyed by each file's content) lives in this
        # check's own folder: one in the shared temporary folder would be read
        # and written by other users' checks too
        args.cache_dir = out / "cache"
        if not args.seeds:
            _check_one(args, args.seed, out)
            return 0
        results = {}
        for seed in args.seeds:
            print(f"## corpus seed {seed}\n", flush=True)
            results[seed] = _check_one(args, seed, out / f"seed-{seed}")
    except CrowdnbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from crowdnb.files import write_table
    from crowdnb.realism import mean_gap, seed_table

    table = seed_table(results)
    write_table(out / "seeds.csv", table)
    print(f"\n## Balanced accuracy on the real blocks, corpus seeds {args.seeds}\n")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print(f"\nmean |Cliff's delta| of the crowd statistics over seeds: "
          f"{mean_gap(results):.3f}")
    return 0


def _check_one(args, seed: int, out: Path):
    """Render (or read) the corpus of one seed, check it, print and draw the check."""
    from crowdnb.synth import parse_override, synthesize

    t0 = time.perf_counter()
    if args.synthetic:
        synthetic = Path(args.synthetic)
    else:
        overrides = dict(parse_override(s) for s in args.set)
        synthetic = synthesize(out / "corpus", preset=args.preset, seed=seed,
                               study="emotions", **overrides)["emotions"]
    t_synth = time.perf_counter() - t0
    result = realism_check(synthetic, args.reference, out, seed=seed,
                           network=not args.no_network, data_dir=args.data_dir,
                           path_column=args.path_column, label_column=args.label_column,
                           cache_dir=args.cache_dir, baseline_names=args.baseline_names,
                           statistics=not args.no_statistics)
    figures = [] if args.no_statistics else write_figures(result, out)
    print(realism_markdown(result))
    print(f"\nsynthesis {t_synth:.0f} s, check {time.perf_counter() - t0 - t_synth:.0f} s; "
          f"results in {out} (figures: {', '.join(p.name for p in figures)})", flush=True)
    return result


def write_figures(result, out: Path) -> list[Path]:
    """The check's figures as PNG files in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crowdnb import plots
    from crowdnb.realism import plot_class_statistics

    paths = []
    drawings = {
        "spectra": lambda: plots.plot_realism_spectra(
            result.synthetic_statistics, result.reference_statistics, classes=result.classes),
        "statistics": lambda: plots.plot_realism_statistics(
            result.synthetic_statistics, result.reference_statistics, classes=result.classes),
        "gaps": lambda: plots.plot_realism_gaps(result.comparison),
        # issue 27: real cheering is heard as anger; where synthetic joy differs
        "joy": lambda: plot_class_statistics(result.synthetic_statistics,
                                             result.reference_statistics, label="joy",
                                             against="anger"),
    }
    for name, draw in drawings.items():
        draw()  # each helper draws a figure of its own when given no axes
        fig = plt.gcf()
        paths.append(out / f"realism_{name}.png")
        fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return paths


if __name__ == "__main__":
    sys.exit(main())
