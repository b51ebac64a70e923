//! `/_wt/clock` and `/_wt/twins/{t}/clock`: show, advance, freeze and
//! unfreeze a world's time or one twin's own.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::bad_request;
use crate::exchange::{error_response, json_response};

/// `GET …/clock`, `POST …/clock/{advance,freeze,unfreeze,reset}`, for the
/// global clock (`twin` none) or one twin's own.
pub(super) fn clock(
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
