//! Compressed request bodies: gzip and zlib/deflate.
//!
//! Analytics and telemetry SDKs (PostHog, Segment, Sentry, …) compress what
//! they upload, either announced with `Content-Encoding: gzip` or signalled
//! some vendor-specific way (PostHog's `?compression=gzip-js`). The host
//! hands the twin the bytes as sent, so the twin must inflate them itself;
//! these helpers do it in pure Rust (`miniz_oxide`), with a size cap so a
//! small "zip bomb" cannot exhaust the instance's memory.
//!
//! ```
//! use wt_sdk::compression;
//! let packed = compression::gzip(b"hello");
//! assert_eq!(compression::gunzip(&packed).unwrap(), b"hello");
//! ```

use std::fmt;

use crate::Request;

/// Largest inflated body accepted, 32 MiB: far above any real upload, far
/// below what a twin instance may allocate.
pub const MAX_INFLATED: usize = 32 << 20;

/// Why a body could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a well-formed stream of the announced format; the
    /// message says what is wrong.
    Malformed(String),
    /// The stream inflates to more than [`MAX_INFLATED`] bytes.
    TooLarge,
    /// `Content-Encoding` names an encoding these helpers do not decode.
    Unsupported(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(m) => write!(f, "malformed compressed body: {m}"),
            DecodeError::TooLarge => write!(f, "body inflates past {MAX_INFLATED} bytes"),
            DecodeError::Unsupported(e) => write!(f, "unsupported content encoding `{e}`"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Whether `data` starts with the gzip magic bytes `1f 8b`.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Inflates a gzip stream (RFC 1952): every member, checking each one's
/// CRC-32 and length so a truncated or corrupted upload is an error rather
/// than silently short data.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    gunzip_limited(data, MAX_INFLATED)
}

/// Like [`gunzip`] with a smaller cap than [`MAX_INFLATED`] (a twin whose
/// vendor refuses large bodies says so before inflating all of one).
pub fn gunzip_limited(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let limit = limit.min(MAX_INFLATED);
    let mut out = Vec::new();
    let mut rest = data;
    if rest.is_empty() {
        return Err(DecodeError::Malformed("empty gzip stream".into()));
    }
    while !rest.is_empty() {
        let start = member_body(rest)?;
        let (inflated, used) = inflate_raw_prefix(&rest[start..], limit - out.len())?;
        let trailer = rest
            .get(start + used..start + used + 8)
            .ok_or_else(|| DecodeError::Malformed("truncated gzip trailer".into()))?;
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc != crc32(&inflated) {
            return Err(DecodeError::Malformed("gzip CRC-32 mismatch".into()));
        }
        // ISIZE is the length modulo 2^32.
        if size != (inflated.len() as u64 & 0xffff_ffff) as u32 {
            return Err(DecodeError::Malformed("gzip length mismatch".into()));
        }
        out.extend_from_slice(&inflated);
        rest = &rest[start + used + 8..];
        // Some writers pad the end with zeros; they are not another member.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
    }
    Ok(out)
}

/// The offset of the deflate data in the gzip member at the start of `data`.
fn member_body(data: &[u8]) -> Result<usize, DecodeError> {
    let bad = |m: &str| DecodeError::Malformed(m.to_owned());
    if data.len() < 10 || !is_gzip(data) {
        return Err(bad("not a gzip stream"));
    }
    if data[2] != 8 {
        return Err(bad("gzip method is not deflate"));
    }
    let flags = data[3];
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let len = data
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or_else(|| bad("truncated gzip extra field"))?;
        at += 2 + len;
    }
    for flag in [0x08u8, 0x10] {
        if flags & flag != 0 {
            let nul = data
                .get(at..)
                .and_then(|d| d.iter().position(|&b| b == 0))
                .ok_or_else(|| bad("unterminated gzip header string"))?;
            at += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    if at > data.len() {
        return Err(bad("truncated gzip header"));
    }
    Ok(at)
}

/// Inflates raw deflate data at the start of `data`, returning the output
/// and how many input bytes the stream used.
fn inflate_raw_prefix(data: &[u8], limit: usize) -> Result<(Vec<u8>, usize), DecodeError> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

    let mut decomp = DecompressorOxide::new();
    let initial = data.len().saturating_mul(4).max(1024).min(limit.max(1));
    let mut out = vec![0u8; initial];
    let (mut in_pos, mut out_pos) = (0usize, 0usize);
    loop {
        // The whole stream is in `data`, so no HAS_MORE_INPUT: running out
        // of input means the stream is truncated.
        let (status, used, wrote) = decompress(
            &mut decomp,
            &data[in_pos..],
            &mut out,
            out_pos,
            inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        in_pos += used;
        out_pos += wrote;
        match status {
            TINFLStatus::Done => {
                out.truncate(out_pos);
                return Ok((out, in_pos));
            }
            TINFLStatus::HasMoreOutput => {
                if out.len() >= limit {
                    return Err(DecodeError::TooLarge);
                }
                let grown = out.len().saturating_mul(2).min(limit);
                out.resize(grown, 0);
            }
            TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                return Err(DecodeError::Malformed("truncated deflate stream".into()));
            }
            _ => return Err(DecodeError::Malformed("invalid deflate data".into())),
        }
    }
}

/// Inflates a zlib stream (RFC 1950), what HTTP calls `deflate`; a bare
/// raw-deflate stream, which some clients send under that name, is
/// accepted too.
pub fn inflate(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let zlib_header = data.len() >= 2
        && data[0] & 0x0f == 8
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
    if zlib_header {
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_INFLATED).map_err(|e| {
            match e.status {
                miniz_oxide::inflate::TINFLStatus::HasMoreOutput => DecodeError::TooLarge,
                _ => DecodeError::Malformed("invalid zlib data".into()),
            }
        })
    } else {
        inflate_raw_prefix(data, MAX_INFLATED).map(|(out, _)| out)
    }
}

/// The request body with its `Content-Encoding` undone (`gzip`, `x-gzip`,
/// `deflate`; `identity` or no header leave it as is). Borrowed when there
/// was nothing to undo.
pub fn decoded_body(request: &Request) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    use std::borrow::Cow;
    let encoding = request
        .header("content-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(Cow::Borrowed(&request.body)),
        "gzip" | "x-gzip" => gunzip(&request.body).map(Cow::Owned),
        "deflate" => inflate(&request.body).map(Cow::Owned),
        other => Err(DecodeError::Unsupported(other.to_owned())),
    }
}

/// Compresses `data` as one gzip member (no file name, no timestamp, so the
/// output is deterministic); for tests and for twins that send compressed
/// callbacks.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&((data.len() as u64 & 0xffff_ffff) as u32).to_le_bytes());
    out
}

/// Compresses `data` as a zlib stream (RFC 1950) at `level` (0–10): what PNG
/// image data and HTTP `deflate` use.
pub fn zlib(data: &[u8], level: u8) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, level.min(10))
}

/// The CRC-32 (IEEE 802.3, as in gzip and PNG) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// Continues a CRC-32 from `crc` (the value for the bytes before `data`),
/// so a PNG chunk's type and data can be summed without joining them.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    let mut c = !crc;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_is_deterministic() {
        let text = b"{\"batch\":[{\"event\":\"a\"}]}".repeat(50);
        let packed = gzip(&text);
        assert!(is_gzip(&packed));
        assert!(packed.len() < text.len());
        assert_eq!(packed, gzip(&text));
        assert_eq!(gunzip(&packed).unwrap(), text);
    }

    #[test]
    fn gunzip_reads_header_fields_and_several_members() {
        // A member with FNAME set, then a second plain member.
        let mut named = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3];
        named.extend_from_slice(b"a.json\0");
        let plain = gzip(b"world");
        named.extend_from_slice(&plain[10..]);
        let mut stream = gzip(b"hello ");
        stream.extend_from_slice(&named);
        stream.extend_from_slice(&[0, 0]);
        assert_eq!(gunzip(&stream).unwrap(), b"hello world");
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let good = gzip(b"some body text");
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        assert!(matches!(gunzip(&bad_crc), Err(DecodeError::Malformed(_))));
        for cut in 0..good.len() {
            assert!(gunzip(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(gunzip(b"not gzip at all").is_err());
        assert!(inflate(b"\x78\x9c garbage").is_err());
    }

    #[test]
    fn bombs_are_refused() {
        let zeros = vec![0u8; 1 << 20];
        let packed = gzip(&zeros);
        assert!(packed.len() < 2048);
        assert_eq!(
            gunzip_limited(&packed, (1 << 20) - 1),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(gunzip_limited(&packed, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(inflate(&zlib(&zeros, 6)).unwrap().len(), 1 << 20);
    }

    #[test]
    fn zlib_and_raw_deflate_inflate() {
        let text = b"deflate me, deflate me".to_vec();
        assert_eq!(inflate(&zlib(&text, 6)).unwrap(), text);
        let raw = miniz_oxide::deflate::compress_to_vec(&text, 6);
        assert_eq!(inflate(&raw).unwrap(), text);
    }

    #[test]
    fn decoded_body_follows_content_encoding() {
        let req = Request::new("POST", "/").with_body(gzip(b"x"));
        assert_eq!(decoded_body(&req).unwrap().as_ref(), gzip(b"x").as_slice());
        let req = req.with_header("content-encoding", "GZIP");
        assert_eq!(decoded_body(&req).unwrap().as_ref(), b"x");
        let br = Request::new("POST", "/").with_header("content-encoding", "br");
        assert_eq!(
            decoded_body(&br).unwrap_err(),
            DecodeError::Unsupported("br".into())
        );
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xcbf4_3926);
    }
}
