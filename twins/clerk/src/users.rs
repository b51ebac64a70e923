//! Users: create, get, list with Clerk's filters, count, update, metadata
//! merge, ban/unban, lock/unlock, delete.
//!
//! Email addresses, phone numbers and usernames are unique per account
//! (instance); an index under `acct/{a}/ident/{kind}/{value}` names the user
//! holding each, so creating or renaming checks one key.

use serde_json::{Map, Value, json};
use wt_sdk::{Error, Request, Response, datetime, store};

use crate::wire::{
    self, all, boolean, coll, deleted, error, integer, metadata, new_id, now, query_bool,
    query_list, string,
};
use crate::{organizations, sessions, webhooks};

pub const COLL: &str = "users";

/// What Clerk's dashboard shows for users without a profile image.
const DEFAULT_IMAGE: &str = "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9";

/// Fields `POST /v1/users` accepts.
const CREATE_FIELDS: &[&str] = &[
    "external_id",
    "first_name",
    "last_name",
    "locale",
    "email_address",
    "phone_number",
    "username",
    "password",
    "password_digest",
    "password_hasher",
    "skip_password_checks",
    "skip_password_requirement",
    "totp_secret",
    "backup_codes",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "delete_self_enabled",
    "legal_accepted_at",
    "skip_legal_checks",
    "skip_user_requirement",
    "create_organization_enabled",
    "create_organizations_limit",
    "created_at",
    "banned",
    "locked",
    "email_address_identification_status",
    "phone_number_identification_status",
];

/// Fields `PATCH /v1/users/{id}` accepts.
const UPDATE_FIELDS: &[&str] = &[
    "external_id",
    "first_name",
    "last_name",
    "locale",
    "primary_email_address_id",
    "notify_primary_email_address_changed",
    "primary_phone_number_id",
    "primary_web3_wallet_id",
    "profile_image_id",
    "username",
    "password",
    "password_digest",
    "password_hasher",
    "skip_password_checks",
    "sign_out_of_other_sessions",
    "totp_secret",
    "backup_codes",
    "delete_self_enabled",
    "create_organization_enabled",
    "legal_accepted_at",
    "skip_legal_checks",
    "create_organizations_limit",
    "created_at",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
];

/// Fields `order_by` may name on `GET /v1/users`.
const ORDER_FIELDS: &[&str] = &[
    "created_at",
    "updated_at",
    "email_address",
    "web3wallet",
    "first_name",
    "last_name",
    "phone_number",
    "username",
    "last_active_at",
    "last_sign_in_at",
];

/// 422 `form_param_unknown` for the first field not in `allowed`.
pub fn reject_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Error> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(wire::with_param(
            error(
                422,
                "form_param_unknown",
                "is unknown",
                format!("{k} is not a valid parameter for this request."),
            ),
            k,
        )),
        None => Ok(()),
    }
}

/// Whether `s` is an email address Clerk would take.
pub fn valid_email(s: &str) -> bool {
    wt_sdk::email::is_plausible(s)
}

/// Whether `s` is an E.164 phone number: `+` and 7 to 15 digits.
pub fn valid_phone(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// Checks a username as Clerk does (4–64 characters of letters, digits, `-`
/// and `_`) and lower-cases it.
pub fn username(raw: &str) -> Result<String, Error> {
    let len = raw.chars().count();
    if !(4..=64).contains(&len) {
        return Err(wire::with_param(
            error(
                422,
                "form_username_invalid_length",
                "Usernames must be between 4 and 64 characters long.",
                "Usernames must be between 4 and 64 characters long.",
            ),
            "username",
        ));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(wire::with_param(
            error(
                422,
                "form_username_invalid_character",
                "Usernames can only contain letters, numbers and '_' or '-'.",
                "Usernames can only contain letters, numbers and '_' or '-'.",
            ),
            "username",
        ));
    }
    Ok(raw.to_ascii_lowercase())
}

/// Checks a password's length as Clerk does (8 to 72 bytes).
fn password(p: &str) -> Result<(), Error> {
    if p.chars().count() < 8 {
        return Err(wire::with_param(
            error(
                422,
                "form_password_length_too_short",
                "Passwords must be 8 characters or more.",
                "Passwords must be 8 characters or more.",
            ),
            "password",
        ));
    }
    if p.len() > 72 {
        return Err(wire::with_param(
            error(
                422,
                "form_password_length_too_long",
                "Passwords must be less than 72 bytes.",
                "Passwords must be less than 72 bytes.",
            ),
            "password",
        ));
    }
    Ok(())
}

fn ident_key(kind: &str, value: &str) -> String {
    wire::key(&format!("ident/{kind}/{}", value.to_lowercase()))
}

/// The user holding identifier `value` of `kind` (`email`, `phone`,
/// `username`).
pub fn holder(kind: &str, value: &str) -> Option<String> {
    store::get(&ident_key(kind, value)).map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub fn claim(kind: &str, value: &str, user_id: &str) -> Result<(), Error> {
    store::set(&ident_key(kind, value), user_id.as_bytes())?;
    Ok(())
}

pub fn release(kind: &str, value: &str) {
    store::delete(&ident_key(kind, value));
}

/// 422 `form_identifier_exists` unless `value` is free (or held by
/// `except`).
pub fn ensure_free(
    kind: &str,
    value: &str,
    param: &str,
    except: Option<&str>,
) -> Result<(), Error> {
    match holder(kind, value) {
        Some(owner) if Some(owner.as_str()) != except => {
            let what = match kind {
                "email" => "email address",
                "phone" => "phone number",
                _ => "username",
            };
            let msg = format!("That {what} is taken. Please try another.");
            Err(wire::with_param(
                error(422, "form_identifier_exists", &msg, msg.clone()),
                param,
            ))
        }
        _ => Ok(()),
    }
}

/// How Clerk shows an identifier verified by a backend call.
pub fn admin_verification(object: &str) -> Value {
    json!({"object": object, "status": "verified", "strategy": "admin", "attempts": null, "expire_at": null})
}

pub fn email_object(address: &str, at: u64) -> Value {
    json!({
        "id": new_id("idn"),
        "object": "email_address",
        "email_address": address,
        "reserved": false,
        "verification": admin_verification("verification_admin"),
        "linked_to": [],
        "matches_sso_connection": false,
        "created_at": at,
        "updated_at": at,
    })
}

pub fn phone_object(number: &str, at: u64) -> Value {
    json!({
        "id": new_id("idn"),
        "object": "phone_number",
        "phone_number": number,
        "reserved_for_second_factor": false,
        "default_second_factor": false,
        "reserved": false,
        "verification": admin_verification("verification_admin"),
        "linked_to": [],
        "backup_codes": null,
        "created_at": at,
        "updated_at": at,
    })
}

/// A list of strings, or one string, as the SDK may send either.
fn strings(body: &mut Map<String, Value>, field: &str) -> Result<Vec<String>, Error> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(wire::invalid(
                    field,
                    format!("{field} must be a list of strings."),
                )),
            })
            .collect(),
        Some(_) => Err(wire::invalid(
            field,
            format!("{field} must be a list of strings."),
        )),
    }
}

/// A timestamp given as RFC 3339 text (`created_at`, `legal_accepted_at`).
fn timestamp(body: &mut Map<String, Value>, field: &str) -> Result<Option<u64>, Error> {
    match string(body, field)? {
        None => Ok(None),
        Some(s) => datetime::parse_millis(&s).map(Some).ok_or_else(|| {
            wire::invalid(
                field,
                format!("{field} must be a valid RFC 3339 date-time."),
            )
        }),
    }
}

/// The stored user named by the route, or 404.
pub fn load(id: &str) -> Result<Value, Error> {
    coll(COLL).get(id)?.ok_or_else(|| wire::not_found("User"))
}

pub fn save(user: &Value) -> Result<(), Error> {
    coll(COLL).put(user["id"].as_str().unwrap_or_default(), user)
}

/// The primary email address of a stored user, if any.
pub fn primary_email(user: &Value) -> Option<String> {
    let primary = user["primary_email_address_id"].as_str()?;
    user["email_addresses"]
        .as_array()?
        .iter()
        .find(|e| e["id"] == primary)
        .and_then(|e| e["email_address"].as_str())
        .map(str::to_owned)
}

fn set_second_factors(user: &mut Value, body: &mut Map<String, Value>) -> Result<(), Error> {
    if let Some(secret) = string(body, "totp_secret")? {
        if secret.trim().is_empty() {
            return Err(wire::invalid(
                "totp_secret",
                "totp_secret must not be empty.",
            ));
        }
        user["totp_enabled"] = json!(true);
    }
    let codes = strings(body, "backup_codes")?;
    if !codes.is_empty() {
        user["backup_code_enabled"] = json!(true);
    }
    let two_factor = user["totp_enabled"] == true || user["backup_code_enabled"] == true;
    if two_factor && user["two_factor_enabled"] != true {
        user["two_factor_enabled"] = json!(true);
        user["mfa_enabled_at"] = json!(now());
    }
    Ok(())
}

fn set_password(user: &mut Value, body: &mut Map<String, Value>) -> Result<(), Error> {
    if let Some(p) = string(body, "password")? {
        password(&p)?;
        user["password_enabled"] = json!(true);
        user["password_last_updated_at"] = json!(now());
    }
    if let Some(digest) = string(body, "password_digest")? {
        let hasher =
            string(body, "password_hasher")?.ok_or_else(|| wire::missing("password_hasher"))?;
        if digest.is_empty() || hasher.is_empty() {
            return Err(wire::invalid(
                "password_digest",
                "password_digest must not be empty.",
            ));
        }
        user["password_enabled"] = json!(true);
        user["password_last_updated_at"] = json!(now());
    }
    body.remove("skip_password_checks");
    body.remove("password_hasher");
    Ok(())
}

fn set_common(user: &mut Value, body: &mut Map<String, Value>) -> Result<(), Error> {
    for field in ["first_name", "last_name", "external_id", "locale"] {
        match body.remove(field) {
            None => {}
            Some(Value::Null) => user[field] = Value::Null,
            Some(Value::String(s)) => user[field] = json!(s),
            Some(_) => return Err(wire::invalid(field, format!("{field} must be a string."))),
        }
    }
    for field in ["delete_self_enabled", "create_organization_enabled"] {
        if let Some(b) = boolean(body, field)? {
            user[field] = json!(b);
        }
    }
    if let Some(n) = integer(body, "create_organizations_limit")? {
        user["create_organizations_limit"] = json!(n);
    }
    if let Some(at) = timestamp(body, "legal_accepted_at")? {
        user["legal_accepted_at"] = json!(at);
    }
    if let Some(at) = timestamp(body, "created_at")? {
        user["created_at"] = json!(at);
    }
    body.remove("skip_legal_checks");
    set_password(user, body)?;
    set_second_factors(user, body)
}

/// `POST /v1/users`: checks every identifier is valid and free (at least
/// one unless `skip_user_requirement`), stores the user, then claims its
/// identifiers and announces `user.created`.
pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    reject_unknown(&body, CREATE_FIELDS)?;
    let at = now();
    let id = new_id("user");
    let emails = new_emails(&mut body)?;
    let phones = new_phones(&mut body)?;
    let name = new_username(&mut body)?;
    let skip_requirement = boolean(&mut body, "skip_user_requirement")?.unwrap_or(false);
    if emails.is_empty() && phones.is_empty() && name.is_none() && !skip_requirement {
        return Err(error(
            422,
            "form_data_missing",
            "missing data",
            "At least one identifier (email_address, phone_number or username) is required.",
        ));
    }
    body.remove("skip_password_requirement");
    body.remove("email_address_identification_status");
    body.remove("phone_number_identification_status");

    let mut user = new_user(&id, at, &emails, &phones, name.as_deref());
    set_common(&mut user, &mut body)?;
    for field in ["public_metadata", "private_metadata", "unsafe_metadata"] {
        if let Some(m) = metadata(&mut body, field)? {
            user[field] = Value::Object(m);
        }
    }
    for field in ["banned", "locked"] {
        if let Some(b) = boolean(&mut body, field)? {
            user[field] = json!(b);
        }
    }
    coll(COLL).insert(&id, &user)?;
    claim_all(&id, &emails, &phones, name.as_deref())?;
    webhooks::emit("user.created", user.clone())?;
    Ok(Response::ok(&user))
}

/// `email_address` of a new user: valid addresses, no duplicates (in any
/// case), none held by another user.
fn new_emails(body: &mut Map<String, Value>) -> Result<Vec<String>, Error> {
    let emails = strings(body, "email_address")?;
    let mut seen = Vec::new();
    for e in &emails {
        if !valid_email(e) {
            return Err(wire::invalid(
                "email_address",
                "email_address must be a valid email address.",
            ));
        }
        if seen.contains(&e.to_lowercase()) {
            return Err(wire::invalid(
                "email_address",
                "email_address contains duplicates.",
            ));
        }
        seen.push(e.to_lowercase());
        ensure_free("email", e, "email_address", None)?;
    }
    Ok(emails)
}

/// `phone_number` of a new user: E.164 numbers none of which another user
/// holds.
fn new_phones(body: &mut Map<String, Value>) -> Result<Vec<String>, Error> {
    let phones = strings(body, "phone_number")?;
    for p in &phones {
        if !valid_phone(p) {
            return Err(wire::invalid(
                "phone_number",
                "phone_number must be a valid phone number according to E.164 international standard.",
            ));
        }
        ensure_free("phone", p, "phone_number", None)?;
    }
    Ok(phones)
}

/// `username` of a new user, checked, lower-cased and free.
fn new_username(body: &mut Map<String, Value>) -> Result<Option<String>, Error> {
    let name = string(body, "username")?
        .map(|u| username(&u))
        .transpose()?;
    if let Some(u) = &name {
        ensure_free("username", u, "username", None)?;
    }
    Ok(name)
}

/// A new user as Clerk shows one before the optional fields are applied:
/// the first email address and phone number are primary.
fn new_user(id: &str, at: u64, emails: &[String], phones: &[String], name: Option<&str>) -> Value {
    let email_objects: Vec<Value> = emails.iter().map(|e| email_object(e, at)).collect();
    let phone_objects: Vec<Value> = phones.iter().map(|p| phone_object(p, at)).collect();
    json!({
        "id": id,
        "object": "user",
        "external_id": null,
        "primary_email_address_id": email_objects.first().map(|e| e["id"].clone()),
        "primary_phone_number_id": phone_objects.first().map(|p| p["id"].clone()),
        "primary_web3_wallet_id": null,
        "username": name,
        "first_name": null,
        "last_name": null,
        "locale": null,
        "profile_image_url": DEFAULT_IMAGE,
        "image_url": DEFAULT_IMAGE,
        "has_image": false,
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "email_addresses": email_objects,
        "phone_numbers": phone_objects,
        "web3_wallets": [],
        "passkeys": [],
        "password_enabled": false,
        "password_last_updated_at": null,
        "two_factor_enabled": false,
        "totp_enabled": false,
        "backup_code_enabled": false,
        "mfa_enabled_at": null,
        "mfa_disabled_at": null,
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        "last_sign_in_at": null,
        "banned": false,
        "locked": false,
        "lockout_expires_in_seconds": null,
        "verification_attempts_remaining": 100,
        "updated_at": at,
        "created_at": at,
        "delete_self_enabled": true,
        "create_organization_enabled": true,
        "create_organizations_limit": null,
        "last_active_at": null,
        "legal_accepted_at": null,
    })
}

/// Files a stored user's identifiers in the uniqueness index, once the
/// user is written (a refused request claims nothing).
fn claim_all(
    id: &str,
    emails: &[String],
    phones: &[String],
    name: Option<&str>,
) -> Result<(), Error> {
    for e in emails {
        claim("email", e, id)?;
    }
    for p in phones {
        claim("phone", p, id)?;
    }
    if let Some(u) = name {
        claim("username", u, id)?;
    }
    Ok(())
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&load(wire::param(req, "user_id"))?))
}

/// The users matching the list filters of `req` (shared by list and count).
fn filtered(req: &Request) -> Result<Vec<Value>, Error> {
    let filter = UserFilter::from_query(req)?;
    let mut out = Vec::new();
    for u in all(COLL)? {
        if filter.keeps(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

/// The list filters of `GET /v1/users` (and `/v1/users/count`), read once
/// so each user is matched without re-reading the query. Exact filters
/// compare lower-cased emails and usernames; the `*_query` filters match
/// substrings of lower-cased text.
struct UserFilter {
    emails: Vec<String>,
    phones: Vec<String>,
    external: Vec<String>,
    usernames: Vec<String>,
    user_ids: Vec<String>,
    /// The members of the `organization_id`s given, if any were.
    members: Option<Vec<String>>,
    banned: Option<bool>,
    query: Option<String>,
    email_query: Option<String>,
    phone_query: Option<String>,
    username_query: Option<String>,
    name_query: Option<String>,
    /// `(field, before, ms)`: the field must be before (or after) `ms`.
    bounds: Vec<(&'static str, bool, u64)>,
}

/// The time-bound parameters: each names a field, whether the bound is an
/// upper one, and its value in Unix milliseconds.
const TIME_BOUNDS: [(&str, &str, bool); 7] = [
    ("created_at_before", "created_at", true),
    ("created_at_after", "created_at", false),
    ("last_active_at_before", "last_active_at", true),
    ("last_active_at_after", "last_active_at", false),
    ("last_active_at_since", "last_active_at", false),
    ("last_sign_in_at_before", "last_sign_in_at", true),
    ("last_sign_in_at_after", "last_sign_in_at", false),
];

impl UserFilter {
    /// Reads the filters, refusing a malformed `banned` or time bound.
    fn from_query(req: &Request) -> Result<Self, Error> {
        let lowered = |name: &str| -> Vec<String> {
            query_list(req, name)
                .into_iter()
                .map(|v| v.to_lowercase())
                .collect()
        };
        let emails = lowered("email_address");
        let phones = query_list(req, "phone_number");
        let external = query_list(req, "external_id");
        let usernames = lowered("username");
        let user_ids = query_list(req, "user_id");
        let org_ids = query_list(req, "organization_id");
        let banned = query_bool(req, "banned")?;
        let lower = |name: &str| {
            req.query_param(name)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_lowercase())
        };
        let bounds = time_bounds(req)?;
        let members = if org_ids.is_empty() {
            None
        } else {
            Some(organizations::member_ids(&org_ids)?)
        };
        Ok(UserFilter {
            emails,
            phones,
            external,
            usernames,
            user_ids,
            members,
            banned,
            query: lower("query"),
            email_query: lower("email_address_query"),
            phone_query: lower("phone_number_query"),
            username_query: lower("username_query"),
            name_query: lower("name_query"),
            bounds,
        })
    }

    /// Whether user `u` passes every filter given.
    fn keeps(&self, u: &Value) -> bool {
        let id = u["id"].as_str().unwrap_or_default();
        let ue = user_emails(u);
        let up = user_phones(u);
        let full_name = format!("{} {}", text(u, "first_name"), text(u, "last_name"));
        self.matches_exact(u, id, &ue, &up)
            && self.matches_queries(u, id, &ue, &up, &full_name)
            && self.within_bounds(u)
    }

    /// The exact-value filters: identifiers, ids, organizations, `banned`.
    fn matches_exact(&self, u: &Value, id: &str, ue: &[String], up: &[String]) -> bool {
        (self.emails.is_empty() || ue.iter().any(|e| self.emails.contains(e)))
            && (self.phones.is_empty() || up.iter().any(|p| self.phones.contains(p)))
            && (self.external.is_empty()
                || u["external_id"]
                    .as_str()
                    .is_some_and(|x| self.external.iter().any(|e| e == x)))
            && (self.usernames.is_empty() || self.usernames.contains(&text(u, "username")))
            && (self.user_ids.is_empty() || self.user_ids.iter().any(|x| x == id))
            && self
                .members
                .as_ref()
                .is_none_or(|m| m.iter().any(|x| x == id))
            && self.banned.is_none_or(|b| u["banned"] == b)
    }

    /// The substring filters; `query` matches any of id, email, phone,
    /// username, full name or external id.
    fn matches_queries(
        &self,
        u: &Value,
        id: &str,
        ue: &[String],
        up: &[String],
        full_name: &str,
    ) -> bool {
        self.email_query
            .as_ref()
            .is_none_or(|q| ue.iter().any(|e| e.contains(q.as_str())))
            && self
                .phone_query
                .as_ref()
                .is_none_or(|q| up.iter().any(|p| p.contains(q.as_str())))
            && self
                .username_query
                .as_ref()
                .is_none_or(|q| text(u, "username").contains(q.as_str()))
            && self
                .name_query
                .as_ref()
                .is_none_or(|q| full_name.contains(q.as_str()))
            && self.query.as_ref().is_none_or(|q| {
                let q = q.as_str();
                id.to_lowercase().contains(q)
                    || ue.iter().any(|e| e.contains(q))
                    || up.iter().any(|p| p.contains(q))
                    || text(u, "username").contains(q)
                    || full_name.contains(q)
                    || text(u, "external_id").contains(q)
            })
    }

    /// The time bounds: a user without the field never passes one.
    fn within_bounds(&self, u: &Value) -> bool {
        self.bounds
            .iter()
            .all(|(field, before, ms)| match u[*field].as_u64() {
                Some(t) if *before => t < *ms,
                Some(t) => t > *ms,
                None => false,
            })
    }
}

/// The time bounds given, in [`TIME_BOUNDS`] order; a bound that is not a
/// whole number of milliseconds is refused.
fn time_bounds(req: &Request) -> Result<Vec<(&'static str, bool, u64)>, Error> {
    let mut bounds = Vec::new();
    for (param, field, before) in TIME_BOUNDS {
        if let Some(v) = req.query_param(param).filter(|v| !v.is_empty()) {
            let ms: u64 = v.trim().parse().map_err(|_| {
                wire::value_invalid(
                    param,
                    format!("{param} must be a Unix timestamp in milliseconds."),
                )
            })?;
            bounds.push((field, before, ms));
        }
    }
    Ok(bounds)
}

/// A user's email addresses, lower-cased.
fn user_emails(u: &Value) -> Vec<String> {
    u["email_addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["email_address"].as_str().map(str::to_lowercase))
        .collect()
}

/// A user's phone numbers.
fn user_phones(u: &Value) -> Vec<String> {
    u["phone_numbers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["phone_number"].as_str().map(str::to_owned))
        .collect()
}

/// Text field `f` of a user, lower-cased (empty when unset).
fn text(u: &Value, f: &str) -> String {
    u[f].as_str().unwrap_or_default().to_lowercase()
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let (limit, offset) = wire::paging(req)?;
    let mut users = filtered(req)?;
    wire::order(
        req,
        &mut users,
        "-created_at",
        ORDER_FIELDS,
        |u, f| match f {
            "email_address" => primary_email(u).map_or(Value::Null, Value::String),
            "phone_number" => u["phone_numbers"][0]["phone_number"].clone(),
            "web3wallet" => Value::Null,
            other => u[other].clone(),
        },
    )?;
    Ok(Response::ok(&wire::page(users, limit, offset)))
}

pub fn count(req: &Request) -> Result<Response, Error> {
    Ok(wire::total_count(filtered(req)?.len()))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut user = load(wire::param(req, "user_id"))?;
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    let mut body = wire::body(req)?;
    reject_unknown(&body, UPDATE_FIELDS)?;
    match body.remove("username") {
        None => {}
        Some(Value::Null) => {
            if let Some(old) = user["username"].as_str() {
                release("username", old);
            }
            user["username"] = Value::Null;
        }
        Some(Value::String(raw)) => {
            let new = username(&raw)?;
            ensure_free("username", &new, "username", Some(&id))?;
            if let Some(old) = user["username"].as_str() {
                release("username", old);
            }
            claim("username", &new, &id)?;
            user["username"] = json!(new);
        }
        Some(_) => return Err(wire::invalid("username", "username must be a string.")),
    }
    for (field, list) in [
        ("primary_email_address_id", "email_addresses"),
        ("primary_phone_number_id", "phone_numbers"),
    ] {
        if let Some(target) = string(&mut body, field)? {
            let owned = user[list]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["id"] == target.as_str()));
            if !owned {
                return Err(wire::value_invalid(
                    field,
                    format!("{field} must name one of this user's identifiers."),
                ));
            }
            user[field] = json!(target);
        }
    }
    body.remove("notify_primary_email_address_changed");
    // The twin keeps no web3 wallets or uploaded images, so no id can name
    // one.
    for field in ["primary_web3_wallet_id", "profile_image_id"] {
        if string(&mut body, field)?.is_some() {
            return Err(wire::value_invalid(
                field,
                format!("{field} does not name a resource of this user."),
            ));
        }
    }
    let sign_out = boolean(&mut body, "sign_out_of_other_sessions")?.unwrap_or(false);
    let changes_password = body.contains_key("password") || body.contains_key("password_digest");
    set_common(&mut user, &mut body)?;
    for field in ["public_metadata", "private_metadata", "unsafe_metadata"] {
        if let Some(m) = metadata(&mut body, field)? {
            user[field] = Value::Object(m);
        }
    }
    user["updated_at"] = json!(now());
    save(&user)?;
    webhooks::emit("user.updated", user.clone())?;
    // Clerk signs the user out "once their password is updated": the flag
    // means nothing without a new password. The backend call has no current
    // session to spare, so every session ends.
    if sign_out && changes_password {
        sessions::revoke_all(&id)?;
    }
    Ok(Response::ok(&user))
}

/// `PATCH /v1/users/{id}/metadata`: deep-merges each given metadata object.
pub fn merge_metadata(req: &Request) -> Result<Response, Error> {
    let mut user = load(wire::param(req, "user_id"))?;
    let mut body = wire::body(req)?;
    reject_unknown(
        &body,
        &["public_metadata", "private_metadata", "unsafe_metadata"],
    )?;
    for field in ["public_metadata", "private_metadata", "unsafe_metadata"] {
        if let Some(patch) = metadata(&mut body, field)? {
            let mut target = user[field].as_object().cloned().unwrap_or_default();
            wire::deep_merge(&mut target, patch);
            user[field] = Value::Object(target);
        }
    }
    user["updated_at"] = json!(now());
    save(&user)?;
    webhooks::emit("user.updated", user.clone())?;
    Ok(Response::ok(&user))
}

fn set_flag(req: &Request, field: &str, value: bool) -> Result<Response, Error> {
    let mut user = load(wire::param(req, "user_id"))?;
    user[field] = json!(value);
    if field == "locked" {
        // An administrator's lock has no end; it lasts until unlocked.
        user["lockout_expires_in_seconds"] = Value::Null;
    }
    user["updated_at"] = json!(now());
    save(&user)?;
    webhooks::emit("user.updated", user.clone())?;
    if field == "banned" && value {
        // A banned user is signed out everywhere.
        sessions::revoke_all(user["id"].as_str().unwrap_or_default())?;
    }
    Ok(Response::ok(&user))
}

pub fn ban(req: &Request) -> Result<Response, Error> {
    set_flag(req, "banned", true)
}

pub fn unban(req: &Request) -> Result<Response, Error> {
    set_flag(req, "banned", false)
}

pub fn lock(req: &Request) -> Result<Response, Error> {
    set_flag(req, "locked", true)
}

pub fn unlock(req: &Request) -> Result<Response, Error> {
    set_flag(req, "locked", false)
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    let user = load(wire::param(req, "user_id"))?;
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    for e in user["email_addresses"].as_array().into_iter().flatten() {
        release("email", e["email_address"].as_str().unwrap_or_default());
    }
    for p in user["phone_numbers"].as_array().into_iter().flatten() {
        release("phone", p["phone_number"].as_str().unwrap_or_default());
    }
    if let Some(u) = user["username"].as_str() {
        release("username", u);
    }
    sessions::user_removed(&id)?;
    organizations::user_removed(&id)?;
    coll(COLL).remove(&id)?;
    webhooks::emit("user.deleted", webhooks::deleted("user", &id))?;
    Ok(deleted("user", &id))
}

/// Records that the user signed in now (a session was created for them).
pub fn touch_sign_in(id: &str) -> Result<(), Error> {
    coll(COLL).update(id, |u| {
        let at = now();
        u["last_sign_in_at"] = json!(at);
        u["last_active_at"] = json!(at);
    })?;
    Ok(())
}
