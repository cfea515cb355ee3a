"""Shared helpers for the end-to-end suite: the `baton serve` process wrapper,
ports, documents, trace-tree walking and a tiny downstream HTTP server.

Tests import this module (pytest puts tests/e2e on sys.path: no __init__.py).
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import requests
from botocore.config import Config

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]
DATA_DIR = E2E_DIR / "data"
CLIENTS_DIR = E2E_DIR / "clients"
BATON_BIN = Path(os.environ.get("BATON_BIN")
                 or Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / "baton")
VENV_BIN = Path(sys.executable).parent
UDP_HEADER = b'{"format":"json","version":1}'
READY_TIMEOUT = 30.0
# `baton serve` prints one `listening <kind> <address> (…)` line per listener.
LISTENER_KINDS = ("udp", "http", "otlp-http", "otlp-grpc")


# === the ClickHouse store ===

# The ClickHouse that scripts/test starts for the whole run (scripts/clickhouse);
# without it the suite runs on the embedded store only.
CLICKHOUSE_URL = os.environ.get("BATON_CLICKHOUSE_URL", "").rstrip("/") or None


def clickhouse_script():
    """scripts/clickhouse as a module: `ClickHouse(dir, shards=N).start()`, `.kill()`, `.stop()`."""
    loader = importlib.machinery.SourceFileLoader("baton_clickhouse_script", str(REPO / "scripts" / "clickhouse"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where a `baton serve --store clickhouse` keeps its traces."""
    url: str
    database: str
    cluster: str | None = None

    def args(self) -> list[str]:
        args = ["--store", "clickhouse", "--clickhouse-url", self.url, "--clickhouse-database", self.database]
        return args + (["--clickhouse-cluster", self.cluster] if self.cluster else [])


def new_database() -> str:
    """A ClickHouse database name of its own for one test."""
    return "e2e_" + os.urandom(6).hex()


def clickhouse_query(url: str, sql: str, timeout: float = 30) -> str:
    """One statement over ClickHouse's HTTP interface; its answer's text."""
    request = urllib.request.Request(url.rstrip("/") + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


# === ids, times, documents ===

def new_trace_id(epoch: float | None = None) -> str:
    """An X-Ray trace id whose first part is `epoch` (default: now)."""
    return "1-%08x-%s" % (int(time.time() if epoch is None else epoch), os.urandom(12).hex())


def new_id() -> str:
    return os.urandom(8).hex()


def segment_doc(trace_id: str, name: str = "svc", *, start: float | None = None, duration: float = 0.05,
                seg_id: str | None = None, **fields) -> dict:
    """A complete, valid segment document as a dict."""
    start = time.time() - 1 if start is None else start
    doc = {"name": name, "id": seg_id or new_id(), "trace_id": trace_id,
           "start_time": round(start, 6), "end_time": round(start + duration, 6)}
    doc.update(fields)
    return doc


def datagram(doc: dict | str | bytes, header: bytes = UDP_HEADER) -> bytes:
    """One daemon-protocol datagram: header line, newline, document."""
    if isinstance(doc, dict):
        doc = json.dumps(doc)
    if isinstance(doc, str):
        doc = doc.encode()
    return header + b"\n" + doc


def read_datagram_file(path: Path) -> tuple[bytes, dict]:
    raw = path.read_bytes()
    header, _, body = raw.partition(b"\n")
    assert header == UDP_HEADER, f"{path}: unexpected header {header!r}"
    return raw, json.loads(body)


# === trace trees ===

def walk(entity: dict, parent: dict | None = None, depth: int = 0):
    """Yields (entity, parent entity or None, depth) for an entity and every embedded subsegment."""
    yield entity, parent, depth
    for child in entity.get("subsegments") or []:
        yield from walk(child, entity, depth + 1)


def strip_children(entity: dict) -> dict:
    return {k: v for k, v in entity.items() if k != "subsegments"}


def child_ids(entity: dict) -> list[str]:
    return [c["id"] for c in entity.get("subsegments") or []]


def parsed_documents(trace: dict) -> list[dict]:
    """The parsed Document of every entry in a BatchGetTraces trace's Segments."""
    docs = []
    for seg in trace["Segments"]:
        doc = json.loads(seg["Document"])
        assert doc.get("id") == seg["Id"], f"Segment Id {seg['Id']} != its document's id {doc.get('id')}"
        docs.append(doc)
    return docs


def entities_by_id(trace: dict) -> dict[str, tuple[dict, dict | None, int]]:
    """Every entity of a trace (entries and everything merged below them), by id.
    Fails if an id appears twice."""
    found: dict[str, tuple[dict, dict | None, int]] = {}
    for doc in parsed_documents(trace):
        for entity, parent, depth in walk(doc):
            assert entity["id"] not in found, f"entity {entity['id']} appears twice in trace {trace['Id']}"
            found[entity["id"]] = (entity, parent, depth)
    return found


def trace_ids_of(trace_map: dict) -> set[str]:
    return set(trace_map)


def name_tree(entity: dict) -> tuple:
    """(name, sorted children name trees): an order-independent shape of a tree."""
    return (entity["name"], tuple(sorted(name_tree(c) for c in entity.get("subsegments") or [])))


# === metrics ===

_METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, frozenset(label items)): value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        assert m, f"unparseable metrics line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Metrics(dict):
    def get_value(self, name: str, **labels) -> float:
        """The sample with exactly these labels (0 when absent)."""
        return self.get((name, frozenset(labels.items())), 0.0)

    def matching(self, name: str, **labels) -> dict[frozenset, float]:
        """Every sample of `name` whose labels include `labels`."""
        want = set(labels.items())
        return {k[1]: v for k, v in self.items() if k[0] == name and want <= set(k[1])}


# === ports ===

def free_port() -> int:
    """A loopback port that is free for both TCP and UDP right now."""
    for _ in range(200):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
    raise RuntimeError("no free TCP+UDP port found")


# === the server under test ===

class BatonServer:
    """`baton serve` on a loopback port, with its stdout read by a thread and
    its stderr in a log file inside the test's tmp dir. The OTLP receivers
    listen on ports the system picks; their ready lines name them. The
    embedded store lives in `data_dir`, unless `clickhouse` names a ClickHouse
    database to use instead."""

    def __init__(self, data_dir: Path, log_dir: Path, port: int | None = None, extra_args=(),
                 clickhouse: ClickHouseTarget | None = None):
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.clickhouse = clickhouse
        self.proc: subprocess.Popen | None = None
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._xray = None
        self.returncode: int | None = None
        self.stderr_path: Path | None = None
        self.addresses: dict[str, str] = {}

    @classmethod
    def on(cls, store: str, base: Path, **kwargs) -> "BatonServer":
        """A server (not started) on `store`: "sqlite" in base/data, or "clickhouse" on a new
        database of the BATON_CLICKHOUSE_URL server."""
        clickhouse = ClickHouseTarget(CLICKHOUSE_URL, new_database()) if store == "clickhouse" else None
        return cls(base / "data", base / "logs", clickhouse=clickhouse, **kwargs)

    # --- addresses and clients ---
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def udp_addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def daemon_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """The OTLP/HTTP receiver's base URL (the traces URL is this + /v1/traces)."""
        return "http://" + self.addresses["otlp-http"]

    @property
    def otlp_grpc_address(self) -> str:
        """The OTLP/gRPC receiver's host:port."""
        return self.addresses["otlp-grpc"]

    @property
    def xray(self):
        if self._xray is None:
            self._xray = boto3.client(
                "xray", endpoint_url=self.endpoint, region_name="us-east-1",
                aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30))
        return self._xray

    # --- life cycle ---
    def start(self) -> "BatonServer":
        assert BATON_BIN.exists(), f"{BATON_BIN} does not exist: run `cargo build -p baton` (or set BATON_BIN)"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = len(list(self.log_dir.glob("baton-*.stderr.log")))
        self.stderr_path = self.log_dir / f"baton-{n}.stderr.log"
        store = self.clickhouse.args() if self.clickhouse else ["--data-dir", str(self.data_dir)]
        cmd = [str(BATON_BIN), "serve", *store,
               "--listen", f"127.0.0.1:{self.port}", "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0",
               *self.extra_args]
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.stdout_lines = []
        self._lines = queue.Queue()
        self.returncode = None
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, cwd=str(self.log_dir))
        threading.Thread(target=self._read_stdout, args=(self.proc, self._lines), daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        listening = []
        while len(listening) < len(LISTENER_KINDS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError(f"baton did not print {len(LISTENER_KINDS)} 'listening ' lines within "
                                     f"{READY_TIMEOUT}s; "
                                     f"stdout={self.stdout_lines!r}; stderr tail:\n{self.stderr_tail()}")
            try:
                line = self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if line is None:  # EOF: the process is gone
                rc = self.proc.wait(timeout=10)
                self.returncode = rc
                raise AssertionError(f"baton serve exited with {rc} before it was ready; cmd={cmd}; "
                                     f"stdout={self.stdout_lines!r}; stderr tail:\n{self.stderr_tail()}")
            if line.startswith("listening "):
                listening.append(line)
        self.listening_lines = listening
        self.addresses = {line.split()[1]: line.split()[2] for line in listening}
        assert set(self.addresses) == set(LISTENER_KINDS), listening
        return self

    @staticmethod
    def _read_stdout(proc, lines):
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)

    def _drain(self):
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.stdout_lines.append(line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server and wait for it; returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "timeout"
                self.proc = None
                raise AssertionError(f"baton did not exit within {timeout}s of {sig!r}; stderr tail:\n"
                                     f"{self.stderr_tail()}")
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def kill(self) -> int:
        """kill -9."""
        return self.stop(signal.SIGKILL)

    def stderr_tail(self, n: int = 40) -> str:
        if not self.stderr_path or not self.stderr_path.exists():
            return ""
        return "\n".join(self.stderr_path.read_text("utf-8", "replace").splitlines()[-n:])

    # --- talking to it ---
    def send_datagram(self, data: bytes):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(data, self.udp_addr)

    def send_datagrams(self, datagrams):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            for d in datagrams:
                s.sendto(d, self.udp_addr)

    def metrics(self) -> Metrics:
        r = requests.get(self.endpoint + "/metrics", timeout=10)
        assert r.status_code == 200, f"GET /metrics -> {r.status_code} {r.text[:300]}"
        return Metrics(parse_metrics(r.text))

    def post(self, path: str, body, **kw) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        return requests.post(self.endpoint + path, data=data, headers=headers, timeout=kw.pop("timeout", 30), **kw)

    def batch_get_traces(self, ids) -> tuple[dict[str, dict], list[str]]:
        """BatchGetTraces for any number of ids (5 per call, following NextToken).
        Returns ({trace id: trace}, unprocessed ids)."""
        ids = list(ids)
        traces: dict[str, dict] = {}
        unprocessed: list[str] = []
        for i in range(0, len(ids), 5):
            kwargs = {"TraceIds": ids[i:i + 5]}
            while True:
                resp = self.xray.batch_get_traces(**kwargs)
                for t in resp.get("Traces", []):
                    if t["Id"] in traces:  # a trace split over pages: join its segments
                        traces[t["Id"]]["Segments"].extend(t["Segments"])
                    else:
                        traces[t["Id"]] = t
                unprocessed.extend(resp.get("UnprocessedTraceIds", []))
                if not resp.get("NextToken"):
                    break
                kwargs["NextToken"] = resp["NextToken"]
        return traces, unprocessed

    def wait_for_traces(self, ids, timeout: float = 5.0, entity_ids=None) -> dict[str, dict]:
        """Polls BatchGetTraces until every trace id is there and, if given, every
        entity id (segment or subsegment, top-level or merged) shows up in them."""
        ids = list(ids)
        want_entities = set(entity_ids or ())
        deadline = time.monotonic() + timeout
        while True:
            traces, unprocessed = self.batch_get_traces(ids)
            missing_traces = [i for i in ids if i not in traces]
            seen = set()
            for t in traces.values():
                for doc in parsed_documents(t):
                    seen.update(e["id"] for e, _, _ in walk(doc))
            missing_entities = want_entities - seen
            if not missing_traces and not missing_entities:
                return traces
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout}s: missing traces {missing_traces} (UnprocessedTraceIds={unprocessed}), "
                    f"missing documents {sorted(missing_entities)}; returned: "
                    f"{json.dumps(traces, default=str)[:3000]}")
            time.sleep(0.1)

    def summaries(self, start: float, end: float, **kw) -> list[dict]:
        """All pages of GetTraceSummaries through boto3's paginator."""
        out = []
        pages = self.xray.get_paginator("get_trace_summaries").paginate(StartTime=start, EndTime=end, **kw)
        for page in pages:
            out.extend(page.get("TraceSummaries", []))
        return out


def client_env(extra: dict | None = None, home: Path | None = None) -> dict:
    """Environment for a client subprocess: ours, minus any AWS / Lambda settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "_X_AMZN", "LAMBDA_", "POWERTOOLS_", "BOTO"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra or {})
    return env


# The facade ids (the platform's `Parent`) of the Lambda scenario's 4 invocations.
LAMBDA_PARENTS = ["1111111111111111", "2222222222222222", "3333333333333333", "4444444444444444"]


def lambda_invocations(trace_ids) -> list[dict]:
    """The Lambda scenario of the fixtures: 2 orders, the second with a Lineage, then a failing
    order, then one not sampled."""
    parents = LAMBDA_PARENTS
    return [
        {"trace_header": f"Root={trace_ids[0]};Parent={parents[0]};Sampled=1", "event": {"order_id": "o-1"}},
        {"trace_header": f"Root={trace_ids[1]};Parent={parents[1]};Sampled=1;Lineage=a87bd80c:0",
         "event": {"order_id": "o-2"}},
        {"trace_header": f"Root={trace_ids[2]};Parent={parents[2]};Sampled=1",
         "event": {"order_id": "o-3", "fail": True}},
        {"trace_header": f"Root={trace_ids[3]};Parent={parents[3]};Sampled=0", "event": {"order_id": "o-4"}},
    ]


def powertools_env(baton, downstream, tmp_path) -> dict:
    """The simulated Lambda environment of tests/e2e/clients/powertools_lambda_app.py."""
    return client_env({
        "LAMBDA_TASK_ROOT": str(tmp_path), "AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "POWERTOOLS_SERVICE_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_NAME": "order-handler", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "DOWNSTREAM_URL": downstream.url,
    }, home=tmp_path)


def run_client(script: str, args, env: dict, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Runs tests/e2e/clients/<script> with the venv's python; fails with its output on error."""
    cmd = [sys.executable, str(CLIENTS_DIR / script), *map(str, args)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


# === a downstream HTTP service for the patched `requests` calls ===

class Downstream:
    """A loopback HTTP server in a thread that records each request's path and
    X-Amzn-Trace-Id header. `/status/NNN` answers NNN, anything else 200."""

    def __init__(self):
        self.requests: list[dict] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with lock:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "trace_header": self.headers.get("X-Amzn-Trace-Id")})
                status = 200
                m = re.match(r"^/status/(\d{3})", self.path)
                if m:
                    status = int(m.group(1))
                body = b"ok\n"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_trace_header(value: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in value.split(";") if "=" in part)
