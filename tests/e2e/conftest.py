"""Fixtures: the real `baton serve` binary on a free loopback port (TCP and UDP),
its OTLP receivers on ports the system picks, in a pytest tmp dir, stopped with
SIGTERM at teardown (which must exit 0).

A module marked `pytestmark = pytest.mark.stores("sqlite", "clickhouse")` runs
each of its tests on both stores when BATON_CLICKHOUSE_URL names a ClickHouse
(scripts/test starts one): `test_x[sqlite]`, then `test_x[clickhouse]` with a
`baton serve --store clickhouse` on a database of the test's own. Without the
mark, or without ClickHouse, a test runs on the embedded store only."""
from __future__ import annotations

import os
import sys

import pytest

sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"

from helpers import CLICKHOUSE_URL, BatonServer, ClickHouseTarget, Downstream, clickhouse_query, new_database  # noqa: E402

STORES = ("sqlite", "clickhouse") if CLICKHOUSE_URL else ("sqlite",)


def pytest_configure(config):
    config.addinivalue_line("markers", "stores(*names): the stores this module's tests run on "
                                       "(sqlite, clickhouse); sqlite alone without the mark")


def pytest_report_header(config):
    return f"stores: {', '.join(STORES)}" + (f" (ClickHouse at {CLICKHOUSE_URL})" if CLICKHOUSE_URL else "")


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("stores")
    if marker is None or "store" not in metafunc.fixturenames:
        return
    stores = [name for name in marker.args if name in STORES]
    if stores != ["sqlite"]:
        # Module scope: a module's fixtures that hold a server for all its tests take `store` too.
        metafunc.parametrize("store", stores, scope="module")


@pytest.fixture(scope="module")
def store() -> str:
    """The store of the servers `baton_factory` starts (parametrized by the `stores` mark)."""
    return "sqlite"


@pytest.fixture
def baton_factory(tmp_path_factory, store):
    """Starts servers on demand: `baton_factory()` for a fresh data dir,
    `baton_factory(data_dir=old.data_dir)` to restart on existing data,
    `baton_factory(extra_args=[...])` with more `baton serve` options,
    `baton_factory(clickhouse=ClickHouseTarget(...))` on a given ClickHouse
    database. On the ClickHouse store a data dir stands for a database of its
    own (dropped at teardown). Every server still running at teardown gets
    SIGTERM and must exit 0."""
    started: list[BatonServer] = []
    databases: dict[str, ClickHouseTarget] = {}

    def make(data_dir=None, port=None, start=True, extra_args=(), clickhouse=None) -> BatonServer:
        base = tmp_path_factory.mktemp("baton")
        data_dir = data_dir or base / "data"
        if clickhouse is None and store == "clickhouse":
            clickhouse = databases.setdefault(str(data_dir), ClickHouseTarget(CLICKHOUSE_URL, new_database()))
        server = BatonServer(data_dir, base / "logs", port=port, extra_args=extra_args, clickhouse=clickhouse)
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
    for target in databases.values():
        try:
            clickhouse_query(target.url, f"DROP DATABASE IF EXISTS {target.database}")
        except OSError as error:
            problems.append(f"cannot drop ClickHouse database {target.database}: {error}")
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
