//! Messages (`/2010-04-01/Accounts/{AC}/Messages`): send, fetch, list with
//! filters and paging, redact, cancel, delete, and the media of a message.
//!
//! A message's status is a function of twin time: `queued` at creation
//! (after an instant of `accepted` when only a Messaging Service was given;
//! at `SendAt` for a scheduled one), `sending` a second later, `sent` after
//! two, and `delivered` after three, or `undelivered`/`failed` for the
//! twin's failure numbers. Nothing runs between requests, so every request
//! of an account first applies the changes that fell due
//! ([`advance_due`]) and posts one signed status callback per change.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wt_sdk::fields::{Fields, encode};
use wt_sdk::outbound::{self, OutboundRequest};
use wt_sdk::signature::{base64, hmac_sha1};
use wt_sdk::store::{self, Collection};
use wt_sdk::{Error, Request, Response, datetime, log};

use crate::API_VERSION;
use crate::wire::{
    self, Paging, account, error, is_e164, is_sid, json_resource, list_page, new_sid, now_ms,
    page_body_2010, rfc2822,
};

/// Longest body Twilio accepts, in characters.
pub const MAX_BODY_CHARS: usize = 1600;
/// Most `MediaUrl`s on one message.
pub const MAX_MEDIA: usize = 10;
/// How far ahead of now a scheduled message's `SendAt` must be, at least.
pub const MIN_SCHEDULE_MS: u64 = 15 * 60 * 1000;
/// How far ahead of now a scheduled message's `SendAt` may be, at most.
pub const MAX_SCHEDULE_MS: u64 = 35 * 24 * 3600 * 1000;
/// Price of one sent segment, in USD (negative: Twilio reports charges so).
pub const SEGMENT_PRICE_MICRO_USD: u64 = 7_900;
/// Milliseconds between the steps of a message's status progression.
pub const STEP_MS: u64 = 1000;

/// What happens to a message once it leaves the queue.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `sending` → `sent` → `delivered`.
    Delivered,
    /// `sending` → `sent` → `undelivered` with an error code.
    Undelivered,
    /// `sending` → `failed` with an error code.
    Failed,
}

/// One media item of a message.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Media {
    /// `ME…`.
    pub sid: String,
    /// The `MediaUrl` it came from.
    pub url: String,
    /// Guessed from the URL's extension.
    pub content_type: String,
}

/// A message as stored.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Message {
    /// `SM…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// The recipient.
    pub to: String,
    /// The sender, unless only a Messaging Service was given.
    pub from: Option<String>,
    /// `MG…`, when given.
    pub messaging_service_sid: Option<String>,
    /// The text; empty once redacted.
    pub body: String,
    /// The media items.
    pub media: Vec<Media>,
    /// Segments the body takes.
    pub num_segments: u32,
    /// The status as of `updated_ms`.
    pub status: String,
    /// Where the progression ends.
    pub outcome: Outcome,
    /// The failure's code, once failed or undelivered.
    pub error_code: Option<u32>,
    /// The failure's message.
    pub error_message: Option<String>,
    /// Creation, in twin milliseconds.
    pub created_ms: u64,
    /// The last change.
    pub updated_ms: u64,
    /// When it was sent.
    pub sent_ms: Option<u64>,
    /// `SendAt` of a scheduled message.
    pub send_at_ms: Option<u64>,
    /// `StatusCallback`.
    pub status_callback: Option<String>,
}

/// Statuses no progression leaves.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "delivered" | "undelivered" | "failed" | "canceled" | "received" | "read"
    )
}

impl Message {
    /// The statuses the message passes through, with when each begins.
    pub fn timeline(&self) -> Vec<(&'static str, u64)> {
        let mut steps = Vec::with_capacity(5);
        let base = match self.send_at_ms {
            Some(at) => {
                steps.push(("scheduled", self.created_ms));
                at
            }
            None => {
                // Sent through a Messaging Service alone, Twilio first
                // answers `accepted` while it picks a sender.
                if self.from.is_none() {
                    steps.push(("accepted", self.created_ms));
                }
                self.created_ms
            }
        };
        steps.push(("queued", base));
        steps.push(("sending", base + STEP_MS));
        match self.outcome {
            Outcome::Failed => steps.push(("failed", base + 2 * STEP_MS)),
            Outcome::Delivered | Outcome::Undelivered => {
                steps.push(("sent", base + 2 * STEP_MS));
                let last = if self.outcome == Outcome::Delivered {
                    "delivered"
                } else {
                    "undelivered"
                };
                steps.push((last, base + 3 * STEP_MS));
            }
        }
        steps
    }

    /// Moves the message to its status at `now`; returns the statuses it
    /// entered, in order (empty when nothing changed).
    pub fn advance(&mut self, now: u64) -> Vec<&'static str> {
        if is_final(&self.status) {
            return Vec::new();
        }
        let steps = self.timeline();
        let Some(from) = steps.iter().position(|(s, _)| *s == self.status) else {
            return Vec::new();
        };
        let mut entered = Vec::new();
        for &(status, at) in steps.iter().skip(from + 1).take_while(|(_, at)| *at <= now) {
            self.status = status.to_owned();
            self.updated_ms = at;
            match status {
                "sent" => self.sent_ms = Some(at),
                "undelivered" => {
                    self.error_code = Some(30003);
                    self.error_message = Some("Unreachable destination handset".into());
                }
                "failed" => {
                    self.error_code = Some(30008);
                    self.error_message = Some("Unknown error".into());
                }
                _ => {}
            }
            entered.push(status);
        }
        entered
    }

    /// The message as Twilio shows it.
    pub fn to_json(&self) -> Value {
        let uri = message_path(&self.account_sid, &self.sid);
        let charged = self.sent_ms.is_some();
        json!({
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.created_ms),
            "date_sent": self.sent_ms.map(rfc2822),
            "date_updated": rfc2822(self.updated_ms),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": self.media.len().to_string(),
            "num_segments": self.num_segments.to_string(),
            "price": charged.then(|| price(self.num_segments)),
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": format!("{}/Media.json", uri.trim_end_matches(".json")),
            },
            "to": self.to,
            "uri": uri,
        })
    }
}

/// `-0.00790` per segment, written as Twilio writes prices.
pub fn price(segments: u32) -> String {
    let micro = SEGMENT_PRICE_MICRO_USD * u64::from(segments);
    format!("-{}.{:05}", micro / 1_000_000, (micro % 1_000_000) / 10)
}

fn messages_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages.json")
}

fn message_path(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json")
}

fn coll() -> Collection<Message> {
    wire::coll("messages")
}

fn pending_prefix(account: &str) -> String {
    format!("acct/{account}/pending/")
}

/// GSM 03.38 characters that take one septet.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 characters that take an escape and a septet.
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How many SMS segments `body` takes: GSM-7 bodies fit 160 septets in one
/// segment and 153 per segment when split; anything else is UCS-2, 70
/// units in one and 67 per segment when split.
pub fn segments(body: &str) -> u32 {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in body.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (units, single, multi) = if gsm {
        (septets, 160, 153)
    } else {
        (body.encode_utf16().count(), 70, 67)
    };
    let n = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The address part of a channel address (`whatsapp:+1…` → `+1…`).
fn address(s: &str) -> &str {
    s.split_once(':').map_or(s, |(_, a)| a)
}

/// A valid sender: an E.164 number, a 5–6 digit short code, or an
/// alphanumeric sender ID (1–11 letters, digits and spaces, with a letter).
fn valid_sender(s: &str) -> bool {
    let a = address(s);
    is_e164(a)
        || ((5..=6).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_digit()))
        || ((1..=11).contains(&a.len())
            && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && a.bytes().any(|b| b.is_ascii_alphabetic()))
}

fn valid_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !r.contains(char::is_whitespace)
    })
}

fn content_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "vcf" => "text/vcard",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The errors Twilio's test credentials produce for magic `From` numbers.
fn magic_from(from: &str) -> Option<Error> {
    match address(from) {
        "+15005550001" => Some(invalid_from(from)),
        "+15005550007" => Some(error(
            400,
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number \
                 or short code for your account."
            ),
        )),
        "+15005550008" => Some(error(
            400,
            21611,
            format!("This 'From' number {from} has exceeded the maximum number of queued messages"),
        )),
        _ => None,
    }
}

/// The errors Twilio's test credentials produce for magic `To` numbers.
fn magic_to(to: &str, from: &str) -> Option<Error> {
    match address(to) {
        "+15005550001" => Some(invalid_to(to)),
        "+15005550002" => Some(error(
            400,
            21612,
            format!(
                "The 'To' phone number: {to}, is not currently reachable using the 'From' phone \
                 number: {from} via SMS."
            ),
        )),
        "+15005550003" => Some(error(
            400,
            21408,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the \
                 'To' number: {to}."
            ),
        )),
        "+15005550004" => Some(error(
            400,
            21610,
            "Attempt to send to unsubscribed recipient",
        )),
        "+15005550009" => Some(error(
            400,
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        )),
        _ => None,
    }
}

/// The twin's own numbers for failures that happen after acceptance (Twilio
/// has none): `+15005550005` ends `undelivered` (30003), `+15005550010`
/// ends `failed` (30008); every other number is delivered.
pub fn outcome_for(to: &str) -> Outcome {
    match address(to) {
        "+15005550005" => Outcome::Undelivered,
        "+15005550010" => Outcome::Failed,
        _ => Outcome::Delivered,
    }
}

fn invalid_to(to: &str) -> Error {
    error(400, 21211, format!("Invalid 'To' Phone Number: {to}"))
}

fn invalid_from(from: &str) -> Error {
    error(
        400,
        21212,
        format!(
            "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric \
             sender ID."
        ),
    )
}

/// `SendAt` of a `ScheduleType=fixed` request, checked as Twilio checks it.
fn schedule(f: &Fields, service: Option<&str>, now: u64) -> Result<Option<u64>, Error> {
    let Some(kind) = f.non_empty("ScheduleType") else {
        return Ok(None);
    };
    if kind != "fixed" {
        return Err(error(
            400,
            35111,
            format!("Invalid ScheduleType: {kind}. The only supported value is 'fixed'."),
        ));
    }
    if service.is_none() {
        return Err(error(
            400,
            35118,
            "MessagingServiceSid is required to schedule a message.",
        ));
    }
    let text = f
        .non_empty("SendAt")
        .ok_or_else(|| error(400, 35115, "SendAt is required to schedule a message."))?;
    let at = datetime::parse_millis(text).ok_or_else(|| {
        error(
            400,
            35114,
            format!("Scheduling does not support this timestamp: {text}"),
        )
    })?;
    if at < now + MIN_SCHEDULE_MS || at > now + MAX_SCHEDULE_MS {
        return Err(error(
            400,
            35114,
            "SendAt must be between 15 minutes and 35 days in the future.",
        ));
    }
    Ok(Some(at))
}

/// `POST …/Messages.json`.
pub fn create(req: &Request) -> Result<Response, Error> {
    let f = Fields::from_body(req);
    let now = now_ms();
    let to = f
        .non_empty("To")
        .ok_or_else(|| error(400, 21604, "A 'To' phone number is required."))?;
    let from = f.non_empty("From");
    let service = f.non_empty("MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(error(
            400,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
        ));
    }
    let body = f.get("Body").unwrap_or_default();
    let media_urls: Vec<&str> = f
        .all("MediaUrl")
        .into_iter()
        .filter(|u| !u.is_empty())
        .collect();
    check_content(body, &media_urls)?;
    check_parties(to, from, service)?;
    let status_callback = status_callback(&f)?;
    let send_at_ms = schedule(&f, service, now)?;
    let account = account();
    let message = Message {
        sid: new_sid("SM"),
        account_sid: account.clone(),
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: service.map(str::to_owned),
        body: body.to_owned(),
        media: media_items(&media_urls),
        num_segments: segments(body),
        status: initial_status(send_at_ms, from).to_owned(),
        outcome: outcome_for(to),
        error_code: None,
        error_message: None,
        created_ms: now,
        updated_ms: now,
        sent_ms: None,
        send_at_ms,
        status_callback: status_callback.map(str::to_owned),
    };
    coll().insert(&message.sid, &message)?;
    store::set(&format!("{}{}", pending_prefix(&account), message.sid), b"")?;
    Ok(Response::created(&message.to_json()))
}

/// What the message carries: a body or media (or both), the body within
/// [`MAX_BODY_CHARS`], at most [`MAX_MEDIA`] media, each a valid URL.
fn check_content(body: &str, media_urls: &[&str]) -> Result<(), Error> {
    if body.is_empty() && media_urls.is_empty() {
        return Err(error(400, 21602, "Message body is required."));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if media_urls.len() > MAX_MEDIA {
        return Err(error(
            400,
            21623,
            format!("The number of media files exceeds the limit of {MAX_MEDIA}."),
        ));
    }
    if let Some(bad) = media_urls.iter().find(|u| !valid_url(u)) {
        return Err(error(400, 21620, format!("Invalid media URL(s): {bad}")));
    }
    Ok(())
}

/// Who sends and receives: a well-formed Messaging Service sid, a valid
/// sender, an E.164 recipient, the twin's magic test numbers, and sender
/// and recipient not the same number. The order of the checks decides
/// which error a request with several faults gets.
fn check_parties(to: &str, from: Option<&str>, service: Option<&str>) -> Result<(), Error> {
    if let Some(mg) = service
        && !is_sid(mg, "MG")
    {
        return Err(error(
            400,
            21705,
            format!("The Messaging Service Sid {mg} is invalid."),
        ));
    }
    if let Some(from) = from {
        if !valid_sender(from) {
            return Err(invalid_from(from));
        }
        if let Some(err) = magic_from(from) {
            return Err(err);
        }
    }
    if !is_e164(address(to)) {
        return Err(invalid_to(to));
    }
    if let Some(err) = magic_to(to, from.unwrap_or_default()) {
        return Err(err);
    }
    if from.is_some_and(|f| address(f) == address(to)) {
        return Err(error(
            400,
            21266,
            format!("'To' and 'From' number cannot be the same: {to}"),
        ));
    }
    Ok(())
}

/// `StatusCallback`, when given, must be a valid URL.
fn status_callback(f: &Fields) -> Result<Option<&str>, Error> {
    let url = f.non_empty("StatusCallback");
    if let Some(url) = url
        && !valid_url(url)
    {
        return Err(error(
            400,
            21609,
            format!("The StatusCallback URL {url} is not a valid URL."),
        ));
    }
    Ok(url)
}

/// One media item per `MediaUrl`, in order, each with its own sid.
fn media_items(media_urls: &[&str]) -> Vec<Media> {
    media_urls
        .iter()
        .map(|u| Media {
            sid: new_sid("ME"),
            url: (*u).to_owned(),
            content_type: content_type(u).to_owned(),
        })
        .collect()
}

/// The status a new message starts in: `scheduled` for a later `SendAt`,
/// `accepted` while a Messaging Service alone picks the sender, else
/// `queued`.
fn initial_status(send_at_ms: Option<u64>, from: Option<&str>) -> &'static str {
    if send_at_ms.is_some() {
        "scheduled"
    } else if from.is_none() {
        "accepted"
    } else {
        "queued"
    }
}

/// Applies the status changes of the current account's messages that fell
/// due, posting a callback for each.
pub fn advance_due() -> Result<(), Error> {
    let account = account();
    let prefix = pending_prefix(&account);
    let pending = store::scan_prefix(&prefix, store::MAX_SCAN, false);
    if pending.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let coll = coll();
    let token = wire::signing_token(&account)?;
    for entry in pending {
        let sid = &entry.key[prefix.len()..];
        let Some(mut message) = coll.get(sid)? else {
            store::delete(&entry.key);
            continue;
        };
        let entered = message.advance(now);
        if entered.is_empty() {
            continue;
        }
        coll.put(sid, &message)?;
        if is_final(&message.status) {
            store::delete(&entry.key);
        }
        for status in entered {
            send_callback(&message, status, &token);
        }
    }
    Ok(())
}

/// `X-Twilio-Signature` of a POST to `url` with `params`: base64 of the
/// HMAC-SHA1, under the auth token, of the URL followed by every parameter
/// name and value, sorted by name.
pub fn signature(token: &str, url: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    base64(&hmac_sha1(token.as_bytes(), data.as_bytes()))
}

/// The parameters of a status callback for `message` entering `status`.
pub fn callback_params(message: &Message, status: &str) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("AccountSid", message.account_sid.clone()),
        ("ApiVersion", API_VERSION.to_owned()),
        ("MessageSid", message.sid.clone()),
        ("MessageStatus", status.to_owned()),
        ("SmsSid", message.sid.clone()),
        ("SmsStatus", status.to_owned()),
        ("To", message.to.clone()),
    ];
    if let Some(from) = &message.from {
        params.push(("From", from.clone()));
    }
    if let Some(mg) = &message.messaging_service_sid {
        params.push(("MessagingServiceSid", mg.clone()));
    }
    if matches!(status, "failed" | "undelivered")
        && let Some(code) = message.error_code
    {
        params.push(("ErrorCode", code.to_string()));
    }
    params
}

/// Queues the status callback of `message` entering `status`, if it asked
/// for callbacks. A refused destination is logged, not an API error: Twilio
/// accepts the message and fails the callback on its side too.
fn send_callback(message: &Message, status: &str, token: &str) {
    let Some(url) = &message.status_callback else {
        return;
    };
    let params = callback_params(message, status);
    let request = OutboundRequest::post(url.clone())
        .with_header("content-type", "application/x-www-form-urlencoded")
        .with_header("x-twilio-signature", signature(token, url, &params))
        .with_header("user-agent", "TwilioProxy/1.1")
        .with_body(encode(params.iter().map(|(k, v)| (*k, v.as_str()))));
    if let Err(err) = outbound::enqueue(request) {
        log::warn(format!("status callback to {url} not sent: {err}"));
    }
}

fn load(req: &Request) -> Result<Message, Error> {
    json_resource(req, "Sid")
        .and_then(|sid| coll().get(sid).transpose())
        .transpose()?
        .ok_or_else(|| wire::not_found(&req.path))
}

/// `GET …/Messages/{Sid}.json`.
pub fn fetch(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&load(req)?.to_json()))
}

/// `POST …/Messages/{Sid}.json`: `Body=""` redacts a finished message,
/// `Status=canceled` cancels one that is scheduled or not yet sending.
pub fn update(req: &Request) -> Result<Response, Error> {
    let mut message = load(req)?;
    let f = Fields::from_body(req);
    if let Some(status) = f.non_empty("Status") {
        if status != "canceled" {
            return Err(error(
                400,
                20001,
                format!("Invalid Status: {status}. The only supported value is 'canceled'."),
            ));
        }
        if !matches!(message.status.as_str(), "scheduled" | "accepted" | "queued") {
            return Err(error(
                400,
                30409,
                format!(
                    "Message {} cannot be canceled: its status is {}.",
                    message.sid, message.status
                ),
            ));
        }
        message.status = "canceled".into();
        message.updated_ms = now_ms();
        store::delete(&format!(
            "{}{}",
            pending_prefix(&message.account_sid),
            message.sid
        ));
        send_callback(
            &message,
            "canceled",
            &wire::signing_token(&message.account_sid)?,
        );
    }
    if let Some(body) = f.get("Body") {
        if !body.is_empty() {
            return Err(error(
                400,
                20001,
                "Body can only be updated to an empty string, to redact the message.",
            ));
        }
        if !is_final(&message.status) {
            return Err(in_progress(&message));
        }
        message.body.clear();
        message.updated_ms = now_ms();
    }
    coll().put(&message.sid, &message)?;
    Ok(Response::ok(&message.to_json()))
}

fn in_progress(message: &Message) -> Error {
    error(
        400,
        20009,
        format!(
            "Cannot modify message {} in state {}: it has not finished sending.",
            message.sid, message.status
        ),
    )
}

/// `DELETE …/Messages/{Sid}.json`: only once the message is finished.
pub fn delete(req: &Request) -> Result<Response, Error> {
    let message = load(req)?;
    if !is_final(&message.status) {
        return Err(in_progress(&message));
    }
    coll().remove(&message.sid)?;
    Ok(Response::no_content())
}

/// A `DateSent` filter as `[from, until)` milliseconds.
fn date_range(name: &str, value: &str) -> Result<(u64, u64), Error> {
    const DAY: u64 = 86_400_000;
    let bad = || error(400, 20001, format!("Invalid {name}: {value}"));
    let at = datetime::parse_millis(value).ok_or_else(bad)?;
    let whole_day = value.trim().len() == 10;
    let span = if whole_day { DAY } else { 1000 };
    let at = at - at % 1000;
    Ok(match name {
        "DateSent<" => (0, at + span),
        "DateSent>" => (at, u64::MAX),
        _ => (at, at + span),
    })
}

/// `GET …/Messages.json`, newest first, filtered by `To`, `From`,
/// `DateSent`, `DateSent<` (on or before) and `DateSent>` (on or after).
pub fn list(req: &Request) -> Result<Response, Error> {
    let q = Fields::from_query(req);
    let paging = Paging::from_query(&q)?;
    let mut filters: Vec<(&str, String)> = Vec::new();
    for name in ["To", "From", "DateSent", "DateSent<", "DateSent>"] {
        if let Some(v) = q.non_empty(name) {
            filters.push((name, v.to_owned()));
        }
    }
    let mut ranges = Vec::new();
    for (name, value) in &filters {
        if name.starts_with("DateSent") {
            ranges.push(date_range(name, value)?);
        }
    }
    let to = q.non_empty("To");
    let from = q.non_empty("From");
    let keep = |m: &Message| {
        to.is_none_or(|t| m.to == t)
            && from.is_none_or(|f| m.from.as_deref() == Some(f))
            && ranges
                .iter()
                .all(|(lo, hi)| m.sent_ms.is_some_and(|s| *lo <= s && s < *hi))
    };
    let listed = list_page(&coll(), &paging, true, |m| m.sid.clone(), keep)?;
    let records = listed.items.iter().map(Message::to_json).collect();
    let path = messages_path(&account());
    Ok(Response::ok(&page_body_2010(
        "messages", records, &listed, &paging, &path, &filters,
    )))
}

/// `GET …/Messages/{Sid}/Media.json`: the message's media, one page.
pub fn media(req: &Request) -> Result<Response, Error> {
    let sid = req.param("Sid").unwrap_or_default();
    let message = coll().get(sid)?.ok_or_else(|| wire::not_found(&req.path))?;
    let q = Fields::from_query(req);
    let paging = Paging::from_query(&q)?;
    let path = format!(
        "/2010-04-01/Accounts/{}/Messages/{sid}/Media.json",
        message.account_sid
    );
    let skip = usize::try_from(paging.page.saturating_mul(paging.size)).unwrap_or(usize::MAX);
    let size = paging.size as usize;
    let records: Vec<Value> = message
        .media
        .iter()
        .skip(skip)
        .take(size)
        .map(|m| {
            json!({
                "account_sid": message.account_sid,
                "content_type": m.content_type,
                "date_created": rfc2822(message.created_ms),
                "date_updated": rfc2822(message.created_ms),
                "parent_sid": message.sid,
                "sid": m.sid,
                "uri": format!(
                    "/2010-04-01/Accounts/{}/Messages/{}/Media/{}.json",
                    message.account_sid, message.sid, m.sid
                ),
            })
        })
        .collect();
    let more = message.media.len() > skip.saturating_add(size);
    let link = |page: u32| wire::page_link(&path, &[], paging.size, page, None);
    let count = u32::try_from(records.len()).unwrap_or(0);
    let start = paging.page.saturating_mul(paging.size);
    Ok(Response::ok(&json!({
        "media_list": records,
        "page": paging.page,
        "page_size": paging.size,
        "start": start,
        "end": start + count.saturating_sub(1),
        "uri": link(paging.page),
        "first_page_uri": link(0),
        "next_page_uri": more.then(|| link(paging.page + 1)),
        "previous_page_uri": (paging.page > 0).then(|| link(paging.page - 1)),
    })))
}
