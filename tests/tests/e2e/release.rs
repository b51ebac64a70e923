//! Distribution: `install.sh` against a folder of release archives served
//! over loopback (a good archive installs and runs; a corrupted one is
//! refused and installs nothing), and what `wt-host version` reports.

use std::path::Path;
use std::process::Command;

use wt_tests::{FileServer, Serve, run_to_exit, wt_host_bin};

fn os_arch() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

/// A release folder as GitHub serves it: `download/vX/…` and
/// `latest/download/…`, each with the archive and `checksums.txt`.
fn release_folder(root: &Path, version: &str, corrupt: bool) {
    let (os, arch) = os_arch();
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(wt_host_bin(), staging.join("wt-host")).unwrap();
    std::fs::write(staging.join("README.md"), "wt\n").unwrap();
    let archive = format!("wt-host_{version}_{os}_{arch}.tar.gz");
    let built = root.join(&archive);
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&built)
        .arg("-C")
        .arg(&staging)
        .args(["wt-host", "README.md"])
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&built).unwrap();
    let digest = sha256_hex(&bytes);
    let mut served = bytes;
    if corrupt {
        let middle = served.len() / 2;
        served[middle] ^= 0x55;
    }
    for dir in [format!("download/v{version}"), "latest/download".to_owned()] {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&archive), &served).unwrap();
        std::fs::write(
            dir.join("checksums.txt"),
            format!("{digest}  {archive}\n0000  wt-host_{version}_other_cpu.tar.gz\n"),
        )
        .unwrap();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn install(server: &FileServer, bin: &Path, version: Option<&str>) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../install.sh");
    let mut command = Command::new("sh");
    command
        .arg(script)
        .env("WT_DOWNLOAD_URL", &server.url)
        .env("WT_BIN_DIR", bin);
    match version {
        Some(v) => command.env("WT_VERSION", v),
        None => command.env_remove("WT_VERSION"),
    };
    command.output().unwrap()
}

#[test]
fn install_sh_verifies_and_installs_a_release() {
    let dir = tempfile::tempdir().unwrap();
    release_folder(dir.path(), "0.1.0", false);
    let server = FileServer::start(dir.path(), Serve::Files);
    for version in [Some("0.1.0"), None] {
        let bin = dir
            .path()
            .join(format!("bin-{}", version.unwrap_or("latest")));
        let out = install(&server, &bin, version);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with("installed wt-host 0.1.0 to "),
            "{stdout}"
        );
        let version_out = Command::new(bin.join("wt-host"))
            .arg("version")
            .output()
            .unwrap();
        assert!(version_out.status.success());
    }
}

#[test]
fn install_sh_refuses_a_corrupted_archive_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    release_folder(dir.path(), "0.1.0", true);
    let server = FileServer::start(dir.path(), Serve::Files);
    let bin = dir.path().join("bin");
    let out = install(&server, &bin, Some("0.1.0"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch for wt-host_0.1.0_")
            && stderr.contains("nothing was installed"),
        "{stderr}"
    );
    assert!(!bin.join("wt-host").exists());

    // An unknown version is a clear failure too.
    let out = install(&server, &bin, Some("9.9.9"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot download"));
}

#[test]
fn version_names_the_build() {
    let out = run_to_exit(&["version"]);
    assert!(out.status.success());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("wt-host {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("commit "), "{lines:?}");
    assert!(lines[1].len() > "commit ".len());
    assert!(lines[2].starts_with("target ") && lines[2].contains(std::env::consts::ARCH));
    assert_eq!(lines[3], "wasmtime 48.0.8");
    assert_eq!(lines[4], "world wondertwin:twin@0.1.0");
}
