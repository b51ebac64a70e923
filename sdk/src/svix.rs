//! Webhook signing the Svix way, as Resend, Clerk and every other vendor
//! that delivers through Svix do.
//!
//! A delivery carries three headers: `svix-id` (the message id, `msg_…`),
//! `svix-timestamp` (Unix seconds of real wall time) and `svix-signature`
//! (`v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`). The key
//! is the base64 part of the endpoint's secret `whsec_…`. The receivers'
//! SDKs (`svix`, `resend.Webhooks.verify`, Clerk's `verifyWebhook`) reject a
//! timestamp more than five minutes from their clock, which is why
//! [`sign_now`] uses wall time and never twin time.
//!
//! ```
//! use wt_sdk::svix;
//!
//! let secret = svix::new_secret();
//! let headers = svix::sign_now(&secret, br#"{"type":"user.created"}"#).unwrap();
//! assert_eq!(headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
//!            ["svix-id", "svix-timestamp", "svix-signature"]);
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::outbound::OutboundRequest;
use crate::signature::hmac_sha256;

/// Bytes of key in a secret made by [`new_secret`] (what Svix generates).
pub const KEY_LEN: usize = 24;

/// Why a secret cannot sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSecret;

impl std::fmt::Display for InvalidSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Svix secret is `whsec_` followed by base64")
    }
}

impl std::error::Error for InvalidSecret {}

/// A fresh endpoint secret: `whsec_` + base64 of [`KEY_LEN`] random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; KEY_LEN];
    // Same source as ids: the host's WASI random; failure is a broken host.
    getrandom::fill(&mut key).expect("wt-sdk: the host's random source failed");
    format!("whsec_{}", STANDARD.encode(key))
}

/// A fresh message id, `msg_` + 27 base62 characters (Svix ids are KSUIDs of
/// that length).
pub fn new_message_id() -> String {
    crate::ids::new_with_len("msg", 27)
}

/// The key bytes of `secret` (`whsec_` prefix optional, as receivers accept).
pub fn key(secret: &str) -> Result<Vec<u8>, InvalidSecret> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(b64).map_err(|_| InvalidSecret)
}

/// The `svix-signature` value for one message: `v1,` + base64 HMAC-SHA256
/// of `{id}.{timestamp}.{body}`.
pub fn signature(
    secret: &str,
    msg_id: &str,
    timestamp_secs: u64,
    body: &[u8],
) -> Result<String, InvalidSecret> {
    let key = key(secret)?;
    let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp_secs.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key, &content))
    ))
}

/// The three Svix headers for `body` signed with `secret`, with a fresh
/// message id and the current wall time.
pub fn sign_now(secret: &str, body: &[u8]) -> Result<Vec<(String, String)>, InvalidSecret> {
    let id = new_message_id();
    let ts = crate::clock::wall_millis() / 1000;
    let sig = signature(secret, &id, ts, body)?;
    Ok(vec![
        ("svix-id".into(), id),
        ("svix-timestamp".into(), ts.to_string()),
        ("svix-signature".into(), sig),
    ])
}

/// A signed JSON `POST` of `body` to `url`, ready for
/// [`outbound::enqueue`](crate::outbound::enqueue).
pub fn request(url: &str, secret: &str, body: Vec<u8>) -> Result<OutboundRequest, InvalidSecret> {
    let mut req = OutboundRequest::post(url).with_header("content-type", "application/json");
    for (name, value) in sign_now(secret, &body)? {
        req = req.with_header(name, value);
    }
    Ok(req.with_body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn matches_the_svix_documentation_vector() {
        // The example of Svix's "verifying payloads manually" guide,
        // recomputed independently with Python's hmac.
        let sig = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // The prefix is optional on the secret, as receivers accept.
        assert_eq!(
            signature(
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap(),
            sig
        );
    }

    #[test]
    fn secrets_ids_and_bad_secrets() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(key(&s).unwrap().len(), KEY_LEN);
        assert_ne!(s, new_secret());
        let id = new_message_id();
        assert!(id.starts_with("msg_") && id.len() == 31);
        assert_eq!(key("whsec_!!"), Err(InvalidSecret));
        assert!(signature("whsec_!!", "m", 1, b"").is_err());
        assert!(InvalidSecret.to_string().contains("whsec_"));
    }

    #[test]
    fn signed_requests_use_wall_time_and_verify() {
        testing::reset();
        testing::set_now_millis(1_000);
        let secret = new_secret();
        let req = request("http://127.0.0.1:9/hook", &secret, b"{}".to_vec()).unwrap();
        let header = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let ts: u64 = header("svix-timestamp").parse().unwrap();
        assert!(ts > 1_600_000_000, "wall time, not twin time: {ts}");
        assert_eq!(
            header("svix-signature"),
            signature(&secret, &header("svix-id"), ts, b"{}").unwrap()
        );
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(req.body, b"{}");
    }
}
