//! `up`, `down`, `status`, `logs` and `wait`: a host in the background for
//! scripts and CI, as WonderTwin's `wt up/down/status/logs` were. `up`
//! starts `wt-host run` with the same arguments as a detached process,
//! keeps its pid, log and URL under `.wt/` beside the project (the folder of
//! `wt.toml`, else the current one), and returns once every twin is ready.
//! The control verbs find that host through `.wt/host.url`.

use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::errors::BadInput;
use crate::remote::Remote;

/// Where a background host's files live.
pub struct Files {
    dir: PathBuf,
}

impl Files {
    /// `.wt/` in the project's folder (that of `./wt.toml` or a parent's),
    /// else in the current folder.
    pub fn here() -> Files {
        let root = wt_host::project::Project::find()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Files {
            dir: root.join(".wt"),
        }
    }

    fn pid(&self) -> PathBuf {
        self.dir.join("host.pid")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("host.log")
    }

    fn url_file(&self) -> PathBuf {
        self.dir.join("host.url")
    }

    /// The URL `up` recorded, if a host was started here.
    pub fn url(&self) -> Option<String> {
        std::fs::read_to_string(self.url_file())
            .ok()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
    }

    fn forget(&self) {
        let _ = std::fs::remove_file(self.pid());
        let _ = std::fs::remove_file(self.url_file());
    }
}

/// Whether a host answers its control plane at `url`.
async fn answers(url: &str, token: Option<&str>) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let mut request = client.get(format!("{url}/_wt/twins"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.is_ok_and(|r| r.status().is_success())
}

/// The arguments `up` was given, as `run` takes them: every argument after
/// `up` but `up`'s own `--timeout`, with the global ones before it.
fn run_args() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let at = args.iter().position(|a| a == "up").unwrap_or(args.len());
    let mut out: Vec<OsString> = args[..at].to_vec();
    out.push("run".into());
    let mut rest = args.iter().skip(at + 1);
    while let Some(arg) = rest.next() {
        if arg == "--timeout" {
            rest.next();
            continue;
        }
        if arg.to_string_lossy().starts_with("--timeout=") {
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// `wt-host up`: starts `wt-host run …` in the background and waits until
/// it serves every twin.
pub async fn up(timeout: Duration, admin_token: Option<&str>) -> anyhow::Result<()> {
    let files = Files::here();
    if let Some(url) = files.url()
        && answers(&url, admin_token).await
    {
        println!("already up at {url} (`wt-host down` stops it)");
        return Ok(());
    }
    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("creating {}", files.dir.display()))?;
    let log = std::fs::File::create(files.log())
        .with_context(|| format!("creating {}", files.log().display()))?;
    let exe = std::env::current_exe().context("finding this wt-host binary")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(run_args())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("the log file")?)
        .stderr(log);
    // Its own process group: the terminal's Ctrl-C for the next command,
    // or the shell that ran `up` going away, does not reach it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().context("starting wt-host run")?;
    std::fs::write(files.pid(), format!("{}\n", child.id()))
        .with_context(|| format!("writing {}", files.pid().display()))?;

    let deadline = Instant::now() + timeout;
    let url = loop {
        let text = std::fs::read_to_string(files.log()).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find(|l| l.contains(" listening on "))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
            && answers(url, admin_token).await
        {
            break url.to_owned();
        }
        if let Some(status) = child.try_wait().context("watching wt-host run")? {
            files.forget();
            let last = text.lines().last().unwrap_or("(no output)");
            let message = format!(
                "wt-host run exited ({status}) before it was ready: {} (whole log: {})",
                last.trim_start_matches("wt-host: "),
                files.log().display()
            );
            // Bad input stays bad input (exit 2), as `run` itself says it.
            if status.code() == Some(2) {
                return Err(BadInput(message).into());
            }
            bail!(message);
        }
        if Instant::now() > deadline {
            bail!(
                "wt-host run was not ready within {timeout:?} (it keeps starting; log: {})",
                files.log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    std::fs::write(files.url_file(), format!("{url}\n"))
        .with_context(|| format!("writing {}", files.url_file().display()))?;
    let text = std::fs::read_to_string(files.log()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "up at {url} (pid {}, log {})",
        child.id(),
        files.log().display()
    )?;
    for line in text
        .lines()
        .filter(|l| l.starts_with("ready ") || l.starts_with("unlicensed "))
    {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `wt-host down`: asks the host `up` started here (or `--url`) to drain
/// and exit, and waits until it has.
pub async fn down(remote: &Remote) -> anyhow::Result<()> {
    let files = Files::here();
    let url = remote.base_url()?;
    if !answers(&url, remote.admin_token()).await {
        files.forget();
        println!("no wt-host is up at {url}");
        return Ok(());
    }
    remote
        .send(reqwest::Method::POST, "shutdown", None)
        .await
        .context("asking the host to stop")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while answers(&url, remote.admin_token()).await {
        if Instant::now() > deadline {
            bail!("the host at {url} did not stop within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    files.forget();
    println!("down ({url})");
    Ok(())
}

/// `wt-host status`: whether a host is up, and its twins, their health and
/// the tenants. Exits non-zero when none is.
pub async fn status(remote: &Remote) -> anyhow::Result<()> {
    let url = remote.base_url()?;
    if !answers(&url, remote.admin_token()).await {
        bail!("no wt-host is up at {url} (`wt-host up` starts one)");
    }
    let twins = remote.send(reqwest::Method::GET, "twins", None).await?;
    let health = remote.send_any(reqwest::Method::GET, "health").await?;
    let tenants = remote.send(reqwest::Method::GET, "tenants", None).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "up at {url}")?;
    for twin in twins["twins"].as_array().into_iter().flatten() {
        let name = twin["name"].as_str().unwrap_or_default();
        let state = health["twins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == name)
            .and_then(|t| t["status"].as_str())
            .unwrap_or("unknown");
        let own = twin["urls"]["own"].as_str().unwrap_or("-");
        writeln!(
            out,
            "{name} {} {state} {own} {}",
            twin["version"].as_str().unwrap_or_default(),
            twin["urls"]["prefixed"].as_str().unwrap_or_default()
        )?;
    }
    let live = tenants["tenants"].as_array().map_or(0, Vec::len);
    writeln!(out, "tenants: {live}")?;
    Ok(())
}

/// `wt-host logs [TWIN] [--follow]`: the background host's log, or the
/// lines about one twin.
pub async fn logs(twin: Option<&str>, follow: bool) -> anyhow::Result<()> {
    let files = Files::here();
    let path = files.log();
    let mut file = std::fs::File::open(&path)
        .map_err(|e| BadInput(format!("{}: {e} (`wt-host up` writes it)", path.display())))?;
    let keep = |line: &str| match twin {
        None => true,
        Some(t) => {
            line.contains(&format!("twin={t}"))
                || line.contains(&format!("twin=\"{t}\""))
                || line.contains(&format!("twin '{t}'"))
                || line.starts_with(&format!("ready {t} "))
                || line.starts_with(&format!("unlicensed {t}:"))
        }
    };
    let mut pending = String::new();
    loop {
        let mut chunk = String::new();
        file.read_to_string(&mut chunk)
            .with_context(|| format!("reading {}", path.display()))?;
        pending.push_str(&chunk);
        let mut out = std::io::stdout().lock();
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if keep(line.trim_end()) {
                out.write_all(line.as_bytes())?;
            }
        }
        out.flush()?;
        drop(out);
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A new `up` truncates the log: start over from its beginning.
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        if len < file.stream_position().unwrap_or(0) {
            file.rewind()?;
        }
    }
}

/// `wt-host wait`: returns once a host answers at the URL (a host started
/// elsewhere, a container), or fails after `timeout`.
pub async fn wait(remote: &Remote, timeout: Duration) -> anyhow::Result<()> {
    let url = remote.base_url()?;
    let deadline = Instant::now() + timeout;
    while !answers(&url, remote.admin_token()).await {
        if Instant::now() > deadline {
            bail!("no wt-host answered at {url} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("up at {url}");
    Ok(())
}
