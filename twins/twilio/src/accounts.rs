//! The account itself (`/2010-04-01/Accounts/{Sid}.json`): what
//! `client.api.account.fetch()` reads to check credentials, and its
//! `FriendlyName`. Accounts come into being on first use, so there is no
//! create, and subaccounts are not modelled.

use serde_json::{Value, json};
use wt_sdk::fields::Fields;
use wt_sdk::store::set_json;
use wt_sdk::{Error, Request, Response};

use crate::wire::{self, AccountRecord, account, account_key, account_record, now_ms, rfc2822};

/// Twilio's name for a new account until it is renamed.
pub const DEFAULT_FRIENDLY_NAME: &str = "My first Twilio account";
/// Longest `FriendlyName` Twilio takes for an account.
pub const MAX_FRIENDLY_NAME: usize = 64;

fn to_json(sid: &str, record: &AccountRecord) -> Value {
    let uri = format!("/2010-04-01/Accounts/{sid}.json");
    let sub = |name: &str| format!("/2010-04-01/Accounts/{sid}/{name}.json");
    json!({
        "auth_token": record.auth_token,
        "date_created": rfc2822(record.created_ms),
        "date_updated": rfc2822(record.updated_ms),
        "friendly_name": record.friendly_name.as_deref().unwrap_or(DEFAULT_FRIENDLY_NAME),
        "owner_account_sid": sid,
        "sid": sid,
        "status": "active",
        "subresource_uris": {"messages": sub("Messages")},
        "type": "Full",
        "uri": uri,
    })
}

/// `GET /2010-04-01/Accounts/{Sid}.json`. Authentication already checked
/// that `{Sid}` is the caller's account.
pub fn fetch(req: &Request) -> Result<Response, Error> {
    let sid = sid(req)?;
    Ok(Response::ok(&to_json(&sid, &account_record(&sid)?)))
}

/// `POST /2010-04-01/Accounts/{Sid}.json`: `FriendlyName`.
pub fn update(req: &Request) -> Result<Response, Error> {
    let sid = sid(req)?;
    let mut record = account_record(&sid)?;
    let f = Fields::from_body(req);
    if let Some(name) = f.non_empty("FriendlyName") {
        if name.chars().count() > MAX_FRIENDLY_NAME {
            return Err(wire::error(
                400,
                20001,
                format!("FriendlyName must be at most {MAX_FRIENDLY_NAME} characters"),
            ));
        }
        record.friendly_name = Some(name.to_owned());
        record.updated_ms = now_ms();
        set_json(&account_key(&sid), &record)?;
    }
    Ok(Response::ok(&to_json(&sid, &record)))
}

fn sid(req: &Request) -> Result<String, Error> {
    wire::json_resource(req, "Sid")
        .filter(|s| *s == account())
        .map(str::to_owned)
        .ok_or_else(|| wire::not_found(&req.path))
}
