//! Encoding a [`Canvas`] as PNG, JPEG or WebP. All three encoders are
//! deterministic (no timestamps, fixed settings), so one URL always gives
//! the same bytes and a stable `ETag`.

use wt_sdk::compression::{crc32_update, zlib};

use crate::draw::Canvas;

/// The image formats logo.dev serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `image/jpeg`, logo.dev's default.
    Jpeg,
    /// `image/png`.
    Png,
    /// `image/webp` (lossless).
    Webp,
}

impl Format {
    /// The `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }
}

/// `canvas` in `format`. Fails only if an encoder refuses the canvas (a
/// size beyond its limits), which the twin's size cap rules out.
pub fn encode(canvas: &Canvas, format: Format) -> Result<Vec<u8>, String> {
    match format {
        Format::Png => Ok(png(canvas)),
        Format::Jpeg => jpeg(canvas),
        Format::Webp => webp(canvas),
    }
}

/// An 8-bit RGB, non-interlaced PNG with one IDAT chunk. Hand-written on
/// top of `wt_sdk::compression`'s zlib, which is all PNG needs.
fn png(canvas: &Canvas) -> Vec<u8> {
    let n = canvas.size as usize;
    let mut raw = Vec::with_capacity(n * (n * 3 + 1));
    for row in canvas.pixels.chunks_exact(n * 3) {
        // Filter type 0 (None) per scanline.
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&canvas.size.to_be_bytes());
    ihdr.extend_from_slice(&canvas.size.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib(&raw, 6));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32_update(crc32_update(0, kind), data);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A baseline JPEG at quality 90.
fn jpeg(canvas: &Canvas) -> Result<Vec<u8>, String> {
    let side = u16::try_from(canvas.size).map_err(|_| "image too large for JPEG".to_owned())?;
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&canvas.pixels, side, side, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// A lossless (VP8L) WebP.
fn webp(canvas: &Canvas) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(
            &canvas.pixels,
            canvas.size,
            canvas.size,
            image_webp::ColorType::Rgb8,
        )
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::{Rgb, Shape};

    fn sample(size: u32) -> Canvas {
        let mut c = Canvas::new(size, Rgb(10, 120, 200));
        c.shape(Shape::Diamond, Rgb::WHITE);
        c
    }

    #[test]
    fn png_is_well_formed_and_round_trips() {
        let bytes = encode(&sample(33), Format::Png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 33);
        assert!(bytes.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND's CRC");
        // The IDAT inflates back to the filtered scanlines.
        let idat_len = u32::from_be_bytes(bytes[33..37].try_into().unwrap()) as usize;
        assert_eq!(&bytes[37..41], b"IDAT");
        let raw = wt_sdk::compression::inflate(&bytes[41..41 + idat_len]).unwrap();
        assert_eq!(raw.len(), 33 * (33 * 3 + 1));
        assert_eq!(&raw[1..4], &[10, 120, 200]);
    }

    #[test]
    fn jpeg_and_webp_headers() {
        let j = encode(&sample(40), Format::Jpeg).unwrap();
        assert!(j.starts_with(&[0xff, 0xd8]) && j.ends_with(&[0xff, 0xd9]));
        let sof = j.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        assert_eq!(&j[sof + 5..sof + 9], &[0, 40, 0, 40]);
        let w = encode(&sample(40), Format::Webp).unwrap();
        assert_eq!((&w[..4], &w[8..16]), (&b"RIFF"[..], &b"WEBPVP8L"[..]));
        // VP8L: signature 0x2f, then 14-bit width-1 and height-1.
        assert_eq!(w[20], 0x2f);
        let bits = u32::from_le_bytes(w[21..25].try_into().unwrap());
        assert_eq!(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1), (40, 40));
    }

    #[test]
    fn encoders_are_deterministic() {
        for f in [Format::Png, Format::Jpeg, Format::Webp] {
            assert_eq!(encode(&sample(50), f), encode(&sample(50), f));
        }
    }
}
