//! `GET`/`PUT /_wt/twins/{t}/state`: a twin's whole state as JSON, out and
//! back in, exactly.

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{bad_request, host_error};
use crate::exchange::json_response;
use crate::twin::Twin;

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

pub(super) async fn export_state(twin: &Twin) -> http::Response<Bytes> {
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
        &json!({ "twin": twin.name(), "usage": twin.state().usage().ok(), "entries": entries }),
    )
}

pub(super) async fn import_state(twin: &Twin, body: &[u8]) -> http::Response<Bytes> {
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
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({ "twin": twin.name(), "imported": count }),
        ),
        Err(err) => host_error(&err.into()),
    }
}
