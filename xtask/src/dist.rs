//! `cargo xtask dist [--target TRIPLE]...`: every release artifact this
//! machine can build, in `target/dist/`:
//!
//! - `wt-host_<version>_<os>_<arch>.tar.gz` per target (the binary and the
//!   README), built natively for the host triple and with `cargo zigbuild`
//!   for the others when it is installed (`pip install ziglang
//!   cargo-zigbuild`); a target that cannot be built here is reported and
//!   skipped, never faked;
//! - `twins/<name>-<version>.wasm`: one artifact per twin for every platform;
//! - `registry/` (and `wt-registry_<version>.tar.gz`): an index pinning each
//!   twin's sha256, made with `wt-host publish`;
//! - `checksums.txt` (sha256 of every file above), `CHANGELOG.md` (commits
//!   since the last tag) and `wt-host.rb` (the Homebrew formula, filled in).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{build_twins, cargo, status};

/// Every release target, as `(triple, os, arch)` in archive names.
pub const TARGETS: &[(&str, &str, &str)] = &[
    ("x86_64-unknown-linux-gnu", "linux", "amd64"),
    ("aarch64-unknown-linux-gnu", "linux", "arm64"),
    ("x86_64-apple-darwin", "darwin", "amd64"),
    ("aarch64-apple-darwin", "darwin", "arm64"),
];

pub fn dist(root: &Path, args: &[String]) -> Result<()> {
    let mut wanted: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--target" => wanted.push(it.next().context("--target needs a triple")?.clone()),
            other => bail!("dist: unknown argument {other:?} (use --target TRIPLE)"),
        }
    }
    if wanted.is_empty() {
        wanted = TARGETS.iter().map(|t| t.0.to_owned()).collect();
    }
    let version = workspace_version(root)?;
    let out = root.join("target").join("dist");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(out.join("twins"))?;
    let host_triple = host_triple()?;

    let mut built = Vec::new();
    let mut skipped = Vec::new();
    for triple in &wanted {
        let Some(&(_, os, arch)) = TARGETS.iter().find(|t| t.0 == triple) else {
            bail!("dist: {triple} is not a release target");
        };
        let binary = if *triple == host_triple {
            let mut build = cargo();
            build
                .current_dir(root)
                .args(["build", "--release", "-p", "wt-host"]);
            status(build, &format!("cargo build --release ({triple})"))?;
            root.join("target/release/wt-host")
        } else {
            match zigbuild(root, triple) {
                Ok(path) => path,
                Err(why) => {
                    eprintln!("dist: skipping {triple}: {why:#}");
                    skipped.push(format!("{triple}: {why:#}"));
                    continue;
                }
            }
        };
        let archive = out.join(format!("wt-host_{version}_{os}_{arch}.tar.gz"));
        package(root, &binary, &archive)?;
        built.push(triple.clone());
    }

    // Twins: one artifact each, and a registry index pinning them.
    let wt_host = if root.join("target/release/wt-host").is_file() {
        root.join("target/release/wt-host")
    } else {
        crate::build_host(root)?;
        root.join("target/debug/wt-host")
    };
    let registry = out.join("registry");
    for twin in build_twins(root)? {
        let name = twin
            .file_stem()
            .and_then(|s| s.to_str())
            .context("twin file name")?
            .to_owned();
        if name == "hello" {
            continue; // the host's own test twin, not a product
        }
        let mut publish = Command::new(&wt_host);
        publish
            .arg("publish")
            .arg(&twin)
            .arg("--registry")
            .arg(&registry)
            .args([
                "--author",
                "wt",
                "--repo",
                "https://github.com/wondertwin/wt",
            ]);
        status(publish, &format!("wt-host publish {name}"))?;
        let twin_version = published_version(&registry, &name)?;
        std::fs::copy(
            &twin,
            out.join("twins")
                .join(format!("{name}-{twin_version}.wasm")),
        )?;
    }
    let registry_archive = out.join(format!("wt-registry_{version}.tar.gz"));
    let mut tar = Command::new("tar");
    tar.arg("-czf")
        .arg(&registry_archive)
        .arg("-C")
        .arg(&out)
        .arg("registry");
    status(tar, "tar (registry)")?;

    write_checksums(&out)?;
    write_changelog(root, &out)?;
    write_formula(root, &out, &version)?;

    println!("dist: {} in {}", version, out.display());
    println!("built: {}", built.join(", "));
    for why in &skipped {
        println!("skipped: {why}");
    }
    Ok(())
}

/// `[workspace.package] version` from the root manifest.
fn workspace_version(root: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let section = manifest
        .split("[workspace.package]")
        .nth(1)
        .context("no [workspace.package] in Cargo.toml")?;
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .context("no version in [workspace.package]")
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host")
}

/// Cross-builds with `cargo zigbuild`, adding the rustup target if needed.
fn zigbuild(root: &Path, triple: &str) -> Result<PathBuf> {
    let probe = cargo().args(["zigbuild", "--help"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bail!("cargo-zigbuild is not installed (pip install ziglang cargo-zigbuild)");
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", triple]);
    status(add, &format!("rustup target add {triple}"))?;
    let mut build = cargo();
    build
        .current_dir(root)
        .args(["zigbuild", "--release", "-p", "wt-host", "--target", triple]);
    status(build, &format!("cargo zigbuild ({triple})"))?;
    Ok(root.join("target").join(triple).join("release/wt-host"))
}

fn package(root: &Path, binary: &Path, archive: &Path) -> Result<()> {
    let staging = archive.with_extension("").with_extension("staging");
    std::fs::create_dir_all(&staging)?;
    std::fs::copy(binary, staging.join("wt-host"))?;
    std::fs::copy(root.join("README.md"), staging.join("README.md"))?;
    let mut tar = Command::new("tar");
    tar.arg("-czf")
        .arg(archive)
        .arg("-C")
        .arg(&staging)
        .args(["wt-host", "README.md"]);
    status(tar, "tar")?;
    std::fs::remove_dir_all(&staging)?;
    Ok(())
}

fn published_version(registry: &Path, name: &str) -> Result<String> {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(registry.join("index.json"))?)?;
    index["twins"][name]["latest"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{name} missing from the index"))
}

/// `sha256  file` lines, as `sha256sum -c` reads them.
fn write_checksums(out: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "gz") {
            files.push(path);
        }
    }
    for entry in std::fs::read_dir(out.join("twins"))? {
        files.push(entry?.path());
    }
    files.sort();
    let mut text = String::new();
    for file in files {
        let digest = hex(&Sha256::digest(std::fs::read(&file)?));
        let relative = file.strip_prefix(out).unwrap_or(&file);
        text.push_str(&format!("{digest}  {}\n", relative.display()));
    }
    std::fs::write(out.join("checksums.txt"), text)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Commits since the last `v*` tag (all of them when there is none).
fn write_changelog(root: &Path, out: &Path) -> Result<()> {
    let last_tag = Command::new("git")
        .current_dir(root)
        .args(["describe", "--tags", "--abbrev=0", "--match", "v*"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let range = last_tag
        .as_ref()
        .map(|t| format!("{t}..HEAD"))
        .unwrap_or_else(|| "HEAD".to_owned());
    let log = Command::new("git")
        .current_dir(root)
        .args(["log", "--pretty=format:- %s (%h)", &range])
        .output()
        .context("git log")?;
    let since = last_tag.map_or("the beginning".to_owned(), |t| t);
    let text = format!(
        "# Changes since {since}\n\n{}\n",
        String::from_utf8_lossy(&log.stdout)
    );
    std::fs::write(out.join("CHANGELOG.md"), text)?;
    Ok(())
}

/// Fills in `dist/homebrew/wt-host.rb.in` with the version and the darwin
/// and linux archive digests (`MISSING` for archives not built here).
fn write_formula(root: &Path, out: &Path, version: &str) -> Result<()> {
    let template = std::fs::read_to_string(root.join("dist/homebrew/wt-host.rb.in"))?;
    let checksums = std::fs::read_to_string(out.join("checksums.txt"))?;
    let mut formula = template.replace("@VERSION@", version);
    for (_, os, arch) in TARGETS {
        let file = format!("wt-host_{version}_{os}_{arch}.tar.gz");
        let digest = checksums
            .lines()
            .find(|l| l.ends_with(&file))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("MISSING");
        formula = formula.replace(
            &format!("@SHA256_{}_{}@", os.to_uppercase(), arch.to_uppercase()),
            digest,
        );
    }
    std::fs::write(out.join("wt-host.rb"), formula)?;
    Ok(())
}
