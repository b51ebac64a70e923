//! The logo.dev twin: `GET /{domain}?token=pk_…` answers a real,
//! deterministic image (JPEG by default, PNG or WebP) of the brand's mark,
//! or a monogram of the domain's first letter; `GET /search?q=` and
//! `GET /describe/{domain}` (secret key) answer brand data.

use std::sync::LazyLock;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wt_sdk::{Error, Info, Method, Request, Response, Router, Twin, auth};

pub mod brands;
pub mod draw;
pub mod encode;

use brands::{Brand, Theme};
use encode::Format;

/// logo.dev does not version its API; the date of the surface imitated.
pub const API_VERSION: &str = "2026-01-01";

/// Default and largest `size`, in pixels (before `retina` doubles it).
pub const DEFAULT_SIZE: u32 = 128;
/// The largest `size` logo.dev serves; larger requests get this.
pub const MAX_SIZE: u32 = 800;

/// How long clients and CDNs may keep an image: a logo changes rarely.
pub const CACHE_CONTROL: &str = "public, max-age=86400";

pub struct LogoDev;

#[wt_sdk::twin]
impl Twin for LogoDev {
    fn describe() -> Info {
        Info {
            name: "logodev".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4116,
            license_required: false,
            description: "logo.dev: deterministic logo images (JPEG, PNG, WebP), monograms, \
                          brand search."
                .into(),
            settings: Vec::new(),
            idempotency: None,
        }
    }

    fn handle(request: Request) -> Response {
        ROUTER.route(request)
    }
}

static ROUTER: LazyLock<Router> = LazyLock::new(router);

fn router() -> Router {
    Router::new()
        .on_error(render)
        .get("/search", search)
        .get("/describe/{domain}", describe_brand)
        .methods([Method::Get, Method::Head], "/name/{name}", logo_by_name)
        .methods(
            [Method::Get, Method::Head],
            "/ticker/{ticker}",
            logo_by_ticker,
        )
        .methods([Method::Get, Method::Head], "/{domain}", logo_by_domain)
}

/// Errors as `{"error": message}` with the status; the router's 404s too.
pub fn render(err: &Error) -> Response {
    Response::json(err.status, &json!({"error": err.message}))
}

fn unauthorized(message: &str) -> Error {
    Error::unauthorized(message)
}

/// Whether `key` is a key with `prefix` (`pk_`, `sk_`): the prefix, then
/// letters, digits, `_` or `-`.
fn well_formed(key: &str, prefix: &str) -> bool {
    auth::is_key_shaped(key, &[prefix], b"_-")
}

/// Image requests carry the publishable key in `token`. A secret key there
/// would leak in every page that embeds the URL, so it is refused.
fn check_publishable(request: &Request) -> Result<(), Error> {
    match request.query_param("token").filter(|t| !t.is_empty()) {
        None => Err(unauthorized(
            "A publishable key is required: add ?token=pk_… to the image URL.",
        )),
        Some(t) if well_formed(&t, "pk_") => Ok(()),
        Some(t) if t.starts_with("sk_") => Err(unauthorized(
            "Secret keys must not be used in image URLs; use your publishable key (pk_…).",
        )),
        Some(_) => Err(unauthorized("Invalid publishable key.")),
    }
}

/// The brand APIs take the secret key as `Authorization: Bearer sk_…`.
fn check_secret(request: &Request) -> Result<(), Error> {
    match auth::credentials(request) {
        Ok(Some(auth::Credentials::Bearer(k))) if well_formed(&k, "sk_") => Ok(()),
        Ok(Some(auth::Credentials::Bearer(k))) if k.starts_with("pk_") => Err(unauthorized(
            "This endpoint needs your secret key (sk_…), not a publishable key.",
        )),
        Ok(None) => Err(unauthorized(
            "A secret key is required: send Authorization: Bearer sk_….",
        )),
        _ => Err(unauthorized("Invalid secret key.")),
    }
}

/// What the query string asks the image to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Pixels per side, `retina` already applied.
    pub pixels: u32,
    /// Output format.
    pub format: Format,
    /// Colour scheme.
    pub theme: Theme,
    /// Desaturate.
    pub greyscale: bool,
    /// `fallback=404`: an unknown brand is a 404 rather than a monogram.
    pub fallback_404: bool,
}

fn flag(request: &Request, name: &str) -> bool {
    request
        .query_param(name)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

impl Options {
    /// Reads `size`, `format`, `theme`, `greyscale`, `retina` and
    /// `fallback`. Like a CDN, values it cannot read fall back to the
    /// defaults and sizes are clamped to 1–800; only `format=svg` (an
    /// Enterprise feature on logo.dev) is refused.
    pub fn from_request(request: &Request) -> Result<Options, Error> {
        let size = request
            .query_param("size")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map_or(DEFAULT_SIZE, |s| {
                u32::try_from(s.clamp(1, u64::from(MAX_SIZE))).unwrap_or(MAX_SIZE)
            });
        let pixels = if flag(request, "retina") {
            size * 2
        } else {
            size
        };
        let format = match request
            .query_param("format")
            .map(|f| f.to_ascii_lowercase())
            .as_deref()
        {
            Some("png") => Format::Png,
            Some("webp") => Format::Webp,
            Some("svg") => {
                return Err(Error::forbidden(
                    "SVG format is available on Enterprise plans only.",
                ));
            }
            _ => Format::Jpeg,
        };
        let theme = match request
            .query_param("theme")
            .map(|t| t.to_ascii_lowercase())
            .as_deref()
        {
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            _ => Theme::Auto,
        };
        Ok(Options {
            pixels,
            format,
            theme,
            greyscale: flag(request, "greyscale"),
            fallback_404: request.query_param("fallback").as_deref() == Some("404"),
        })
    }
}

/// A domain as logo.dev keys it: lower case, without a scheme, `www.`, a
/// path or a trailing dot.
pub fn normalize_domain(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let no_scheme = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = no_scheme.split('/').next().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    host.trim_end_matches('.').to_owned()
}

fn logo_by_domain(request: &Request) -> Result<Response, Error> {
    check_publishable(request)?;
    let domain = normalize_domain(request.param("domain").unwrap_or_default());
    let brand = brands::by_domain(&domain)?;
    image(request, brand, &domain)
}

fn logo_by_name(request: &Request) -> Result<Response, Error> {
    check_publishable(request)?;
    let name = request.param("name").unwrap_or_default().to_owned();
    image(request, brands::by_name(&name)?, &name)
}

fn logo_by_ticker(request: &Request) -> Result<Response, Error> {
    check_publishable(request)?;
    let ticker = request.param("ticker").unwrap_or_default().to_owned();
    image(request, brands::by_ticker(&ticker)?, &ticker)
}

/// Draws, encodes and answers the image, with `ETag`/`If-None-Match`.
fn image(request: &Request, brand: Option<Brand>, identifier: &str) -> Result<Response, Error> {
    let options = Options::from_request(request)?;
    let mut canvas = match &brand {
        Some(b) => brands::draw_brand(b, options.pixels, options.theme),
        None if options.fallback_404 => {
            return Err(Error::not_found(format!(
                "No logo found for `{identifier}`."
            )));
        }
        None => brands::draw_monogram(identifier, options.pixels, options.theme),
    };
    if options.greyscale {
        canvas.greyscale();
    }
    let bytes = encode::encode(&canvas, options.format).map_err(Error::internal)?;
    let digest = Sha256::digest(&bytes);
    let etag = format!(
        "\"{}\"",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let matches = request
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        Response::empty(304)
    } else {
        Response::bytes(200, options.format.mime(), bytes)
    };
    if request.method == Method::Head {
        response.body.clear();
    }
    Ok(response
        .with_header("cache-control", CACHE_CONTROL)
        .with_header("etag", etag))
}

/// The twin's own URL of a brand's logo (logo.dev answers
/// `https://img.logo.dev/{domain}`; the twin serves the image itself).
fn logo_url(request: &Request, domain: &str) -> String {
    format!("{}/{domain}", request.base_url())
}

/// `GET /search?q=…[&strategy=typeahead|match]` with the secret key: at most
/// 10 brands, `[{name, domain, logo_url}]`. `typeahead` (the default) finds
/// names or domains that start with, then contain, the query; `match` only
/// exact names or domains (or the domain without its suffix).
fn search(request: &Request) -> Result<Response, Error> {
    check_secret(request)?;
    let q = request
        .query_param("q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| Error::bad_request("The q parameter is required."))?;
    let exact_only = request.query_param("strategy").as_deref() == Some("match");
    let mut scored: Vec<(u8, Brand)> = Vec::new();
    for brand in brands::all()? {
        let name = brand.name.to_lowercase();
        let stem = brand
            .domain
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let score = if name == q || brand.domain == q || stem == q {
            0
        } else if exact_only {
            continue;
        } else if name.starts_with(&q) || brand.domain.starts_with(&q) {
            1
        } else if name.contains(&q) || brand.domain.contains(&q) {
            2
        } else {
            continue;
        };
        scored.push((score, brand));
    }
    scored.sort_by(|(sa, a), (sb, b)| sa.cmp(sb).then_with(|| a.name.cmp(&b.name)));
    let results: Vec<Value> = scored
        .into_iter()
        .take(10)
        .map(|(_, b)| json!({"name": b.name, "domain": b.domain, "logo_url": logo_url(request, &b.domain)}))
        .collect();
    Ok(Response::ok(&results))
}

/// `GET /describe/{domain}` with the secret key: the brand's name,
/// description, logo URL and colour; 404 for a domain the twin does not
/// know.
fn describe_brand(request: &Request) -> Result<Response, Error> {
    check_secret(request)?;
    let domain = normalize_domain(request.param("domain").unwrap_or_default());
    let brand = brands::by_domain(&domain)?
        .ok_or_else(|| Error::not_found(format!("No brand found for `{domain}`.")))?;
    let c = brand.colour;
    Ok(Response::ok(&json!({
        "name": brand.name,
        "domain": brand.domain,
        "description": brand.description,
        "logo": logo_url(request, &brand.domain),
        "ticker": brand.ticker,
        "colors": [{"r": c.0, "g": c.1, "b": c.2, "hex": c.hex()}],
    })))
}

#[cfg(test)]
mod tests;
