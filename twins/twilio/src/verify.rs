//! Verify v2: services, verifications and verification checks.
//!
//! A verification's code is never in an API response (Twilio sends it by
//! SMS, call or email). The twin keeps it as plain text at
//! `acct/{AccountSid}/verify/{ServiceSid}/code/{To}` while the verification
//! is pending, so tests read it from the state export
//! (`GET /_wt/twins/twilio/state`). A verification lives ten minutes of twin
//! time and takes five checks; after that it is gone (404 20404).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wt_sdk::fields::Fields;
use wt_sdk::store::{self, Collection};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{
    self, Paging, VERIFY_BASE, account, bool_field, error, invalid_param, is_e164, iso, list_page,
    missing, new_sid, now_ms, page_body_v2,
};

/// How long a verification can be checked, in twin milliseconds.
pub const VERIFICATION_TTL_MS: u64 = 10 * 60 * 1000;
/// Checks one verification takes; the next is 429 60202.
pub const MAX_CHECKS: u32 = 5;
/// Sends (creates) for one pending verification; the next is 429 60203.
pub const MAX_SENDS: usize = 5;
/// Longest `FriendlyName` of a service.
pub const MAX_FRIENDLY_NAME: usize = 30;

/// A Verify service as stored.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Service {
    /// `VA…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// Shown in the messages the service sends.
    pub friendly_name: String,
    /// Digits in its codes, 4 to 10.
    pub code_length: u32,
    /// `LookupEnabled`.
    pub lookup_enabled: bool,
    /// `SkipSmsToLandlines`.
    pub skip_sms_to_landlines: bool,
    /// `DtmfInputRequired`.
    pub dtmf_input_required: bool,
    /// `TtsName`.
    pub tts_name: Option<String>,
    /// `Psd2Enabled`.
    pub psd2_enabled: bool,
    /// `DoNotShareWarningEnabled`.
    pub do_not_share_warning_enabled: bool,
    /// Whether verifications may bring their own `CustomCode`.
    pub custom_code_enabled: bool,
    /// Creation, twin milliseconds.
    pub created_ms: u64,
    /// Last update.
    pub updated_ms: u64,
}

impl Service {
    fn url(&self) -> String {
        format!("{VERIFY_BASE}/v2/Services/{}", self.sid)
    }

    /// The service as Twilio shows it.
    pub fn to_json(&self) -> Value {
        let url = self.url();
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "friendly_name": self.friendly_name,
            "code_length": self.code_length,
            "lookup_enabled": self.lookup_enabled,
            "psd2_enabled": self.psd2_enabled,
            "skip_sms_to_landlines": self.skip_sms_to_landlines,
            "dtmf_input_required": self.dtmf_input_required,
            "tts_name": self.tts_name,
            "do_not_share_warning_enabled": self.do_not_share_warning_enabled,
            "custom_code_enabled": self.custom_code_enabled,
            "push": {"include_date": false, "apn_credential_sid": null, "fcm_credential_sid": null},
            "totp": {"issuer": self.friendly_name, "time_step": 30, "code_length": 6, "skew": 1},
            "default_template_sid": null,
            "whatsapp": {"msg_service_sid": null, "from": null},
            "verify_event_subscription_enabled": false,
            "date_created": iso(self.created_ms),
            "date_updated": iso(self.updated_ms),
            "url": url,
            "links": {
                "verifications": format!("{url}/Verifications"),
                "verification_checks": format!("{url}/VerificationCheck"),
                "rate_limits": format!("{url}/RateLimits"),
                "messaging_configurations": format!("{url}/MessagingConfigurations"),
                "entities": format!("{url}/Entities"),
                "webhooks": format!("{url}/Webhooks"),
                "access_tokens": format!("{url}/AccessTokens"),
            },
        })
    }
}

/// One send of a verification's code.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Attempt {
    /// `VL…`.
    pub attempt_sid: String,
    /// The channel it went out on.
    pub channel: String,
    /// When, twin milliseconds.
    pub at_ms: u64,
}

/// A verification as stored (its code is kept apart; see the module docs).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Verification {
    /// `VE…`.
    pub sid: String,
    /// The service.
    pub service_sid: String,
    /// The owning account.
    pub account_sid: String,
    /// The phone number or email address being verified.
    pub to: String,
    /// `sms`, `call`, `email` or `whatsapp`.
    pub channel: String,
    /// `pending`, `approved`, `canceled`, `max_attempts_reached`.
    pub status: String,
    /// Every send of the code.
    pub attempts: Vec<Attempt>,
    /// Checks made so far.
    pub checks: u32,
    /// Creation, twin milliseconds.
    pub created_ms: u64,
    /// Last change.
    pub updated_ms: u64,
}

impl Verification {
    /// Whether the verification can still be checked at `now`.
    pub fn active(&self, now: u64) -> bool {
        self.status == "pending" && now < self.created_ms + VERIFICATION_TTL_MS
    }

    /// Whether it can be fetched at `now`: Twilio keeps verifications for
    /// their ten minutes, whatever became of them.
    pub fn visible(&self, now: u64) -> bool {
        now < self.created_ms + VERIFICATION_TTL_MS
    }

    fn url(&self) -> String {
        format!(
            "{VERIFY_BASE}/v2/Services/{}/Verifications/{}",
            self.service_sid, self.sid
        )
    }

    /// The verification as Twilio shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "sid": self.sid,
            "service_sid": self.service_sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "channel": self.channel,
            "status": self.status,
            "valid": self.status == "approved",
            "lookup": {"carrier": null},
            "amount": null,
            "payee": null,
            "send_code_attempts": self.attempts.iter().map(|a| json!({
                "attempt_sid": a.attempt_sid,
                "channel": a.channel,
                "time": iso(a.at_ms),
            })).collect::<Vec<_>>(),
            "date_created": iso(self.created_ms),
            "date_updated": iso(self.updated_ms),
            "sna": null,
            "url": self.url(),
        })
    }

    /// A verification check's answer about this verification.
    pub fn check_json(&self) -> Value {
        json!({
            "sid": self.sid,
            "service_sid": self.service_sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "channel": self.channel,
            "status": self.status,
            "valid": self.status == "approved",
            "amount": null,
            "payee": null,
            "date_created": iso(self.created_ms),
            "date_updated": iso(self.updated_ms),
            "sna_attempts_error_codes": [],
        })
    }
}

fn services() -> Collection<Service> {
    wire::coll("services")
}

fn service_prefix(service: &str) -> String {
    wt_sdk::scope::key_of(&["verify/", service, "/"])
}

fn verifications(service: &str) -> Collection<Verification> {
    Collection::with_prefix(format!("{}verifications", service_prefix(service)))
}

/// Where the pending code for `to` is kept, as plain text.
pub fn code_key(account: &str, service: &str, to: &str) -> String {
    format!("acct/{account}/verify/{service}/code/{to}")
}

fn to_key(service: &str, to: &str) -> String {
    format!("{}to/{to}", service_prefix(service))
}

/// `n` random decimal digits. Each base62 character is uniform, so keeping
/// only the digits keeps each digit uniform.
pub fn random_digits(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        out.extend(
            ids::random_base62(4 * n)
                .chars()
                .filter(char::is_ascii_digit)
                .take(n - out.len()),
        );
    }
    out
}

fn code_length(f: &Fields) -> Result<Option<u32>, Error> {
    match f.non_empty("CodeLength") {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| (4..=10).contains(n))
            .map(Some)
            .ok_or_else(|| invalid_param("CodeLength", v)),
    }
}

fn friendly_name(value: &str) -> Result<String, Error> {
    if value.chars().count() > MAX_FRIENDLY_NAME {
        return Err(invalid_param("FriendlyName", value));
    }
    Ok(value.to_owned())
}

/// Applies the optional service settings in `f` to `s`.
fn apply_settings(s: &mut Service, f: &Fields) -> Result<(), Error> {
    if let Some(n) = code_length(f)? {
        s.code_length = n;
    }
    let flags: [(&str, &mut bool); 6] = [
        ("LookupEnabled", &mut s.lookup_enabled),
        ("SkipSmsToLandlines", &mut s.skip_sms_to_landlines),
        ("DtmfInputRequired", &mut s.dtmf_input_required),
        ("Psd2Enabled", &mut s.psd2_enabled),
        (
            "DoNotShareWarningEnabled",
            &mut s.do_not_share_warning_enabled,
        ),
        ("CustomCodeEnabled", &mut s.custom_code_enabled),
    ];
    for (name, slot) in flags {
        if let Some(v) = bool_field(f, name)? {
            *slot = v;
        }
    }
    if let Some(v) = f.get("TtsName") {
        s.tts_name = (!v.is_empty()).then(|| v.to_owned());
    }
    Ok(())
}

/// `POST /v2/Services`.
pub fn create_service(req: &Request) -> Result<Response, Error> {
    let f = Fields::from_body(req);
    let name = f
        .non_empty("FriendlyName")
        .ok_or_else(|| missing("FriendlyName"))?;
    let now = now_ms();
    let mut service = Service {
        sid: new_sid("VA"),
        account_sid: account(),
        friendly_name: friendly_name(name)?,
        code_length: 6,
        lookup_enabled: false,
        skip_sms_to_landlines: false,
        dtmf_input_required: true,
        tts_name: None,
        psd2_enabled: false,
        do_not_share_warning_enabled: false,
        custom_code_enabled: false,
        created_ms: now,
        updated_ms: now,
    };
    apply_settings(&mut service, &f)?;
    services().insert(&service.sid, &service)?;
    Ok(Response::created(&service.to_json()))
}

fn load_service(req: &Request, param: &str) -> Result<Service, Error> {
    let sid = req.param(param).unwrap_or_default();
    services()
        .get(sid)?
        .ok_or_else(|| wire::not_found(&req.path))
}

/// `GET /v2/Services/{Sid}`.
pub fn fetch_service(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&load_service(req, "Sid")?.to_json()))
}

/// `POST /v2/Services/{Sid}`.
pub fn update_service(req: &Request) -> Result<Response, Error> {
    let mut service = load_service(req, "Sid")?;
    let f = Fields::from_body(req);
    if let Some(name) = f.non_empty("FriendlyName") {
        service.friendly_name = friendly_name(name)?;
    }
    apply_settings(&mut service, &f)?;
    service.updated_ms = now_ms();
    services().put(&service.sid, &service)?;
    Ok(Response::ok(&service.to_json()))
}

/// `DELETE /v2/Services/{Sid}`: the service and all its verifications.
pub fn delete_service(req: &Request) -> Result<Response, Error> {
    let service = load_service(req, "Sid")?;
    services().remove(&service.sid)?;
    let prefix = service_prefix(&service.sid);
    loop {
        let entries = store::scan_prefix(&prefix, 1000, false);
        if entries.is_empty() {
            break;
        }
        for e in entries {
            store::delete(&e.key);
        }
    }
    Ok(Response::no_content())
}

/// `GET /v2/Services`, oldest first.
pub fn list_services(req: &Request) -> Result<Response, Error> {
    let paging = Paging::from_query(&Fields::from_query(req))?;
    let listed = list_page(&services(), &paging, false, |s| s.sid.clone(), |_| true)?;
    let records = listed.items.iter().map(Service::to_json).collect();
    Ok(Response::ok(&page_body_v2(
        "services",
        records,
        &listed,
        &paging,
        VERIFY_BASE,
        "/v2/Services",
    )))
}

/// The pending verification for `to`, if one is still active; a stale one
/// is marked and its code and lookup entry removed.
fn pending_for(service: &str, to: &str, now: u64) -> Result<Option<Verification>, Error> {
    let key = to_key(service, to);
    let Some(sid) = store::get(&key) else {
        return Ok(None);
    };
    let sid = String::from_utf8_lossy(&sid).into_owned();
    let coll = verifications(service);
    match coll.get(&sid)? {
        Some(v) if v.active(now) => Ok(Some(v)),
        _ => {
            store::delete(&key);
            store::delete(&code_key(&account(), service, to));
            Ok(None)
        }
    }
}

/// Ends `v` with `status`: its code and lookup entry go.
fn finish(v: &mut Verification, status: &str, now: u64) -> Result<(), Error> {
    v.status = status.to_owned();
    v.updated_ms = now;
    verifications(&v.service_sid).put(&v.sid, v)?;
    store::delete(&to_key(&v.service_sid, &v.to));
    store::delete(&code_key(&v.account_sid, &v.service_sid, &v.to));
    Ok(())
}

/// `POST /v2/Services/{ServiceSid}/Verifications`: `To`, `Channel`, and
/// optionally `CustomCode`. A second request for a pending `To` sends the
/// same code again.
pub fn create_verification(req: &Request) -> Result<Response, Error> {
    let service = load_service(req, "ServiceSid")?;
    let f = Fields::from_body(req);
    let to = f.non_empty("To").ok_or_else(|| missing("To"))?;
    let channel = f.non_empty("Channel").ok_or_else(|| missing("Channel"))?;
    match channel {
        "sms" | "call" | "whatsapp" if !is_e164(to) => return Err(invalid_param("To", to)),
        "email" if !wt_sdk::email::is_plausible(to) => return Err(invalid_param("To", to)),
        "sms" | "call" | "whatsapp" | "email" => {}
        other => return Err(invalid_param("Channel", other)),
    }
    let custom = f.non_empty("CustomCode");
    if let Some(code) = custom
        && (!service.custom_code_enabled
            || !(4..=10).contains(&code.len())
            || !code.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid_param("CustomCode", code));
    }
    let now = now_ms();
    let attempt = Attempt {
        attempt_sid: new_sid("VL"),
        channel: channel.to_owned(),
        at_ms: now,
    };
    let coll = verifications(&service.sid);
    let code_at = code_key(&service.account_sid, &service.sid, to);
    let verification = match pending_for(&service.sid, to, now)? {
        Some(mut v) => {
            if v.attempts.len() >= MAX_SENDS {
                return Err(error(429, 60203, "Max send attempts reached"));
            }
            v.attempts.push(attempt);
            v.channel = channel.to_owned();
            v.updated_ms = now;
            coll.put(&v.sid, &v)?;
            if let Some(code) = custom {
                store::set(&code_at, code.as_bytes())?;
            }
            v
        }
        None => {
            let v = Verification {
                sid: new_sid("VE"),
                service_sid: service.sid.clone(),
                account_sid: service.account_sid.clone(),
                to: to.to_owned(),
                channel: channel.to_owned(),
                status: "pending".into(),
                attempts: vec![attempt],
                checks: 0,
                created_ms: now,
                updated_ms: now,
            };
            coll.insert(&v.sid, &v)?;
            let code = custom.map_or_else(
                || random_digits(service.code_length as usize),
                str::to_owned,
            );
            store::set(&code_at, code.as_bytes())?;
            store::set(&to_key(&service.sid, to), v.sid.as_bytes())?;
            v
        }
    };
    Ok(Response::created(&verification.to_json()))
}

/// The verification named by `{Sid}`: its `VE…` SID, or the `To` it went
/// to (Twilio accepts both).
fn load_verification(req: &Request, service: &Service, now: u64) -> Result<Verification, Error> {
    let sid = req.param("Sid").unwrap_or_default();
    let coll = verifications(&service.sid);
    let found = if wire::is_sid(sid, "VE") {
        coll.get(sid)?
    } else {
        pending_for(&service.sid, sid, now)?
    };
    found
        .filter(|v| v.visible(now))
        .ok_or_else(|| wire::not_found(&req.path))
}

/// `GET /v2/Services/{ServiceSid}/Verifications/{Sid}`.
pub fn fetch_verification(req: &Request) -> Result<Response, Error> {
    let service = load_service(req, "ServiceSid")?;
    let v = load_verification(req, &service, now_ms())?;
    Ok(Response::ok(&v.to_json()))
}

/// `POST /v2/Services/{ServiceSid}/Verifications/{Sid}`: `Status` of
/// `canceled` or `approved`, while pending.
pub fn update_verification(req: &Request) -> Result<Response, Error> {
    let service = load_service(req, "ServiceSid")?;
    let now = now_ms();
    let mut v = load_verification(req, &service, now)?;
    let f = Fields::from_body(req);
    let status = f.non_empty("Status").ok_or_else(|| missing("Status"))?;
    if !matches!(status, "canceled" | "approved") {
        return Err(invalid_param("Status", status));
    }
    if !v.active(now) {
        return Err(wire::not_found(&req.path));
    }
    finish(&mut v, status, now)?;
    Ok(Response::ok(&v.to_json()))
}

/// `POST /v2/Services/{ServiceSid}/VerificationCheck`: `Code` with `To` or
/// `VerificationSid`. A match approves; a miss stays pending; the sixth
/// check is 429 60202 and ends the verification; with nothing pending it
/// is 404 20404.
pub fn check(req: &Request) -> Result<Response, Error> {
    let service = load_service(req, "ServiceSid")?;
    let f = Fields::from_body(req);
    let code = f.non_empty("Code").ok_or_else(|| missing("Code"))?;
    let now = now_ms();
    let found = match (f.non_empty("VerificationSid"), f.non_empty("To")) {
        (Some(sid), _) => verifications(&service.sid)
            .get(sid)?
            .filter(|v| v.active(now)),
        (None, Some(to)) => pending_for(&service.sid, to, now)?,
        (None, None) => return Err(missing("To")),
    };
    let mut v = found.ok_or_else(|| wire::not_found(&req.path))?;
    if v.checks >= MAX_CHECKS {
        finish(&mut v, "max_attempts_reached", now)?;
        return Err(error(429, 60202, "Max check attempts reached"));
    }
    v.checks += 1;
    let stored = store::get(&code_key(&v.account_sid, &v.service_sid, &v.to));
    if stored.as_deref() == Some(code.as_bytes()) {
        finish(&mut v, "approved", now)?;
    } else {
        v.updated_ms = now;
        verifications(&service.sid).put(&v.sid, &v)?;
    }
    Ok(Response::ok(&v.check_json()))
}
