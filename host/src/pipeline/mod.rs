//! The path of one request through one twin, in-process or from a socket:
//! the idempotency-key guard, injected faults, the call, then metrics and
//! the journal, inside the access log's `request` span. Both the HTTP
//! listeners and `Host::handle` go through [`call_twin`], so they answer
//! byte for byte alike.

pub(crate) mod exchange;

use bytes::Bytes;

use crate::twin::Twin;
use crate::{bindings, clock, journal, metrics, twin};

/// How the host answers one request to a twin.
pub(crate) enum Answer {
    Response(http::Response<Bytes>),
    /// An injected fault: close the connection without a response.
    Drop,
}

/// One request through one twin (and its injected faults), answered as HTTP
/// whatever happens, inside a `request` span (twin, method, path, then
/// status and µs) that is logged once answered: the access log.
pub(crate) async fn call_twin(
    twin: &Twin,
    parts: &http::request::Parts,
    path: &str,
    body: Bytes,
) -> Answer {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "request",
        twin = %twin.name(),
        method = %parts.method,
        path = %path,
        status = tracing::field::Empty,
        micros = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let answer = answer_twin(twin, parts, path, body, started)
        .instrument(span.clone())
        .await;
    // With the access log filtered out there is nothing to time: one clock
    // read less per request.
    if span.is_disabled() {
        return answer;
    }
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match &answer {
        Answer::Response(response) => {
            span.record("status", response.status().as_u16());
            span.record("micros", micros);
            tracing::info!(parent: &span, "answered");
        }
        Answer::Drop => {
            span.record("micros", micros);
            tracing::info!(parent: &span, "dropped by a fault");
        }
    }
    answer
}

async fn answer_twin(
    twin: &Twin,
    parts: &http::request::Parts,
    path: &str,
    body: Bytes,
    started: std::time::Instant,
) -> Answer {
    let request = exchange::to_twin_request(parts, path, body);
    // Held from acceptance to answer, so a request delayed by a fault (or
    // queued behind others) still counts as in flight.
    let (response, ending) = match twin.hold_idempotency_key(&request) {
        Err(conflict) => {
            let status = conflict.status;
            let response = exchange::from_twin_response(
                twin.name(),
                conflict,
                twin.limits().max_response_body,
            );
            (response, metrics::Ending::Answered(status))
        }
        Ok(_key) => {
            let fault = twin.faults().pick(&request.method, &request.path);
            if let Some(fault) = &fault {
                if let Some(latency) = fault.latency {
                    tokio::time::sleep(latency).await;
                }
                if fault.drop {
                    return Answer::Drop;
                }
            }
            match fault.and_then(|f| f.respond.map(|r| (f.fault, r))) {
                Some((id, (status, body, is_json))) => (
                    exchange::fault_response(id, status, body, is_json),
                    metrics::Ending::Answered(status),
                ),
                None => twin_response(twin, &request).await,
            }
        }
    };
    // One reading serves the metrics and the journal.
    let elapsed = started.elapsed();
    twin.metrics()
        .record(ending, response.status().as_u16(), elapsed);
    if twin.journal().is_enabled() {
        record(twin, request, &response, elapsed);
    }
    Answer::Response(response)
}

async fn twin_response(
    twin: &Twin,
    request: &bindings::types::Request,
) -> (http::Response<Bytes>, metrics::Ending) {
    match twin.call(request).await {
        Ok(response) => {
            let status = response.status;
            let response = exchange::from_twin_response(
                twin.name(),
                response,
                twin.limits().max_response_body,
            );
            (response, metrics::Ending::Answered(status))
        }
        Err(err) => {
            if matches!(err, twin::CallError::Unlicensed { .. }) {
                tracing::debug!(twin = twin.name(), error = %err, "request refused");
            } else {
                tracing::warn!(twin = twin.name(), error = %err, "request failed");
            }
            let ending = match err {
                twin::CallError::Deadline { .. } => metrics::Ending::Deadline,
                twin::CallError::Memory { .. } => metrics::Ending::Memory,
                twin::CallError::Busy { .. } => metrics::Ending::Busy,
                twin::CallError::Unlicensed { .. } => metrics::Ending::Answered(402),
                _ => metrics::Ending::Trap,
            };
            (exchange::call_error_response(&err), ending)
        }
    }
}

fn record(
    twin: &Twin,
    request: bindings::types::Request,
    response: &http::Response<Bytes>,
    elapsed: std::time::Duration,
) {
    let (request_body, request_cut) = journal::keep_owned(request.body);
    let (response_body, response_cut) = journal::keep_prefix(response.body());
    twin.journal().record(journal::Entry {
        seq: 0,
        at_millis: clock::wall_millis(),
        method: request.method,
        path: request.path,
        query: request.query,
        request_headers: request.headers,
        request_body,
        status: response.status().as_u16(),
        response_body,
        truncated: request_cut || response_cut,
        duration_micros: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    });
}

/// One request through `twin` with no socket: what `Host::handle` and
/// `Host::handle_in` answer.
pub(crate) async fn call_in_process(
    twin: &Twin,
    request: http::Request<Bytes>,
) -> http::Response<Bytes> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    match call_twin(twin, &parts, &path, body).await {
        Answer::Response(response) => response,
        // No connection to drop in-process: say what would have happened.
        Answer::Drop => exchange::error_response(
            http::StatusCode::BAD_GATEWAY,
            "fault_connection_dropped",
            "an injected fault dropped the connection",
            Some(twin.name()),
        ),
    }
}
