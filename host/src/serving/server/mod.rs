//! HTTP serving: one shared listener that routes by path prefix or
//! `Host: <twin>.localhost`, one listener per twin, the `/_wt/` control plane,
//! and a graceful drain on shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Host;
use crate::caller::CallerPolicy;
use crate::control::{self, Addresses, Plane};
use crate::exchange::{error_response, json_response};
use crate::limits::{BodyBudget, BudgetPermit};
use crate::pipeline::{Answer, call_twin};
use crate::tenancy::{TenantPorts, World};
use crate::twin::Twin;

mod body;
mod routing;

use body::read_body;
use routing::{Target, admin_alias, bearer_matches, route_shared, twin_of};

/// How long a client gets to send a request's body: a body trickled in a
/// byte at a time would otherwise hold its share of the body budget (and a
/// connection) for ever. Headers get as long (`header_read_timeout`).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How often expired tenants are looked for: a tenant outlives its time to
/// live by at most this.
const TENANT_REAP_INTERVAL: Duration = Duration::from_secs(1);

/// The control plane's path prefix; never a twin name.
pub const CONTROL_PREFIX: &str = "/_wt";

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The shared listener (`/<twin>/…` and `Host: <twin>.localhost`).
    pub listen: SocketAddr,
    /// Per-twin port overrides; `0` picks a free port.
    pub ports: BTreeMap<String, u16>,
    /// Ports for twins without an override.
    pub own_ports: OwnPorts,
    /// How long in-flight requests get to finish after shutdown is asked for.
    pub drain_timeout: Duration,
    /// Required as `Authorization: Bearer <token>` on the control plane;
    /// mandatory when listening beyond loopback.
    pub admin_token: Option<String>,
    /// Names clients may use in `Host` beside `localhost`, `*.localhost` and
    /// loopback addresses, which are all a loopback listener answers to
    /// (a DNS-rebinding page would use a name of its own).
    pub allowed_hosts: Vec<String>,
    /// A domain the twins are also named under, for hosts reached through
    /// DNS (`stripe.twins.example.internal`, `stripe.ci-7.twins.example.internal`):
    /// routed like `*.localhost`, and allowed in `Host`.
    pub domain: Option<String>,
}

/// Which port a twin listens on when `ports` does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnPorts {
    /// The port its `describe` names (WonderTwin's 4111-4116 for the six).
    Described,
    /// Any free port: for tests, where fixed ports collide.
    Ephemeral,
    /// Only the shared listener.
    None,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4100)),
            ports: BTreeMap::new(),
            own_ports: OwnPorts::Described,
            drain_timeout: Duration::from_secs(10),
            admin_token: None,
            allowed_hosts: Vec::new(),
            domain: None,
        }
    }
}

impl ServeConfig {
    /// Loopback, every port chosen by the OS: what a test wants.
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            own_ports: OwnPorts::Ephemeral,
            ..Self::default()
        }
    }
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} for {what}: {error}{hint}")]
    Bind {
        what: String,
        addr: SocketAddr,
        error: std::io::Error,
        hint: &'static str,
    },
    #[error("--port names '{0}', but no twin of that name is loaded")]
    UnknownTwin(String),
    #[error(
        "--listen {0} is reachable beyond this machine, and so would be the control plane (reset, state, clock): pass --admin-token TOKEN (or set WT_ADMIN_TOKEN) to require it there"
    )]
    ExposedControlPlane(SocketAddr),
    #[error("--admin-token must not be empty")]
    EmptyAdminToken,
}

/// A serving host. Dropping it does not stop the server; call
/// [`RunningHost::shutdown`].
#[derive(Debug)]
pub struct RunningHost {
    addrs: Arc<Addresses>,
    stop: watch::Sender<bool>,
    loops: JoinSet<()>,
    /// Opens tenants' ports; its listeners drain at shutdown too.
    tenant_ports: Arc<TenantListeners>,
    /// Removes tenants whose time to live passed while the host serves.
    _reaper: crate::BackgroundTask,
}

impl RunningHost {
    /// The shared listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs.shared
    }

    /// `http://ADDR` of the shared listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.addrs.shared)
    }

    /// `http://ADDR/<twin>`: the twin behind the shared listener.
    pub fn prefixed_url(&self, twin: &str) -> Option<String> {
        self.addrs
            .twins
            .contains_key(twin)
            .then(|| format!("http://{}/{twin}", self.addrs.shared))
    }

    /// The twin's own listener, if it has one.
    pub fn twin_addr(&self, twin: &str) -> Option<SocketAddr> {
        self.addrs.twins.get(twin).copied()
    }

    /// The URL to give a vendor SDK: the twin's own port when it has one
    /// (links it returns then resolve exactly as on the real API), else the
    /// prefixed URL.
    pub fn base_url(&self, twin: &str) -> Option<String> {
        match self.addrs.twins.get(twin) {
            Some(addr) if addr.port() != 0 => Some(format!("http://{addr}")),
            _ => self.prefixed_url(twin),
        }
    }

    /// Stops accepting, lets in-flight requests finish (bounded by the
    /// drain timeout), and returns once every listener is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.loops.join_next().await.is_some() {}
        let tenant_loops = std::mem::take(
            &mut *self
                .tenant_ports
                .loops
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        tenant_loops.join_all().await;
    }
}

#[derive(Clone)]
enum Route {
    Shared,
    /// A twin's own port: of the default world, or of a tenant. By name,
    /// looked up per request, so a reloaded twin takes over its port at
    /// once and a removed tenant answers 404 while its port drains.
    Twin {
        tenant: Option<Arc<str>>,
        name: Arc<str>,
    },
}

impl Host {
    /// Starts serving every loaded twin over HTTP.
    pub async fn serve(&self, config: ServeConfig) -> Result<RunningHost, ServeError> {
        serve(self.clone(), config).await
    }
}

async fn serve(host: Host, config: ServeConfig) -> Result<RunningHost, ServeError> {
    let twins = host.all_twins();
    if let Some(unknown) = config
        .ports
        .keys()
        .find(|name| !twins.iter().any(|t| t.name() == name.as_str()))
    {
        return Err(ServeError::UnknownTwin(unknown.clone()));
    }

    let admin_token = match config.admin_token.as_deref() {
        Some("") => return Err(ServeError::EmptyAdminToken),
        Some(token) => Some(Arc::<str>::from(token)),
        None if !config.listen.ip().is_loopback() => {
            return Err(ServeError::ExposedControlPlane(config.listen));
        }
        None => None,
    };
    let shared = bind(config.listen, "the shared listener", "").await?;
    let mut listeners = vec![(shared, Route::Shared)];
    for twin in &twins {
        let port = match (config.ports.get(twin.name()), config.own_ports) {
            (Some(port), _) => *port,
            (None, OwnPorts::Described) => twin.info().default_port,
            (None, OwnPorts::Ephemeral) => 0,
            (None, OwnPorts::None) => continue,
        };
        let addr = SocketAddr::new(config.listen.ip(), port);
        let what = format!("twin '{}'", twin.name());
        let listener = bind(
            addr,
            &what,
            " (choose another with --port NAME=PORT, 0 for any free port)",
        )
        .await?;
        listeners.push((
            listener,
            Route::Twin {
                tenant: None,
                name: Arc::from(twin.name()),
            },
        ));
    }

    let mut addrs = Addresses {
        shared: local_addr(&listeners[0].0, config.listen),
        twins: BTreeMap::new(),
        domain: config.domain.clone(),
    };
    for (listener, route) in &listeners[1..] {
        if let Route::Twin { name: twin, .. } = route {
            addrs
                .twins
                .insert(twin.to_string(), local_addr(listener, config.listen));
        }
    }
    // Twins without their own port are still reachable through the prefix.
    for twin in &twins {
        addrs
            .twins
            .entry(twin.name().to_owned())
            .or_insert_with(|| SocketAddr::new(config.listen.ip(), 0));
    }
    let addrs = Arc::new(addrs);
    let caller = Arc::new(CallerPolicy {
        check_host: config.listen.ip().is_loopback(),
        allowed_hosts: config.allowed_hosts.clone(),
        domain: config.domain.clone(),
        self_delivery: host.outbound_policy().allows_self(),
    });

    let (stop, stop_rx) = watch::channel(false);
    let tenant_ports = Arc::new(TenantListeners {
        ip: config.listen.ip(),
        by_default: config.own_ports != OwnPorts::None,
        admin_token: admin_token.clone(),
        caller: caller.clone(),
        stop: stop_rx.clone(),
        drain_timeout: config.drain_timeout,
        loops: std::sync::Mutex::default(),
    });
    let plane = Plane {
        host: host.clone(),
        addrs: Some(addrs.clone()),
        ports: Some(tenant_ports.clone()),
    };
    let mut loops = JoinSet::new();
    for (listener, route) in listeners {
        let ctx = Ctx {
            plane: plane.clone(),
            route,
            admin_token: admin_token.clone(),
            caller: caller.clone(),
        };
        let stop = Stop {
            host: stop_rx.clone(),
            tenant: None,
        };
        loops.spawn(accept_loop(listener, ctx, stop, config.drain_timeout));
    }
    Ok(RunningHost {
        addrs,
        stop,
        loops,
        tenant_ports,
        _reaper: host.reap_tenants(TENANT_REAP_INTERVAL),
    })
}

/// Opens ports for tenants' twins while the host serves (the control
/// plane's [`PortOpener`]): one listener per twin on a free port of the
/// shared listener's address, stopped when the tenant goes or the host
/// shuts down.
struct TenantListeners {
    ip: std::net::IpAddr,
    /// Whether a tenant gets ports when it does not say: when the host
    /// serves its own twins on ports of their own.
    by_default: bool,
    admin_token: Option<Arc<str>>,
    caller: Arc<CallerPolicy>,
    stop: watch::Receiver<bool>,
    drain_timeout: Duration,
    loops: std::sync::Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for TenantListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantListeners")
            .field("ip", &self.ip)
            .finish()
    }
}

impl control::PortOpener for TenantListeners {
    fn by_default(&self) -> bool {
        self.by_default
    }

    fn open(&self, plane: &Plane, world: &World) -> std::io::Result<()> {
        let Some(id) = world.id() else {
            return Ok(());
        };
        let mut bound = Vec::new();
        for name in world.twin_names() {
            let listener = std::net::TcpListener::bind(SocketAddr::new(self.ip, 0))?;
            listener.set_nonblocking(true)?;
            bound.push((name, TcpListener::from_std(listener)?));
        }
        // Nothing is served until every port is open: a tenant gets all its
        // ports or none (the caller removes it on an error).
        let (close, closed) = watch::channel(false);
        let mut addrs = BTreeMap::new();
        let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
        while loops.try_join_next().is_some() {}
        for (name, listener) in bound {
            addrs.insert(
                name.clone(),
                local_addr(&listener, SocketAddr::new(self.ip, 0)),
            );
            let ctx = Ctx {
                plane: plane.clone(),
                route: Route::Twin {
                    tenant: Some(Arc::from(id)),
                    name: Arc::from(name.as_str()),
                },
                admin_token: self.admin_token.clone(),
                caller: self.caller.clone(),
            };
            let stop = Stop {
                host: self.stop.clone(),
                tenant: Some(closed.clone()),
            };
            loops.spawn(accept_loop(listener, ctx, stop, self.drain_timeout));
        }
        world.set_ports(TenantPorts {
            addrs,
            _close: Box::new(close),
        });
        Ok(())
    }
}

async fn bind(addr: SocketAddr, what: &str, hint: &'static str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Bind {
            what: what.to_owned(),
            addr,
            error,
            hint,
        })
}

fn local_addr(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}

/// What one listener's requests are answered with.
#[derive(Clone)]
struct Ctx {
    plane: Plane,
    route: Route,
    admin_token: Option<Arc<str>>,
    caller: Arc<CallerPolicy>,
}

/// When a listener stops: at the host's shutdown, or, for a tenant's
/// twin, also when the tenant is removed (its sender dropped).
#[derive(Clone)]
struct Stop {
    host: watch::Receiver<bool>,
    tenant: Option<watch::Receiver<bool>>,
}

impl Stop {
    async fn requested(&mut self) {
        match &mut self.tenant {
            None => {
                let _ = self.host.changed().await;
            }
            Some(tenant) => {
                tokio::select! {
                    _ = self.host.changed() => {}
                    _ = tenant.changed() => {}
                }
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, ctx: Ctx, mut stop: Stop, drain_timeout: Duration) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(stream, ctx.clone(), stop.clone()));
            }
            _ = stop.requested() => break,
        }
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "drain timeout reached; closing the remaining connections"
        );
        connections.shutdown().await;
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, ctx: Ctx, mut stop: Stop) {
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move {
            let answer = dispatch(&ctx, req).await;
            // Let the worker run the other connections' ready requests before
            // this response is written: a burst of requests then goes back as
            // a burst of responses, and a client waiting on another core is
            // woken once per burst instead of once per response. Each wake-up
            // costs the sender an inter-processor interrupt (a VM exit on a
            // virtual machine). With 32 connections this cut wake-ups from
            // 0.85 to 0.09 per response and raised `hello`'s throughput by a
            // third (docs/decisions.md §16). A lone request pays one
            // non-blocking poll of the I/O driver.
            tokio::task::yield_now().await;
            match answer {
                Answer::Response(response) => Ok(response.map(Full::new)),
                // An error from the service makes hyper close the
                // connection without a response: the injected drop.
                Answer::Drop => Err(DroppedByFault),
            }
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        // Slow clients get this long to send their headers.
        .header_read_timeout(Duration::from_secs(30))
        // A client may shut its write side once the request is sent (HTTP/1.0
        // tools, `nc -N`); it still gets its response. Found by tests/tests/e2e/fuzz.rs.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.requested() => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Tells hyper to abort the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct DroppedByFault;

async fn dispatch(ctx: &Ctx, req: http::Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    if let Err(refused) = ctx.caller.check_any(&parts) {
        return Answer::Response(refused.into_response());
    }
    let (parts, target) = match &ctx.route {
        Route::Twin { tenant, name } => match admin_alias(tenant.as_deref(), name, &parts) {
            Some(aliased) => (aliased, Target::Control),
            None => {
                let path = parts.uri.path().to_owned();
                let target = match tenant {
                    None => match ctx.plane.host.twin(name) {
                        Some(twin) => Target::Twin(twin, path),
                        None => Target::Answer(control::unknown_twin(&ctx.plane, name)),
                    },
                    Some(id) => match ctx.plane.host.tenant_registry().get(id) {
                        Some(world) => twin_of(&world, name, path),
                        None => Target::Answer(control::unknown_tenant(id)),
                    },
                };
                (parts, target)
            }
        },
        Route::Shared => {
            let target = route_shared(ctx, &parts);
            (parts, target)
        }
    };
    let checked = match &target {
        Target::Answer(_) => Ok(()),
        Target::Control => ctx.caller.check_control(&parts),
        Target::Twin(..) => ctx.caller.check_twin(&parts),
    };
    if let Err(refused) = checked {
        return Answer::Response(refused.into_response());
    }
    if let Target::Answer(response) = target {
        return Answer::Response(response);
    }
    if matches!(target, Target::Control)
        && let Some(token) = &ctx.admin_token
        && !bearer_matches(&parts, token)
    {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            "admin_token_required",
            "the control plane needs `Authorization: Bearer <admin token>`",
            None,
        );
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return Answer::Response(response);
    }
    // Held until the answer: the bytes of a body waiting for its twin count
    // against the budget as long as the host holds them.
    let mut reading = std::pin::pin!(read_body(
        body,
        ctx.plane.host.limits().max_request_body,
        ctx.plane.host.body_budget(),
    ));
    // Most bodies (and every empty one) have arrived with the headers: one
    // poll reads them, and only a body still on its way starts the timer
    // (which costs a clock read per request, and a syscall on this VM).
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(reading.as_mut().poll(cx))).await;
    let read = match first {
        std::task::Poll::Ready(read) => read,
        std::task::Poll::Pending => match tokio::time::timeout(BODY_READ_TIMEOUT, reading).await {
            Ok(read) => read,
            Err(_) => {
                return Answer::Response(error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_body_timeout",
                    &format!(
                        "the request body did not arrive within {} s",
                        BODY_READ_TIMEOUT.as_secs()
                    ),
                    None,
                ));
            }
        },
    };
    let (body, _budget) = match read {
        Ok(read) => read,
        Err(response) => return Answer::Response(response),
    };
    match target {
        Target::Twin(twin, path) => call_twin(&twin, &parts, &path, body).await,
        Target::Control => Answer::Response(control::control(&ctx.plane, &parts, &body).await),
        Target::Answer(response) => Answer::Response(response),
    }
}
