//! Records what `wt-host version` prints about the build: the target triple
//! and the git commit (from `WT_GIT_COMMIT` when set, as release builds from
//! a source archive do, else `git`, else "unknown").

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WT_GIT_COMMIT");
    // Rebuild when the checked-out commit changes.
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("WT_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=WT_GIT_COMMIT={commit}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=WT_TARGET={target}");
}
