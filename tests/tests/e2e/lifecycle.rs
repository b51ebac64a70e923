//! `wt-host up/down/status/logs/wait`: a host in the background for scripts
//! and CI, found by the other verbs through `.wt/`.

use std::path::Path;
use std::process::Command;

use wt_tests::{twin_path, wt_host_bin};

fn wt(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(wt_host_bin())
        .args(args)
        .current_dir(dir)
        .env("WT_CACHE_DIR", dir.join("cache"))
        .env_remove("WT_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Stops a host left up by a failing test.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = wt(self.0, &["down"]);
    }
}

#[test]
fn up_status_logs_down_from_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(twin_path("hello"), root.join("hello.wasm")).unwrap();
    std::fs::write(
        root.join("wt.toml"),
        "listen = \"127.0.0.1:0\"\n\n[twins.hello]\nsource = \"hello.wasm\"\nport = 0\n",
    )
    .unwrap();
    let _down = Down(root);

    let (code, out, err) = wt(root, &["up"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("up at http://127.0.0.1:"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("ready hello ")), "{out}");
    let url = std::fs::read_to_string(root.join(".wt/host.url")).unwrap();
    assert!(first.contains(url.trim()), "{out} vs {url}");
    assert!(root.join(".wt/host.pid").is_file());

    let (code, again, _) = wt(root, &["up"]);
    assert_eq!(
        (code, again.starts_with("already up at ")),
        (Some(0), true),
        "{again}"
    );

    let (code, status, err) = wt(root, &["status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        status.contains("\nhello 0.1.0 ok http://127.0.0.1:"),
        "{status}"
    );
    assert!(status.ends_with("tenants: 0\n"), "{status}");

    // The control verbs find the host through .wt/host.url.
    let (code, reset, err) = wt(root, &["reset"]);
    assert_eq!((code, reset.trim()), (Some(0), "reset hello"), "{err}");
    let (code, _, _) = wt(root, &["wait", "--timeout", "5s"]);
    assert_eq!(code, Some(0));

    let (_, logs, _) = wt(root, &["logs", "hello"]);
    assert!(
        logs.lines().any(|l| l.starts_with("ready hello ")),
        "{logs}"
    );

    let (code, down, err) = wt(root, &["down"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(down.starts_with("down ("), "{down}");
    assert!(!root.join(".wt/host.url").exists());
    let (code, _, err) = wt(root, &["status"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no wt-host is up"), "{err}");
    let (code, again, _) = wt(root, &["down"]);
    assert_eq!(
        (code, again.starts_with("no wt-host is up")),
        (Some(0), true),
        "{again}"
    );
}

#[test]
fn up_says_why_run_did_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = wt(
        dir.path(),
        &["up", "missing.wasm", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("missing.wasm") && err.contains("before it was ready"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
