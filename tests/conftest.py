"""Shared test settings, signals and projects: tests marked ``cuda`` run only where torch sees a GPU.

Also the workflow's throwaway project (``make_project``), and one finished run
of it shared by ``test_workflow.py`` and ``test_workflow_faults.py``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf
import torch

from crowdnb.perf import compile_numba_caches
from crowdnb.provenance import usable_cores

#: Sample rate of the shared test clips.
CLIP_SR = 44100


def band_noise(seconds: float, band: tuple[float | None, float | None], seed: int,
               sr: int = CLIP_SR, level: float = 0.1) -> np.ndarray:
    """Gaussian noise filtered to a band (Hz); None leaves that side open (``level`` RMS before filtering)."""
    y = np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))
    low, high = band
    if low and high:
        sos = scipy.signal.butter(6, [low, high], btype="bandpass", fs=sr, output="sos")
    elif low:
        sos = scipy.signal.butter(6, low, btype="highpass", fs=sr, output="sos")
    else:
        sos = scipy.signal.butter(6, high, btype="lowpass", fs=sr, output="sos")
    return level * scipy.signal.sosfilt(sos, y)


def rumble_and_hiss_clips(root: Path, *, seconds: float = 4.0) -> pd.DataFrame:
    """Four clips written to ``root``: rumble (< 500 Hz) and hiss (> 4 kHz), two of each.

    Returns their clips table (``clip_id``, ``event_id``, ``label``, ``path``);
    ``rumble0``/``hiss0`` and ``rumble1``/``hiss1`` make a training and a test set.
    """
    rows = []
    for label, band in (("rumble", (None, 500.0)), ("hiss", (4000.0, None))):
        for i in range(2):
            path = root / f"{label}{i}.wav"
            sf.write(path, band_noise(seconds, band, seed=len(rows)), CLIP_SR)
            rows.append({"clip_id": f"{label}{i}", "event_id": f"{label}{i}", "label": label,
                         "path": str(path)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# The workflow's throwaway project (test_workflow.py, test_workflow_faults.py)
#
# Four tiny notebooks (``a_source`` -> ``b_middle`` -> ``c_end``, and ``d_side``
# beside them) with the project's real ``Snakefile``. Every executed stage job
# starts a Python process and a kernel (seconds each): a test runs as few as
# shows its point, and starts from a copy of a finished run where it can.

#: The repository (its Snakefile, its crowdnb package).
ROOT = Path(__file__).resolve().parent.parent

#: The project's stages, upstream first, and their parameter cells.
WORKFLOW_PARAMETERS = {
    "a_source": 'run_dir: str = "../runs/test"  # the run directory\n'
                'seed: int = 0  # random seed\n'
                'n: int = 2  # how many values to write\n',
    "b_middle": 'run_dir: str = "../runs/test"  # the run directory\n'
                'seed: int = 0  # random seed\n'
                'scale: float = 1.0  # multiplies the values\n'
                'label: str = "x"  # a name\n'
                'stop: bool = False  # raise before finishing\n'
                'sleep_s: float = 0.0  # wait before finishing (until released), s\n',
    "c_end": 'run_dir: str = "../runs/test"  # the run directory\n',
    "d_side": 'run_dir: str = "../runs/test"  # the run directory\n'
              'n: int = 2  # also declared by a_source\n'
              'data_path: str = ""  # a file or folder whose files are counted\n',
}
_METADATA = {
    "a_source": {"upstream": [], "ranges": {"n": ">= 1"}},
    "b_middle": {"upstream": ["a_source"], "outputs": ["model.pt"],
                 "ranges": {"scale": "0 < x < 100", "label": "x | y | 2024"}},
    "c_end": {"upstream": ["b_middle"]},
    "d_side": {"upstream": ["a_source"], "inputs": {"data_path": "path"}},
}
#: A file of the project whose existence ends b_middle's wait (``sleep_s``) early:
#: a test that holds a stage running releases it as soon as it has seen what it
#: came for, instead of waiting out a fixed time.
RELEASE_FILE = "release"
_BODY = {
    "a_source": "values = list(range(n))",
    "b_middle": (
        "import os\nimport time\nfrom crowdnb import splits  # a library module this stage depends on\n"
        "a = stageio.read_summary(run_dir, 'a_source')\n"
        "deadline = time.monotonic() + sleep_s\n"
        f"while time.monotonic() < deadline and not os.path.exists('../{RELEASE_FILE}'):\n"
        "    time.sleep(0.05)\n"
        "if stop:\n    raise RuntimeError('stopped on purpose')\n"
        "values = [v * scale for v in a['values']]\n"
        "(stageio.stage_dir(run_dir, 'b_middle') / 'model.pt').write_text(str(values))"
    ),
    "c_end": "values = stageio.read_summary(run_dir, 'b_middle')['values']",
    "d_side": (
        "from pathlib import Path\nfrom crowdnb import clips\n"
        "p = Path(data_path) if data_path else None\n"
        "files = (1 if p.is_file() else len(list(p.rglob('*')))) if p else 0\n"
        "values = stageio.read_summary(run_dir, 'a_source')['values'][:n] + [files]"
    ),
}


def write_stage_notebook(folder: Path, name: str, *, extra: str = "") -> Path:
    """Write the stage ``name`` of the workflow's project into ``folder`` (``extra``: more code)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(WORKFLOW_PARAMETERS[name])
    params.metadata["tags"] = ["parameters"]
    body = (f"from crowdnb.workflow import stageio\n{_BODY[name]}\n"
            f"stageio.write_summary(run_dir, '{name}', {{'values': values}})\n{extra}")
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["crowdnb"] = _METADATA[name]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def make_project(root: Path, stages=tuple(WORKFLOW_PARAMETERS)) -> Path:
    """The workflow's project in ``root``, with only ``stages`` (each with its upstream stages)."""
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "_config.yml").write_text("title: test\n")
    shutil.copyfile(ROOT / "Snakefile", root / "Snakefile")
    for name in stages:
        write_stage_notebook(root / "notebooks", name)
    return root


def run_stages(project: Path, **kwargs) -> list[str]:
    """``run_study`` on ``project``, quietly; the stages it executed, sorted."""
    from crowdnb.workflow.run import run_study

    outcome = run_study(project=project, quiet=True, **kwargs)
    return sorted(stage for _, stage in outcome["executed"])


def stages_that_would_run(project: Path, **kwargs) -> list[str]:
    """The stages a dry run of ``run_study`` finds stale, sorted; nothing runs."""
    from crowdnb.workflow.run import run_study

    outcome = run_study(project=project, quiet=True, dry_run=True, **kwargs)
    return sorted(stage for _, stage in outcome["would_run"])


def stage_values(project: Path, stage: str, run: str = "default"):
    """The ``values`` a stage's summary holds."""
    return json.loads((project / "runs" / run / stage / "summary.json").read_text())["values"]


def start_run(project: Path, *args: str) -> subprocess.Popen:
    """``crowdnb run --quiet ARGS`` in ``project``, in a process group of its own."""
    return subprocess.Popen([sys.executable, "-m", "crowdnb.cli", "run", "--quiet", *args],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _poll(condition, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def wait_for_start(project: Path, stage: str, timeout_s: float = 600.0) -> None:
    """Wait until a job of ``stage`` (run ``default``) has started."""
    # A starting stage sets its last results aside: its record of the earlier run goes.
    record = project / "runs" / "default" / stage / "_stage.json"
    _poll(lambda: not record.exists(), f"{stage} never started", timeout_s)


def wait_for_last_cell(project: Path, stage: str, timeout_s: float = 600.0) -> None:
    """Wait until the kernel of a started ``stage`` job executes the notebook's last cell."""
    # papermill saves the executed notebook as each cell starts, with the cell's status.
    executed = project / "runs" / "default" / "notebooks" / f"{stage}.ipynb"

    def running() -> bool:
        try:
            cells = json.loads(executed.read_text())["cells"]
        except (OSError, ValueError, KeyError):  # not written yet, or being written
            return False
        return cells[-1].get("metadata", {}).get("papermill", {}).get("status") == "running"

    wait_for_start(project, stage, timeout_s)
    _poll(running, f"{stage} never ran its last cell", timeout_s)


def release_stage(project: Path) -> None:
    """End b_middle's wait (``sleep_s``) now, in every job of ``project`` (see ``RELEASE_FILE``)."""
    (project / RELEASE_FILE).touch()


def wait_for_unlock(project: Path, run: str = "default", timeout_s: float = 600.0) -> None:
    """Wait until no process of a run (stage job, kernel) holds its job lock."""
    path = project / "runs" / ".crowdnb" / "locks" / f"{run}.jobs.lock"

    def free() -> bool:
        with open(path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
            return True

    _poll(free, "a process of the killed run never ended", timeout_s)


def drop_stages(project: Path, names) -> Path:
    """Remove stages (notebooks, results, book pages) from a finished project; return it."""
    run_dir = project / "runs" / "default"
    for name in names:
        (project / "notebooks" / f"{name}.ipynb").unlink()
        (project / "book" / "executed" / f"{name}.ipynb").unlink(missing_ok=True)
        shutil.rmtree(run_dir / name, ignore_errors=True)
        (run_dir / ".crowdnb" / "sources" / f"{name}.json").unlink(missing_ok=True)
        for page in (run_dir / "notebooks").glob(f"{name}.*"):
            page.unlink()
    return project


@pytest.fixture(scope="session")
def _finished_project(tmp_path_factory):
    # One complete run of the four stages, for the session: every test that
    # starts from it copies it (a copy costs far less than a run).
    project = make_project(tmp_path_factory.mktemp("finished") / "project")
    executed = run_stages(project)
    return project, executed


@pytest.fixture
def finished(_finished_project, tmp_path):
    """A copy of the finished four-stage project, and the stages its run executed."""
    source, executed = _finished_project
    project = tmp_path / "project"
    shutil.copytree(source, project, symlinks=True)
    return project, executed


@pytest.fixture(scope="session")
def _finished_pair_project(_finished_project, tmp_path_factory):
    # The same finished run cut to a_source -> b_middle, for the tests of a run
    # that is locked, interrupted or killed in b_middle: what they rerun is
    # b_middle alone, not c_end after it. Removing stages leaves the others
    # up to date, as this checks once.
    source, _ = _finished_project
    project = tmp_path_factory.mktemp("finished_pair") / "project"
    shutil.copytree(source, project, symlinks=True)
    drop_stages(project, ["c_end", "d_side"])
    assert stages_that_would_run(project) == [], (
        "the finished run is stale: cutting stages changed the others' inputs, or a crowdnb/ "
        "file every stage imports changed since the session's finished run was made")
    return project


@pytest.fixture
def finished_pair(_finished_pair_project, tmp_path):
    """A copy of the finished project of the stages a_source -> b_middle only."""
    project = tmp_path / "project"
    shutil.copytree(_finished_pair_project, project, symlinks=True)
    return project


#: Memory to set aside per test worker (``make test``: pytest-xdist, ``-n
#: auto``), GiB. A worker keeps what its heaviest test took (torch's and the
#: allocator's caches): 3.2 GB at the most on 2 workers, beside the smoke
#: study's kernels (2.2 GB), see :func:`pytest_xdist_auto_num_workers`.
WORKER_MEMORY_GIB = 4.0


def _available_gib() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    available = int(fields["MemAvailable"].split()[0]) * 1024
    try:  # a container's memory limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available / 2**30


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per usable core, no more than the free memory holds.

    xdist's own count is every CPU the system reports; on a machine with many
    cores and little memory, workers that each train a network were killed for
    memory (a CI run: 10 workers, 9 of them lost with the smoke study's kernel).
    """
    try:
        by_memory = int(_available_gib() // WORKER_MEMORY_GIB)
    except (OSError, KeyError, ValueError):  # no /proc/meminfo: not Linux
        by_memory = os.cpu_count() or 1
    return max(1, min(usable_cores(), by_memory))


def worker_jobs() -> list[str]:
    """``crowdnb run``'s ``--jobs`` for this test worker's share of the cores (none when alone).

    A stage's kernel takes as many threads as its run has cores; beside the other
    workers, two threads on a shared core made a smoke stage 2-5 times slower
    (OpenMP's threads wait for each other by spinning).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return ["--jobs", os.environ["OMP_NUM_THREADS"]] if workers > 1 else []


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller, before any worker starts
        compile_numba_caches()  # else workers compiling side by side can corrupt numba's cache
    # Each worker's torch, and the processes its tests start, share the cores
    # with the other workers instead of each taking them all.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, usable_cores() // workers)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    # The smoke study (marked slow: minutes) starts first, so that under make test's
    # workers (pytest-xdist) the other tests run beside it instead of after it.
    items.sort(key=lambda item: "slow" not in item.keywords)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
