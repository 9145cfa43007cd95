"""make test's worker count (tests/conftest.py): cores, capped by the memory each worker needs."""

from __future__ import annotations

import os

import conftest


def test_auto_workers_are_the_cores_that_memory_can_hold(monkeypatch):
    monkeypatch.setattr(conftest, "usable_cores", lambda: 16)
    gib = conftest.WORKER_MEMORY_GIB
    for free, workers in ((10 * gib + 0.5, 10), (2.5 * gib, 2), (0.5 * gib, 1), (100 * gib, 16)):
        monkeypatch.setattr(conftest, "_available_gib", lambda free=free: free)
        assert conftest.pytest_xdist_auto_num_workers(None) == workers, free


def test_the_machine_is_read_as_it_is():
    assert 1 <= conftest.usable_cores() <= (os.cpu_count() or 1)
    assert conftest._available_gib() > 0
