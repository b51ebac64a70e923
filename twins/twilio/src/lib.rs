//! The Twilio twin: a stateful fake of Twilio's Messages (2010-04-01) and
//! Verify (v2) APIs that the official SDKs talk to unchanged. Every
//! well-formed account SID is its own isolated account.
//!
//! Both APIs live on different hosts at Twilio (`api.twilio.com`,
//! `verify.twilio.com`); here they share one base URL, told apart by their
//! path prefixes (`/2010-04-01/…`, `/v2/…`).
//!
//! Objects are typed structs, rendered to the vendor's shape when answered:
//! its records have few fields, with behaviour (statuses, schedules, rules)
//! that reads best as code on types (docs/architecture.md, "Twins").

use std::sync::LazyLock;

use wt_sdk::{Error, Info, Request, Response, Router, Twin};

pub mod accounts;
pub mod messages;
pub mod verify;
pub mod wire;

/// The API the twin imitates: the 2010 REST API's own version string.
pub const API_VERSION: &str = "2010-04-01";

/// The twin; see the crate docs.
pub struct Twilio;

#[wt_sdk::twin]
impl Twin for Twilio {
    fn describe() -> Info {
        Info {
            name: "twilio".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4112,
            license_required: false,
            description: "Twilio: Messages (status progression, signed status callbacks, magic \
                          test numbers) and Verify v2."
                .into(),
            settings: Vec::new(),
            idempotency: None,
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
        .get("/2010-04-01/Accounts/{Sid}", accounts::fetch)
        .post("/2010-04-01/Accounts/{Sid}", accounts::update)
        .post(
            "/2010-04-01/Accounts/{AccountSid}/Messages.json",
            messages::create,
        )
        .get(
            "/2010-04-01/Accounts/{AccountSid}/Messages.json",
            messages::list,
        )
        .get(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
            messages::fetch,
        )
        .post(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
            messages::update,
        )
        .delete(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
            messages::delete,
        )
        .get(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}/Media.json",
            messages::media,
        )
        .post("/v2/Services", verify::create_service)
        .get("/v2/Services", verify::list_services)
        .get("/v2/Services/{Sid}", verify::fetch_service)
        .post("/v2/Services/{Sid}", verify::update_service)
        .delete("/v2/Services/{Sid}", verify::delete_service)
        .post(
            "/v2/Services/{ServiceSid}/Verifications",
            verify::create_verification,
        )
        .get(
            "/v2/Services/{ServiceSid}/Verifications/{Sid}",
            verify::fetch_verification,
        )
        .post(
            "/v2/Services/{ServiceSid}/Verifications/{Sid}",
            verify::update_verification,
        )
        .post("/v2/Services/{ServiceSid}/VerificationCheck", verify::check)
}

fn serve(request: Request) -> Result<Response, Error> {
    wt_sdk::scope::enter(&wire::authenticate(&request)?);
    // Status changes that fell due since the account's last request are
    // applied (and their callbacks sent) before anything reads a message.
    messages::advance_due()?;
    Ok(ROUTER.route(request))
}

#[cfg(test)]
mod tests;
