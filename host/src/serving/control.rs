//! The control plane under `/_wt/`: what a test suite and an operator drive
//! (health, listing, reset, state export/import, the request journal, twin
//! time). JSON in, JSON out; errors in the same envelope as the host's others.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;

use crate::Host;
use crate::exchange::{error_response, json_response};
use crate::journal::Filter;
use crate::tenancy::World;
use crate::twin::Twin;
use serde::Deserialize;

mod clock;
mod state;
mod tenants;

use clock::clock;
use state::{export_state, import_state};

/// Addresses the server ended up on.
#[derive(Debug, Clone)]
pub(crate) struct Addresses {
    pub(crate) shared: std::net::SocketAddr,
    pub(crate) twins: std::collections::BTreeMap<String, std::net::SocketAddr>,
    /// `--domain`: twins are also named `{twin}[.{tenant}].{domain}`.
    pub(crate) domain: Option<String>,
}

/// What the control plane answers from: the host, where it listens, and
/// what opens tenants' ports (both `None` in-process, through
/// [`Host::control`]).
#[derive(Clone)]
pub(crate) struct Plane {
    pub(crate) host: Host,
    pub(crate) addrs: Option<std::sync::Arc<Addresses>>,
    pub(crate) ports: Option<std::sync::Arc<dyn PortOpener>>,
}

/// Opens ports of their own for a tenant's twins: the server implements it
/// (it owns the listeners), the control plane calls it when a tenant is
/// made.
pub(crate) trait PortOpener: Send + Sync {
    /// Whether a tenant gets ports when its request does not say.
    fn by_default(&self) -> bool;
    /// Opens one port per twin of `world` and records them in it.
    fn open(&self, plane: &Plane, world: &World) -> std::io::Result<()>;
}

impl Host {
    /// Answers a control-plane request in-process, without a socket: the
    /// same paths (`/_wt/twins/hello/reset`, `/_wt/twins/hello/state`, …)
    /// and the same answers as over HTTP, for tests that drive the control
    /// plane the way axum's are driven with `oneshot`. No admin token or
    /// caller checks apply: the caller is this process. Twins' URLs in
    /// `/_wt/twins` are `null`, since nothing listens.
    pub async fn control(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
        let (parts, body) = request.into_parts();
        let plane = Plane {
            host: self.clone(),
            addrs: None,
            ports: None,
        };
        control(&plane, &parts, &body).await
    }
}

/// How long the health probe waits for one twin.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers one control-plane request; `body` is already read (and bounded).
///
/// Host-wide paths (metrics, tenants) are answered here; the rest concern
/// one world, the default one or `/_wt/tenants/{id}/…`, and go to
/// [`world_control`].
pub(crate) async fn control(
    ctx: &Plane,
    parts: &http::request::Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    let path = parts.uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(2).collect();
    let query = parts.uri.query().unwrap_or_default();
    let request = WorldRequest {
        method: &parts.method,
        full_path: parts.uri.path(),
        query,
        body,
    };
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["metrics"]) => metrics(ctx),
        (&Method::POST, ["shutdown"]) => {
            ctx.host.request_shutdown();
            json_response(StatusCode::ACCEPTED, &json!({ "shutting_down": true }))
        }
        (&Method::POST, ["tenants"]) => tenants::create(ctx, body).await,
        (&Method::GET, ["tenants"]) => tenants::list(ctx),
        (&Method::GET, ["tenants", id]) => tenants::show(ctx, id),
        (&Method::DELETE, ["tenants", id]) => tenants::delete(ctx, id).await,
        (_, ["metrics" | "tenants" | "shutdown"] | ["tenants", _]) => not_allowed(&request),
        (_, ["tenants", id, rest @ ..]) => match ctx.host.tenant_registry().get(id) {
            Some(world) => {
                world.touch();
                world_control(ctx, &world, rest, &request).await
            }
            None => unknown_tenant(id),
        },
        (_, rest) => world_control(ctx, &ctx.host.default_world(), rest, &request).await,
    }
}

/// What a world's endpoints read from the request.
struct WorldRequest<'a> {
    method: &'a Method,
    full_path: &'a str,
    query: &'a str,
    body: &'a [u8],
}

/// One world's control plane: the route table, one arm per route in the
/// order `docs/architecture.md` lists them, ending with the 405s for known
/// paths. Longer than a function should be, but read top to bottom like a
/// router's table, and each arm is a line or a call.
async fn world_control(
    ctx: &Plane,
    world: &World,
    segments: &[&str],
    request: &WorldRequest<'_>,
) -> http::Response<Bytes> {
    let body = request.body;
    match (request.method, segments) {
        (&Method::GET, ["health"]) => health(world, None).await,
        (&Method::GET, ["twins", name, "health"]) => match world.twin(name) {
            Some(_) => health(world, Some(name)).await,
            None => unknown_twin_in(world, name),
        },
        (&Method::GET, ["twins"]) => json_response(StatusCode::OK, &twins_json(ctx, world)),
        (&Method::POST, ["reset"]) => match world.reset().await {
            Ok(()) => json_response(StatusCode::OK, &json!({ "reset": world.twin_names() })),
            Err(err) => host_error(&err.into()),
        },
        (&Method::POST, ["twins", name, "reset"]) => match world.twin(name) {
            Some(twin) => match twin.reset().await {
                Ok(()) => json_response(StatusCode::OK, &json!({ "reset": [name] })),
                Err(err) => host_error(&err.into()),
            },
            None => unknown_twin_in(world, name),
        },
        (&Method::POST, ["twins", name, "reload"]) if world.id().is_some() => error_response(
            StatusCode::CONFLICT,
            "tenant_twins_not_reloadable",
            &format!(
                "a tenant keeps the code it was made with; reload '{name}' in the default world and make a new tenant"
            ),
            Some(name),
        ),
        (&Method::POST, ["twins", name, "reload"]) => match ctx.host.reload(name).await {
            Ok(info) => json_response(StatusCode::OK, &json!({ "reloaded": info })),
            Err(crate::Error::NoSuchTwin(_)) => unknown_twin_in(world, name),
            Err(err) => bad_request("reload_failed", &err.to_string()),
        },
        (&Method::GET, ["twins", name, "config"]) => match world.twin(name) {
            Some(twin) => json_response(StatusCode::OK, &twin.settings().to_json()),
            None => unknown_twin_in(world, name),
        },
        (&Method::PUT | &Method::PATCH, ["twins", name, "config"]) => {
            with_twin(world, name, |twin| update_config(twin, body))
        }
        (&Method::GET, ["twins", name, "state"]) => match world.twin(name) {
            Some(twin) => export_state(&twin).await,
            None => unknown_twin_in(world, name),
        },
        (&Method::PUT, ["twins", name, "state"]) => match world.twin(name) {
            Some(twin) => import_state(&twin, body).await,
            None => unknown_twin_in(world, name),
        },
        (&Method::GET, ["twins", name, "requests"]) => {
            with_twin(world, name, |twin| journal(twin, request.query))
        }
        (&Method::POST, ["twins", name, "requests", "verify"]) => {
            with_twin(world, name, |twin| verify(twin, body))
        }
        (&Method::DELETE, ["twins", name, "requests"]) => with_twin(world, name, |twin| {
            twin.journal().clear();
            json_response(StatusCode::OK, &json!({ "cleared": name }))
        }),
        (&Method::GET, ["twins", name, "faults"]) => with_twin(world, name, |twin| {
            json_response(StatusCode::OK, &json!({ "faults": twin.faults().list() }))
        }),
        (&Method::POST, ["twins", name, "faults"]) => {
            with_twin(world, name, |twin| add_fault(twin, body))
        }
        (&Method::DELETE, ["twins", name, "faults"]) => with_twin(world, name, |twin| {
            twin.faults().clear();
            json_response(StatusCode::OK, &json!({ "faults": [] }))
        }),
        (&Method::DELETE, ["twins", name, "faults", id]) => with_twin(world, name, |twin| match id
            .parse::<u64>()
            .map(|id| twin.faults().remove(id))
        {
            Ok(true) => json_response(StatusCode::OK, &json!({ "removed": id })),
            _ => error_response(
                StatusCode::NOT_FOUND,
                "unknown_fault",
                &format!("twin '{name}' has no fault {id}"),
                Some(name),
            ),
        }),
        (&Method::GET, ["twins", name, "outbound"]) => match world.twin(name) {
            Some(twin) => json_response(
                StatusCode::OK,
                &json!({ "twin": name, "deliveries": twin.outbound().log().await }),
            ),
            None => unknown_twin_in(world, name),
        },
        (&Method::POST, ["twins", name, "outbound", "flush"]) => match world.twin(name) {
            Some(twin) => {
                twin.outbound().flush().await;
                json_response(
                    StatusCode::OK,
                    &json!({ "twin": name, "deliveries": twin.outbound().log().await }),
                )
            }
            None => unknown_twin_in(world, name),
        },
        (&Method::DELETE, ["twins", name, "outbound"]) => match world.twin(name) {
            Some(twin) => {
                twin.outbound().cancel_all().await;
                json_response(StatusCode::OK, &json!({ "cleared": name }))
            }
            None => unknown_twin_in(world, name),
        },
        (method, ["clock", rest @ ..]) => clock(world.clock(), None, method, rest, body),
        (method, ["twins", name, "clock", rest @ ..]) => match world.twin(name) {
            Some(twin) => clock(twin.clock(), Some(name), method, rest, body),
            None => unknown_twin_in(world, name),
        },
        (
            _,
            ["health" | "twins" | "reset"]
            | [
                "twins",
                _,
                "reset" | "state" | "requests" | "faults" | "outbound" | "config" | "reload"
                | "health",
            ]
            | ["twins", _, "outbound", "flush"]
            | ["twins", _, "requests", "verify"]
            | ["twins", _, "faults", _],
        ) => not_allowed(request),
        _ => error_response(
            StatusCode::NOT_FOUND,
            "unknown_control_path",
            &format!("no control endpoint at {}", request.full_path),
            None,
        ),
    }
}

/// Runs `f` on the world's twin `name`, or answers that it has none.
fn with_twin(
    world: &World,
    name: &str,
    f: impl FnOnce(&Twin) -> http::Response<Bytes>,
) -> http::Response<Bytes> {
    match world.twin(name) {
        Some(twin) => f(&twin),
        None => unknown_twin_in(world, name),
    }
}

fn not_allowed(request: &WorldRequest<'_>) -> http::Response<Bytes> {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("{} is not allowed on {}", request.method, request.full_path),
        None,
    )
}

/// Prometheus text for every twin of the default world (a tenant's twins
/// count into their twin's series) and the tenant counters.
fn metrics(ctx: &Plane) -> http::Response<Bytes> {
    let twins = ctx.host.all_twins();
    let mut text = crate::metrics::render(twins.iter().map(|t| (t.name(), t.metrics())));
    let (live, created, expired) = ctx.host.tenant_registry().counts();
    text.push_str(&crate::metrics::render_tenants(live, created, expired));
    let mut response = http::Response::new(Bytes::from(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

fn bad_request(code: &str, message: &str) -> http::Response<Bytes> {
    error_response(StatusCode::BAD_REQUEST, code, message, None)
}

/// `PUT /_wt/twins/{t}/config` with `{"key": value, …}`: changes the named
/// settings (all or none), from the next request on.
fn update_config(twin: &Twin, body: &[u8]) -> http::Response<Bytes> {
    let values: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(body) {
        Ok(values) => values,
        Err(err) => {
            return bad_request(
                "invalid_config",
                &format!("expected a JSON object of setting keys to values: {err}"),
            );
        }
    };
    match twin.settings().update(&values) {
        Ok(()) => json_response(StatusCode::OK, &twin.settings().to_json()),
        Err(err) => bad_request("invalid_config", &err.to_string()),
    }
}

fn journal(twin: &Twin, query: &str) -> http::Response<Bytes> {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => None,
        Some(Ok(limit)) => Some(limit),
        Some(Err(_)) => return bad_request("invalid_limit", "limit must be a whole number"),
    };
    // `status`, `since_millis`, `until_millis`, and `query.NAME`,
    // `header.NAME`, `body.NAME` for fields: the criteria `verify` takes.
    let mut matching = crate::journal::Match::default();
    for (key, value) in &params {
        let number = || value.parse::<u64>().ok();
        match key.split_once('.') {
            Some(("query", name)) => {
                matching.query.insert(name.to_owned(), value.clone());
            }
            Some(("header", name)) => {
                matching.headers.insert(name.to_owned(), value.clone());
            }
            Some(("body", name)) => {
                matching
                    .body
                    .insert(name.to_owned(), serde_json::Value::String(value.clone()));
            }
            _ => match key.as_str() {
                "status" => match value.parse() {
                    Ok(status) => matching.status = Some(status),
                    Err(_) => return bad_request("invalid_status", "status must be a number"),
                },
                "since_millis" => matching.since_millis = number(),
                "until_millis" => matching.until_millis = number(),
                _ => {}
            },
        }
    }
    let filter = Filter {
        method: param("method"),
        path: param("path"),
        limit,
        matching: Some(&matching),
    };
    json_response(
        StatusCode::OK,
        &json!({ "twin": twin.name(), "requests": twin.journal().entries(&filter) }),
    )
}

/// `POST …/requests/verify` with `{"match": {…}, "count": {"eq"|"gte"|"lte": n}}`
/// (count defaults to at least one): 200 when the journal holds that many
/// matching requests, else 409 with the nearest misses and what each
/// failed.
fn verify(twin: &Twin, body: &[u8]) -> http::Response<Bytes> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Verify {
        #[serde(rename = "match", default)]
        matching: crate::journal::Match,
        #[serde(default)]
        count: Count,
    }
    #[derive(Deserialize, Default, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Count {
        eq: Option<usize>,
        gte: Option<usize>,
        lte: Option<usize>,
    }
    let asked: Verify = match serde_json::from_slice(body) {
        Ok(asked) => asked,
        Err(err) => {
            return bad_request(
                "invalid_verification",
                &format!(
                    "expected {{\"match\": {{\"method\", \"path\", \"query\", \"body\", \"headers\", \"status\"}}, \"count\": {{\"eq\" | \"gte\" | \"lte\": n}}}}: {err}"
                ),
            );
        }
    };
    let count = &asked.count;
    let (matched, near) = twin.journal().verify(&asked.matching, 3);
    let holds = match (count.eq, count.gte, count.lte) {
        (Some(eq), _, _) => matched == eq,
        (None, None, None) => matched >= 1,
        (None, gte, lte) => gte.is_none_or(|n| matched >= n) && lte.is_none_or(|n| matched <= n),
    };
    if holds {
        return json_response(
            StatusCode::OK,
            &json!({ "verified": true, "matched": matched }),
        );
    }
    let wanted = match (count.eq, count.gte, count.lte) {
        (Some(eq), _, _) => format!("exactly {eq}"),
        (None, None, None) => "at least 1".to_owned(),
        (None, Some(gte), Some(lte)) => format!("{gte} to {lte}"),
        (None, Some(gte), None) => format!("at least {gte}"),
        (None, None, Some(lte)) => format!("at most {lte}"),
    };
    let near_misses: Vec<_> = near
        .iter()
        .map(|(entry, misses)| {
            json!({
                "seq": entry.seq, "method": entry.method, "path": entry.path,
                "status": entry.status, "misses": misses,
            })
        })
        .collect();
    json_response(
        StatusCode::CONFLICT,
        &json!({
            "error": {
                "type": "invalid_request_error",
                "code": "verification_failed",
                "message": format!(
                    "expected {wanted} request(s) to twin '{}' matching, found {matched}",
                    twin.name()
                ),
            },
            "verified": false,
            "matched": matched,
            "near_misses": near_misses,
        }),
    )
}

fn add_fault(twin: &Twin, body: &[u8]) -> http::Response<Bytes> {
    let spec: crate::faults::FaultSpec = match serde_json::from_slice(body) {
        Ok(spec) => spec,
        Err(err) => return bad_request("invalid_fault", &err.to_string()),
    };
    match twin.faults().add(spec) {
        Ok(fault) => json_response(StatusCode::CREATED, &json!(fault)),
        Err(reason) => bad_request("invalid_fault", &reason),
    }
}

/// A name on the shared listener that is neither a twin of the default
/// world nor a tenant.
pub(crate) fn unknown_twin(ctx: &Plane, name: &str) -> http::Response<Bytes> {
    unknown_twin_in(&ctx.host.default_world(), name)
}

pub(crate) fn unknown_twin_in(world: &World, name: &str) -> http::Response<Bytes> {
    let message = match world.id() {
        None => format!(
            "no twin named '{name}' is loaded (loaded: {})",
            world.twin_names().join(", ")
        ),
        Some(id) => format!(
            "tenant '{id}' has no twin named '{name}' (it has: {})",
            world.twin_names().join(", ")
        ),
    };
    error_response(StatusCode::NOT_FOUND, "unknown_twin", &message, None)
}

pub(crate) fn unknown_tenant(id: &str) -> http::Response<Bytes> {
    error_response(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        &format!("no tenant '{id}' (it may have expired; see GET /_wt/tenants)"),
        None,
    )
}

fn host_error(err: &crate::Error) -> http::Response<Bytes> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "host_error",
        &err.to_string(),
        None,
    )
}

pub(crate) fn twins_json(ctx: &Plane, world: &World) -> serde_json::Value {
    let twins: Vec<_> = world
        .twins()
        .into_iter()
        .map(|twin| {
            let info = twin.info();
            let urls = twin_urls(ctx, world, &info.name);
            let mut value = serde_json::to_value(info).unwrap_or_default();
            value["urls"] = urls;
            value["state"] = json!(twin.state().usage().ok());
            value["journal"] = json!(twin.journal().len());
            value["license"] = json!(twin.license_status());
            value
        })
        .collect();
    json!({ "twins": twins })
}

/// Where a world's twin answers: `prefixed` on the shared listener
/// (`/{twin}/`, or `/{tenant}/{twin}/`), `host` by name on it
/// (`{twin}[.{tenant}].localhost`), and `own`, a port of its own (the
/// default world's twins). `null` in-process, where nothing listens.
pub(crate) fn twin_urls(ctx: &Plane, world: &World, name: &str) -> serde_json::Value {
    let Some(addrs) = &ctx.addrs else {
        return json!({ "prefixed": null, "host": null, "own": null });
    };
    let shared = addrs.shared;
    let port = shared.port();
    let domain = addrs.domain.as_deref().unwrap_or("localhost");
    match world.id() {
        None => {
            let own = addrs
                .twins
                .get(name)
                .filter(|a| a.port() != 0)
                .map(|a| format!("http://{a}"));
            json!({
                "prefixed": format!("http://{shared}/{name}"),
                "host": format!("http://{name}.{domain}:{port}"),
                "own": own,
            })
        }
        Some(id) => json!({
            "prefixed": format!("http://{shared}/{id}/{name}"),
            "host": format!("http://{name}.{id}.{domain}:{port}"),
            "own": world.own_port(name).map(|a| format!("http://{a}")),
        }),
    }
}

/// Probes every twin of `world` (or just `only`) concurrently, each with
/// its own timeout, and reports all of them: one slow twin never hides the
/// state of the others.
async fn health(world: &World, only: Option<&str>) -> http::Response<Bytes> {
    let mut probes = JoinSet::new();
    for twin in world.twins() {
        if only.is_some_and(|name| name != twin.name()) {
            continue;
        }
        probes.spawn(async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(PROBE_TIMEOUT, twin.probe()).await;
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            (
                twin.name().to_owned(),
                millis,
                error,
                twin.license_status().state,
            )
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = probes.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let total = results.len();
    let unreachable: Vec<&str> = results
        .iter()
        .filter(|(_, _, e, _)| e.is_some())
        .map(|(n, _, _, _)| n.as_str())
        .collect();
    let twins: Vec<_> = results
        .iter()
        .map(|(name, millis, error, license)| {
            json!({
                "name": name,
                "status": if error.is_none() { "ok" } else { "unreachable" },
                "latency_ms": (millis * 100.0).round() / 100.0,
                "error": error,
                // A twin without its license is up (it answers 402 saying
                // why), so it does not make the host unhealthy.
                "license": license,
            })
        })
        .collect();
    let status = if unreachable.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "summary": format!("{}/{total} twins healthy", total - unreachable.len()),
            "twins": twins,
            "unreachable": unreachable,
        }),
    )
}
