"""Fixtures: the real `baton serve` binary on a free loopback port (TCP and UDP),
its OTLP receivers on ports the system picks, in a pytest tmp dir, stopped with
SIGTERM at teardown (which must exit 0)."""
from __future__ import annotations

import os
import sys

import pytest

sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"

from helpers import BatonServer, Downstream  # noqa: E402


@pytest.fixture
def baton_factory(tmp_path_factory):
    """Starts servers on demand: `baton_factory()` for a fresh data dir,
    `baton_factory(data_dir=old.data_dir)` to restart on existing data,
    `baton_factory(extra_args=[...])` with more `baton serve` options.
    Every server still running at teardown gets SIGTERM and must exit 0."""
    started: list[BatonServer] = []

    def make(data_dir=None, port=None, start=True, extra_args=()) -> BatonServer:
        base = tmp_path_factory.mktemp("baton")
        server = BatonServer(data_dir or base / "data", base / "logs", port=port, extra_args=extra_args)
        started.append(server)
        return server.start() if start else server

    yield make

    problems = []
    for server in started:
        if server.proc is None:
            continue
        rc = server.stop()
        if rc != 0:
            problems.append(f"baton on port {server.port} exited {rc} after SIGTERM; stderr tail:\n"
                            f"{server.stderr_tail()}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def baton(baton_factory) -> BatonServer:
    """A fresh server with an empty data dir."""
    return baton_factory()


@pytest.fixture
def downstream():
    server = Downstream()
    yield server
    server.close()
