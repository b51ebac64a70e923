//! The Resend twin: a stateful fake of the Resend API that the official SDKs
//! talk to unchanged. Every `re_…` key is its own account; keys created
//! through `POST /api-keys` belong to the account that created them.
//!
//! Objects are kept as the vendor's JSON (`serde_json::Value`), as the API
//! returns them: its objects have dozens of fields, most echoed back as
//! given, and a handler edits the few it owns in place
//! (docs/architecture.md, "Twins").

use std::sync::LazyLock;

use wt_sdk::idempotency::Served;
use wt_sdk::{Error, IdempotencyConflict, Info, Method, Request, Response, Router, Twin};

pub mod api_keys;
pub mod domains;
pub mod emails;
pub mod webhooks;
pub mod wire;

/// The API the twin imitates (Resend does not version its API; this is the
/// date of the surface `resend` 2.52.0 speaks).
pub const API_VERSION: &str = "2025-01-01";

/// How long an `Idempotency-Key` is remembered (twin time), as on Resend.
pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 3600 * 1000;

pub struct Resend;

#[wt_sdk::twin]
impl Twin for Resend {
    fn describe() -> Info {
        Info {
            name: "resend".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4114,
            license_required: false,
            description:
                "Resend: emails (send, batch, schedule, cancel), domains, API keys, webhooks."
                    .into(),
            settings: Vec::new(),
            idempotency: Some(IdempotencyConflict {
                header: "idempotency-key".into(),
                status: 409,
                body: serde_json::json!({
                    "statusCode": 409,
                    "name": "concurrent_idempotent_requests",
                    "message": "Same idempotency key used while original request is still in progress.",
                }),
            }),
        }
    }

    fn handle(request: Request) -> Response {
        serve(request).unwrap_or_else(|e| e.render_with(wire::render))
    }
}

static ROUTER: LazyLock<Router> = LazyLock::new(router);

fn router() -> Router {
    Router::new()
        .on_error(wire::render)
        .post("/emails", emails::send)
        .get("/emails", emails::list)
        .post("/emails/batch", emails::batch)
        .get("/emails/{id}", emails::retrieve)
        .patch("/emails/{id}", emails::update)
        .post("/emails/{id}/cancel", emails::cancel)
        .post("/domains", domains::create)
        .get("/domains", domains::list)
        .get("/domains/{id}", domains::retrieve)
        .patch("/domains/{id}", domains::update)
        .delete("/domains/{id}", domains::delete)
        .post("/domains/{id}/verify", domains::verify)
        .post("/api-keys", api_keys::create)
        .get("/api-keys", api_keys::list)
        .patch("/api-keys/{id}", api_keys::update)
        .delete("/api-keys/{id}", api_keys::delete)
        .post("/webhooks", webhooks::create)
        .get("/webhooks", webhooks::list)
        .get("/webhooks/{id}", webhooks::retrieve)
        .patch("/webhooks/{id}", webhooks::update)
        .delete("/webhooks/{id}", webhooks::delete)
        .post(
            "/webhooks/{id}/signing-secret/rotate",
            webhooks::rotate_secret,
        )
}

/// Whether a request may carry an `Idempotency-Key` (Resend honours it on
/// sends only).
fn idempotent_route(request: &Request) -> bool {
    request.method == Method::Post && matches!(request.path.as_str(), "/emails" | "/emails/batch")
}

fn serve(request: Request) -> Result<Response, Error> {
    let caller = wire::authenticate(&request)?;
    if caller.sending_only && !idempotent_route(&request) {
        return Err(wire::error(
            401,
            "restricted_api_key",
            "This API key is restricted to only send emails.",
        ));
    }
    wt_sdk::scope::enter(&caller.account);
    // Scheduled mail whose time has passed owes its webhook events.
    webhooks::emit_due()?;
    let key = if idempotent_route(&request) {
        request
            .header("idempotency-key")
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
    } else {
        None
    };
    let Some(key) = key else {
        return Ok(ROUTER.route(request));
    };
    if key.len() > 256 {
        return Err(wire::error(
            400,
            "invalid_idempotency_key",
            "The key must be between 1-256 chars.",
        ));
    }
    let replays = wt_sdk::scope::replays().expiring_after(IDEMPOTENCY_TTL_MS);
    // Only successes are kept: a corrected retry may reuse the key.
    let keep = |response: &Response| response.is_success();
    match replays.serve(&key, request, keep, |request| ROUTER.route(request))? {
        Served::Replayed(response) | Served::Handled(response) => Ok(response),
        Served::Mismatch => Err(wire::error(
            409,
            "invalid_idempotent_request",
            "Same idempotency key used with a different request payload. Change your \
             idempotency key or payload.",
        )),
    }
}

#[cfg(test)]
mod tests;
