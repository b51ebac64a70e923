//! The headers that frame an HTTP/1.1 message or manage its connection.
//! The host writes these itself on everything a twin makes it send: on a
//! twin's responses (hyper frames the body it is given) and on a twin's
//! outbound requests (reqwest does). A twin's own copies would let it end a
//! message early and smuggle the next one into a kept-alive connection:
//! a forged response read as the answer to another client's request, or a
//! second, unmarked request to whatever the delivery reached.

/// Lower-case, as `http::HeaderName` spells them.
pub const FRAMING_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (lower-case) is one of [`FRAMING_HEADERS`].
pub fn is_framing_header(name: &str) -> bool {
    FRAMING_HEADERS.contains(&name)
}
