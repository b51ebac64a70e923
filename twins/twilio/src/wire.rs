//! Twilio's wire conventions: SIDs, HTTP Basic credentials and accounts,
//! the error body `{code, message, more_info, status}`, flat PascalCase
//! form fields, dates, and page-number paging with `PageToken` cursors.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wt_sdk::fields::{Fields, encode};
use wt_sdk::store::{get, get_json, set_json};
use wt_sdk::{Collection, Error, Page, Request, Response, auth, clock, datetime, ids};

/// Where the Verify API lives; its links are absolute, as Twilio's are.
pub const VERIFY_BASE: &str = "https://verify.twilio.com";
/// Most records one page may hold (`PageSize`).
pub const MAX_PAGE_SIZE: u32 = 1000;
/// `PageSize` when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most records a `Page` number may skip without a `PageToken`; deeper pages
/// must follow `next_page_uri`, which carries a cursor.
pub const MAX_PAGE_OFFSET: u32 = 10_000;

/// The current request's account SID: the scope every object of the
/// request is kept under.
pub use wt_sdk::scope::account;

/// Whether `s` is `prefix` followed by 32 hex digits: the shape of every
/// Twilio SID (`AC…`, `SM…`, `VA…`).
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new SID: `prefix` and 32 random lower-case hex digits.
pub fn new_sid(prefix: &str) -> String {
    let mut sid = String::with_capacity(34);
    sid.push_str(prefix);
    // A UUID v4 has 122 random bits in 32 hex digits (minus the dashes).
    sid.extend(ids::uuid_v4().chars().filter(|c| *c != '-'));
    sid
}

/// What the store keeps about an account: the token it authenticates with
/// (the first one seen) and the secret its callbacks are signed with.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct AccountRecord {
    /// The auth token, once the account has used Basic auth with its SID.
    pub auth_token: Option<String>,
    /// What `X-Twilio-Signature` is computed with: the auth token, or until
    /// one is seen, the secret of the first API key used.
    pub signing_token: String,
    /// When the twin first saw the account (twin milliseconds).
    #[serde(default)]
    pub created_ms: u64,
    /// When the account resource last changed.
    #[serde(default)]
    pub updated_ms: u64,
    /// Set through `POST /2010-04-01/Accounts/{Sid}.json`.
    #[serde(default)]
    pub friendly_name: Option<String>,
}

/// The account's record, or a fresh one dated now.
pub fn account_record(account: &str) -> Result<AccountRecord, Error> {
    Ok(
        get_json::<AccountRecord>(&account_key(account))?.unwrap_or_else(|| {
            let now = now_ms();
            AccountRecord {
                created_ms: now,
                updated_ms: now,
                ..AccountRecord::default()
            }
        }),
    )
}

/// What the store keeps about an API key (`SK…`): its secret and account,
/// both fixed by the first request that uses it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KeyRecord {
    /// The account the key belongs to.
    pub account: String,
    /// The key's secret.
    pub secret: String,
}

/// The store key of an account's record.
pub fn account_key(account: &str) -> String {
    format!("accounts/{account}")
}

fn key_key(sid: &str) -> String {
    format!("keys/{sid}")
}

/// The account SID in a `/2010-04-01/Accounts/{Sid}/…` path, if any.
pub fn path_account(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/2010-04-01/Accounts/")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches(".json"))
}

/// Authenticates `request` and fixes its account.
///
/// `AC…:token` is the account itself; its first token becomes the account's
/// and a different one later is refused, as a real account has one primary
/// token. `SK…:secret` is an API key: it belongs to the account named in
/// the first `/2010-04-01/Accounts/{AC}/` URL it is used with (or, used
/// first on Verify, to the account `AC` + its own 32 hex digits). The
/// account in the URL must be the authenticated one, else 404 20404.
pub fn authenticate(request: &Request) -> Result<String, Error> {
    let (user, password) = match auth::credentials(request) {
        Ok(Some(auth::Credentials::Basic { user, password })) => (user, password),
        _ => return Err(unauthenticated()),
    };
    if password.is_empty() {
        return Err(unauthenticated());
    }
    let url_account = path_account(&request.path);
    let account = if is_sid(&user, "AC") {
        let mut record = account_record(&user)?;
        match &record.auth_token {
            Some(token) if *token != password => return Err(unauthenticated()),
            Some(_) => {}
            None => {
                record.auth_token = Some(password.clone());
                record.signing_token = password;
                set_json(&account_key(&user), &record)?;
            }
        }
        user
    } else if is_sid(&user, "SK") {
        match get_json::<KeyRecord>(&key_key(&user))? {
            Some(key) if key.secret != password => return Err(unauthenticated()),
            Some(key) => key.account,
            None => {
                let account = match url_account {
                    Some(a) if is_sid(a, "AC") => a.to_owned(),
                    // Not an account: nothing to bind the key to yet.
                    Some(_) => return Err(not_found(&request.path)),
                    None => format!("AC{}", &user[2..]),
                };
                set_json(
                    &key_key(&user),
                    &KeyRecord {
                        account: account.clone(),
                        secret: password.clone(),
                    },
                )?;
                let fresh = get(&account_key(&account)).is_none();
                let mut record = account_record(&account)?;
                if fresh || record.signing_token.is_empty() {
                    record.signing_token = password;
                    set_json(&account_key(&account), &record)?;
                }
                account
            }
        }
    } else {
        return Err(unauthenticated());
    };
    if let Some(in_url) = url_account
        && in_url != account
    {
        return Err(not_found(&request.path));
    }
    Ok(account)
}

/// The token callbacks of `account` are signed with.
pub fn signing_token(account: &str) -> Result<String, Error> {
    Ok(get_json::<AccountRecord>(&account_key(account))?
        .map(|r| r.signing_token)
        .unwrap_or_default())
}

/// An error in Twilio's vocabulary: `code` is the numeric Twilio error code.
pub fn error(status: u16, code: u32, message: impl Into<String>) -> Error {
    Error::new(status, "twilio_error", message).with_code(code.to_string())
}

/// 401 20003 `Authenticate`, with the challenge header Twilio sends.
pub fn unauthenticated() -> Error {
    error(401, 20003, "Authenticate").with_header("www-authenticate", "Basic realm=\"Twilio API\"")
}

/// 404 20404 for `path`, worded as Twilio words it.
pub fn not_found(path: &str) -> Error {
    error(
        404,
        20404,
        format!("The requested resource {path} was not found"),
    )
}

/// 400 20001 for a missing required parameter (the Verify wording).
pub fn missing(name: &str) -> Error {
    error(
        400,
        20001,
        format!("Missing required parameter {name} in the post body"),
    )
}

/// 400 60200 `Invalid parameter` (Verify's code for a bad value).
pub fn invalid_param(name: &str, value: &str) -> Error {
    error(400, 60200, format!("Invalid parameter `{name}`: {value}"))
}

/// Renders any error as `{"code","message","more_info","status"}`. Errors
/// without a Twilio code (the router's 404 and 405, store failures) get the
/// code Twilio uses for their status.
pub fn render(err: &Error) -> Response {
    let code: u64 = match err.code.as_deref().and_then(|c| c.parse().ok()) {
        Some(code) => code,
        None => match err.status {
            401 => 20003,
            404 => 20404,
            405 => 20004,
            429 => 20429,
            400..=499 => 20001,
            _ => 20500,
        },
    };
    let message = if err.code.is_none() && err.status == 404 {
        // The router's own message names the method; Twilio's names the path.
        err.message
            .split_once(": ")
            .and_then(|(_, p)| p.strip_suffix(")."))
            .map_or_else(
                || err.message.clone(),
                |p| format!("The requested resource {p} was not found"),
            )
    } else {
        err.message.clone()
    };
    Response::json(
        err.status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": err.status,
        }),
    )
}

/// Twin time in milliseconds.
pub fn now_ms() -> u64 {
    clock::now_millis()
}

/// A date as the 2010 API writes it: `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc2822(ms: u64) -> String {
    datetime::format_rfc2822(ms)
}

/// A date as the v2 APIs write it: `2023-11-14T22:13:20Z`.
pub fn iso(ms: u64) -> String {
    datetime::format_secs(ms / 1000)
}

/// Whether `s` is an E.164 number: `+`, a non-zero digit, 7 to 15 digits.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A `bool` field (`true`/`false`, any case); anything else is 60200.
pub fn bool_field(f: &Fields, name: &str) -> Result<Option<bool>, Error> {
    match f.non_empty(name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(invalid_param(name, v)),
    }
}

/// A typed collection of the current account.
pub fn coll<T: Serialize + DeserializeOwned>(name: &str) -> Collection<T> {
    wt_sdk::scope::collection(name)
}

/// Which page of a list to show, from `PageSize`, `Page` and `PageToken`.
///
/// `PageToken` is `PA{sid}` (the records after that one) or `PB{sid}` (the
/// records before it), as in Twilio's own links; `Page` is the page's index,
/// which without a token also says how many records to skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// Records per page.
    pub size: u32,
    /// The page's index, echoed in the body and links.
    pub page: u32,
    /// The cursor, if any.
    pub token: Option<Cursor>,
}

/// A `PageToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// `PA{sid}`: the records after `sid`.
    After(String),
    /// `PB{sid}`: the records before `sid`.
    Before(String),
}

impl Cursor {
    fn token(&self) -> String {
        match self {
            Cursor::After(sid) => format!("PA{sid}"),
            Cursor::Before(sid) => format!("PB{sid}"),
        }
    }
}

impl Paging {
    /// Reads the paging fields of a list request's query.
    pub fn from_query(q: &Fields) -> Result<Paging, Error> {
        let number = |name: &str, default: u32| -> Result<u32, Error> {
            match q.non_empty(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| error(400, 20001, format!("Invalid {name}: {v}"))),
            }
        };
        let size = number("PageSize", DEFAULT_PAGE_SIZE)?;
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(error(
                400,
                20001,
                format!("PageSize must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let page = number("Page", 0)?;
        let token = match q.non_empty("PageToken") {
            None => None,
            Some(t) => Some(if let Some(sid) = t.strip_prefix("PA") {
                Cursor::After(sid.to_owned())
            } else if let Some(sid) = t.strip_prefix("PB") {
                Cursor::Before(sid.to_owned())
            } else {
                return Err(error(400, 20001, format!("Invalid PageToken: {t}")));
            }),
        };
        if token.is_none() && u64::from(page) * u64::from(size) > u64::from(MAX_PAGE_OFFSET) {
            return Err(error(
                400,
                20001,
                format!(
                    "Page {page} is too deep without a PageToken; follow next_page_uri instead"
                ),
            ));
        }
        Ok(Paging { size, page, token })
    }
}

/// One page of records, and what the links around it need.
#[derive(Debug)]
pub struct Listed<T> {
    /// The records, in list order.
    pub items: Vec<T>,
    /// Index of the first record in the whole list (by page arithmetic).
    pub start: u32,
    /// The cursor to the next page, if there is one.
    pub next: Option<Cursor>,
    /// The cursor to the previous page, if there is one.
    pub previous: Option<Cursor>,
}

/// Reads one page of `coll` (newest first when `newest_first`) keeping the
/// records `keep` accepts; `sid` names a record for the cursors. An unknown
/// cursor SID is 400 20001.
pub fn list_page<T: Serialize + DeserializeOwned>(
    coll: &Collection<T>,
    paging: &Paging,
    newest_first: bool,
    sid: impl Fn(&T) -> String,
    keep: impl Fn(&T) -> bool,
) -> Result<Listed<T>, Error> {
    let start = paging.page.saturating_mul(paging.size);
    let (mut items, more, skipped) = match &paging.token {
        Some(cursor) => {
            let (Cursor::After(at) | Cursor::Before(at)) = cursor;
            if !coll.contains(at) {
                return Err(error(
                    400,
                    20001,
                    format!("Invalid PageToken: {}", cursor.token()),
                ));
            }
            let page = Page {
                limit: paging.size,
                starting_after: matches!(cursor, Cursor::After(_)).then(|| at.clone()),
                ending_before: matches!(cursor, Cursor::Before(_)).then(|| at.clone()),
            };
            let listed = coll.list_where(&page, newest_first, &keep)?;
            (listed.items, listed.has_more, 0)
        }
        None => {
            let listed = coll.list_where(&Page::first(start + paging.size), newest_first, &keep)?;
            (listed.items, listed.has_more, start as usize)
        }
    };
    items.drain(..skipped.min(items.len()));
    let first = items.first().map(&sid);
    let last = items.last().map(&sid);
    let (next, previous) = match &paging.token {
        Some(Cursor::Before(_)) => (
            last.map(Cursor::After),
            first.filter(|_| more).map(Cursor::Before),
        ),
        _ => (
            last.filter(|_| more).map(Cursor::After),
            first
                .filter(|_| paging.page > 0 || paging.token.is_some())
                .map(Cursor::Before),
        ),
    };
    Ok(Listed {
        items,
        start,
        next,
        previous,
    })
}

/// A list link: `path?{filters}&PageSize=…&Page=…[&PageToken=…]`.
pub fn page_link(
    path: &str,
    filters: &[(&str, String)],
    size: u32,
    page: u32,
    token: Option<&Cursor>,
) -> String {
    let mut pairs: Vec<(&str, String)> = filters.to_vec();
    pairs.push(("PageSize", size.to_string()));
    pairs.push(("Page", page.to_string()));
    if let Some(t) = token {
        pairs.push(("PageToken", t.token()));
    }
    format!("{path}?{}", encode(pairs))
}

/// The 2010 API's list body: `{records_key: [...], page, page_size, start,
/// end, uri, first_page_uri, next_page_uri, previous_page_uri}`, links
/// relative to the API host.
pub fn page_body_2010<T>(
    key: &str,
    records: Vec<Value>,
    listed: &Listed<T>,
    paging: &Paging,
    path: &str,
    filters: &[(&str, String)],
) -> Value {
    let link =
        |page: u32, token: Option<&Cursor>| page_link(path, filters, paging.size, page, token);
    let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
    json!({
        key: records,
        "page": paging.page,
        "page_size": paging.size,
        "start": listed.start,
        "end": listed.start + count.saturating_sub(1),
        "uri": link(paging.page, paging.token.as_ref()),
        "first_page_uri": link(0, None),
        "next_page_uri": listed.next.as_ref().map(|c| link(paging.page + 1, Some(c))),
        "previous_page_uri": listed
            .previous
            .as_ref()
            .map(|c| link(paging.page.saturating_sub(1), Some(c))),
    })
}

/// The v2 APIs' list body: `{records_key: [...], meta: {page, page_size,
/// first_page_url, previous_page_url, url, next_page_url, key}}`, links
/// absolute under `base`.
pub fn page_body_v2<T>(
    key: &str,
    records: Vec<Value>,
    listed: &Listed<T>,
    paging: &Paging,
    base: &str,
    path: &str,
) -> Value {
    let link = |page: u32, token: Option<&Cursor>| {
        format!("{base}{}", page_link(path, &[], paging.size, page, token))
    };
    json!({
        key: records,
        "meta": {
            "page": paging.page,
            "page_size": paging.size,
            "first_page_url": link(0, None),
            "previous_page_url": listed
                .previous
                .as_ref()
                .map(|c| link(paging.page.saturating_sub(1), Some(c))),
            "url": link(paging.page, paging.token.as_ref()),
            "next_page_url": listed.next.as_ref().map(|c| link(paging.page + 1, Some(c))),
            "key": key,
        },
    })
}

/// A path parameter naming a `.json` resource (`SM….json`) without the
/// suffix; `None` when the suffix is missing.
pub fn json_resource<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.param(name).and_then(|p| p.strip_suffix(".json"))
}
