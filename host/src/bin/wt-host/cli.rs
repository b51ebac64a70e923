//! Command-line interface. The doc comments below are the `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::errors::BadInput;
use clap::{Args, Parser, Subcommand, ValueEnum};
use wt_host::{Host, units};

use crate::remote::{ClockCommand, Remote, RequestsArgs, StateCommand, TenantCommand};

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
    /// Start a host in the background (the arguments of `run`), return once
    /// every twin is ready, and print the URLs. Its pid, log and URL go in
    /// `.wt/` beside wt.toml; the other verbs find it there.
    Up {
        #[command(flatten)]
        run: Box<RunArgs>,
        /// How long to wait for every twin to be ready.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = units::parse_duration)]
        timeout: Duration,
    },
    /// Stop the host `up` started here (or at --url): it drains, then exits.
    Down {
        #[command(flatten)]
        remote: Remote,
    },
    /// Whether a host is up, with its twins, their health and the tenants.
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the log of the host `up` started here (one twin's lines with
    /// TWIN).
    Logs {
        twin: Option<String>,
        /// Keep printing what is appended.
        #[arg(short, long)]
        follow: bool,
    },
    /// Wait until a host answers (one started elsewhere: a container, a
    /// service in CI).
    Wait {
        /// How long to wait.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        remote: Remote,
    },
    /// Make, list or delete tenants on a running host: isolated worlds of
    /// twins for parallel test suites.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
        #[command(flatten)]
        remote: Remote,
    },
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
pub(crate) struct EngineArgs {
    /// Where compiled native code is cached [default: the user's cache dir, wt/precompiled].
    #[arg(long, value_name = "DIR", env = "WT_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every twin on every start; keep nothing on disk.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl EngineArgs {
    pub(crate) fn host(
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
pub(crate) struct RunArgs {
    /// Twins to serve: a component path (`twins/hello.wasm`), an installed
    /// twin (`stripe`, `stripe@0.2.0`, `acme/stripe`), or either as
    /// `NAME=…` to serve it under another name.
    /// With none, the twins of the project file (./wt.toml or --project).
    #[arg(value_name = "TWIN")]
    pub(crate) twins: Vec<String>,
    /// The project file: twins, ports, settings and host options
    /// [default: ./wt.toml when no TWIN is given].
    #[arg(long, value_name = "FILE", env = "WT_PROJECT")]
    pub(crate) project: Option<PathBuf>,
    /// Address of the shared listener (`/<twin>/…` and `Host: <twin>.localhost`)
    /// [default: the project's `listen`, else 127.0.0.1:4100].
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// A twin's own port, as NAME=PORT (0 picks a free port). Repeatable.
    #[arg(long = "port", value_name = "NAME=PORT", value_parser = parse_port)]
    pub(crate) ports: Vec<(String, u16)>,
    /// Serve twins only through the shared listener.
    #[arg(long)]
    pub(crate) no_own_ports: bool,
    /// How long a request may run before it is stopped with a 504 (e.g. 30s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration)]
    pub(crate) request_timeout: Duration,
    /// Keep each twin's state in DIR/<twin>/ (a redb file) so it survives
    /// restarts and crashes. Without it, state lives in memory.
    #[arg(long, value_name = "DIR", env = "WT_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Linear memory each twin instance may grow to (e.g. 64MiB).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = units::parse_size)]
    pub(crate) max_memory: usize,
    /// Largest request body accepted; larger ones get 413.
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = units::parse_size)]
    pub(crate) max_request_body: usize,
    /// Twin instances alive at once across all twins; beyond it, requests
    /// wait for a free slot instead of failing.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_instances: u32,
    /// Idle twin instances kept warm between requests, least recently used
    /// evicted first. 0 gives every request a fresh instance: slower, but
    /// nothing a twin keeps in its own memory outlives a request.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub(crate) warm_instances: u32,
    /// Bytes (keys plus values) each twin may store in all.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = units::parse_size)]
    pub(crate) max_state: usize,
    /// Tenants alive at once (POST /_wt/tenants, `wt-host tenant create`);
    /// beyond it, 429.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) max_tenants: usize,
    /// Bytes each twin of a tenant may store in all.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = units::parse_size)]
    pub(crate) max_tenant_state: usize,
    /// Let twins send webhooks to this host (or host:port) beside loopback;
    /// `self` lets them reach this wt-host's twins (never its control
    /// plane). Repeatable.
    #[arg(long = "allow-outbound", value_name = "HOST[:PORT]|self")]
    pub(crate) allow_outbound: Vec<String>,
    /// Name twins under this domain too, for a host reached through DNS:
    /// `Host: stripe.DOMAIN` and `stripe.TENANT.DOMAIN` route like
    /// `stripe.localhost`, and names under it are allowed in `Host`.
    #[arg(long, value_name = "DOMAIN", value_parser = parse_domain)]
    pub(crate) domain: Option<String>,
    /// Answer to this name in `Host` beside localhost, *.localhost and
    /// loopback addresses (on a loopback --listen, other names are refused,
    /// which stops DNS-rebinding pages). Repeatable.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub(crate) allow_host: Vec<String>,
    /// Request body bytes held at once across all twins, while they are
    /// read and while they wait for their twin; beyond it, 503 with
    /// Retry-After.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = units::parse_size)]
    pub(crate) max_buffered_bodies: usize,
    /// Requests kept in each twin's journal (/_wt/twins/NAME/requests); 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) journal_size: usize,
    /// Requests that may wait for a busy twin; beyond this, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(crate) max_queue: usize,
    /// The license for paid twins: a file holding the token, re-read when it
    /// changes and on SIGHUP [default: $WT_LICENSE (the token itself), else
    /// the user's config dir, wt/license.jwt].
    #[arg(long, value_name = "FILE")]
    pub(crate) license: Option<PathBuf>,
    /// Trust licenses signed by this public key (PEM) beside the official
    /// issuer's. Repeatable (two keys during a rotation).
    #[arg(long = "trust-key", value_name = "FILE")]
    pub(crate) trust_keys: Vec<PathBuf>,
    /// Reload a twin when its .wasm file changes, keeping its state and
    /// finishing requests in flight on the old code.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Require `Authorization: Bearer TOKEN` on the control plane (/_wt/ and
    /// /admin/). Mandatory when --listen is not a loopback address.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WT_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub(crate) admin_token: Option<String>,
    /// How long in-flight requests get to finish on shutdown.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = units::parse_duration)]
    pub(crate) drain_timeout: Duration,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    #[command(flatten)]
    pub(crate) store: crate::registry_cli::StoreArgs,
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
            Command::Run(args) => crate::run::run(*args).await,
            Command::Inspect(args) => inspect(args).await,
            Command::Up { run, timeout } => {
                crate::lifecycle::up(timeout, run.admin_token.as_deref()).await
            }
            Command::Down { remote } => crate::lifecycle::down(&remote).await,
            Command::Status { remote } => crate::lifecycle::status(&remote).await,
            Command::Logs { twin, follow } => crate::lifecycle::logs(twin.as_deref(), follow).await,
            Command::Wait { timeout, remote } => crate::lifecycle::wait(&remote, timeout).await,
            Command::Tenant { command, remote } => remote.tenant(command).await,
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

pub(crate) fn load_error(err: wt_host::Error) -> anyhow::Error {
    match err {
        wt_host::Error::Load(load) => anyhow::Error::new(BadInput(load.to_string())),
        other => anyhow::Error::new(other),
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

/// A DNS name (`twins.example.internal`), lower-cased.
pub(crate) fn parse_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.len() > 253 || !domain.split('.').all(label_ok) || domain == "localhost" {
        return Err(format!(
            "{text:?} is not a domain name (dot-separated labels of a-z, 0-9 and '-')"
        ));
    }
    Ok(domain)
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

    #[test]
    fn domains_are_dns_names() {
        assert_eq!(
            parse_domain("Twins.Example.Internal.").as_deref(),
            Ok("twins.example.internal")
        );
        for bad in ["", "a..b", "-a.b", "a_b.c", "localhost", "a b"] {
            assert!(parse_domain(bad).is_err(), "{bad:?}");
        }
    }
}
