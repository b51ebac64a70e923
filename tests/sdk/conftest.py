"""Shared fixtures for the vendor-SDK suites.

One `wt-host run` serves every twin in target/twins/ for the whole run, on
ephemeral ports with a private precompiled cache. Every test gets a tenant of
its own from the `wt` fixture: copies of every twin with their own state,
clock, faults, settings and journal, on ports of their own. So tests can move
time, inject faults and reset without seeing one another, and run in
parallel: `pytest -n 2` (pytest-xdist) starts the host once, in the
controller, and its workers share it.
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
    """A world on a running wt-host: each twin's base URL and the control
    plane (a tenant's, under `/_wt/tenants/{id}/`, or the default world's)."""

    def __init__(self, url: str, twins: dict[str, str], tenant: str | None = None):
        self.url = url
        self.twins = twins
        self.tenant = tenant

    def base_url(self, twin: str) -> str:
        """The twin's own-port URL, with no route prefix (what an SDK gets)."""
        return self.twins[twin]

    def prefixed_url(self, twin: str) -> str:
        world = f"/{self.tenant}" if self.tenant else ""
        return f"{self.url}{world}/{twin}"

    def control(self, method: str, path: str, body: dict | None = None):
        world = f"tenants/{self.tenant}/" if self.tenant else ""
        return _control(self.url, method, f"{world}{path}", body)

    def reset(self, twin: str) -> None:
        self.control("POST", f"twins/{twin}/reset")


def _control(url: str, method: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/_wt/{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


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


def _stop(proc: subprocess.Popen, cache: tempfile.TemporaryDirectory) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0, "wt-host exits 0 on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
        cache.cleanup()


def pytest_configure(config):
    """Under pytest-xdist, the controller starts the one host its workers
    share (they find it in `workerinput`)."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return
    if getattr(config.option, "numprocesses", None) in (None, 0):
        return
    config._wt = _start()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    proc, host, cache = node.config._wt
    node.workerinput["wt_url"] = host.url
    node.workerinput["wt_twins"] = json.dumps(host.twins)


def pytest_unconfigure(config):
    started = getattr(config, "_wt", None)
    if started is not None:
        proc, _, cache = started
        _stop(proc, cache)


@pytest.fixture(scope="session")
def wt_host(request):
    """The host every test's tenant is made on: the controller's under
    pytest-xdist, else one started for this session."""
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput is not None and "wt_url" in workerinput:
        yield Host(workerinput["wt_url"], json.loads(workerinput["wt_twins"]))
        return
    proc, host, cache = _start()
    try:
        yield host
    finally:
        _stop(proc, cache)


@pytest.fixture
def wt(wt_host):
    """A tenant of every twin, for this test alone."""
    made = _control(wt_host.url, "POST", "tenants", {"ttl": "30m"})
    twins = {name: urls["base_url"] for name, urls in made["twins"].items()}
    try:
        yield Host(wt_host.url, twins, tenant=made["id"])
    finally:
        _control(wt_host.url, "DELETE", f"tenants/{made['id']}")
