"""What ``crowdnb run`` adds to executing a notebook: the cost of one stage job.

A one-stage project whose notebook does almost nothing (it writes its
summary) is executed two ways, each in a fresh process, ``--repeats`` times:

- **bare**: ``nbclient`` executes the notebook in a new kernel, nothing else
  (the least any notebook runner can do: start a Python process, import
  nbformat and nbclient, start a kernel, run two cells, stop it);
- **crowdnb run --force --quiet**: the workflow's whole path for the same
  notebook (planning the run, Snakemake, the stage job, papermill with its
  parameters, the job lock, the stage's record and executed notebook).

Prints the median wall time of each and their ratio (the overhead factor a
stage pays before its own work), then, to see where the rest goes, the
median of ``crowdnb run --dry-run`` (planning only). Every chapter of the
study is one such job, and so is each point of a sweep.

Run: ``python benchmarks/bench_stage_overhead.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

BARE = """
import sys, nbformat, nbclient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
nbclient.NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def write_project(root: Path) -> Path:
    """A project of one stage, ``only``, that writes its summary and nothing else."""
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text("title: bench\n")
    shutil.copyfile(ROOT / "Snakefile", root / "Snakefile")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('run_dir: str = "../runs/default"  # the run directory\n')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# only"), params, nbformat.v4.new_code_cell(
        "from crowdnb.workflow import stageio\nstageio.write_summary(run_dir, 'only', {'n': 1})")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["crowdnb"] = {"upstream": []}
    nbformat.write(nb, root / "notebooks" / "only.ipynb")
    return root


def timed(command: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-stage-") as tmp:
        project = write_project(Path(tmp) / "project")
        notebook = project / "notebooks" / "only.ipynb"
        crowdnb = [sys.executable, "-m", "crowdnb.cli", "run", "--quiet"]
        timed([*crowdnb], project)  # the first run installs the kernel spec, makes the run folder
        times = {"bare": [], "run": [], "plan": []}
        for _ in range(args.repeats):  # interleaved: a change in the machine's load hits both
            times["bare"].append(timed([sys.executable, "-c", BARE, str(notebook),
                                        str(project / "notebooks")], project))
            times["run"].append(timed([*crowdnb, "--force"], project))
            times["plan"].append(timed([*crowdnb, "--force", "--dry-run"], project))
    med = {k: statistics.median(v) for k, v in times.items()}
    load = os.getloadavg()[0]
    print(f"{args.repeats} runs each, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"bare nbclient execution     {med['bare']:6.2f} s")
    print(f"crowdnb run (one stage)     {med['run']:6.2f} s  = {med['run'] / med['bare']:.2f} x bare")
    print(f"  of which planning (--dry-run) {med['plan']:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
