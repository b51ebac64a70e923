use serde_json::{Value, json};
use wt_sdk::testing::{self, Client, call};
use wt_sdk::{Request, Response, store};

use super::{LogoDev, normalize_domain};

const PK: &str = "pk_unit_key";
const SK: &str = "sk_unit_secret";

fn get(path_and_query: &str) -> Response {
    Client::<LogoDev>::new().get(path_and_query)
}

fn img(path: &str, params: &str) -> Response {
    let sep = if params.is_empty() { "" } else { "&" };
    get(&format!("{path}?token={PK}{sep}{params}"))
}

fn api(path: &str, key: &str) -> Response {
    Client::<LogoDev>::new().bearer(key).get(path)
}

/// Width and height from the image's own header.
fn dims(r: &Response) -> (u32, u32) {
    let b = &r.body;
    match r.header("content-type") {
        Some("image/png") => (
            u32::from_be_bytes(b[16..20].try_into().unwrap()),
            u32::from_be_bytes(b[20..24].try_into().unwrap()),
        ),
        Some("image/jpeg") => {
            let i = b.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
            (
                u32::from(u16::from_be_bytes([b[i + 7], b[i + 8]])),
                u32::from(u16::from_be_bytes([b[i + 5], b[i + 6]])),
            )
        }
        Some("image/webp") => {
            let bits = u32::from_le_bytes(b[21..25].try_into().unwrap());
            ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1)
        }
        other => panic!("not an image: {other:?}"),
    }
}

fn error(r: Response, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.body_text());
    let b: Value = r.json_body().unwrap();
    b["error"].as_str().unwrap().to_owned()
}

#[test]
fn defaults_are_a_128px_jpeg_with_cache_headers() {
    let r = img("/stripe.com", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(dims(&r), (128, 128));
    assert_eq!(r.header("cache-control"), Some("public, max-age=86400"));
    assert!(r.header("etag").unwrap().starts_with('"'));
}

#[test]
fn formats_sizes_and_retina() {
    for (params, mime, side) in [
        ("format=png", "image/png", 128),
        ("format=webp&size=64", "image/webp", 64),
        ("format=jpg&size=300", "image/jpeg", 300),
        ("format=PNG&size=50&retina=true", "image/png", 100),
        ("size=5000", "image/jpeg", 800),
        ("size=800&retina=true&format=png", "image/png", 1600),
        ("size=0", "image/jpeg", 1),
        ("size=abc", "image/jpeg", 128),
    ] {
        let r = img("/github.com", params);
        assert_eq!(r.status, 200, "{params}");
        assert_eq!(r.header("content-type"), Some(mime), "{params}");
        assert_eq!(dims(&r), (side, side), "{params}");
    }
    assert!(error(img("/github.com", "format=svg"), 403).contains("Enterprise"));
}

#[test]
fn same_url_same_bytes_and_every_param_changes_them() {
    let base = img("/stripe.com", "format=png");
    assert_eq!(base.body, img("/stripe.com", "format=png").body);
    let mut seen = vec![base.body.clone()];
    for params in [
        "format=png&theme=dark",
        "format=png&theme=light",
        "format=png&greyscale=true",
        "format=png&size=127",
        "format=webp",
        "format=jpg",
    ] {
        let r = img("/stripe.com", params);
        assert!(!seen.contains(&r.body), "{params} changed nothing");
        seen.push(r.body);
    }
    // Known brands differ from each other and from a monogram.
    for domain in ["/github.com", "/google.com", "/unknown-brand.io"] {
        let r = img(domain, "format=png");
        assert!(!seen.contains(&r.body), "{domain}");
        seen.push(r.body);
    }
}

#[test]
fn greyscale_pixels_are_grey() {
    let r = img("/stripe.com", "format=png&size=16&greyscale=true");
    let idat = r.body.windows(4).position(|w| w == b"IDAT").unwrap();
    let len = u32::from_be_bytes(r.body[idat - 4..idat].try_into().unwrap()) as usize;
    let raw = wt_sdk::compression::inflate(&r.body[idat + 4..idat + 4 + len]).unwrap();
    for row in raw.chunks(16 * 3 + 1) {
        for px in row[1..].chunks(3) {
            assert!(px[0] == px[1] && px[1] == px[2], "{px:?}");
        }
    }
}

#[test]
fn monograms_and_fallback_404() {
    let a = img("/acme-widgets.io", "format=png");
    assert_eq!(a.status, 200);
    assert_eq!(a.body, img("/ACME-widgets.io", "format=png").body);
    assert_eq!(a.body, img("/www.acme-widgets.io", "format=png").body);
    assert_ne!(a.body, img("/acme-gadgets.io", "format=png").body);
    assert!(error(img("/acme-widgets.io", "fallback=404"), 404).contains("acme-widgets.io"));
    assert_eq!(img("/stripe.com", "fallback=404").status, 200);
    assert_eq!(img("/acme-widgets.io", "fallback=monogram").status, 200);
}

#[test]
fn seeded_brands_replace_monograms() {
    testing::reset();
    let before = img("/acme.io", "format=png").body;
    store::set_json(
        "brands/acme.io",
        &json!({"name": "Acme", "color": "#ff0000", "shape": "ring", "ticker": "ACME"}),
    )
    .unwrap();
    let after = img("/acme.io", "format=png");
    assert_eq!(after.status, 200);
    assert_ne!(after.body, before);
    assert_eq!(img("/acme.io", "fallback=404").status, 200);
    assert_eq!(img("/ticker/acme", "format=png").body, after.body);
    assert_eq!(img("/name/ACME", "format=png").body, after.body);
    let found: Value = api("/search?q=acm", SK).json_body().unwrap();
    assert_eq!(found[0]["domain"], "acme.io");
    // A seed that is not JSON of the right shape is the twin's fault: 500.
    store::set("brands/bad.io", b"nope").unwrap();
    assert_eq!(img("/bad.io", "").status, 500);
}

#[test]
fn lookup_by_name_and_ticker() {
    assert_eq!(
        img("/name/Stripe", "format=png").body,
        img("/stripe.com", "format=png").body
    );
    assert_eq!(
        img("/ticker/msft", "format=png").body,
        img("/microsoft.com", "format=png").body
    );
    assert_eq!(img("/ticker/ZZZZ", "fallback=404").status, 404);
}

#[test]
fn etag_and_head() {
    let r = img("/nike.com", "");
    let etag = r.header("etag").unwrap().to_owned();
    let again = call::<LogoDev>(
        Request::new("GET", &format!("/nike.com?token={PK}"))
            .with_header("if-none-match", etag.clone()),
    );
    assert_eq!((again.status, again.body.len()), (304, 0));
    let head = call::<LogoDev>(Request::new("HEAD", &format!("/nike.com?token={PK}")));
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
}

#[test]
fn token_errors() {
    assert!(error(get("/stripe.com"), 401).contains("publishable key"));
    assert!(error(get("/stripe.com?token="), 401).contains("publishable key"));
    assert!(error(get("/stripe.com?token=sk_secret"), 401).contains("Secret keys"));
    assert!(error(get("/stripe.com?token=abc"), 401).contains("Invalid"));
    assert!(error(get("/stripe.com?token=pk_bad/x"), 401).contains("Invalid"));
}

#[test]
fn search_and_describe() {
    let r = api("/search?q=sh", SK);
    assert_eq!(r.status, 200);
    let found: Value = r.json_body().unwrap();
    assert_eq!(found[0]["name"], "Shopify");
    assert_eq!(found[0]["logo_url"], "http://localhost/shopify.com");
    let all: Value = api("/search?q=o", SK).json_body().unwrap();
    assert!(all.as_array().unwrap().len() <= 10);
    let exact: Value = api("/search?q=stripe&strategy=match", SK)
        .json_body()
        .unwrap();
    assert_eq!(
        exact,
        json!([{"name": "Stripe", "domain": "stripe.com", "logo_url": "http://localhost/stripe.com"}])
    );
    let none: Value = api("/search?q=strip&strategy=match", SK)
        .json_body()
        .unwrap();
    assert_eq!(none, json!([]));
    assert!(error(api("/search", SK), 400).contains("q"));
    assert!(error(call::<LogoDev>(Request::new("GET", "/search?q=x")), 401).contains("secret key"));
    assert!(error(api("/search?q=x", PK), 401).contains("not a publishable"));
    assert!(error(api("/search?q=x", "sk_"), 401).contains("Invalid"));
    let d: Value = api("/describe/stripe.com", SK).json_body().unwrap();
    assert_eq!(d["colors"][0]["hex"], "#635bff");
    assert_eq!(d["name"], "Stripe");
    assert_eq!(api("/describe/unknown.io", SK).status, 404);
}

#[test]
fn domains_normalize() {
    assert_eq!(normalize_domain("WWW.Stripe.com."), "stripe.com");
    assert_eq!(normalize_domain("https://stripe.com/about"), "stripe.com");
    assert_eq!(normalize_domain("  x.io "), "x.io");
}

#[test]
fn unknown_routes_are_json_404s() {
    assert!(!error(get("/"), 404).is_empty());
    assert_eq!(
        call::<LogoDev>(Request::new("POST", "/stripe.com")).status,
        405
    );
}
