//! Webhook events, delivered the way Clerk delivers them: through Svix,
//! signed with `svix-id`/`svix-timestamp`/`svix-signature` ([`wt_sdk::svix`]),
//! as `{"data", "object":"event", "type", "timestamp", "instance_id"}`.
//!
//! On Clerk, endpoints are configured in the Dashboard (Svix's portal), not
//! through the Backend API, so here the operator configures one endpoint
//! for the whole twin with the `webhook-url` and `webhook-secret` settings
//! (`PUT /_wt/twins/clerk/config`). With no URL set, nothing is sent. Events
//! go through the host's outbound queue: after the request commits, retried,
//! logged.

use serde_json::{Value, json};
use wt_sdk::{Error, config, log, outbound, svix};

use crate::wire::{self, now};

/// The `webhook-url` setting: where every account's events go.
pub const URL_SETTING: &str = "webhook-url";
/// The `webhook-secret` setting: the endpoint's `whsec_…` signing secret.
pub const SECRET_SETTING: &str = "webhook-secret";

/// Sends event `kind` about `data`, if an endpoint is configured.
pub fn emit(kind: &str, data: Value) -> Result<(), Error> {
    let Some(url) = config::string(URL_SETTING).filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let secret = config::string(SECRET_SETTING).unwrap_or_default();
    if secret.is_empty() {
        log::warn(format!(
            "clerk webhook not sent: {URL_SETTING} is set but {SECRET_SETTING} is empty"
        ));
        return Ok(());
    }
    let event = json!({
        "data": data,
        "object": "event",
        "type": kind,
        "timestamp": now(),
        "instance_id": wire::instance_id()?,
    });
    let request = match svix::request(&url, &secret, event.to_string().into_bytes()) {
        Ok(r) => r,
        Err(e) => {
            // A misconfigured secret is the operator's problem, not the API
            // caller's: the call succeeds and the log says why nothing went.
            log::warn(format!("clerk webhook not sent: {SECRET_SETTING}: {e}"));
            return Ok(());
        }
    };
    if let Err(e) = outbound::enqueue(request) {
        log::warn(format!("clerk webhook not queued: {e}"));
    }
    Ok(())
}

/// The `data` of a `*.deleted` event.
pub fn deleted(object: &str, id: &str) -> Value {
    json!({"object": object, "id": id, "deleted": true})
}
