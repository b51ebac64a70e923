//! The Clerk twin: a stateful fake of Clerk's Backend API that the official
//! SDKs talk to unchanged. Every `sk_test_…`/`sk_live_…` key is its own
//! isolated account (a Clerk instance), with its own users, sessions,
//! organizations, invitations and token signing key.
//!
//! Objects are kept as the vendor's JSON (`serde_json::Value`), as the API
//! returns them: its objects have dozens of fields, most echoed back as
//! given, and a handler edits the few it owns in place
//! (docs/architecture.md, "Twins").

// Object literals are big `json!` trees.
#![recursion_limit = "256"]

use std::sync::LazyLock;

use wt_sdk::{Error, Info, Request, Response, Router, Setting, Twin};

pub mod identifiers;
pub mod invitations;
pub mod jwt;
pub mod jwt_templates;
pub mod organizations;
pub mod sessions;
pub mod sign_in_tokens;
pub mod users;
pub mod webhooks;
pub mod wire;

/// The Backend API version the twin imitates: the `Clerk-API-Version`
/// header `clerk-backend-api` 7.0.0 sends on every request (paths stay
/// under `/v1`).
pub const API_VERSION: &str = "2025-11-10";

pub struct Clerk;

#[wt_sdk::twin]
impl Twin for Clerk {
    fn describe() -> Info {
        Info {
            name: "clerk".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4113,
            license_required: false,
            description: "Clerk Backend API: users, sessions and RS256 session tokens with JWKS, \
                          JWT templates, sign-in tokens, organizations and memberships, invitations, webhooks."
                .into(),
            settings: vec![
                Setting::new(
                    "frontend-api",
                    sessions::DEFAULT_ISSUER,
                    "The Frontend API URL: session tokens' `iss`, and the base of ticket URLs.",
                ),
                Setting::new(
                    "authorized-party",
                    sessions::DEFAULT_AZP,
                    "The `azp` claim of session tokens: the origin of the app signing in.",
                ),
                Setting::new(
                    webhooks::URL_SETTING,
                    "",
                    "Where every account's webhook events are sent (empty: none are).",
                ),
                Setting::new(
                    webhooks::SECRET_SETTING,
                    "",
                    "The `whsec_…` secret webhook events are signed with, the Svix way.",
                ),
            ],
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
        .get("/v1/jwks", jwt::jwks)
        .post("/v1/users", users::create)
        .get("/v1/users", users::list)
        .get("/v1/users/count", users::count)
        .get("/v1/users/{user_id}", users::retrieve)
        .patch("/v1/users/{user_id}", users::update)
        .delete("/v1/users/{user_id}", users::delete)
        .patch("/v1/users/{user_id}/metadata", users::merge_metadata)
        .post("/v1/users/{user_id}/ban", users::ban)
        .post("/v1/users/{user_id}/unban", users::unban)
        .post("/v1/users/{user_id}/lock", users::lock)
        .post("/v1/users/{user_id}/unlock", users::unlock)
        .get(
            "/v1/users/{user_id}/organization_memberships",
            organizations::list_user_memberships,
        )
        .post("/v1/email_addresses", identifiers::create_email)
        .get(
            "/v1/email_addresses/{email_address_id}",
            identifiers::retrieve_email,
        )
        .patch(
            "/v1/email_addresses/{email_address_id}",
            identifiers::update_email,
        )
        .delete(
            "/v1/email_addresses/{email_address_id}",
            identifiers::delete_email,
        )
        .post("/v1/phone_numbers", identifiers::create_phone)
        .get(
            "/v1/phone_numbers/{phone_number_id}",
            identifiers::retrieve_phone,
        )
        .patch(
            "/v1/phone_numbers/{phone_number_id}",
            identifiers::update_phone,
        )
        .delete(
            "/v1/phone_numbers/{phone_number_id}",
            identifiers::delete_phone,
        )
        .post("/v1/sessions", sessions::create)
        .get("/v1/sessions", sessions::list)
        .get("/v1/sessions/{session_id}", sessions::retrieve)
        .post("/v1/sessions/{session_id}/revoke", sessions::revoke)
        .post("/v1/sessions/{session_id}/tokens", sessions::create_token)
        .post(
            "/v1/sessions/{session_id}/tokens/{template_name}",
            sessions::create_token_from_template,
        )
        .post("/v1/jwt_templates", jwt_templates::create)
        .get("/v1/jwt_templates", jwt_templates::list)
        .get("/v1/jwt_templates/{template_id}", jwt_templates::retrieve)
        .patch("/v1/jwt_templates/{template_id}", jwt_templates::update)
        .delete("/v1/jwt_templates/{template_id}", jwt_templates::delete)
        .post("/v1/sign_in_tokens", sign_in_tokens::create)
        .post(
            "/v1/sign_in_tokens/{sign_in_token_id}/revoke",
            sign_in_tokens::revoke,
        )
        .post("/v1/organizations", organizations::create)
        .get("/v1/organizations", organizations::list)
        .get(
            "/v1/organizations/{organization_id}",
            organizations::retrieve,
        )
        .patch("/v1/organizations/{organization_id}", organizations::update)
        .delete("/v1/organizations/{organization_id}", organizations::delete)
        .patch(
            "/v1/organizations/{organization_id}/metadata",
            organizations::merge_metadata,
        )
        .post(
            "/v1/organizations/{organization_id}/memberships",
            organizations::create_membership,
        )
        .get(
            "/v1/organizations/{organization_id}/memberships",
            organizations::list_memberships,
        )
        .patch(
            "/v1/organizations/{organization_id}/memberships/{user_id}",
            organizations::update_membership,
        )
        .delete(
            "/v1/organizations/{organization_id}/memberships/{user_id}",
            organizations::delete_membership,
        )
        .patch(
            "/v1/organizations/{organization_id}/memberships/{user_id}/metadata",
            organizations::merge_membership_metadata,
        )
        .post("/v1/invitations", invitations::create)
        .get("/v1/invitations", invitations::list)
        .post(
            "/v1/invitations/{invitation_id}/revoke",
            invitations::revoke,
        )
}

fn serve(request: Request) -> Result<Response, Error> {
    let account = wire::authenticate(&request)?;
    wt_sdk::scope::enter(&account);
    Ok(ROUTER.route(request))
}

#[cfg(test)]
mod tests;
