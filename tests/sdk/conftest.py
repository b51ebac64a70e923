"""Shared fixtures for the vendor-SDK suites.

One `wt-host run` serves every twin in target/twins/ for the whole session, on
ephemeral ports with a private precompiled cache; tests get each twin's base
URL from the `wt` fixture and isolate themselves (Stripe: a fresh secret key
per test is a fresh account) or reset a twin through the control plane.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import signal
import subprocess
import tempfile
import threading
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Host:
    """A running wt-host: the shared listener and each twin's own URL."""

    def __init__(self, url: str, twins: dict[str, str]):
        self.url = url
        self.twins = twins

    def base_url(self, twin: str) -> str:
        """The twin's own-port URL, with no route prefix (what an SDK gets)."""
        return self.twins[twin]

    def prefixed_url(self, twin: str) -> str:
        return f"{self.url}/{twin}"

    def control(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_wt/{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def reset(self, twin: str) -> None:
        self.control("POST", f"twins/{twin}/reset")


def _start() -> tuple[subprocess.Popen, Host, tempfile.TemporaryDirectory]:
    binary = os.environ.get("WT_HOST_BIN") or str(ROOT / "target" / "debug" / "wt-host")
    twins_dir = pathlib.Path(os.environ.get("WT_TWINS_DIR") or ROOT / "target" / "twins")
    components = sorted(twins_dir.glob("*.wasm"))
    if not components:
        pytest.exit(f"no twins in {twins_dir}: run `cargo xtask test`", returncode=2)
    cache = tempfile.TemporaryDirectory(prefix="wt-sdk-tests-")
    args = [binary, "run", *map(str, components), "--listen", "127.0.0.1:0", "--cache-dir", cache.name]
    for component in components:
        args += ["--port", f"{component.stem}=0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream, sink):
        for line in stream:
            sink(line)
        sink(None)

    threading.Thread(target=pump, args=(proc.stdout, lines.put), daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=pump, args=(proc.stderr, lambda l: l and stderr.append(l)), daemon=True).start()

    url, twins = None, {}
    while url is None or len(twins) < len(components):
        try:
            line = lines.get(timeout=180)
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            raise RuntimeError("wt-host did not become ready:\n" + "".join(stderr))
        words = line.split()
        if " listening on " in line:
            url = next(w for w in words if w.startswith("http://"))
        elif words and words[0] == "ready":
            twins[words[1]] = words[3]
    return proc, Host(url, twins), cache


class WebhookReceiver:
    """A webhook receiver on loopback: keeps every POST it gets, in order.

    `deliveries` holds (path, headers, body) with header names lower-cased
    and the body as text; `received` the same without the path.
    """

    def __init__(self, path: str = "/hook"):
        import http.server

        deliveries = self.deliveries = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                deliveries.append((self.path, headers, body.decode()))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    @property
    def received(self):
        return [(headers, body) for _, headers, body in self.deliveries]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def hooks():
    """A fresh webhook receiver per test."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def wt():
    proc, host, cache = _start()
    try:
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0, "wt-host exits 0 on SIGTERM"
        finally:
            if proc.poll() is None:
                proc.kill()
            cache.cleanup()
