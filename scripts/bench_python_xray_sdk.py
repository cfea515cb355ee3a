"""The AWS X-Ray SDK for Python's cost per subsegment, to compare with
baton-tracer's benchmark: begin_subsegment, 2 put_annotation and
end_subsegment inside a sampled segment, with the SDK's defaults (streaming
closed subsegments once more than 30 are held) and its UDP emitter sending to
a port that is bound but never read. Run by scripts/bench-python-xray-sdk."""

import socket
import statistics
import sys
import time

from aws_xray_sdk.core import xray_recorder

ROUNDS = 7
PER_ROUND = 50_000


def subsegments(count):
    for _ in range(count):
        xray_recorder.begin_subsegment("work")
        xray_recorder.put_annotation("order_id", "o-42")
        xray_recorder.put_annotation("items", 3)
        xray_recorder.end_subsegment()


def main():
    # Bound so sends succeed as they would to a daemon; never read, like the Rust benchmark's sink.
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    xray_recorder.configure(
        service="bench",
        sampling=True,
        daemon_address="127.0.0.1:%d" % sink.getsockname()[1],
        context_missing="LOG_ERROR",
        plugins=(),
    )
    # sampling=1 is the decision a sampled upstream header carries; it also keeps the
    # centralized sampler from polling a daemon that is not there.
    xray_recorder.begin_segment("bench", sampling=1)
    subsegments(PER_ROUND // 5)  # warm-up
    per_subsegment = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        subsegments(PER_ROUND)
        per_subsegment.append((time.perf_counter_ns() - start) / PER_ROUND)
    xray_recorder.end_segment()
    print(
        "aws-xray-sdk %s on Python %s: %.0f ns per subsegment (median of %d rounds of %d; min %.0f, max %.0f)"
        % (
            __import__("aws_xray_sdk").version.VERSION,
            sys.version.split()[0],
            statistics.median(per_subsegment),
            ROUNDS,
            PER_ROUND,
            min(per_subsegment),
            max(per_subsegment),
        )
    )


if __name__ == "__main__":
    main()
