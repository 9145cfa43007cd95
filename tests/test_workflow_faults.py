"""The workflow under faults: nothing lost, nothing written outside the run, nothing buried.

Each test starts from the tiny four-notebook project of ``conftest.make_project``
(``a_source`` -> ``b_middle`` -> ``c_end``, ``d_side``), finished once for the
session and copied per test (``finished``, or ``finished_pair`` cut to
``a_source`` -> ``b_middle``); every executed job starts a kernel (seconds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    make_project,
    release_stage,
    run_stages,
    stage_values,
    start_run,
    wait_for_last_cell,
    wait_for_start,
    wait_for_unlock,
)

from crowdnb.errors import DataError, ParameterError
from crowdnb.workflow.plan import plan_from_config
from crowdnb.workflow.run import run_study


def _crowdnb(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crowdnb.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# 1. A rerun that fails or is interrupted leaves the last good results


def test_a_failed_rerun_keeps_the_last_good_results_and_reruns_next_time(finished_pair):
    project = finished_pair
    run_dir = project / "runs" / "default"
    before = _snapshot(run_dir / "b_middle")
    page = (run_dir / "notebooks" / "b_middle.ipynb").read_bytes()
    with pytest.raises(DataError, match="stage b_middle stopped: RuntimeError: stopped on purpose"):
        run_stages(project, overrides=["b_middle.stop=true", "scale=4"])
    assert _snapshot(run_dir / "b_middle") == before  # summary, model, record: as they were
    assert (run_dir / "notebooks" / "b_middle.ipynb").read_bytes() == page
    assert not (run_dir / ".crowdnb" / "previous" / "b_middle").exists()  # nothing half-written
    # Snakemake notes the failed job's values as if they had made these results:
    # the stage still runs next time, with either values.
    again = run_study(project=project, overrides=["b_middle.stop=true", "scale=4"], dry_run=True)
    assert ("default", "b_middle") in again["would_run"]
    assert run_stages(project) == ["b_middle"]
    assert run_stages(project) == []


def test_an_interrupted_rerun_keeps_the_last_good_results(finished):
    project, _ = finished
    run_dir = project / "runs" / "default"
    before = _snapshot(run_dir / "b_middle")
    process = start_run(project, "-p", "sleep_s=30", "-p", "scale=7")
    wait_for_last_cell(project, "b_middle")  # interrupted mid-cell
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    assert _snapshot(run_dir / "b_middle") == before
    # killed outright, the results set aside go back at the next run's start
    process = start_run(project, "-p", "sleep_s=30", "-p", "scale=7")
    wait_for_start(project, "b_middle")  # it has set its last results aside
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    wait_for_unlock(project)
    assert not (run_dir / "b_middle" / "summary.json").exists()
    assert run_stages(project, only=["a_source"]) == []  # runs nothing, but puts them back first
    assert _snapshot(run_dir / "b_middle") == before


# ---------------------------------------------------------------------------
# 2, 3, 9. A run folder of its own holds everything, moves, and leaves the book alone


def test_a_run_dir_of_its_own_holds_everything_and_stays_up_to_date_when_moved(tmp_path):
    # two stages, the second reading the first: what a move must keep together
    project = make_project(tmp_path / "project", stages=["a_source", "b_middle"])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run_dir = outside / "myrun"
    dry = run_study(project=project, run_dir=run_dir, dry_run=True, quiet=True)
    assert len(dry["would_run"]) == 2
    assert sorted(p.name for p in outside.iterdir()) == ["myrun"]
    assert run_stages(project, run_dir=run_dir) == ["a_source", "b_middle"]
    assert sorted(p.name for p in outside.iterdir()) == ["myrun"]  # no .snakemake, .crowdnb beside
    assert (run_dir / ".snakemake").is_dir() and (run_dir / "b_middle" / "summary.json").is_file()
    assert not (project / "runs").exists() and not (project / "book").exists()
    # moved (with another name, one level deeper), it is as up to date as it was
    moved = tmp_path / "archive" / "2024" / "renamed"
    moved.parent.mkdir(parents=True)
    shutil.move(run_dir, moved)
    assert run_study(project=project, run_dir=moved, dry_run=True, quiet=True)["would_run"] == []
    # and the book shows it only when asked
    assert run_stages(project, run_dir=moved, book=True) == []
    assert (project / "book" / "executed" / "b_middle.ipynb").is_file()


def test_a_moved_project_is_as_up_to_date_as_it_was(finished, tmp_path):
    project, _ = finished
    # What Snakemake records of a job names no folder of this machine: not the
    # project's, not the package's (another clone, another environment), not the run's.
    plan = plan_from_config({"project": str(project), "runs_root": str(project / "runs"),
                             "run": "default", "overrides": [f"data_path={project / 'params'}"]})
    for run, stage in plan.jobs:
        named = [f for files in plan.inputs(run, stage).values()
                 for f in ([files] if isinstance(files, str) else files)]
        assert not any(os.path.isabs(f) for f in named), named
        assert "/" not in json.loads(plan.parameters_json(run, stage)).get("data_path", "x")[:1]
    assert str(ROOT) not in plan.execute_command and sys.executable not in plan.execute_command
    moved = tmp_path / "deeper" / "copy"
    moved.parent.mkdir()
    shutil.move(project, moved)
    done = _crowdnb(moved, "run", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stderr and "would run" not in done.stderr


# ---------------------------------------------------------------------------
# 4. The lock holds while a stage of a killed run lives


def test_the_lock_holds_while_a_stage_of_a_killed_crowdnb_run_lives(finished_pair):
    project = finished_pair
    # b_middle waits until released (at most 900 s): its stage outlives the
    # second run's start however long that takes, and ends once let go.
    first = start_run(project, "-p", "sleep_s=900", "-p", "scale=5")
    try:
        wait_for_start(project, "b_middle")
        os.kill(first.pid, signal.SIGKILL)  # the crowdnb run process alone: its stage goes on
        first.wait(timeout=30)
        second = _crowdnb(project, "run", "--quiet", "-p", "scale=5")
        assert second.returncode == 1
        assert "whose stage is still running (pid" in second.stderr, second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        release_stage(project)
    wait_for_unlock(project)  # the stage has finished: the run may go on
    # (and reruns the job whose run was killed: nothing recorded it as finished)
    assert run_stages(project, overrides=["scale=5"]) == ["b_middle"]
    assert stage_values(project, "b_middle") == [0.0, 5.0]


# ---------------------------------------------------------------------------
# 5. The terminal: one line per stage, one line per failure


def test_a_run_prints_one_line_per_stage_and_a_failure_in_one_line(finished, capfd):
    project, _ = finished
    dry = _crowdnb(project, "run", "-p", "scale=8", "--dry-run")
    assert dry.returncode == 0
    assert dry.stderr.splitlines() == [
        "crowdnb run: would run b_middle (parameters changed)",
        "crowdnb run: would run c_end (a stage it reads runs first)",
        f"crowdnb run: dry run: 2 stage job(s) would run in {project / 'runs' / 'default'}, "
        "nothing ran"]
    done = _crowdnb(project, "run", "-p", "scale=8")
    lines = done.stderr.splitlines()
    assert done.returncode == 0 and len(lines) == 3, done.stderr
    assert lines[0].startswith("crowdnb run: b_middle done in ") and \
        lines[0].endswith(" s (parameters changed)")
    assert lines[1].startswith("crowdnb run: c_end done in ")
    failed = _crowdnb(project, "run", "-p", "b_middle.stop=true")
    run_dir = project / "runs" / "default"
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "crowdnb run: error: stage b_middle stopped: RuntimeError: stopped on purpose (the "
        f"executed notebook, with the traceback, is {run_dir / 'notebooks' / 'b_middle.failed.ipynb'}; "
        f"the kernel's log is {run_dir / 'notebooks' / 'b_middle.kernel.log'})"]
    capfd.readouterr()
    run_study(project=project, overrides=["scale=3"], dry_run=True, verbose=True)
    assert "stage_b_middle" in capfd.readouterr().err  # Snakemake's own listing, when asked


# ---------------------------------------------------------------------------
# 6. --only and a read-only run folder say what is wrong


def test_only_names_the_stages_that_must_run_first(tmp_path):
    project = make_project(tmp_path / "project")
    with pytest.raises(ParameterError) as info:
        run_study(project=project, only=["c_end"], quiet=True)
    assert "--only c_end: stage(s) a_source, b_middle must run first" in str(info.value)
    assert not (project / "runs" / "default" / "a_source").exists()


def test_a_read_only_run_folder_is_named(finished, monkeypatch):
    project, _ = finished
    locked = project / "runs" / "default" / "b_middle" / "model.pt"
    real_access = os.access
    # (as root every file is writable: say this one is not, as chmod a-w would for a user)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw:
                        False if Path(path) == locked and mode & os.W_OK
                        else real_access(path, mode, **kw))
    with pytest.raises(DataError, match=f"{locked}: cannot be written"):
        run_stages(project, overrides=["scale=9"])
    assert stage_values(project, "c_end") == [0.0, 1.0]


# ---------------------------------------------------------------------------
# 7, 8. A closed pipe, and the Makefile's help


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # A subcommand that prints a long table, as `crowdnb predict` does, read by `head -1`.
    (tmp_path / "longtable.py").write_text(
        "def register_cli(sub):\n"
        "    sub.add_parser('predict').set_defaults(func=lambda args: [print(f'row {i}') "
        "for i in range(100000)] and 0)\n")
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from crowdnb import cli; "
              "cli._SUBCOMMANDS['predict'] = ('longtable', 'x'); sys.exit(cli.main(['predict']))")
    done = subprocess.run(f'"{sys.executable}" -c "{script}" "{tmp_path}" | head -1', shell=True,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout == "row 0\n"
    assert done.stderr == ""  # no BrokenPipeError traceback


def test_make_help_names_every_target_and_ci_finds_the_shared_folder_relatively():
    makefile = (ROOT / "Makefile").read_text()
    helped = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30).stdout
    targets = re.findall(r"^([a-z][\w-]*):(?!=)", makefile, flags=re.MULTILINE)
    for target in sorted(set(targets) - {"help"}):
        assert f"make {target} " in helped, target
    ci = (ROOT / ".ci" / "run").read_text()
    assert "/work/" not in ci and "shared/realcal" in ci
