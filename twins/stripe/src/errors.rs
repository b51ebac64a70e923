//! Stripe's error vocabulary and envelope.

use serde_json::Value;
use wt_sdk::{Error, Response};

/// Renders any error as Stripe does:
/// `{"error":{"type","code","message","param",…extra}}`, leaving out
/// `code` and `param` when unset. Errors that carry no Stripe `type` (the
/// router's 404 and 405, store failures) get the one Stripe uses for their
/// status.
pub fn render(err: &Error) -> Response {
    let kind = match (err.kind.as_str(), err.status) {
        ("", 401) => "authentication_error",
        ("", 402) => "card_error",
        ("", 403) => "permission_error",
        ("", 429) => "rate_limit_error",
        ("", s) if s >= 500 => "api_error",
        ("", _) => "invalid_request_error",
        (kind, _) => kind,
    };
    wt_sdk::error::render_envelope(err, Some(kind))
}

pub fn missing(param: &str) -> Error {
    Error::bad_request(format!("Missing required param: {param}."))
        .with_code("parameter_missing")
        .with_param(param)
}

pub fn unknown(param: &str) -> Error {
    Error::bad_request(format!("Received unknown parameter: {param}"))
        .with_code("parameter_unknown")
        .with_param(param)
}

pub fn invalid_integer(param: &str, value: &str) -> Error {
    Error::bad_request(format!("Invalid integer: {value}"))
        .with_code("parameter_invalid_integer")
        .with_param(param)
}

pub fn invalid_boolean(param: &str, value: &str) -> Error {
    Error::bad_request(format!("Invalid boolean: {value}"))
        .with_code("parameter_invalid_string")
        .with_param(param)
}

pub fn invalid(param: &str, message: &str) -> Error {
    Error::bad_request(message.to_owned())
        .with_code("parameter_invalid")
        .with_param(param)
}

pub fn invalid_enum(param: &str, value: &str, allowed: &[&str]) -> Error {
    Error::bad_request(format!(
        "Invalid {param}: must be one of {}",
        allowed.join(", ")
    ))
    .with_code("parameter_invalid_string")
    .with_param(param)
    .with_extra("value", Value::String(value.to_owned()))
}

/// 400 `payment_intent_unexpected_state` and friends.
pub fn unexpected_state(code: &str, message: String) -> Error {
    Error::bad_request(message).with_code(code)
}

pub fn no_key() -> Error {
    let mut e = Error::unauthorized(
        "You did not provide an API key. You need to provide your API key in the Authorization \
         header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See \
         https://stripe.com/docs/api#authentication for details, or we can help at \
         https://support.stripe.com/.",
    );
    e.kind = "invalid_request_error".into();
    e
}

pub fn bad_key(key: &str) -> Error {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let shown = match key
        .find('_')
        .and_then(|i| key[i + 1..].find('_').map(|j| i + j + 2))
    {
        Some(end) if end < key.len() => format!("{}****{tail}", &key[..end]),
        _ => format!("****{tail}"),
    };
    let mut e = Error::unauthorized(format!("Invalid API Key provided: {shown}"));
    e.kind = "invalid_request_error".into();
    e
}
