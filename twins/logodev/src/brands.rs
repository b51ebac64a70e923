//! The brands the twin knows: a small built-in table plus any a test seeds
//! into the store, and how each one (or an unknown domain's monogram) is
//! drawn.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wt_sdk::Error;
use wt_sdk::store::{get_json, scan_prefix};

use crate::draw::{Canvas, Rgb, Shape};

/// A known brand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    /// The brand's domain, lower case.
    pub domain: String,
    /// Display name.
    pub name: String,
    /// Stock ticker, when listed.
    pub ticker: Option<String>,
    /// Brand colour.
    pub colour: Rgb,
    /// The mark it is drawn with.
    pub shape: Shape,
    /// One line about the brand (for `/describe`).
    pub description: String,
}

/// The built-in table: `(domain, name, ticker, colour, shape, description)`.
const BUILT_IN: &[(&str, &str, &str, &str, Shape, &str)] = &[
    (
        "stripe.com",
        "Stripe",
        "",
        "#635bff",
        Shape::Stripes,
        "Financial infrastructure for the internet.",
    ),
    (
        "github.com",
        "GitHub",
        "",
        "#181717",
        Shape::Circle,
        "Where software is built.",
    ),
    (
        "google.com",
        "Google",
        "GOOGL",
        "#4285f4",
        Shape::Ring,
        "Search, ads, cloud and devices.",
    ),
    (
        "apple.com",
        "Apple",
        "AAPL",
        "#000000",
        Shape::Square,
        "Phones, computers and services.",
    ),
    (
        "microsoft.com",
        "Microsoft",
        "MSFT",
        "#00a4ef",
        Shape::Dots,
        "Software, cloud and devices.",
    ),
    (
        "shopify.com",
        "Shopify",
        "SHOP",
        "#96bf48",
        Shape::Triangle,
        "Commerce platform.",
    ),
    (
        "amazon.com",
        "Amazon",
        "AMZN",
        "#ff9900",
        Shape::Plus,
        "Online retail and cloud computing.",
    ),
    (
        "openai.com",
        "OpenAI",
        "",
        "#10a37f",
        Shape::Diamond,
        "AI research and deployment.",
    ),
    (
        "posthog.com",
        "PostHog",
        "",
        "#f54e00",
        Shape::Triangle,
        "Product analytics and feature flags.",
    ),
    (
        "resend.com",
        "Resend",
        "",
        "#000000",
        Shape::Ring,
        "Email for developers.",
    ),
    (
        "twilio.com",
        "Twilio",
        "TWLO",
        "#f22f46",
        Shape::Dots,
        "Communications APIs.",
    ),
    (
        "nike.com",
        "Nike",
        "NKE",
        "#111111",
        Shape::Diamond,
        "Athletic footwear and apparel.",
    ),
    (
        "slack.com",
        "Slack",
        "",
        "#4a154b",
        Shape::Plus,
        "Team messaging.",
    ),
    (
        "netflix.com",
        "Netflix",
        "NFLX",
        "#e50914",
        Shape::Square,
        "Streaming entertainment.",
    ),
];

/// What a seeded brand looks like in the store, at `brands/{domain}`:
/// `{"name": "Acme", "color": "#ff0000", "shape": "ring", "ticker": "ACME",
/// "description": "…"}`; only `name` is required.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// Display name.
    pub name: String,
    /// `#rrggbb`; the domain's hash colour when absent.
    #[serde(default)]
    pub color: Option<String>,
    /// A shape name; one picked by hash when absent.
    #[serde(default)]
    pub shape: Option<String>,
    /// Stock ticker.
    #[serde(default)]
    pub ticker: Option<String>,
    /// One line about the brand.
    #[serde(default)]
    pub description: Option<String>,
}

/// The store prefix of seeded brands.
pub const SEED_PREFIX: &str = "brands/";

/// The first 8 bytes of SHA-256 of `text`, for colours and shapes.
fn digest(text: &str) -> [u8; 8] {
    let d = Sha256::digest(text.as_bytes());
    [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// A colour for `domain`: a hue from its hash at fixed saturation and
/// value, so monograms are varied but never washed out.
pub fn hash_colour(domain: &str) -> Rgb {
    let d = digest(domain);
    let hue = u32::from(u16::from_be_bytes([d[0], d[1]])) % 360;
    hsv(hue, 60, 80)
}

/// HSV (degrees, percent, percent) to RGB in integers.
fn hsv(h: u32, s: u32, v: u32) -> Rgb {
    let v255 = v * 255 / 100;
    let c = v255 * s / 100;
    let x = c * (60 - (h % 120).abs_diff(60)) / 60;
    let m = v255 - c;
    let (r, g, b) = match h / 60 {
        0 => (c, x, 0),
        1 => (x, c, 0),
        2 => (0, c, x),
        3 => (0, x, c),
        4 => (x, 0, c),
        _ => (c, 0, x),
    };
    let byte = |n: u32| u8::try_from(n + m).unwrap_or(255);
    Rgb(byte(r), byte(g), byte(b))
}

impl Brand {
    fn from_seed(domain: &str, seed: Seeded) -> Brand {
        let d = digest(domain);
        Brand {
            domain: domain.to_owned(),
            name: seed.name,
            ticker: seed.ticker.filter(|t| !t.is_empty()),
            colour: seed
                .color
                .as_deref()
                .and_then(Rgb::parse)
                .unwrap_or_else(|| hash_colour(domain)),
            shape: seed
                .shape
                .as_deref()
                .and_then(Shape::parse)
                .unwrap_or(Shape::ALL[usize::from(d[2]) % Shape::ALL.len()]),
            description: seed.description.unwrap_or_default(),
        }
    }
}

fn built_in() -> impl Iterator<Item = Brand> {
    BUILT_IN
        .iter()
        .map(|(domain, name, ticker, colour, shape, description)| Brand {
            domain: (*domain).to_owned(),
            name: (*name).to_owned(),
            ticker: (!ticker.is_empty()).then(|| (*ticker).to_owned()),
            colour: Rgb::parse(colour).unwrap_or(Rgb::DARK),
            shape: *shape,
            description: (*description).to_owned(),
        })
}

/// Every brand: seeded ones (which override a built-in of the same
/// domain), then the built-in table.
pub fn all() -> Result<Vec<Brand>, Error> {
    let mut out: Vec<Brand> = Vec::new();
    for entry in scan_prefix(SEED_PREFIX, wt_sdk::store::MAX_SCAN, false) {
        let domain = entry.key[SEED_PREFIX.len()..].to_owned();
        let seed: Seeded = serde_json::from_slice(&entry.value).map_err(|e| {
            Error::internal(format!("seeded brand `{}` is unreadable: {e}", entry.key))
        })?;
        out.push(Brand::from_seed(&domain, seed));
    }
    for b in built_in() {
        if !out.iter().any(|o| o.domain == b.domain) {
            out.push(b);
        }
    }
    Ok(out)
}

/// The brand of `domain`, seeded or built in.
pub fn by_domain(domain: &str) -> Result<Option<Brand>, Error> {
    if let Some(seed) = get_json::<Seeded>(&format!("{SEED_PREFIX}{domain}"))? {
        return Ok(Some(Brand::from_seed(domain, seed)));
    }
    Ok(built_in().find(|b| b.domain == domain))
}

/// The brand with this (case-insensitive) name.
pub fn by_name(name: &str) -> Result<Option<Brand>, Error> {
    Ok(all()?
        .into_iter()
        .find(|b| b.name.eq_ignore_ascii_case(name.trim())))
}

/// The brand with this (case-insensitive) stock ticker.
pub fn by_ticker(ticker: &str) -> Result<Option<Brand>, Error> {
    Ok(all()?.into_iter().find(|b| {
        b.ticker
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(ticker.trim()))
    }))
}

/// `theme`: `auto` (the brand's own colours), `light` or `dark` (a mark in
/// the brand colour on a light or dark background).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    /// White mark on the brand colour.
    Auto,
    /// Brand-coloured mark on white.
    Light,
    /// Brand-coloured mark on near-black.
    Dark,
}

/// Background and foreground for a brand colour in a theme, keeping the
/// mark visible (a white brand on white becomes dark, a black one on black
/// becomes white).
fn palette(colour: Rgb, theme: Theme) -> (Rgb, Rgb) {
    match theme {
        Theme::Auto if colour.luma() > 200 => (colour, Rgb::DARK),
        Theme::Auto => (colour, Rgb::WHITE),
        Theme::Light if colour.luma() > 200 => (Rgb::WHITE, Rgb::DARK),
        Theme::Light => (Rgb::WHITE, colour),
        Theme::Dark if colour.luma() < 90 => (Rgb::DARK, Rgb::WHITE),
        Theme::Dark => (Rgb::DARK, colour),
    }
}

/// The logo of a known brand.
pub fn draw_brand(brand: &Brand, size: u32, theme: Theme) -> Canvas {
    let (bg, fg) = palette(brand.colour, theme);
    let mut canvas = Canvas::new(size, bg);
    canvas.shape(brand.shape, fg);
    canvas
}

/// The monogram of an unknown `identifier`: its first letter or digit on
/// its hash colour.
pub fn draw_monogram(identifier: &str, size: u32, theme: Theme) -> Canvas {
    let (bg, fg) = palette(hash_colour(identifier), theme);
    let letter = identifier
        .chars()
        .find(char::is_ascii_alphanumeric)
        .unwrap_or('?');
    let mut canvas = Canvas::new(size, bg);
    canvas.letter(letter, fg);
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_marks_are_distinct() {
        let brands: Vec<Brand> = built_in().collect();
        for (i, a) in brands.iter().enumerate() {
            for b in &brands[i + 1..] {
                assert_ne!(a.domain, b.domain);
                assert!(
                    (a.shape, a.colour) != (b.shape, b.colour),
                    "{} and {} look alike",
                    a.domain,
                    b.domain
                );
            }
        }
    }

    #[test]
    fn hash_colours_are_stable_and_saturated() {
        assert_eq!(hash_colour("acme.io"), hash_colour("acme.io"));
        assert_ne!(hash_colour("acme.io"), hash_colour("acme.com"));
        for d in ["a.io", "b.io", "c.io", "zz.dev"] {
            let Rgb(r, g, b) = hash_colour(d);
            let (hi, lo) = (r.max(g).max(b), r.min(g).min(b));
            assert_eq!(hi, 204, "{d}");
            assert!(hi - lo >= 120, "{d}: {r} {g} {b}");
        }
        assert_eq!(hsv(0, 100, 100), Rgb(255, 0, 0));
        assert_eq!(hsv(120, 100, 100), Rgb(0, 255, 0));
        assert_eq!(hsv(240, 100, 100), Rgb(0, 0, 255));
    }

    #[test]
    fn themes_keep_marks_visible() {
        for colour in [Rgb::WHITE, Rgb(0, 0, 0), Rgb(99, 91, 255)] {
            for theme in [Theme::Auto, Theme::Light, Theme::Dark] {
                let (bg, fg) = palette(colour, theme);
                assert!(bg.luma().abs_diff(fg.luma()) > 60, "{colour:?} {theme:?}");
            }
        }
    }
}
