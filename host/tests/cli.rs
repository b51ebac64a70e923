//! The binary's own surface: help, version, and exit codes for bad input.
//! (Its presence also makes `cargo test` build `wt-host` with the same
//! features as every other test, so wasmtime is compiled once.)

use std::process::Command;

fn wt_host(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wt-host"))
        .args(args)
        .env(
            "WT_CACHE_DIR",
            std::env::temp_dir().join("wt-host-cli-tests"),
        )
        .output()
        .expect("run wt-host")
}

#[test]
fn help_lists_the_subcommands() {
    let out = wt_host(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "inspect", "version"] {
        assert!(help.contains(word), "{help}");
    }
}

#[test]
fn version_names_the_world() {
    let out = wt_host(&["version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert!(text.contains("wondertwin:twin@0.1.0"), "{text}");
}

#[test]
fn unknown_flag_and_missing_twin_exit_2() {
    let out = wt_host(&["run", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    let out = wt_host(&["run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_duration_names_the_flag() {
    let out = wt_host(&["run", "x.wasm", "--request-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--request-timeout"), "{err}");
}
