//! Helpers for the end-to-end tests: find the built twins and the `wt-host`
//! binary, start it on ephemeral ports, read its ready lines, stop it.
//!
//! The twins are built by `cargo xtask test` (or `cargo xtask build-twins`)
//! into `target/twins/`; `WT_TWINS_DIR` overrides that.

/// The README's Rust examples, compiled by `cargo test --doc` so they
/// cannot drift from the API they show.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The workspace's `target/` directory, found from this test binary's path
/// (`target/<profile>/deps/<test>`), so it works whatever CARGO_TARGET_DIR is.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn built(dir: &str, name: &str) -> PathBuf {
    let base = match (dir, std::env::var_os("WT_TWINS_DIR")) {
        ("twins", Some(custom)) => PathBuf::from(custom),
        _ => target_dir().join(dir),
    };
    let path = base.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask test`, which builds the twins and fixtures first",
        path.display()
    );
    path
}

/// `target/twins/<name>.wasm`.
pub fn twin_path(name: &str) -> PathBuf {
    built("twins", name)
}

/// `target/fixtures/<name>.wasm`: guests that exist to be refused or to misbehave.
pub fn fixture_path(name: &str) -> PathBuf {
    built("fixtures", name)
}

/// The `wt-host` binary next to this test binary's profile directory.
pub fn wt_host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile.join(format!("wt-host{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo xtask test` (it builds wt-host first)",
        bin.display()
    );
    bin
}

/// One `ready` line: `ready NAME VERSION OWN_URL PREFIXED_URL (…)`.
#[derive(Debug, Clone)]
pub struct Ready {
    pub name: String,
    pub version: String,
    /// `http://127.0.0.1:PORT`, or `None` when the twin has no own port.
    pub own_url: Option<String>,
    pub prefixed_url: String,
    /// The rest of the line: load time and cache outcome.
    pub detail: String,
}

/// A running `wt-host run …`, killed on drop.
pub struct HostProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of the shared listener.
    pub url: String,
    pub twins: Vec<Ready>,
    /// Wall time from spawn to the last ready line.
    pub startup: Duration,
    /// The stdout lines up to the last ready line.
    pub stdout: Vec<String>,
    /// Every stderr line so far (logs), collected in the background.
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub cache_dir: PathBuf,
    _cache_guard: Option<tempfile::TempDir>,
}

/// The outcome of a run that exited instead of becoming ready.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl HostProcess {
    /// Starts `wt-host run <twins…> --listen 127.0.0.1:0 --port <each>=0`
    /// with a fresh cache directory, plus `extra` arguments.
    pub fn start(twins: &[(&str, PathBuf)], extra: &[&str]) -> Self {
        let cache = tempfile::tempdir().expect("temp cache dir");
        let dir = cache.path().to_path_buf();
        let mut host = Self::start_with_cache(twins, extra, &dir).unwrap_or_else(|exited| {
            panic!("wt-host exited before it was ready: {exited:?}");
        });
        host._cache_guard = Some(cache);
        host
    }

    /// Like [`start`](Self::start) with a given cache directory; `Err` when
    /// the process exits before printing every ready line.
    pub fn start_with_cache(
        twins: &[(&str, PathBuf)],
        extra: &[&str],
        cache_dir: &Path,
    ) -> Result<Self, Exited> {
        let mut command = Command::new(wt_host_bin());
        command.arg("run");
        for (name, path) in twins {
            command.arg(format!("{name}={}", path.display()));
        }
        command.args(["--listen", "127.0.0.1:0"]);
        for (name, _) in twins {
            command.args(["--port", &format!("{name}=0")]);
        }
        command.args(extra).arg("--cache-dir").arg(cache_dir);
        let mut host = Self::spawn(command, twins.len())?;
        host.cache_dir = cache_dir.to_path_buf();
        Ok(host)
    }

    /// Runs a prepared `wt-host` command (any arguments, any working
    /// directory) until it has printed `twins` ready lines.
    pub fn spawn(mut command: Command, twins: usize) -> Result<Self, Exited> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn wt-host");

        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        let mut url = None;
        let mut ready = Vec::new();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while ready.len() < twins || url.is_none() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ready ") {
                        ready.push(parse_ready(rest));
                    } else if line.contains(" listening on ") {
                        url = line
                            .split_whitespace()
                            .find(|w| w.starts_with("http://"))
                            .map(str::to_owned);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let output = child.wait_with_output().expect("collect wt-host output");
                    return Err(Exited {
                        status: output.status,
                        stdout: seen.join("\n"),
                        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                    });
                }
            }
        }
        // Keep stderr drained so a chatty host never blocks on a full pipe,
        // and keep the lines for tests that check the logs.
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                    // Bounded: a flood test must not hold every line.
                    if logs.len() < 100_000 {
                        logs.push(line);
                    }
                }
            });
        }
        Ok(Self {
            child,
            url: url.expect("listening line"),
            twins: ready,
            startup: started.elapsed(),
            stdout: seen,
            stderr: logs,
            cache_dir: PathBuf::new(),
            _cache_guard: None,
        })
    }

    /// The ready line of `name`.
    pub fn twin(&self, name: &str) -> &Ready {
        self.twins
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no ready line for {name}: {:?}", self.twins))
    }

    /// The stderr lines (log records) written so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for wt-host") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wt-host did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no drain, no flush, no goodbye — a crash.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_ready(rest: &str) -> Ready {
    let mut words = rest.splitn(5, ' ');
    let mut next = || words.next().unwrap_or_default().to_owned();
    let name = next();
    let version = next();
    let own = next();
    let prefixed_url = next();
    let detail = next();
    Ready {
        name,
        version,
        own_url: (own != "-").then_some(own),
        prefixed_url,
        detail,
    }
}

/// Runs `wt-host ARGS…` to completion with a private cache directory.
pub fn run_to_exit(args: &[&str]) -> Exited {
    let cache = tempfile::tempdir().expect("temp cache dir");
    let output = Command::new(wt_host_bin())
        .args(args)
        .env("WT_CACHE_DIR", cache.path())
        .stdin(Stdio::null())
        .output()
        .expect("run wt-host");
    Exited {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Sends a request; its status and JSON body (`null` when empty).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the body");
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        json(&text)
    };
    (status, body)
}

/// Parses a JSON body, with (the start of) the text in the panic message
/// when it is not JSON.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| {
        let start: String = body.chars().take(300).collect();
        panic!("not JSON ({e}), {} bytes: {start}", body.len())
    })
}

/// How [`FileServer`] misbehaves, for registry tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Serve files as they are.
    Files,
    /// Flip one byte of every `.wasm` file on the way out (same size).
    TamperWasm,
    /// Accept connections and never answer.
    Stall,
    /// Answer every request with a redirect to itself.
    RedirectLoop,
}

/// A tiny HTTP/1.1 file server on loopback, one thread per connection:
/// enough to serve a registry folder, and to misbehave on purpose.
pub struct FileServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl FileServer {
    pub fn start(root: &Path, mode: Serve) -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let root = root.to_path_buf();
        let base = url.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let root = root.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let reply = |status: &str, headers: &str, body: &[u8]| {
                        let mut out = format!(
                            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
                            body.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(body);
                        out
                    };
                    let response = match mode {
                        Serve::Stall => {
                            std::thread::sleep(Duration::from_secs(60));
                            return;
                        }
                        Serve::RedirectLoop => {
                            reply("302 Found", &format!("location: {base}{path}\r\n"), b"")
                        }
                        Serve::Files | Serve::TamperWasm => {
                            let file = root.join(path.trim_start_matches('/'));
                            match std::fs::read(&file) {
                                Ok(mut bytes) => {
                                    if mode == Serve::TamperWasm && path.ends_with(".wasm") {
                                        let last = bytes.len() - 1;
                                        bytes[last] ^= 0xff;
                                    }
                                    reply("200 OK", "", &bytes)
                                }
                                Err(_) => reply("404 Not Found", "", b"not found"),
                            }
                        }
                    };
                    let _ = stream.write_all(&response);
                });
            }
        });
        // The accept thread lives as long as the test process.
        Self { url }
    }
}
