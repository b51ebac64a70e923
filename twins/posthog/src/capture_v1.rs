//! Capture v1, `POST /i/v1/analytics/events`: the newer ingestion protocol
//! the SDK speaks with `capture_mode="v1"`. Bearer-authenticated, strictly
//! typed events, and a per-event answer `{"results": {uuid: {"result"}}}`
//! so a client resends only what failed. Accepted events are stored exactly
//! like `/batch/` ones.

use serde_json::{Map, Value, json};
use wt_sdk::{Error, Request, Response, auth, clock, compression, datetime, ids};

use crate::ingest::{self, store_event};
use crate::wire::{self, invalid_project_key, missing_project_key, project_for_key};

/// The options a v1 event may carry, and the legacy property each stands
/// for (so the rest of ingestion treats both protocols alike).
const OPTIONS: [(&str, &str); 4] = [
    ("cookieless_mode", "$cookieless_mode"),
    ("disable_skew_correction", "$ignore_sent_at"),
    ("product_tour_id", "$product_tour_id"),
    ("process_person_profile", "$process_person_profile"),
];

fn bad(status: u16, code: &str, detail: impl Into<String>) -> Error {
    let kind = if status == 401 {
        "authentication_error"
    } else {
        "validation_error"
    };
    wire::error(status, kind, code, detail)
}

/// `POST /i/v1/analytics/events`.
pub fn capture(request: &Request) -> Result<Response, Error> {
    let key = match auth::credentials(request) {
        Ok(Some(auth::Credentials::Bearer(k))) => k,
        Ok(None) => return Err(missing_project_key()),
        _ => return Err(invalid_project_key()),
    };
    let project = project_for_key(&key)?;
    let lib = request
        .header("posthog-sdk-info")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad(
                400,
                "missing_sdk_info",
                "The PostHog-Sdk-Info header is required.",
            )
        })?
        .to_owned();
    let body = compression::decoded_body(request).map_err(|e| match e {
        compression::DecodeError::Unsupported(enc) => bad(
            415,
            "unsupported_encoding",
            format!("Content-Encoding `{enc}` is not supported."),
        ),
        other => bad(
            400,
            "invalid_payload",
            format!("Malformed request data: {other}"),
        ),
    })?;
    let doc: Value = serde_json::from_slice(&body).map_err(|e| {
        bad(
            400,
            "invalid_payload",
            format!("Malformed request data: {e}"),
        )
    })?;
    let batch = doc
        .get("batch")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(400, "invalid_payload", "`batch` must be a list of events."))?;
    // Skew correction measures against the batch's creation time, which the
    // SDK holds stable across retries.
    let created_at = doc
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(datetime::parse_millis)
        .ok_or_else(|| {
            bad(
                400,
                "invalid_payload",
                "`created_at` must be an RFC 3339 timestamp.",
            )
        })?;
    let mut uuids = Vec::with_capacity(batch.len());
    for event in batch {
        let uuid = event
            .get("uuid")
            .and_then(Value::as_str)
            .filter(|u| ids::is_uuid(u))
            .ok_or_else(|| bad(400, "invalid_payload", "Every event needs a valid `uuid`."))?;
        uuids.push(uuid.to_ascii_lowercase());
    }
    let now = clock::now_millis();
    let (lib_name, lib_version) = lib.split_once('/').unwrap_or((lib.as_str(), ""));
    let mut results = Map::new();
    for (event, uuid) in batch.iter().zip(uuids) {
        let outcome = match to_legacy(event, lib_name, lib_version) {
            Err(details) => json!({"result": "drop", "details": details}),
            Ok(legacy) => match ingest::normalize(&legacy, Some(created_at), now) {
                Err(e) => json!({"result": "drop", "details": e.message}),
                Ok(normalized) => {
                    store_event(&project, normalized)?;
                    json!({"result": "ok"})
                }
            },
        };
        results.insert(uuid, outcome);
    }
    Ok(Response::ok(&json!({"results": results})))
}

/// A v1 event as a legacy one: options and `session_id`/`window_id` become
/// the `$`-properties they stand for, and the SDK from `PostHog-Sdk-Info`
/// becomes `$lib`/`$lib_version`. `Err` carries why the event is dropped.
fn to_legacy(event: &Value, lib: &str, version: &str) -> Result<Map<String, Value>, String> {
    let event = event.as_object().ok_or("The event is not an object.")?;
    let timestamp = event
        .get("timestamp")
        .and_then(Value::as_str)
        .filter(|t| datetime::parse_millis(t).is_some() && t.contains('T'))
        .ok_or("`timestamp` must be an RFC 3339 timestamp.")?;
    let mut properties = match event.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err("`properties` must be an object.".into()),
    };
    match event.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(options)) => {
            for (option, property) in OPTIONS {
                if let Some(v) = options.get(option) {
                    properties.insert(property.to_owned(), v.clone());
                }
            }
        }
        Some(_) => return Err("`options` must be an object.".into()),
    }
    for (field, property) in [("session_id", "$session_id"), ("window_id", "$window_id")] {
        if let Some(v) = event.get(field).and_then(Value::as_str) {
            properties.insert(property.to_owned(), Value::String(v.to_owned()));
        }
    }
    properties.insert("$lib".into(), Value::String(lib.to_owned()));
    properties.insert("$lib_version".into(), Value::String(version.to_owned()));
    let mut legacy = Map::new();
    for field in ["event", "uuid", "distinct_id"] {
        if let Some(v) = event.get(field) {
            legacy.insert(field.to_owned(), v.clone());
        }
    }
    legacy.insert("timestamp".into(), Value::String(timestamp.to_owned()));
    legacy.insert("properties".into(), Value::Object(properties));
    Ok(legacy)
}
