//! `wt.toml`: `wt-host run` with no arguments starts the project's twins
//! with their ports and settings, and the control verbs find the host.

use std::path::Path;
use std::process::Command;

use wt_tests::{HostProcess, fixture_path, json, twin_path, wt_host_bin};

fn wt_in(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(wt_host_bin());
    command
        .args(args)
        .current_dir(dir)
        .env("WT_CACHE_DIR", dir.join("cache"))
        .env_remove("WT_URL");
    command
}

fn output(mut command: Command) -> (Option<i32>, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn run_with_no_arguments_starts_the_project() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(twin_path("hello"), dir.path().join("hello.wasm")).unwrap();
    let project = format!(
        r#"
listen = "127.0.0.1:0"
state_dir = "state"
allow_host = ["twins.internal"]

[twins.greeter]
source = "hello.wasm"
port = 0

[twins.pro]
source = "{}"
config = {{ greeting = "howdy" }}
"#,
        fixture_path("licensed").display()
    );
    std::fs::write(dir.path().join("wt.toml"), project).unwrap();
    let host = HostProcess::spawn(
        wt_in(
            dir.path(),
            &["run", "--no-own-ports", "--license", "none.jwt"],
        ),
        2,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(dir.path().join("state/greeter/state.redb").exists());
    let client = reqwest::Client::new();
    let body = client
        .get(format!("{}/greeter/", host.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(json(&body)["twin"], "hello");
    // `allow_host` from the file: a proxy's name is served, others are not.
    for (name, status) in [("twins.internal:4100", 200), ("evil.example", 421)] {
        let response = client
            .get(format!("{}/greeter/", host.url))
            .header("host", name)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "Host: {name}");
    }
    let config = client
        .get(format!("{}/_wt/twins/pro/config", host.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(json(&config)["settings"][1]["value"], "howdy");

    // The control verbs read `listen` from ./wt.toml.
    let address = host.url.trim_start_matches("http://");
    std::fs::write(
        dir.path().join("wt.toml"),
        format!("listen = \"{address}\"\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = output(wt_in(dir.path(), &["reset", "greeter"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("greeter"), "{stdout}");
}

#[test]
fn project_mistakes_are_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(wt_in(dir.path(), &["run"]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("no TWIN given and no wt.toml in this directory"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("wt.toml"),
        "[twins.a]\nsource = \"a.wasm\"\nprot = 1\n",
    )
    .unwrap();
    let (code, _, stderr) = output(wt_in(dir.path(), &["run"]));
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim(),
        "wt-host: wt.toml:3:1: unknown field `prot`, expected one of `source`, `port`, `config`"
    );

    std::fs::write(
        dir.path().join("wt.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\n[twins.pro]\nsource = \"{}\"\nconfig = {{ greting = \"x\" }}\n",
            fixture_path("licensed").display()
        ),
    )
    .unwrap();
    let (code, _, stderr) = output(wt_in(dir.path(), &["run", "--no-own-ports"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("wt.toml: twins.pro.config: twin 'pro' has no setting \"greting\""),
        "{stderr}"
    );
}

#[test]
fn install_and_run_use_the_projects_registries_and_lockfile() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry").display().to_string();
    let hello = twin_path("hello").display().to_string();
    let (code, _, stderr) = output(wt_in(
        dir.path(),
        &["publish", &hello, "--registry", &registry],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    std::fs::write(
        dir.path().join("wt.toml"),
        "registries = [\"registry\"]\nlockfile = \"pins.lock\"\n",
    )
    .unwrap();
    let store = dir.path().join("store").display().to_string();
    let (code, stdout, stderr) = output(wt_in(
        dir.path(),
        &["install", "hello", "--install-dir", &store],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("installed hello@0.1.0"), "{stdout}");
    assert!(dir.path().join("pins.lock").is_file());
}

#[test]
fn the_schema_verb_prints_the_checked_in_schema() {
    let out = wt_tests::run_to_exit(&["schema"]);
    assert!(out.status.success());
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/wt.toml.schema.json"),
    )
    .unwrap();
    assert_eq!(out.stdout, checked_in);
}
