"""wondertwin: behavioral API twins (Stripe, Twilio, Clerk, Resend, PostHog,
logo.dev) for your tests, from Python.

    import stripe, wondertwin

    with wondertwin.Twins(["stripe"]) as twins:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": twins.url("stripe")})
        client.customers.create(params={"email": "a@example.com"})
        twins.advance("30d")          # only this world's clock moves
        twins.reset()

Each `Twins` is a tenant on a wt-host: its twins have their own state,
clock, faults and request journal, so tests never see each other's, in
parallel too. The host is the one at `WT_URL` (with `WT_ADMIN_TOKEN`), or
one this process starts from the `wt-host` binary in this package (or
`WT_HOST_BIN`, or `PATH`) and stops at exit. The pytest plugin gives each
test its own: the `twins` fixture, and `@pytest.mark.twins("stripe")`.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Twins", "Host", "WtError", "shared_host"]

_HERE = pathlib.Path(__file__).resolve().parent


class WtError(RuntimeError):
    """The host refused a request, or could not be started."""


class Host:
    """A wt-host: one started here, or one already running at `url`."""

    def __init__(self, url: str, admin_token: str | None = None, process: subprocess.Popen | None = None):
        self.url = url.rstrip("/")
        self.admin_token = admin_token
        self._process = process

    @classmethod
    def start(cls, twins: list[str] | None = None, binary: str | None = None) -> "Host":
        """Starts `wt-host run` with the bundled twins (or `twins`, names or
        .wasm paths) on free ports, and waits until it serves them."""
        exe = binary or os.environ.get("WT_HOST_BIN") or _bundled("bin", "wt-host") or shutil.which("wt-host")
        if not exe:
            raise WtError("no wt-host binary: set WT_HOST_BIN, put wt-host on PATH, or install a platform wheel")
        sources = [_twin_source(t) for t in (twins or _bundled_twin_names())]
        if not sources:
            raise WtError("no twins to serve: name them, or install a wheel that bundles them")
        args = [exe, "run", *sources, "--listen", "127.0.0.1:0"]
        for source in sources:
            name = pathlib.Path(source).stem if source.endswith(".wasm") else source.split("@")[0].split("/")[-1]
            args += ["--port", f"{name}=0"]
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        errors: list[str] = []
        threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()
        url = None
        deadline = time.monotonic() + 120
        while url is None:
            line = process.stdout.readline()
            if not line:
                process.wait()
                raise WtError("wt-host exited before it was ready: " + "".join(errors).strip())
            lines.append(line)
            if " listening on " in line:
                url = next(w for w in line.split() if w.startswith("http://"))
            if time.monotonic() > deadline:
                process.kill()
                raise WtError("wt-host was not ready within 120 s")
        # Keep draining stdout so the host never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        host = cls(url, process=process)
        host.wait_ready()
        return host

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.control("GET", "twins")
                return
            except (OSError, WtError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def control(self, method: str, path: str, body=None):
        """One control-plane call (`/_wt/{path}`); the JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_wt/{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.admin_token:
            request.add_header("Authorization", f"Bearer {self.admin_token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                message = json.loads(text)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = text.decode(errors="replace")
            raise WtError(f"{method} /_wt/{path}: {err.code}: {message}") from None
        return json.loads(text) if text else None

    def stop(self) -> None:
        """Stops a host this process started (drains, then exits)."""
        if self._process is None or self._process.poll() is not None:
            return
        try:
            self.control("POST", "shutdown")
            self._process.wait(timeout=30)
        except Exception:
            self._process.kill()
            self._process.wait()


_shared: Host | None = None
_shared_lock = threading.Lock()


def shared_host() -> Host:
    """The host every `Twins` of this process uses: `WT_URL`'s, or one
    started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            url = os.environ.get("WT_URL")
            if url:
                _shared = Host(url, os.environ.get("WT_ADMIN_TOKEN"))
            else:
                _shared = Host.start()
                atexit.register(_shared.stop)
        return _shared


class Twins:
    """A world of twins of its own (a tenant), removed on `close()`."""

    def __init__(self, twins: list[str] | None = None, *, ttl: str = "1h", host: Host | None = None):
        self.host = host or shared_host()
        body = {"ttl": ttl}
        if twins:
            body["twins"] = list(twins)
        made = self.host.control("POST", "tenants", body)
        self.id: str = made["id"]
        self._urls = {name: urls["base_url"] for name, urls in made["twins"].items()}

    def url(self, twin: str) -> str:
        """The base URL to give the twin's SDK (a port of its own)."""
        try:
            return self._urls[twin]
        except KeyError:
            raise WtError(f"no twin {twin!r} here (these: {', '.join(sorted(self._urls))})") from None

    def _control(self, method: str, path: str, body=None):
        return self.host.control(method, f"tenants/{self.id}/{path}", body)

    def reset(self, twin: str | None = None) -> None:
        """Every twin (or one) back to a clean slate, and the clock to now."""
        self._control("POST", f"twins/{twin}/reset" if twin else "reset")

    def advance(self, by: str) -> int:
        """Moves this world's time forward (`"30d"`, `"2h"`); returns the new
        time in milliseconds."""
        return self._control("POST", "clock/advance", {"by": by})["now_millis"]

    def freeze(self) -> None:
        self._control("POST", "clock/freeze")

    def unfreeze(self) -> None:
        self._control("POST", "clock/unfreeze")

    def state(self, twin: str) -> dict:
        """The twin's whole state (`{"entries": [...]}`), to save or seed."""
        return self._control("GET", f"twins/{twin}/state")

    def load_state(self, twin: str, document: dict) -> None:
        """Replaces the twin's state with an export."""
        self._control("PUT", f"twins/{twin}/state", document)

    def requests(self, twin: str, method: str | None = None, path: str | None = None, limit: int | None = None) -> list:
        """What the twin was asked, oldest first."""
        query = urllib.parse.urlencode({k: v for k, v in {"method": method, "path": path, "limit": limit}.items() if v is not None})
        return self._control("GET", f"twins/{twin}/requests" + (f"?{query}" if query else ""))["requests"]

    def fault(self, twin: str, **spec) -> dict:
        """Injects a fault: `status`, `body`, `latency` ("250ms"), `drop`,
        for `method` and `path` ("/v1/charges*"), `rate`, `count`."""
        return self._control("POST", f"twins/{twin}/faults", spec)

    def close(self) -> None:
        """Removes the tenant (its twins, state and ports)."""
        try:
            self.host.control("DELETE", f"tenants/{self.id}")
        except WtError:
            pass

    def __enter__(self) -> "Twins":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bundled(*parts: str) -> str | None:
    path = _HERE.joinpath(*parts)
    return str(path) if path.is_file() else None


def _bundled_twin_names() -> list[str]:
    return sorted(p.stem for p in _HERE.joinpath("twins").glob("*.wasm"))


def _twin_source(twin: str) -> str:
    """A bundled twin's file, else the name as given (a path, or a twin
    installed with `wt-host install`)."""
    return _bundled("twins", f"{twin}.wasm") or twin

