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

/// `dist/ci/wt-ci.sh`, what the GitHub Action and the GitLab snippet run.
fn ci_script(
    dir: &Path,
    args: &[&str],
    github_env: Option<&Path>,
) -> (Option<i32>, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ci/wt-ci.sh");
    let bin_dir = wt_host_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("sh");
    command
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("WT_CACHE_DIR", dir.join("cache"))
        .env_remove("WT_URL")
        .env_remove("GITHUB_ENV");
    if let Some(file) = github_env {
        command.env("GITHUB_ENV", file);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_ci_script_starts_twins_and_exports_their_urls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let _down = Down(root);
    let hello = twin_path("hello").display().to_string();
    let env_file = root.join("github.env");
    let (code, out, err) = ci_script(root, &["start", &hello], Some(&env_file));
    assert_eq!(code, Some(0), "{out}{err}");
    let exported = std::fs::read_to_string(&env_file).unwrap();
    let var = |name: &str| {
        exported
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {exported}"))
            .to_owned()
    };
    let own = var("WT_HELLO_URL");
    assert!(var("WT_URL").starts_with("http://127.0.0.1:"), "{exported}");
    assert_ne!(own, var("WT_URL"), "the twin has a port of its own");
    let (status, counter) =
        wt_tests::send(reqwest::Client::new().get(format!("{own}/counter"))).await;
    assert_eq!(
        (status, counter["value"].as_i64()),
        (200, Some(0)),
        "{counter}"
    );

    // Without GITHUB_ENV the variables are printed (a GitLab dotenv report).
    let (code, printed, err) = ci_script(root, &["start", &hello], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        printed.contains("WT_HELLO_URL=http://127.0.0.1:"),
        "{printed}"
    );

    let (code, _, err) = ci_script(root, &["stop"], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(reqwest::get(format!("{own}/counter")).await.is_err());
}
