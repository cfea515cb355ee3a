"""The Lambda Runtime API as the platform serves it to a function process
(next invocation, response, error), so a real `lambda_runtime` function runs
here as in Lambda: invocations are handed out one at a time with their
request id, deadline, function ARN and `Lambda-Runtime-Trace-Id`."""
from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:order-handler"


class RuntimeApi:
    """`invoke(event, trace_header)` queues an invocation and waits for the
    function to post its response or error."""

    def __init__(self):
        self.pending: queue.Queue = queue.Queue()
        self.results: dict[str, queue.Queue] = {}
        self.init_errors: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                request_id, event, trace_header = outer.pending.get()
                self._reply(200, json.dumps(event).encode(), {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 30) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": trace_header,
                })

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    outer.init_errors.append(json.loads(body or b"{}"))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    outer.results[parts[1]].put((parts[2], json.loads(body or b"null")))
                else:
                    return self._reply(404)
                self._reply(202, b'{"status":"OK"}')

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def invoke(self, event: dict, trace_header: str, timeout: float = 30.0) -> tuple[str, object]:
        """Runs one invocation: ("response", body) or ("error", error document)."""
        request_id = str(uuid.uuid4())
        self.results[request_id] = queue.Queue()
        self.pending.put((request_id, event, trace_header))
        return self.results[request_id].get(timeout=timeout)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
