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
use crate::twin::Twin;

/// How long a client gets to send a request's body: a body trickled in a
/// byte at a time would otherwise hold its share of the body budget (and a
/// connection) for ever. Headers get as long (`header_read_timeout`).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    }
}

#[derive(Clone)]
enum Route {
    Shared,
    /// A twin's own port. By name, looked up per request, so a reloaded
    /// twin takes over its port at once.
    Twin(Arc<str>),
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
        listeners.push((listener, Route::Twin(Arc::from(twin.name()))));
    }

    let mut addrs = Addresses {
        shared: local_addr(&listeners[0].0, config.listen),
        twins: BTreeMap::new(),
    };
    for (listener, route) in &listeners[1..] {
        if let Route::Twin(twin) = route {
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
        self_delivery: host.outbound_policy().allows_self(),
    });

    let (stop, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for (listener, route) in listeners {
        let ctx = Ctx {
            plane: Plane {
                host: host.clone(),
                addrs: Some(addrs.clone()),
            },
            route,
            admin_token: admin_token.clone(),
            caller: caller.clone(),
        };
        loops.spawn(accept_loop(
            listener,
            ctx,
            stop_rx.clone(),
            config.drain_timeout,
        ));
    }
    Ok(RunningHost { addrs, stop, loops })
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

async fn accept_loop(
    listener: TcpListener,
    ctx: Ctx,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
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
            _ = stop.changed() => break,
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

async fn serve_connection(
    stream: tokio::net::TcpStream,
    ctx: Ctx,
    mut stop: watch::Receiver<bool>,
) {
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
        _ = stop.changed() => {
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
        Route::Twin(name) => match admin_alias(name, &parts) {
            Some(aliased) => (aliased, Target::Control),
            None => {
                let path = parts.uri.path().to_owned();
                let target = match ctx.plane.host.twin(name) {
                    Some(twin) => Target::Twin(twin, path),
                    None => Target::Answer(control::unknown_twin(&ctx.plane, name)),
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

/// Whether the request carries the admin token, compared in constant time
/// so the comparison leaks nothing about how much of a guess was right.
fn bearer_matches(parts: &http::request::Parts, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// WonderTwin served its control plane at `/admin/*` on each twin's own
/// port; those paths keep working there, as aliases of `/_wt/` for that twin.
fn admin_alias(twin: &str, parts: &http::request::Parts) -> Option<http::request::Parts> {
    let rest = parts
        .uri
        .path()
        .strip_prefix("/admin/")?
        .trim_end_matches('/');
    let target = match rest {
        // That twin's health, as WonderTwin's per-twin binary reported.
        "health" => format!("twins/{twin}/health"),
        "reset" => format!("twins/{twin}/reset"),
        "state" => format!("twins/{twin}/state"),
        "config" | "quirks" => format!("twins/{twin}/config"),
        "requests" => format!("twins/{twin}/requests"),
        "faults" | "fault" => format!("twins/{twin}/faults"),
        "webhooks" => format!("twins/{twin}/outbound"),
        "webhooks/flush" => format!("twins/{twin}/outbound/flush"),
        // A WonderTwin twin moved its own time; so does the alias.
        "time" => format!("twins/{twin}/clock"),
        "time/advance" => format!("twins/{twin}/clock/advance"),
        "time/freeze" => format!("twins/{twin}/clock/freeze"),
        "time/unfreeze" => format!("twins/{twin}/clock/unfreeze"),
        "time/reset" => format!("twins/{twin}/clock/reset"),
        _ => return None,
    };
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{CONTROL_PREFIX}/{target}?{query}"),
        None => format!("{CONTROL_PREFIX}/{target}"),
    };
    let mut aliased = parts.clone();
    aliased.uri = path_and_query.parse().ok()?;
    Some(aliased)
}

enum Target {
    /// A twin, and the path it sees.
    Twin(Arc<Twin>, String),
    Control,
    /// The host answers itself (the index, an unknown twin).
    Answer(http::Response<Bytes>),
}

/// `Host: <twin>.localhost` wins; otherwise the first path segment names the
/// twin and the rest of the path is what it sees.
fn route_shared(ctx: &Ctx, parts: &http::request::Parts) -> Target {
    let path = parts.uri.path();
    if let Some(label) = host_label(parts) {
        return match ctx.plane.host.twin(label) {
            Some(twin) => Target::Twin(twin, path.to_owned()),
            None => Target::Answer(control::unknown_twin(&ctx.plane, label)),
        };
    }
    if path == CONTROL_PREFIX || path.starts_with("/_wt/") {
        return Target::Control;
    }
    let rest = path.trim_start_matches('/');
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return Target::Answer(json_response(
            StatusCode::OK,
            &control::twins_json(&ctx.plane),
        ));
    }
    match ctx.plane.host.twin(name) {
        Some(twin) => Target::Twin(twin, format!("/{tail}")),
        None => Target::Answer(control::unknown_twin(&ctx.plane, name)),
    }
}

/// The `<twin>` of `Host: <twin>.localhost[:port]`, if that is the form.
fn host_label(parts: &http::request::Parts) -> Option<&str> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let label = host.strip_suffix(".localhost")?;
    (!label.is_empty() && !label.contains('.')).then_some(label)
}

/// Reads a request body of at most `max` bytes, taking its bytes from the
/// host-wide `budget` as they arrive (all at once when `Content-Length`
/// says how many): many large bodies at once get 503s, not the host's
/// memory.
async fn read_body(
    body: Incoming,
    max: usize,
    budget: &Arc<BodyBudget>,
) -> Result<(Bytes, Option<BudgetPermit>), http::Response<Bytes>> {
    let mut body = Limited::new(body, max);
    let mut held: Option<BudgetPermit> = None;
    if let Some(length) = body.size_hint().exact() {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length == 0 {
            return Ok((Bytes::new(), None));
        }
        if length <= max {
            match budget.take(length) {
                Some(permit) => held = Some(permit),
                None => return Err(refuse_after_draining(body, budget.max_bytes()).await),
            }
        }
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| body_error(&*err, max))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total += data.len();
        let covered = held.as_ref().map_or(0, BudgetPermit::bytes);
        if total > covered {
            let Some(more) = budget.take(total - covered) else {
                drop(chunks);
                drop(held);
                return Err(refuse_after_draining(body, budget.max_bytes()).await);
            };
            match &mut held {
                Some(permit) => permit.merge(more),
                None => held = Some(more),
            }
        }
        chunks.push(data);
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut joined = Vec::with_capacity(total);
            for chunk in &chunks {
                joined.extend_from_slice(chunk);
            }
            Bytes::from(joined)
        }
    };
    Ok((bytes, held))
}

/// The budget's refusal, sent once the rest of the body is read and
/// dropped (within `max`): a response sent while the client still writes
/// would be lost to the reset that closing an unread connection causes.
async fn refuse_after_draining(
    mut body: Limited<Incoming>,
    budget_bytes: usize,
) -> http::Response<Bytes> {
    while let Some(Ok(_)) = body.frame().await {}
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "host_busy",
        &format!(
            "the host already holds {budget_bytes} bytes of request bodies (--max-buffered-bodies); try again shortly"
        ),
        None,
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

fn body_error(
    err: &(dyn std::error::Error + Send + Sync + 'static),
    max: usize,
) -> http::Response<Bytes> {
    if err
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some()
    {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!("request bodies are limited to {max} bytes"),
            None,
        );
    }
    error_response(
        StatusCode::BAD_REQUEST,
        "bad_request_body",
        &format!("could not read the request body: {err}"),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::get(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn admin_paths_alias_the_control_plane_for_that_twin() {
        let alias = |uri: &str| admin_alias("stripe", &parts(uri, None)).map(|p| p.uri.to_string());
        assert_eq!(
            alias("/admin/reset").as_deref(),
            Some("/_wt/twins/stripe/reset")
        );
        assert_eq!(
            alias("/admin/requests?method=POST").as_deref(),
            Some("/_wt/twins/stripe/requests?method=POST")
        );
        assert_eq!(
            alias("/admin/webhooks/flush").as_deref(),
            Some("/_wt/twins/stripe/outbound/flush")
        );
        assert_eq!(
            alias("/admin/time/advance").as_deref(),
            Some("/_wt/twins/stripe/clock/advance")
        );
        assert_eq!(
            alias("/admin/quirks").as_deref(),
            Some("/_wt/twins/stripe/config")
        );
        assert_eq!(alias("/admin/unknown"), None);
        assert_eq!(alias("/v1/customers"), None);
    }

    #[test]
    fn host_label_reads_twin_dot_localhost_with_or_without_port() {
        assert_eq!(
            host_label(&parts("/x", Some("stripe.localhost:4100"))),
            Some("stripe")
        );
        assert_eq!(
            host_label(&parts("/x", Some("stripe.localhost"))),
            Some("stripe")
        );
        assert_eq!(host_label(&parts("/x", Some("localhost:4100"))), None);
        assert_eq!(host_label(&parts("/x", Some("127.0.0.1:4100"))), None);
        assert_eq!(host_label(&parts("/x", Some("a.b.localhost"))), None);
        assert_eq!(host_label(&parts("/x", None)), None);
    }
}
