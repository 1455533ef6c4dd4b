"""An OTLP/HTTP trace endpoint in a process of its own: it takes every export, answers 200 with an empty
ExportTraceServiceResponse and counts requests and bytes. Out of process, as a collector is: a sink in the measured
process would spend that process's GIL on reading the exports, a cost no deployment pays.

python -m bench.otlp_sink <state-file>: writes {"port": N} to the file once it listens, and {"port", "requests",
"bytes"} when it gets SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does: the exporter's session reuses its connection
    received: ClassVar[dict[str, int]] = {"requests": 0, "bytes": 0}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        _Sink.received["requests"] += 1
        _Sink.received["bytes"] += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def _write(state: Path, content: dict) -> None:
    partial = state.with_suffix(".partial")
    partial.write_text(json.dumps(content))
    partial.replace(state)  # a reader never sees half a file


def main() -> int:
    state = Path(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    port = server.server_address[1]
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _write(state, {"port": port})
    stopped.wait()
    server.shutdown()
    _write(state, {"port": port, **_Sink.received})
    return 0


class SinkProcess:
    """The running sink: its endpoint, and what it received (once stopped)."""

    def __init__(self, process: subprocess.Popen, state: Path, endpoint: str) -> None:
        self.process, self.state, self.endpoint = process, state, endpoint
        self.received: dict[str, int] = {"requests": 0, "bytes": 0}


@contextlib.contextmanager
def otlp_sink(workdir: Path) -> Iterator[SinkProcess]:
    """Start the sink in a child process; on exit stop it and fill `received` with its counts."""
    state = workdir / f"otlp-sink-{time.monotonic_ns()}.json"
    process = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(state)])
    try:
        deadline = time.monotonic() + 30
        while not state.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OTLP sink did not start")
            time.sleep(0.05)
        port = json.loads(state.read_text())["port"]
        sink = SinkProcess(process, state, f"http://127.0.0.1:{port}/v1/traces")
        yield sink
    finally:
        process.terminate()
        process.wait(30)
    final = json.loads(state.read_text())
    sink.received = {"requests": final.get("requests", 0), "bytes": final.get("bytes", 0)}


if __name__ == "__main__":
    raise SystemExit(main())
