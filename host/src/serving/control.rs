//! The control plane under `/_wt/`: what a test suite and an operator drive
//! (health, listing, reset, state export/import, the request journal, twin
//! time). JSON in, JSON out; errors in the same envelope as the host's others.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinSet;

use crate::Host;
use crate::exchange::{error_response, json_response};
use crate::journal::Filter;

/// Addresses the server ended up on.
#[derive(Debug, Clone)]
pub(crate) struct Addresses {
    pub(crate) shared: std::net::SocketAddr,
    pub(crate) twins: std::collections::BTreeMap<String, std::net::SocketAddr>,
}

/// What the control plane answers from: the host, and where it listens
/// (`None` in-process, through [`Host::control`]).
#[derive(Clone)]
pub(crate) struct Plane {
    pub(crate) host: Host,
    pub(crate) addrs: Option<std::sync::Arc<Addresses>>,
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
        };
        control(&plane, &parts, &body).await
    }
}

/// How long the health probe waits for one twin.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers one control-plane request; `body` is already read (and bounded).
///
/// This is the control plane's route table, one arm per route in the order
/// `docs/architecture.md` lists them, ending with the 405s for known paths:
/// longer than a function should be, but read top to bottom like a router's
/// table, and each arm is a line or a call.
pub(crate) async fn control(
    ctx: &Plane,
    parts: &http::request::Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    let path = parts.uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(2).collect();
    let query = parts.uri.query().unwrap_or_default();
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["health"]) => health(ctx, None).await,
        (&Method::GET, ["twins", name, "health"]) => match ctx.host.twin(name) {
            Some(_) => health(ctx, Some(name)).await,
            None => unknown_twin(ctx, name),
        },
        (&Method::GET, ["twins"]) => json_response(StatusCode::OK, &twins_json(ctx)),
        (&Method::GET, ["metrics"]) => {
            let twins = ctx.host.all_twins();
            let text = crate::metrics::render(twins.iter().map(|t| (t.name(), t.metrics())));
            let mut response = http::Response::new(Bytes::from(text));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        (&Method::POST, ["reset"]) => match ctx.host.reset_all().await {
            Ok(()) => json_response(StatusCode::OK, &json!({ "reset": ctx.host.twin_names() })),
            Err(err) => host_error(&err),
        },
        (&Method::POST, ["twins", name, "reset"]) => match ctx.host.reset(name).await {
            Ok(()) => json_response(StatusCode::OK, &json!({ "reset": [name] })),
            Err(crate::Error::NoSuchTwin(_)) => unknown_twin(ctx, name),
            Err(err) => host_error(&err),
        },
        (&Method::POST, ["twins", name, "reload"]) => match ctx.host.reload(name).await {
            Ok(info) => json_response(StatusCode::OK, &json!({ "reloaded": info })),
            Err(crate::Error::NoSuchTwin(_)) => unknown_twin(ctx, name),
            Err(err) => bad_request("reload_failed", &err.to_string()),
        },
        (&Method::GET, ["twins", name, "config"]) => match ctx.host.twin(name) {
            Some(twin) => json_response(StatusCode::OK, &twin.settings().to_json()),
            None => unknown_twin(ctx, name),
        },
        (&Method::PUT | &Method::PATCH, ["twins", name, "config"]) => {
            update_config(ctx, name, body)
        }
        (&Method::GET, ["twins", name, "state"]) => export_state(ctx, name).await,
        (&Method::PUT, ["twins", name, "state"]) => import_state(ctx, name, body).await,
        (&Method::GET, ["twins", name, "requests"]) => journal(ctx, name, query),
        (&Method::DELETE, ["twins", name, "requests"]) => match ctx.host.twin(name) {
            Some(twin) => {
                twin.journal().clear();
                json_response(StatusCode::OK, &json!({ "cleared": name }))
            }
            None => unknown_twin(ctx, name),
        },
        (&Method::GET, ["twins", name, "faults"]) => match ctx.host.twin(name) {
            Some(twin) => json_response(StatusCode::OK, &json!({ "faults": twin.faults().list() })),
            None => unknown_twin(ctx, name),
        },
        (&Method::POST, ["twins", name, "faults"]) => add_fault(ctx, name, body),
        (&Method::DELETE, ["twins", name, "faults"]) => match ctx.host.twin(name) {
            Some(twin) => {
                twin.faults().clear();
                json_response(StatusCode::OK, &json!({ "faults": [] }))
            }
            None => unknown_twin(ctx, name),
        },
        (&Method::DELETE, ["twins", name, "faults", id]) => match ctx.host.twin(name) {
            Some(twin) => match id.parse::<u64>().map(|id| twin.faults().remove(id)) {
                Ok(true) => json_response(StatusCode::OK, &json!({ "removed": id })),
                _ => error_response(
                    StatusCode::NOT_FOUND,
                    "unknown_fault",
                    &format!("twin '{name}' has no fault {id}"),
                    Some(name),
                ),
            },
            None => unknown_twin(ctx, name),
        },
        (&Method::GET, ["twins", name, "outbound"]) => match ctx.host.twin(name) {
            Some(twin) => json_response(
                StatusCode::OK,
                &json!({ "twin": name, "deliveries": twin.outbound().log().await }),
            ),
            None => unknown_twin(ctx, name),
        },
        (&Method::POST, ["twins", name, "outbound", "flush"]) => match ctx.host.twin(name) {
            Some(twin) => {
                twin.outbound().flush().await;
                json_response(
                    StatusCode::OK,
                    &json!({ "twin": name, "deliveries": twin.outbound().log().await }),
                )
            }
            None => unknown_twin(ctx, name),
        },
        (&Method::DELETE, ["twins", name, "outbound"]) => match ctx.host.twin(name) {
            Some(twin) => {
                twin.outbound().cancel_all().await;
                json_response(StatusCode::OK, &json!({ "cleared": name }))
            }
            None => unknown_twin(ctx, name),
        },
        (method, ["clock", rest @ ..]) => clock(ctx.host.clock(), None, method, rest, body),
        (method, ["twins", name, "clock", rest @ ..]) => match ctx.host.twin(name) {
            Some(twin) => clock(twin.clock(), Some(name), method, rest, body),
            None => unknown_twin(ctx, name),
        },
        (
            _,
            ["health" | "twins" | "reset" | "metrics"]
            | [
                "twins",
                _,
                "reset" | "state" | "requests" | "faults" | "outbound" | "config" | "reload"
                | "health",
            ]
            | ["twins", _, "outbound", "flush"]
            | ["twins", _, "faults", _],
        ) => error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{} is not allowed on {}", parts.method, parts.uri.path()),
            None,
        ),
        _ => error_response(
            StatusCode::NOT_FOUND,
            "unknown_control_path",
            &format!("no control endpoint at {}", parts.uri.path()),
            None,
        ),
    }
}

fn bad_request(code: &str, message: &str) -> http::Response<Bytes> {
    error_response(StatusCode::BAD_REQUEST, code, message, None)
}

/// One exported entry: the value as text when it is UTF-8, else base64, so
/// JSON fixtures stay readable and binary values still round-trip exactly.
#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateEntry {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

/// What `PUT …/state` takes. Other fields (an export's `twin` and `usage`)
/// are ignored, so an export can be PUT back unchanged.
#[derive(Debug, Deserialize)]
struct StateDocument {
    entries: Vec<StateEntry>,
}

async fn export_state(ctx: &Plane, name: &str) -> http::Response<Bytes> {
    let Some(twin) = ctx.host.twin(name) else {
        return unknown_twin(ctx, name);
    };
    let entries = match twin.export_state().await {
        Ok(entries) => entries,
        Err(err) => return host_error(&err.into()),
    };
    let entries: Vec<StateEntry> = entries
        .into_iter()
        .map(|(key, value)| match String::from_utf8(value) {
            Ok(text) => StateEntry {
                key,
                text: Some(text),
                base64: None,
            },
            Err(err) => StateEntry {
                key,
                text: None,
                base64: Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes())),
            },
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "twin": name, "usage": twin.state().usage().ok(), "entries": entries }),
    )
}

/// `PUT /_wt/twins/{t}/config` with `{"key": value, …}`: changes the named
/// settings (all or none), from the next request on.
fn update_config(ctx: &Plane, name: &str, body: &[u8]) -> http::Response<Bytes> {
    let Some(twin) = ctx.host.twin(name) else {
        return unknown_twin(ctx, name);
    };
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

async fn import_state(ctx: &Plane, name: &str, body: &[u8]) -> http::Response<Bytes> {
    let Some(twin) = ctx.host.twin(name) else {
        return unknown_twin(ctx, name);
    };
    let document: StateDocument = match serde_json::from_slice(body) {
        Ok(document) => document,
        Err(err) => {
            return bad_request(
                "invalid_state_document",
                &format!("expected {{\"entries\": [{{\"key\", \"text\" | \"base64\"}}]}}: {err}"),
            );
        }
    };
    let mut entries = Vec::with_capacity(document.entries.len());
    for entry in document.entries {
        let value = match (entry.text, entry.base64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => {
                match base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()) {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        return bad_request(
                            "invalid_state_document",
                            &format!("entry {:?}: base64: {err}", entry.key),
                        );
                    }
                }
            }
            _ => {
                return bad_request(
                    "invalid_state_document",
                    &format!(
                        "entry {:?} needs exactly one of \"text\" and \"base64\"",
                        entry.key
                    ),
                );
            }
        };
        if entry.key.is_empty() {
            return bad_request("invalid_state_document", "keys may not be empty");
        }
        entries.push((entry.key, value));
    }
    let count = entries.len();
    match twin.import_state(entries).await {
        Ok(()) => json_response(StatusCode::OK, &json!({ "twin": name, "imported": count })),
        Err(err) => host_error(&err.into()),
    }
}

fn journal(ctx: &Plane, name: &str, query: &str) -> http::Response<Bytes> {
    let Some(twin) = ctx.host.twin(name) else {
        return unknown_twin(ctx, name);
    };
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
    let filter = Filter {
        method: param("method"),
        path: param("path"),
        limit,
    };
    json_response(
        StatusCode::OK,
        &json!({ "twin": name, "requests": twin.journal().entries(&filter) }),
    )
}

fn add_fault(ctx: &Plane, name: &str, body: &[u8]) -> http::Response<Bytes> {
    let Some(twin) = ctx.host.twin(name) else {
        return unknown_twin(ctx, name);
    };
    let spec: crate::faults::FaultSpec = match serde_json::from_slice(body) {
        Ok(spec) => spec,
        Err(err) => return bad_request("invalid_fault", &err.to_string()),
    };
    match twin.faults().add(spec) {
        Ok(fault) => json_response(StatusCode::CREATED, &json!(fault)),
        Err(reason) => bad_request("invalid_fault", &reason),
    }
}

/// `GET …/clock`, `POST …/clock/{advance,freeze,unfreeze,reset}`, for the
/// global clock (`twin` none) or one twin's own.
fn clock(
    clock: &crate::TwinClock,
    twin: Option<&str>,
    method: &Method,
    rest: &[&str],
    body: &[u8],
) -> http::Response<Bytes> {
    let allowed = match rest {
        [] => Method::GET,
        ["advance" | "freeze" | "unfreeze"] => Method::POST,
        // Only a twin's clock can go back to following the global one.
        ["reset"] if twin.is_some() => Method::POST,
        _ => {
            return error_response(
                StatusCode::NOT_FOUND,
                "unknown_control_path",
                "clock endpoints are GET …/clock and POST …/clock/{advance,freeze,unfreeze} (and …/clock/reset for a twin)",
                None,
            );
        }
    };
    if method != allowed {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{method} is not allowed here; use {allowed}"),
            None,
        );
    }
    match rest {
        ["advance"] => {
            if let Err(why) = advance_clock(clock, body) {
                return bad_request("invalid_clock_request", &why);
            }
        }
        ["freeze"] => clock.freeze(),
        ["unfreeze"] => clock.unfreeze(),
        ["reset"] => clock.clear(),
        _ => {}
    }
    clock_json(clock, twin)
}

fn clock_json(clock: &crate::TwinClock, twin: Option<&str>) -> http::Response<Bytes> {
    let now = clock.now_millis();
    let mut body = json!({
        "now_millis": now,
        "now_secs": now / 1000,
        "wall_millis": crate::clock::wall_millis(),
        "frozen": clock.is_frozen(),
    });
    if let Some(twin) = twin {
        body["twin"] = json!(twin);
        body["offset_millis"] = json!(clock.offset_millis());
    }
    json_response(StatusCode::OK, &body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    /// A duration forward: `"24h"`, `"30m"`, `"90s"`.
    by: Option<String>,
    /// An absolute twin time, milliseconds since the Unix epoch.
    to: Option<u64>,
}

fn advance_clock(clock: &crate::TwinClock, body: &[u8]) -> Result<(), String> {
    let request: Advance = serde_json::from_slice(body)
        .map_err(|err| format!("expected {{\"by\": \"24h\"}} or {{\"to\": <millis>}}: {err}"))?;
    match (request.by, request.to) {
        (Some(by), None) => {
            let duration = crate::units::parse_duration(&by).map_err(|err| format!("by: {err}"))?;
            clock.advance(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        }
        (None, Some(to)) => clock.set_millis(to),
        _ => return Err("give exactly one of \"by\" and \"to\"".to_owned()),
    }
    Ok(())
}

pub(crate) fn unknown_twin(ctx: &Plane, name: &str) -> http::Response<Bytes> {
    error_response(
        StatusCode::NOT_FOUND,
        "unknown_twin",
        &format!(
            "no twin named '{name}' is loaded (loaded: {})",
            ctx.host.twin_names().join(", ")
        ),
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

pub(crate) fn twins_json(ctx: &Plane) -> serde_json::Value {
    let twins: Vec<_> = ctx
        .host
        .all_twins()
        .into_iter()
        .map(|twin| {
            let info = twin.info();
            let own = ctx
                .addrs
                .as_ref()
                .and_then(|addrs| addrs.twins.get(&info.name))
                .filter(|a| a.port() != 0)
                .map(|a| format!("http://{a}"));
            let prefixed = ctx
                .addrs
                .as_ref()
                .map(|addrs| format!("http://{}/{}", addrs.shared, info.name));
            let mut value = serde_json::to_value(info).unwrap_or_default();
            value["urls"] = json!({ "prefixed": prefixed, "own": own });
            value["state"] = json!(twin.state().usage().ok());
            value["journal"] = json!(twin.journal().len());
            value["license"] = json!(twin.license_status());
            value
        })
        .collect();
    json!({ "twins": twins })
}

/// Probes every twin (or just `only`) concurrently, each with its own
/// timeout, and reports all of them: one slow twin never hides the state of
/// the others.
async fn health(ctx: &Plane, only: Option<&str>) -> http::Response<Bytes> {
    let mut probes = JoinSet::new();
    for twin in ctx.host.all_twins() {
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
