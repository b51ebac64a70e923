//! Command-line interface. The doc comments below are the `--help` text.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::errors::BadInput;
use clap::{Args, Parser, Subcommand, ValueEnum};
use wt_host::{Host, ServeConfig, units};

use crate::remote::{ClockCommand, Remote, RequestsArgs, StateCommand};

/// Run behavioral API twins: stateful, faithful fakes of SaaS APIs that the
/// vendors' own SDKs talk to unchanged.
#[derive(Debug, Parser)]
#[command(name = "wt-host", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    logging: Logging,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load twins and serve them over HTTP until interrupted.
    Run(Box<RunArgs>),
    /// Print what a twin component says about itself.
    Inspect(InspectArgs),
    /// Print the versions this binary was built with.
    Version,
    /// Reset a running host's twins (all, or one) to a clean slate.
    Reset {
        twin: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Export or import a twin's state on a running host.
    State {
        #[command(subcommand)]
        command: StateCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print (or clear) a twin's request journal on a running host.
    Requests {
        #[command(flatten)]
        args: RequestsArgs,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show, advance, freeze or unfreeze twin time on a running host.
    Clock {
        #[command(subcommand)]
        command: ClockCommand,
        /// Only this twin's own clock (it still follows global moves).
        #[arg(long, global = true, value_name = "NAME")]
        twin: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Download twins from a registry into the local store, verifying each
    /// sha256 before it is kept, and pin them in wt.lock.
    Install(crate::registry_cli::InstallArgs),
    /// List installed twins (or, with --available, what registries offer).
    List(crate::registry_cli::ListArgs),
    /// Add a twin component to a folder registry.
    Publish(crate::registry_cli::PublishArgs),
    /// Print the JSON Schema of the project file (wt.toml).
    Schema,
    /// Make signing keys, issue license tokens, inspect them.
    License {
        #[command(subcommand)]
        command: crate::license_cli::LicenseCommand,
    },
}

#[derive(Debug, Args)]
struct Logging {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct EngineArgs {
    /// Where compiled native code is cached [default: the user's cache dir, wt/precompiled].
    #[arg(long, value_name = "DIR", env = "WT_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every twin on every start; keep nothing on disk.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl EngineArgs {
    fn host(
        &self,
        limits: wt_host::Limits,
        state_dir: Option<PathBuf>,
        allow_outbound: Vec<String>,
        licensing: wt_host::license::Licensing,
    ) -> anyhow::Result<Host> {
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(Host::default_cache_dir)
        };
        Ok(Host::builder()
            .cache_dir(cache_dir)
            .state_dir(state_dir)
            .allow_outbound(allow_outbound)
            .licensing(licensing)
            .limits(limits)
            .build()?)
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Twins to serve: a component path (`twins/hello.wasm`), an installed
    /// twin (`stripe`, `stripe@0.2.0`, `acme/stripe`), or either as
    /// `NAME=…` to serve it under another name.
    /// With none, the twins of the project file (./wt.toml or --project).
    #[arg(value_name = "TWIN")]
    twins: Vec<String>,
    /// The project file: twins, ports, settings and host options
    /// [default: ./wt.toml when no TWIN is given].
    #[arg(long, value_name = "FILE", env = "WT_PROJECT")]
    project: Option<PathBuf>,
    /// Address of the shared listener (`/<twin>/…` and `Host: <twin>.localhost`)
    /// [default: the project's `listen`, else 127.0.0.1:4100].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// A twin's own port, as NAME=PORT (0 picks a free port). Repeatable.
    #[arg(long = "port", value_name = "NAME=PORT", value_parser = parse_port)]
    ports: Vec<(String, u16)>,
    /// Serve twins only through the shared listener.
    #[arg(long)]
    no_own_ports: bool,
    /// How long a request may run before it is stopped with a 504 (e.g. 30s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration)]
    request_timeout: Duration,
    /// Keep each twin's state in DIR/<twin>/ (a redb file) so it survives
    /// restarts and crashes. Without it, state lives in memory.
    #[arg(long, value_name = "DIR", env = "WT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Linear memory each twin instance may grow to (e.g. 64MiB).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = units::parse_size)]
    max_memory: usize,
    /// Largest request body accepted; larger ones get 413.
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = units::parse_size)]
    max_request_body: usize,
    /// Twin instances alive at once across all twins; beyond it, requests
    /// wait for a free slot instead of failing.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_instances: u32,
    /// Idle twin instances kept warm between requests, least recently used
    /// evicted first. 0 gives every request a fresh instance: slower, but
    /// nothing a twin keeps in its own memory outlives a request.
    #[arg(long, value_name = "N", default_value_t = 128)]
    warm_instances: u32,
    /// Bytes (keys plus values) each twin may store in all.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = units::parse_size)]
    max_state: usize,
    /// Let twins send webhooks to this host (or host:port) beside loopback;
    /// `self` lets them reach this wt-host's twins (never its control
    /// plane). Repeatable.
    #[arg(long = "allow-outbound", value_name = "HOST[:PORT]|self")]
    allow_outbound: Vec<String>,
    /// Answer to this name in `Host` beside localhost, *.localhost and
    /// loopback addresses (on a loopback --listen, other names are refused,
    /// which stops DNS-rebinding pages). Repeatable.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_host: Vec<String>,
    /// Request body bytes held at once across all twins, while they are
    /// read and while they wait for their twin; beyond it, 503 with
    /// Retry-After.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = units::parse_size)]
    max_buffered_bodies: usize,
    /// Requests kept in each twin's journal (/_wt/twins/NAME/requests); 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    journal_size: usize,
    /// Requests that may wait for a busy twin; beyond this, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_queue: usize,
    /// The license for paid twins: a file holding the token, re-read when it
    /// changes and on SIGHUP [default: $WT_LICENSE (the token itself), else
    /// the user's config dir, wt/license.jwt].
    #[arg(long, value_name = "FILE")]
    license: Option<PathBuf>,
    /// Trust licenses signed by this public key (PEM) beside the official
    /// issuer's. Repeatable (two keys during a rotation).
    #[arg(long = "trust-key", value_name = "FILE")]
    trust_keys: Vec<PathBuf>,
    /// Reload a twin when its .wasm file changes, keeping its state and
    /// finishing requests in flight on the old code.
    #[arg(long)]
    watch: bool,
    /// Require `Authorization: Bearer TOKEN` on the control plane (/_wt/ and
    /// /admin/). Mandatory when --listen is not a loopback address.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WT_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// How long in-flight requests get to finish on shutdown.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = units::parse_duration)]
    drain_timeout: Duration,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    store: crate::registry_cli::StoreArgs,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The component to inspect.
    file: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        init_logging(self.logging.log_format);
        match self.command {
            Command::Run(args) => run(*args).await,
            Command::Inspect(args) => inspect(args).await,
            Command::Reset { twin, remote } => remote.reset(twin).await,
            Command::State { command, remote } => remote.state(command).await,
            Command::Requests { args, remote } => remote.requests(args).await,
            Command::Clock {
                command,
                twin,
                remote,
            } => remote.clock(command, twin.as_deref()).await,
            Command::License { command } => crate::license_cli::run(command),
            Command::Schema => {
                print!("{}", wt_host::project::json_schema());
                Ok(())
            }
            Command::Install(args) => crate::registry_cli::install(args).await,
            Command::List(args) => crate::registry_cli::list(args).await,
            Command::Publish(args) => crate::registry_cli::publish(args).await,
            Command::Version => {
                println!("wt-host {}", env!("CARGO_PKG_VERSION"));
                println!("commit {}", env!("WT_GIT_COMMIT"));
                println!("target {}", env!("WT_TARGET"));
                println!("wasmtime {}", wasmtime_environ::VERSION);
                println!("world {}", wt_host::WORLD);
                Ok(())
            }
        }
    }
}

async fn run(mut args: RunArgs) -> anyhow::Result<()> {
    // The project file fills in whatever the command line leaves out.
    let project_path = match (&args.project, args.twins.is_empty()) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => Some(wt_host::project::Project::find().ok_or_else(|| {
            BadInput(
                "no TWIN given and no wt.toml in this directory: name twin files or installed twins, or write a wt.toml (see `wt-host schema`)"
                    .into(),
            )
        })?),
        (None, false) => None,
    };
    let project = match &project_path {
        Some(path) => wt_host::project::Project::load(path)
            .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))?,
        None => wt_host::project::Project::default(),
    };
    if args.twins.is_empty() {
        if project.twins.is_empty() {
            return Err(BadInput(format!(
                "{}: declares no [twins.NAME]",
                project_path
                    .as_deref()
                    .unwrap_or(Path::new("wt.toml"))
                    .display()
            ))
            .into());
        }
        args.twins = project
            .twins
            .iter()
            .map(|(name, twin)| format!("{name}={}", twin.source))
            .collect();
    }
    let mut ports: BTreeMap<String, u16> = project
        .twins
        .iter()
        .filter_map(|(name, twin)| twin.port.map(|p| (name.clone(), p)))
        .collect();
    ports.extend(args.ports.iter().cloned());
    let listen = args
        .listen
        .or(project.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4100)));
    let state_dir = args.state_dir.clone().or(project.state_dir.clone());
    let license = args.license.clone().or(project.license.clone());
    let mut trust_keys = project.trust_keys.clone();
    trust_keys.extend(args.trust_keys.iter().cloned());
    if args.store.lockfile.is_none() {
        args.store.lockfile = project.lockfile.clone();
    }

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
        ..wt_host::Limits::default()
    };
    let licensing = crate::license_cli::licensing(license, &trust_keys)?;
    let host = args
        .engine
        .host(limits, state_dir, args.allow_outbound.clone(), licensing)?;
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
    for (name, twin) in &project.twins {
        if !twin.config.is_empty() && host.twins().iter().any(|t| &t.name == name) {
            host.configure(name, &twin.config).map_err(|err| {
                BadInput(format!(
                    "{}: twins.{name}.config: {err}",
                    project_path
                        .as_deref()
                        .unwrap_or(Path::new("wt.toml"))
                        .display()
                ))
            })?;
        }
    }

    // A project's ports apply to the twins actually loaded.
    ports.retain(|name, _| {
        loaded.iter().any(|info| &info.name == name) || args.ports.iter().any(|(n, _)| n == name)
    });
    let config = ServeConfig {
        listen,
        ports,
        own_ports: if args.no_own_ports {
            wt_host::OwnPorts::None
        } else {
            wt_host::OwnPorts::Described
        },
        drain_timeout: args.drain_timeout,
        admin_token: args.admin_token.clone(),
        allowed_hosts: args.allow_host.clone(),
    };
    let running = host
        .serve(config)
        .await
        .map_err(|err| anyhow::Error::new(BadInput(err.to_string())))?;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wt-host {} listening on {} (control plane {}/_wt/)",
        env!("CARGO_PKG_VERSION"),
        running.url(),
        running.url()
    )?;
    if args.admin_token.is_some() {
        writeln!(
            out,
            "control plane requires the admin token (Authorization: Bearer …)"
        )?;
    }
    // Signals are caught from before the first ready line: a supervisor that
    // stops the host as soon as it is ready gets a clean drain, not a kill.
    let shutdown = ShutdownSignals::install()?;
    #[cfg(unix)]
    let _hup = reload_license_on_sighup(host.clone());
    // Unlicensed twins first: every ready line is the last word on its twin.
    for info in &loaded {
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
    for info in &loaded {
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
    out.flush()?;
    drop(out);
    let _watch = host.watch_license(std::time::Duration::from_secs(1));
    let _reload = args
        .watch
        .then(|| host.watch_files(std::time::Duration::from_millis(500)));

    shutdown.recv().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let host = args.engine.host(
        wt_host::Limits::default(),
        None,
        Vec::new(),
        wt_host::license::Licensing::default(),
    )?;
    let info = host.add_twin_file(&args.file).await.map_err(load_error)?;
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(())
}

fn load_error(err: wt_host::Error) -> anyhow::Error {
    match err {
        wt_host::Error::Load(load) => anyhow::Error::new(BadInput(load.to_string())),
        other => anyhow::Error::new(other),
    }
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

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WT_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    // Colors only for a terminal (and never with NO_COLOR): a log file or
    // a CI log gets plain text, where an escape sequence can only be a
    // twin's, and twins' text is escaped (logs.rs).
    use std::io::IsTerminal as _;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn parse_port(spec: &str) -> Result<(String, u16), String> {
    let (name, port) = spec
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PORT, got {spec:?}"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number (0-65535)"))?;
    Ok((name.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_name_equals_port() {
        assert_eq!(parse_port("stripe=0"), Ok(("stripe".into(), 0)));
        assert!(parse_port("stripe").is_err());
        assert!(parse_port("stripe=99999").is_err());
    }
}
