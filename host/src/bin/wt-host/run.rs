//! `wt-host run`: the project file and the flags merged into one plan, the
//! twins loaded and configured, the `ready` lines printed, and the host
//! served until a signal asks it to drain.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use wt_host::project::Project;
use wt_host::{Host, RunningHost, ServeConfig, TwinInfo};

use crate::cli::{RunArgs, load_error};
use crate::errors::BadInput;

/// What `run` will do once the project file has filled in whatever the
/// command line left out.
struct Plan {
    /// The project file read, if any (for messages).
    project_path: Option<PathBuf>,
    project: Project,
    /// Fixed ports by twin name: the project's, then the flags'.
    ports: BTreeMap<String, u16>,
    listen: SocketAddr,
    state_dir: Option<PathBuf>,
    license: Option<PathBuf>,
    trust_keys: Vec<PathBuf>,
    /// The project's outbound destinations and host names, then the flags'.
    allow_outbound: Vec<String>,
    allow_host: Vec<String>,
}

impl Plan {
    /// Reads the project file (`--project`, or `./wt.toml` when no twin is
    /// named) and merges it under the flags; the twins it declares become
    /// `args.twins` when the command line names none.
    fn new(args: &mut RunArgs) -> anyhow::Result<Plan> {
        if args.twins.is_empty() && args.project.is_none() && Project::find().is_none() {
            args.twins = twins_from_env();
        }
        let project_path = match (&args.project, args.twins.is_empty()) {
            (Some(path), _) => Some(path.clone()),
            (None, true) => Some(Project::find().ok_or_else(|| {
                BadInput(
                    "no TWIN given and no wt.toml in this directory: name twin files or installed twins, or write a wt.toml (see `wt-host schema`)"
                        .into(),
                )
            })?),
            (None, false) => None,
        };
        let project = match &project_path {
            Some(path) => {
                Project::load(path).map_err(|e| anyhow::Error::new(BadInput(e.to_string())))?
            }
            None => Project::default(),
        };
        let mut plan = Plan {
            project_path,
            ports: BTreeMap::new(),
            listen: args
                .listen
                .or(project.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4100))),
            state_dir: args.state_dir.clone().or(project.state_dir.clone()),
            license: args.license.clone().or(project.license.clone()),
            trust_keys: project.trust_keys.clone(),
            allow_outbound: project.allow_outbound.clone(),
            allow_host: project.allow_host.clone(),
            project,
        };
        if args.twins.is_empty() {
            if plan.project.twins.is_empty() {
                return Err(BadInput(format!("{}: declares no [twins.NAME]", plan.file())).into());
            }
            args.twins = plan
                .project
                .twins
                .iter()
                .map(|(name, twin)| format!("{name}={}", twin.source))
                .collect();
        }
        plan.ports = plan
            .project
            .twins
            .iter()
            .filter_map(|(name, twin)| twin.port.map(|p| (name.clone(), p)))
            .collect();
        plan.ports.extend(args.ports.iter().cloned());
        plan.trust_keys.extend(args.trust_keys.iter().cloned());
        plan.allow_outbound
            .extend(args.allow_outbound.iter().cloned());
        plan.allow_host.extend(args.allow_host.iter().cloned());
        if args.store.lockfile.is_none() {
            args.store.lockfile = plan.project.lockfile.clone();
        }
        Ok(plan)
    }

    /// The project file's name, for messages.
    fn file(&self) -> std::path::Display<'_> {
        self.project_path
            .as_deref()
            .unwrap_or(Path::new("wt.toml"))
            .display()
    }
}

/// `WT_TWINS=stripe,clerk`: the twins to serve when neither the command
/// line nor a wt.toml names any (a container's configuration). A name is
/// `WT_TWINS_DIR/NAME.wasm` when that file exists, else an installed twin.
fn twins_from_env() -> Vec<String> {
    let Ok(list) = std::env::var("WT_TWINS") else {
        return Vec::new();
    };
    let dir = std::env::var_os("WT_TWINS_DIR").map(PathBuf::from);
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|twin| match &dir {
            Some(dir) if dir.join(format!("{twin}.wasm")).is_file() => {
                format!("{twin}={}", dir.join(format!("{twin}.wasm")).display())
            }
            _ => twin.to_owned(),
        })
        .collect()
}

pub async fn run(mut args: RunArgs) -> anyhow::Result<()> {
    let mut plan = Plan::new(&mut args)?;
    let limits = wt_host::Limits {
        request_timeout: args.request_timeout,
        max_memory_bytes: args.max_memory,
        max_request_body: args.max_request_body,
        max_queued_per_twin: args.max_queue,
        max_buffered_body_bytes: args.max_buffered_bodies,
        max_state_bytes: args.max_state as u64,
        journal_capacity: args.journal_size,
        max_instances: args.max_instances,
        warm_instances: args.warm_instances,
        max_tenants: args.max_tenants,
        max_tenant_state_bytes: args.max_tenant_state as u64,
        ..wt_host::Limits::default()
    };
    let licensing = crate::license_cli::licensing(plan.license.clone(), &plan.trust_keys)?;
    let host = args.engine.host(
        limits,
        plan.state_dir.clone(),
        plan.allow_outbound.clone(),
        licensing,
    )?;
    let loaded = load_twins(&host, &args).await?;
    configure_twins(&host, &plan)?;

    // A project's ports apply to the twins actually loaded.
    plan.ports.retain(|name, _| {
        loaded.iter().any(|info| &info.name == name) || args.ports.iter().any(|(n, _)| n == name)
    });
    let domain = match (&args.domain, &plan.project.domain) {
        (Some(flag), _) => Some(flag.clone()),
        (None, Some(file)) => Some(
            crate::cli::parse_domain(file)
                .map_err(|e| BadInput(format!("{}: domain: {e}", plan.file())))?,
        ),
        (None, None) => None,
    };
    let config = ServeConfig {
        listen: plan.listen,
        ports: plan.ports,
        own_ports: if args.no_own_ports {
            wt_host::OwnPorts::None
        } else {
            wt_host::OwnPorts::Described
        },
        drain_timeout: args.drain_timeout,
        admin_token: args.admin_token.clone(),
        allowed_hosts: plan.allow_host.clone(),
        domain,
    };
    let running = host
        .serve(config)
        .await
        .map_err(|err| anyhow::Error::new(BadInput(err.to_string())))?;

    // Signals are caught from before the first ready line: a supervisor that
    // stops the host as soon as it is ready gets a clean drain, not a kill.
    let shutdown = ShutdownSignals::install()?;
    #[cfg(unix)]
    let _hup = reload_license_on_sighup(host.clone());
    print_ready(&host, &running, &loaded, args.admin_token.is_some())?;
    let _watch = host.watch_license(std::time::Duration::from_secs(1));
    let _reload = args
        .watch
        .then(|| host.watch_files(std::time::Duration::from_millis(500)));

    tokio::select! {
        _ = shutdown.recv() => {}
        _ = host.shutdown_requested() => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// Loads every twin the command names: a file, or an installed twin
/// resolved through the store and its lockfile (opened on first need).
async fn load_twins(host: &Host, args: &RunArgs) -> anyhow::Result<Vec<TwinInfo>> {
    let mut loaded = Vec::new();
    let mut installed = None;
    for spec in &args.twins {
        let (name, target) = match spec.split_once('=') {
            Some((name, target)) => (Some(name), target),
            None => (None, spec.as_str()),
        };
        let info = if crate::registry_cli::is_file_arg(target) {
            let path = PathBuf::from(target);
            match name {
                Some(name) => host.add_twin_file_as(name, &path).await,
                None => host.add_twin_file(&path).await,
            }
        } else {
            if installed.is_none() {
                installed = Some((args.store.store()?, args.store.lock()?));
            }
            let (store, lock) = installed.as_ref().expect("just set");
            let twin = crate::registry_cli::resolve_installed(name, target, store, lock)?;
            tracing::debug!(twin = %twin.label, path = %twin.path.display(), "from the store");
            host.add_twin_file_with(&twin.path, twin.options).await
        };
        loaded.push(info.map_err(load_error)?);
    }
    Ok(loaded)
}

/// Applies each loaded twin's `[twins.NAME.config]` from the project file.
fn configure_twins(host: &Host, plan: &Plan) -> anyhow::Result<()> {
    for (name, twin) in &plan.project.twins {
        if !twin.config.is_empty() && host.twins().iter().any(|t| &t.name == name) {
            host.configure(name, &twin.config)
                .map_err(|err| BadInput(format!("{}: twins.{name}.config: {err}", plan.file())))?;
        }
    }
    Ok(())
}

/// The lines a user (or a script waiting for `ready`) reads on stdout:
/// where the host listens, which twins are unlicensed, then one `ready`
/// line per twin, each the last word on its twin.
fn print_ready(
    host: &Host,
    running: &RunningHost,
    loaded: &[TwinInfo],
    admin_token: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wt-host {} listening on {} (control plane {}/_wt/)",
        env!("CARGO_PKG_VERSION"),
        running.url(),
        running.url()
    )?;
    if admin_token {
        writeln!(
            out,
            "control plane requires the admin token (Authorization: Bearer …)"
        )?;
    }
    for info in loaded {
        let license = host.license_status(&info.name);
        if license.required && license.state != "valid" {
            writeln!(
                out,
                "unlicensed {}: {} (license: {}); it answers 402 until a valid license is in place",
                info.name,
                license.message.unwrap_or_default(),
                host.licensing().source().describe(),
            )?;
        }
    }
    for info in loaded {
        let own = running
            .twin_addr(&info.name)
            .filter(|a| a.port() != 0)
            .map_or_else(|| "-".to_owned(), |a| format!("http://{a}"));
        writeln!(
            out,
            "ready {} {} {} {} (loaded in {:.1} ms, precompiled cache {})",
            info.name,
            info.version,
            own,
            running.prefixed_url(&info.name).unwrap_or_default(),
            info.load_millis,
            match info.cache {
                wt_host::CacheOutcome::Hit => "hit",
                wt_host::CacheOutcome::Miss => "miss",
                wt_host::CacheOutcome::Disabled => "off",
                wt_host::CacheOutcome::Shared => "shared",
            }
        )?;
    }
    out.flush()
}

/// SIGHUP re-reads the license at once.
#[cfg(unix)]
fn reload_license_on_sighup(host: Host) -> Option<tokio::task::JoinHandle<()>> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()?;
    Some(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the license again");
            host.reload_license();
        }
    }))
}

/// SIGINT and SIGTERM, registered when installed (not on first poll), so a
/// signal that arrives before the host waits for one is still a shutdown.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
