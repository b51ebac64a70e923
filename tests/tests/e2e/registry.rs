//! The registry through the CLI: publish the repo's twins into a temp
//! registry, serve it over loopback HTTP, install with digest checks, run
//! from the store offline, and every way that must fail cleanly.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wt_tests::{Exited, FileServer, HostProcess, Serve, fixture_path, json, twin_path};

/// A registry folder, a store and a lockfile, all private to one test.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn registry(&self) -> PathBuf {
        self.dir.path().join("registry")
    }
    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    fn lockfile(&self) -> PathBuf {
        self.dir.path().join("wt.lock")
    }
    fn index(&self) -> Value {
        json(&std::fs::read_to_string(self.registry().join("index.json")).unwrap())
    }
    fn write_index(&self, index: &Value) {
        std::fs::write(
            self.registry().join("index.json"),
            serde_json::to_string_pretty(index).unwrap(),
        )
        .unwrap();
    }

    /// `wt-host ARGS… --install-dir STORE --lockfile LOCK` (for the verbs
    /// that take them).
    fn wt(&self, args: &[&str]) -> Exited {
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        if matches!(args[0], "install" | "list" | "run") {
            all.extend([
                "--install-dir".into(),
                self.store().display().to_string(),
                "--lockfile".into(),
                self.lockfile().display().to_string(),
            ]);
        }
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        wt_tests::run_to_exit(&all)
    }

    fn publish(&self, file: &Path, extra: &[&str]) -> Exited {
        let registry = self.registry().display().to_string();
        let file = file.display().to_string();
        let mut args = vec!["publish", file.as_str(), "--registry", registry.as_str()];
        args.extend_from_slice(extra);
        self.wt(&args)
    }

    /// Nothing half-installed: no entries, nothing left in staging.
    fn assert_nothing_installed(&self, name: &str) {
        let dir = self.store().join(name);
        let entries = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("entry.json").exists())
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(entries, 0, "{} has installed versions", dir.display());
        let staging = self.store().join(".staging");
        let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "staging not cleaned up");
    }
}

fn ok(out: &Exited) {
    assert!(out.status.success(), "{out:#?}");
}

fn failed(out: &Exited, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "{out:#?}");
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(line.contains(says), "{line:?} should say {says:?}");
}

/// hello.wasm with an extra custom section: other bytes, same describe.
fn altered_hello(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(twin_path("hello")).unwrap();
    bytes.extend_from_slice(&[0x00, 0x06, 0x04, b't', b'e', b's', b't', b'!']);
    let path = dir.join("hello-altered.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn publish_install_and_run_offline_over_loopback_http() {
    let env = Env::new();
    for twin in ["hello", "stripe"] {
        let out = env.publish(&twin_path(twin), &["--category", "test", "--author", "wt"]);
        ok(&out);
        assert!(
            out.stdout.starts_with(&format!("published {twin}@")),
            "{}",
            out.stdout
        );
    }
    let again = env.publish(&twin_path("hello"), &[]);
    ok(&again);
    assert!(again.stdout.starts_with("already published hello@0.1.0"));
    let altered = altered_hello(env.dir.path());
    failed(
        &env.publish(&altered, &[]),
        2,
        "hello@0.1.0 is already published with other bytes",
    );
    // A folder with files but no index is not a registry (`./registry`
    // from the repo root is the registry crate's source).
    let foreign = env.dir.path().join("crate");
    std::fs::create_dir_all(foreign.join("src")).unwrap();
    std::fs::write(foreign.join("Cargo.toml"), "[package]\n").unwrap();
    let hello = twin_path("hello").display().to_string();
    let foreign_arg = foreign.display().to_string();
    failed(
        &env.wt(&["publish", &hello, "--registry", &foreign_arg]),
        2,
        "has files but no index.json",
    );
    assert!(!foreign.join("hello").exists());
    let index = env.index();
    let hello = &index["twins"]["hello"]["versions"]["0.1.0"];
    assert_eq!(hello["component"]["url"], "hello/0.1.0/hello.wasm");
    assert_eq!(hello["world"], "wondertwin:twin@0.1.0");
    assert_eq!(hello["tier"], "free");
    assert_eq!(
        hello["component"]["size"],
        std::fs::metadata(twin_path("hello")).unwrap().len()
    );

    let server = FileServer::start(&env.registry(), Serve::Files);
    let out = env.wt(&[
        "install",
        "hello",
        "stripe@0.1.0",
        "--registry",
        &server.url,
    ]);
    ok(&out);
    assert!(
        out.stdout.contains("installed hello@0.1.0 sha256:"),
        "{}",
        out.stdout
    );
    let lock = std::fs::read_to_string(env.lockfile()).unwrap();
    assert!(
        lock.contains("name = \"hello\"") && lock.contains("name = \"stripe\""),
        "{lock}"
    );

    let listed = env.wt(&["list"]);
    ok(&listed);
    assert!(
        listed.stdout.contains("hello 0.1.0 free sha256:"),
        "{}",
        listed.stdout
    );
    let available = env.wt(&["list", "--available", "--registry", &server.url]);
    ok(&available);
    assert!(
        available.stdout.contains("stripe 0.1.0 free"),
        "{}",
        available.stdout
    );

    // Run from the store, with no registry reachable at all.
    drop(server);
    let store = env.store().display().to_string();
    let lockfile = env.lockfile().display().to_string();
    let host = HostProcess::start(
        &[
            ("hello", PathBuf::from("hello")),
            ("pay", PathBuf::from("stripe@0.1.0")),
        ],
        &["--install-dir", &store, "--lockfile", &lockfile],
    );
    let body = get_json(&format!("{}/", host.twin("hello").prefixed_url));
    assert_eq!(body["twin"], "hello");
    assert_eq!(host.twin("pay").version, "0.1.0");
}

/// A GET from a plain (not async) test.
fn get_json(url: &str) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        json(&text)
    })
}

#[test]
fn digest_mismatches_install_nothing() {
    let env = Env::new();
    ok(&env.publish(&twin_path("hello"), &[]));

    // The index promises other bytes than the registry holds.
    let mut index = env.index();
    let real = index["twins"]["hello"]["versions"]["0.1.0"]["component"]["sha256"].clone();
    index["twins"]["hello"]["versions"]["0.1.0"]["component"]["sha256"] =
        Value::from("0".repeat(64));
    env.write_index(&index);
    let server = FileServer::start(&env.registry(), Serve::Files);
    let out = env.wt(&["install", "hello", "--registry", &server.url]);
    failed(
        &out,
        1,
        &format!(
            "sha256 mismatch: expected {}, got {}",
            "0".repeat(64),
            real.as_str().unwrap()
        ),
    );
    env.assert_nothing_installed("hello");
    assert!(!env.lockfile().exists(), "no lockfile for a failed install");

    // The index is right, but the bytes are tampered with on the way.
    index["twins"]["hello"]["versions"]["0.1.0"]["component"]["sha256"] = real.clone();
    env.write_index(&index);
    let tampering = FileServer::start(&env.registry(), Serve::TamperWasm);
    let out = env.wt(&["install", "hello", "--registry", &tampering.url]);
    failed(
        &out,
        1,
        &format!("sha256 mismatch: expected {}", real.as_str().unwrap()),
    );
    env.assert_nothing_installed("hello");

    // A folder registry is checked the same way.
    let registry = env.registry().display().to_string();
    ok(&env.wt(&["install", "hello", "--registry", &registry]));
}

#[test]
fn a_tampered_store_file_refuses_to_load() {
    let env = Env::new();
    ok(&env.publish(&twin_path("hello"), &[]));
    let registry = env.registry().display().to_string();
    ok(&env.wt(&["install", "hello", "--registry", &registry]));
    let file = env.store().join("hello/0.1.0/twin.wasm");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);
    std::fs::write(&file, bytes).unwrap();
    let out = env.wt(&["run", "hello", "--listen", "127.0.0.1:0", "--no-own-ports"]);
    failed(&out, 2, "was changed after install");
    // --force fetches it again and it runs.
    ok(&env.wt(&["install", "--force", "hello", "--registry", &registry]));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(twin_path("hello")).unwrap()
    );
}

#[test]
fn unknown_names_versions_yanked_versions_and_specs() {
    let env = Env::new();
    ok(&env.publish(&twin_path("hello"), &[]));
    let registry = env.registry().display().to_string();
    failed(
        &env.wt(&["install", "nope", "--registry", &registry]),
        2,
        "no twin named nope in",
    );
    failed(
        &env.wt(&["install", "hello@9.9.9", "--registry", &registry]),
        2,
        "hello has no version 9.9.9 (versions: 0.1.0)",
    );
    failed(
        &env.wt(&["install", "Hello!", "--registry", &registry]),
        2,
        "\"Hello!\" is not a twin spec",
    );
    failed(
        &env.wt(&["run", "hello", "--listen", "127.0.0.1:0"]),
        2,
        "hello: not a file and not an installed twin; run `wt-host install hello`",
    );
    let mut index = env.index();
    index["twins"]["hello"]["versions"]["0.1.0"]["yanked"] = Value::Bool(true);
    env.write_index(&index);
    failed(
        &env.wt(&["install", "hello", "--registry", &registry]),
        2,
        "hello@0.1.0 is yanked; pin it exactly",
    );
    env.assert_nothing_installed("hello");
    ok(&env.wt(&["install", "hello@0.1.0", "--registry", &registry]));
}

#[test]
fn stalls_and_redirect_loops_time_out_with_a_message() {
    let env = Env::new();
    let stalled = FileServer::start(env.dir.path(), Serve::Stall);
    let started = std::time::Instant::now();
    let out = env.wt(&[
        "install",
        "hello",
        "--registry",
        &stalled.url,
        "--timeout",
        "1s",
    ]);
    failed(&out, 1, "timed out");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    env.assert_nothing_installed("hello");

    let looping = FileServer::start(env.dir.path(), Serve::RedirectLoop);
    let out = env.wt(&["install", "hello", "--registry", &looping.url]);
    failed(&out, 1, "more than 5 redirects");
}

#[test]
fn a_pro_twin_from_the_registry_needs_a_license_under_its_registry_name() {
    let env = Env::new();
    let out = env.publish(
        &fixture_path("licensed"),
        &["--name", "acme/paid", "--tier", "pro"],
    );
    ok(&out);
    let registry = env.registry().display().to_string();
    ok(&env.wt(&["install", "acme/paid", "--registry", &registry]));
    let store = env.store().display().to_string();
    let lockfile = env.lockfile().display().to_string();
    let missing = env.dir.path().join("no-license.jwt").display().to_string();
    let host = HostProcess::start(
        &[("paid", PathBuf::from("acme/paid"))],
        &[
            "--install-dir",
            &store,
            "--lockfile",
            &lockfile,
            "--license",
            &missing,
        ],
    );
    assert!(
        host.stdout
            .iter()
            .any(|l| l.starts_with("unlicensed paid:")),
        "{:?}",
        host.stdout
    );
    let twins = get_json(&format!("{}/_wt/twins", host.url));
    assert_eq!(twins["twins"][0]["identity"], "acme/paid");
    assert_eq!(twins["twins"][0]["license"]["state"], "license_missing");
}

#[test]
fn install_with_no_names_installs_the_project_and_frozen_refuses_changes() {
    let env = Env::new();
    ok(&env.publish(&twin_path("hello"), &[]));
    let project = env.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("wt.toml"),
        format!(
            "registries = [\"{}\"]\n\n[twins.hello]\nsource = \"hello\"\n",
            env.registry().display()
        ),
    )
    .unwrap();
    let install = |extra: &[&str]| {
        let store = env.store().display().to_string();
        let out = std::process::Command::new(wt_tests::wt_host_bin())
            .args(["install", "--install-dir", &store])
            .args(extra)
            .current_dir(&project)
            .env_remove("WT_REGISTRY")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Nothing pinned yet: --frozen changes nothing and says what to do.
    let (code, _, err) = install(&["--frozen"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("hello is not pinned"), "{err}");
    assert!(!project.join("wt.lock").exists());
    assert!(!env.store().join("hello").exists());

    let (code, out, err) = install(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("installed hello@0.1.0 sha256:"), "{out}");
    assert!(
        std::fs::read_to_string(project.join("wt.lock"))
            .unwrap()
            .contains("hello")
    );
    let (code, out, err) = install(&["--frozen"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("installed hello@0.1.0"), "{out}");
}
