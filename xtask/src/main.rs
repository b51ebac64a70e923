//! Project automation, so a fresh clone needs nothing but rustup:
//!
//! - `cargo xtask run [WT-HOST ARGS…]`: build the twins and wt-host, serve every twin.
//! - `cargo xtask test`: build the twins, then run every test.
//! - `cargo xtask ci`: formatting and lints, then `test` (what `.ci/run` does).
//! - `cargo xtask build-twins`: compile every crate under `twins/` to `target/twins/<name>.wasm`.
//! - `cargo xtask dist [--target TRIPLE]...`: release archives, twins, registry, checksums
//!   (see `dist.rs`).

mod dist;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile guests are built with (see the workspace Cargo.toml).
const TWIN_PROFILE: &str = "twin";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    // `cargo xtask run -- --port hello=0` and `cargo xtask run --port hello=0`
    // mean the same thing.
    let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
    let root = workspace_root()?;
    match task.as_str() {
        "build-twins" => build_twins(&root).map(drop),
        "run" => serve(&root, &rest),
        "test" => test(&root, &rest),
        "ci" => ci(&root),
        // The package tests alone, against what `test` last built.
        "packages" => {
            let binary = packaged_binary(&root)?;
            python_package_tests(&root, &binary)?;
            node_package_tests(&root, &binary)?;
            go_package_tests(&root, &binary)?;
            container_tests(&root, &binary)
        }
        "image" => {
            let binary = match rest.first() {
                Some(path) => PathBuf::from(path),
                None if root.join("target/release/wt-host").is_file() => {
                    root.join("target/release/wt-host")
                }
                None => bail!(
                    "usage: cargo xtask image [WT_HOST_BINARY] (default: target/release/wt-host, built first)"
                ),
            };
            build_image(&root, &binary, "wt:latest")
        }
        "dist" => dist::dist(&root, &rest),
        _ => bail!(
            "usage: cargo xtask <run [wt-host args…] | test [cargo test args…] | ci | packages | build-twins | dist [--target TRIPLE]…>"
        ),
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask must live one level below the workspace root")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(mut command: Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Installs the wasm target through rustup when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to install the wasm32-wasip2 target")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", WASM_TARGET]);
    status(add, "rustup target add wasm32-wasip2")
}

/// Guest crates that exist for the tests: components to refuse or misbehave.
const FIXTURES: &[&str] = &["cli-command", "adversary", "licensed", "bloated"];

/// The twin crates: every folder under `twins/` with a Cargo.toml.
fn twin_crates(root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("twins")).context("reading twins/")? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Builds every twin for wasm32-wasip2 with the `twin` profile (optimized and
/// stripped: twins are shipped, and an optimized guest is what benches and
/// users see) and copies the components to `target/twins/<name>.wasm`, the
/// one documented place.
fn build_twins(root: &Path) -> Result<Vec<PathBuf>> {
    let crates = twin_crates(root)?;
    build_guests(root, &crates, "twins")
}

/// Builds the test fixtures to `target/fixtures/<name>.wasm`.
fn build_fixtures(root: &Path) -> Result<Vec<PathBuf>> {
    let crates: Vec<String> = FIXTURES.iter().map(|s| (*s).to_owned()).collect();
    build_guests(root, &crates, "fixtures")
}

fn build_guests(root: &Path, crates: &[String], out: &str) -> Result<Vec<PathBuf>> {
    ensure_wasm_target()?;
    let mut build = cargo();
    build
        .current_dir(root)
        .args(["build", "--profile", TWIN_PROFILE, "--target", WASM_TARGET]);
    for name in crates {
        build.args(["-p", name]);
    }
    status(build, &format!("building the {out} for wasm32-wasip2"))?;

    let out_dir = root.join("target").join(out);
    std::fs::create_dir_all(&out_dir)?;
    let built = root.join("target").join(WASM_TARGET).join(TWIN_PROFILE);
    let mut paths = Vec::new();
    for name in crates {
        // Libraries are named with underscores, binaries keep their dashes.
        let artifact = [name.replace('-', "_"), name.clone()]
            .iter()
            .map(|stem| built.join(format!("{stem}.wasm")))
            .find(|p| p.is_file())
            .with_context(|| format!("no {name}.wasm in {}", built.display()))?;
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&artifact, &dest)
            .with_context(|| format!("copying {} to {}", artifact.display(), dest.display()))?;
        paths.push(dest);
    }
    Ok(paths)
}

/// Builds wt-host the way `cargo test --workspace` does. Dev-dependencies
/// (an HTTP client, criterion) change the features of crates under wasmtime,
/// so `cargo build -p wt-host` would be a second, separate wasmtime build;
/// compiling through the test invocation keeps one.
fn build_host(root: &Path) -> Result<()> {
    let mut build = cargo();
    build
        .current_dir(root)
        .args(["test", "--workspace", "--no-run", "--quiet"]);
    status(build, "building wt-host")
}

fn serve(root: &Path, extra: &[String]) -> Result<()> {
    let twins = build_twins(root)?;
    build_host(root)?;
    let mut host = Command::new(root.join("target").join("debug").join("wt-host"));
    host.current_dir(root).arg("run").args(&twins).args(extra);
    status(host, "wt-host")
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    build_twins(root)?;
    build_fixtures(root)?;
    // `cargo test` builds the wt-host binary too (host/tests needs it), and
    // the end-to-end tests in tests/ start that same binary.
    let mut test = cargo();
    test.current_dir(root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("WT_TWINS_DIR", root.join("target").join("twins"));
    status(test, "cargo test")?;
    sdk_tests(root)?;
    let binary = packaged_binary(root)?;
    python_package_tests(root, &binary)?;
    node_package_tests(root, &binary)?;
    go_package_tests(root, &binary)?;
    container_tests(root, &binary)
}

/// The `wt-host` the package tests wrap: the debug build the tests just
/// used, without its debug info when `strip` is there (171 MB -> 50 MB,
/// which is most of what packing costs).
fn packaged_binary(root: &Path) -> Result<PathBuf> {
    let built = root.join("target/debug/wt-host");
    let out = root.join("target/dist-test");
    std::fs::create_dir_all(&out)?;
    let packaged = out.join("wt-host");
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&packaged)
        .arg(&built)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(&built, &packaged)?;
    }
    Ok(packaged)
}

/// `pip install wondertwin` as a user would: the wheel built from this
/// tree's `wt-host` and twins (dist/python/build_wheel.py), installed into
/// a fresh virtualenv with the vendor SDKs, and dist/python/example run
/// from outside the repo so the installed package is what is imported.
fn python_package_tests(root: &Path, binary: &Path) -> Result<()> {
    let out = root.join("target").join("dist-test").join("python");
    let _ = std::fs::remove_dir_all(&out);
    let mut build = Command::new("python3");
    build
        .arg(root.join("dist/python/build_wheel.py"))
        .arg("--binary")
        .arg(binary)
        .arg("--twins")
        .arg(root.join("target/twins"))
        .arg("--out")
        .arg(&out);
    status(build, "building the wondertwin wheel")?;
    let wheel = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("no wheel was built")?;
    let venv = out.join("venv");
    let mut create = Command::new("python3");
    create.arg("-m").arg("venv").arg(&venv);
    status(create, "python3 -m venv (for the wondertwin wheel)")?;
    let python = venv.join("bin").join("python");
    let mut install = pip_install(&python);
    install
        .arg(&wheel)
        .arg("-r")
        .arg(root.join("dist/python/example/requirements.txt"));
    status(
        install,
        "pip install the wondertwin wheel and the example's SDKs",
    )?;
    let suite = out.join("example");
    std::fs::create_dir_all(&suite)?;
    std::fs::copy(
        root.join("dist/python/example/test_example.py"),
        suite.join("test_example.py"),
    )?;
    let mut pytest = Command::new(&python);
    pytest
        .current_dir(&suite)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
        ])
        .env_remove("WT_URL")
        .env_remove("WT_HOST_BIN");
    status(pytest, "the wondertwin example suite (dist/python/example)")
}

/// The vendors' own SDKs judge each twin: pytest suites under `tests/sdk/`,
/// run in parallel (pytest-xdist) from a virtualenv this task creates (and refreshes whenever
/// `tests/sdk/requirements.txt` changes) in `target/sdk-venv`.
fn sdk_tests(root: &Path) -> Result<()> {
    let suite = root.join("tests").join("sdk");
    let requirements = suite.join("requirements.txt");
    if !requirements.is_file() {
        return Ok(());
    }
    let venv = root.join("target").join("sdk-venv");
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        let mut create = Command::new("python3");
        create.arg("-m").arg("venv").arg(&venv);
        status(
            create,
            "python3 -m venv (the SDK tests need Python 3.9+ with venv)",
        )?;
    }
    let wanted = std::fs::read_to_string(&requirements)?;
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let mut install = pip_install(&python);
        install.arg("-r").arg(&requirements);
        status(install, "pip install -r tests/sdk/requirements.txt")?;
        std::fs::write(&stamp, &wanted)?;
    }
    let mut pytest = Command::new(&python);
    pytest
        .current_dir(root)
        // One worker per core, each test in a tenant of its own on one
        // shared host (tests/sdk/conftest.py): 164 tests in 11 s instead
        // of 25 s on two cores.
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "auto"])
        .arg(&suite)
        .env(
            "WT_HOST_BIN",
            root.join("target").join("debug").join("wt-host"),
        )
        .env("WT_TWINS_DIR", root.join("target").join("twins"));
    status(pytest, "the vendor SDK tests (pytest tests/sdk)")
}

fn ci(root: &Path) -> Result<()> {
    let mut fmt = cargo();
    fmt.current_dir(root)
        .args(["fmt", "--all", "--", "--check"]);
    status(fmt, "cargo fmt --check")?;
    let mut clippy = cargo();
    clippy.current_dir(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    status(clippy, "cargo clippy")?;
    test(root, &[])
}

/// `npm install @wondertwin/wt` as a user would: the main package (client,
/// types, the twins) and this platform's binary package, packed with
/// `npm pack`, installed from the tarballs into a scratch project with the
/// stripe and resend npm SDKs, and dist/node/example run with `node --test`.
fn node_package_tests(root: &Path, binary: &Path) -> Result<()> {
    let Some(npm) = which("npm") else {
        println!("skipped the @wondertwin/wt package test: npm is not installed");
        return Ok(());
    };
    let out = root.join("target/dist-test/node");
    let _ = std::fs::remove_dir_all(&out);
    let main_dir = out.join("wt");
    std::fs::create_dir_all(main_dir.join("twins"))?;
    for file in ["package.json", "index.js", "index.d.ts"] {
        std::fs::copy(root.join("dist/node/wt").join(file), main_dir.join(file))?;
    }
    for twin in std::fs::read_dir(root.join("target/twins"))? {
        let path = twin?.path();
        let keep = path.extension().is_some_and(|e| e == "wasm")
            && path.file_stem().is_some_and(|s| s != "hello");
        if keep {
            std::fs::copy(
                &path,
                main_dir
                    .join("twins")
                    .join(path.file_name().context("a name")?),
            )?;
        }
    }
    // The platform package, as esbuild ships its binaries.
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    let platform = format!("wt-{os}-{cpu}");
    let platform_dir = out.join(&platform);
    std::fs::create_dir_all(platform_dir.join("bin"))?;
    std::fs::copy(binary, platform_dir.join("bin/wt-host"))?;
    std::fs::write(
        platform_dir.join("package.json"),
        format!(
            "{{\"name\": \"@wondertwin/{platform}\", \"version\": \"0.1.0\", \"os\": [\"{os}\"], \"cpu\": [\"{cpu}\"], \"files\": [\"bin/\"], \"license\": \"Apache-2.0\"}}\n"
        ),
    )?;
    for dir in [&main_dir, &platform_dir] {
        let mut pack = Command::new(&npm);
        pack.current_dir(dir)
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&out);
        status(pack, "npm pack")?;
    }
    let project = out.join("project");
    std::fs::create_dir_all(&project)?;
    std::fs::copy(
        root.join("dist/node/example/twins.test.js"),
        project.join("twins.test.js"),
    )?;
    let example: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("dist/node/example/package.json"),
    )?)?;
    let mut manifest = example.clone();
    let main_tgz = format!("file:{}", out.join("wondertwin-wt-0.1.0.tgz").display());
    let platform_tgz = format!(
        "file:{}",
        out.join(format!("wondertwin-{platform}-0.1.0.tgz"))
            .display()
    );
    manifest["devDependencies"]["@wondertwin/wt"] = main_tgz.into();
    manifest["devDependencies"][format!("@wondertwin/{platform}")] = platform_tgz.clone().into();
    // Until it is published, the platform package the main one names comes
    // from the tarball.
    manifest["overrides"] = serde_json::json!({ format!("@wondertwin/{platform}"): platform_tgz });
    std::fs::write(
        project.join("package.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    let mut install = Command::new(&npm);
    install
        .current_dir(&project)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"]);
    status(
        install,
        "npm install (the @wondertwin/wt tarballs, stripe, resend)",
    )?;
    let mut test = Command::new("node");
    test.current_dir(&project)
        .arg("--test")
        .env_remove("WT_URL")
        .env_remove("WT_HOST_BIN");
    status(test, "the @wondertwin/wt example suite (dist/node/example)")
}

/// The path of `program` on PATH, if it is there.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// The `wttest` Go module as a user's tests use it: `go vet` on the module,
/// then dist/go/example (which `replace`s the module by its path) with
/// `go test`, offline (GOPROXY=off: the module needs the standard library
/// only). Go is installed from Debian's packages when it is missing and
/// this runs as root with apt-get, as in CI; otherwise the test is skipped
/// and says why.
fn go_package_tests(root: &Path, binary: &Path) -> Result<()> {
    if ensure_tool("go", &["golang-go"])?.is_none() {
        println!(
            "skipped the wttest Go module test: go is not installed (apt-get install golang-go)"
        );
        return Ok(());
    }
    let mut vet = Command::new("go");
    vet.current_dir(root.join("dist/go/wttest"))
        .args(["vet", "./..."])
        .env("GOPROXY", "off");
    status(vet, "go vet (dist/go/wttest)")?;
    // Its own tests: the release download over a local HTTP server,
    // checksums refused when they do not match.
    let mut unit = Command::new("go");
    unit.current_dir(root.join("dist/go/wttest"))
        .args(["test", "-count=1", "./..."])
        .env("GOPROXY", "off");
    status(unit, "go test (dist/go/wttest)")?;
    let mut test = Command::new("go");
    test.current_dir(root.join("dist/go/example"))
        .args(["test", "-count=1", "./..."])
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("WT_HOST_BIN", binary)
        .env("WT_TWINS_DIR", root.join("target/twins"))
        .env_remove("WT_URL");
    status(test, "the wttest example (go test in dist/go/example)")
}

/// A Debian package's program, installed when missing if this runs as root
/// with apt-get (as CI does); `None` when it is missing and cannot be.
fn ensure_tool(program: &str, packages: &[&str]) -> Result<Option<PathBuf>> {
    if let Some(path) = which(program) {
        return Ok(Some(path));
    }
    let root_user = std::env::var("USER").is_ok_and(|u| u == "root")
        || std::env::var("HOME").is_ok_and(|h| h == "/root");
    if which("apt-get").is_none() || !root_user {
        return Ok(None);
    }
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null());
    status(install, &format!("apt-get install {}", packages.join(" ")))?;
    Ok(which(program))
}

/// podman, with a configuration that works without systemd or pulled base
/// images: runc, no default ulimits, the vfs storage driver.
fn podman(root: &Path, podman: &Path) -> Result<Command> {
    let conf = root.join("target/dist-test/containers.conf");
    std::fs::create_dir_all(conf.parent().context("a folder")?)?;
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    )?;
    let mut command = Command::new(podman);
    command
        .env("CONTAINERS_CONF", conf)
        .args(["--storage-driver", "vfs"]);
    Ok(command)
}

/// Assembles target/image/ (dist/container/Containerfile, `binary`, the
/// libraries it links, the six vendor twins and their precompiled code)
/// and builds it as `tag` with podman (or docker).
fn build_image(root: &Path, binary: &Path, tag: &str) -> Result<()> {
    let context = root.join("target/image");
    let _ = std::fs::remove_dir_all(&context);
    let rootfs = context.join("rootfs");
    for dir in [
        "usr/bin",
        "usr/share/wt/twins",
        "var/cache/wt/precompiled",
        "work",
        "tmp",
    ] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(binary, rootfs.join("usr/bin/wt-host"))?;
    // FROM scratch has no libc: bring what the binary links, at the paths
    // its loader looks in (a static musl build needs none of this).
    let ldd = Command::new("ldd").arg(binary).output().context("ldd")?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(path) = path {
            let inside = rootfs.join(path.strip_prefix("/").context("an absolute path")?);
            std::fs::create_dir_all(inside.parent().context("a folder")?)?;
            std::fs::copy(&path, &inside).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    for twin in ["stripe", "twilio", "clerk", "resend", "posthog", "logodev"] {
        let wasm = root.join("target/twins").join(format!("{twin}.wasm"));
        let inside = rootfs
            .join("usr/share/wt/twins")
            .join(format!("{twin}.wasm"));
        std::fs::copy(&wasm, &inside).with_context(|| format!("copying {}", wasm.display()))?;
        // Compiled now, for this architecture: the container starts warm.
        let mut inspect = Command::new(binary);
        inspect
            .arg("inspect")
            .arg(&inside)
            .env("WT_CACHE_DIR", rootfs.join("var/cache/wt/precompiled"))
            .stdout(std::process::Stdio::null());
        status(inspect, "precompiling a twin for the image")?;
    }
    std::fs::copy(
        root.join("dist/container/Containerfile"),
        context.join("Containerfile"),
    )?;
    let engine = which("podman")
        .or_else(|| which("docker"))
        .context("building the image needs podman or docker")?;
    let mut build = if engine.ends_with("podman") {
        let mut build = podman(root, &engine)?;
        // The docker format keeps HEALTHCHECK, which OCI's drops.
        build.args(["build", "--format", "docker"]);
        build
    } else {
        let mut build = Command::new(&engine);
        build.arg("build");
        build
    };
    build
        .current_dir(&context)
        .args(["--quiet", "-t", tag, "-f", "Containerfile", "."]);
    status(build, "building the wt image")
}

/// The image as a user runs it: built from this tree (`build_image`),
/// started with published ports and an admin token, and driven with the
/// Stripe SDK (dist/container/check_image.py); then started without a
/// token, which it must refuse, saying why.
fn container_tests(root: &Path, binary: &Path) -> Result<()> {
    let Some(engine) = ensure_tool("podman", &["podman", "runc"])? else {
        println!(
            "skipped the container image test: podman is not installed (apt-get install podman runc)"
        );
        return Ok(());
    };
    build_image(root, binary, "wt:test")?;
    let name = "wt-xtask-test";
    let mut remove = podman(root, &engine)?;
    remove
        .args(["rm", "-f", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _ = remove.status();
    let token = "xtask-image-token";
    let mut run = podman(root, &engine)?;
    run.args(["run", "-d", "--name", name, "-e"])
        .arg(format!("WT_ADMIN_TOKEN={token}"))
        .args(["-p", "127.0.0.1::4100", "-p", "127.0.0.1::4111", "wt:test"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    status(run, "podman run (the wt image)")?;
    let result = (|| -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut logs = podman(root, &engine)?;
            let out = logs.args(["logs", name]).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if text.lines().filter(|l| l.starts_with("ready ")).count() == 6 {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the wt image was not ready within 60 s: {text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let port = |inner: &str| -> Result<String> {
            let mut port = podman(root, &engine)?;
            let out = port.args(["port", name, inner]).output()?;
            let mapped = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            anyhow::ensure!(!mapped.is_empty(), "no published port for {inner}");
            Ok(format!("http://{mapped}"))
        };
        let mut check = Command::new(root.join("target/sdk-venv/bin/python"));
        check
            .arg(root.join("dist/container/check_image.py"))
            .arg(port("4100")?)
            .arg(port("4111")?)
            .arg(token);
        status(
            check,
            "the Stripe SDK against the wt image (check_image.py)",
        )
    })();
    let mut remove = podman(root, &engine)?;
    remove
        .args(["rm", "-f", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _ = remove.status();
    result?;
    let mut refused = podman(root, &engine)?;
    let out = refused.args(["run", "--rm", "wt:test"]).output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        !out.status.success() && said.contains("pass --admin-token TOKEN (or set WT_ADMIN_TOKEN)"),
        "the image started without an admin token: {said}"
    );
    let mut prune = podman(root, &engine)?;
    prune
        .args(["image", "prune", "-f"])
        .stdout(std::process::Stdio::null());
    let _ = prune.status();
    println!(
        "the wt image serves Stripe through its published port and refuses to start without a token"
    );
    Ok(())
}

/// `python -m pip install`, quietly, for the virtualenvs the tests make.
fn pip_install(python: &Path) -> Command {
    let mut install = Command::new(python);
    install.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    install
}
