//! The account's signing key, its JWKS, and RS256 session tokens.
//!
//! Clerk signs session tokens with one RSA key per instance and publishes
//! its public half at `GET /v1/jwks`, which is where the backend SDKs'
//! `verify_token` fetches it (matching the token header's `kid`). The twin
//! keeps one 2048-bit key per account, made the first time a token or the
//! JWKS is asked for (key generation is the one slow thing here, so
//! accounts that never mint tokens never pay for it), stored as PKCS#8 DER.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{CryptoRng, RngCore};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use wt_sdk::store::{get_json, set_json};
use wt_sdk::{Error, Request, Response};

use crate::wire;

/// Modulus size of the signing key, as Clerk's.
pub const KEY_BITS: usize = 2048;

/// What the store keeps under `acct/{a}/signing_key`.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// The key id published in the JWKS and in token headers (`ins_…`, the
    /// instance id, as on Clerk).
    kid: String,
    /// PKCS#8 DER, base64.
    pkcs8: String,
}

/// The host's WASI random source as the `rand_core` generator `rsa` wants.
/// It is a CSPRNG on the host side, which is what `CryptoRng` promises.
struct HostRng;

impl RngCore for HostRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // A failing random source is a broken host; a key from a
        // non-random source would be worse than stopping.
        getrandom::fill(dest).expect("clerk twin: the host's random source failed");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for HostRng {}

/// The account's signing key and its `kid`, generated on first use.
pub fn signing_key() -> Result<(String, RsaPrivateKey), Error> {
    let store_key = wire::key("signing_key");
    if let Some(stored) = get_json::<StoredKey>(&store_key)? {
        let der = base64::engine::general_purpose::STANDARD
            .decode(&stored.pkcs8)
            .map_err(|e| Error::internal(format!("stored signing key: {e}")))?;
        let key = RsaPrivateKey::from_pkcs8_der(&der)
            .map_err(|e| Error::internal(format!("stored signing key: {e}")))?;
        return Ok((stored.kid, key));
    }
    let key = RsaPrivateKey::new(&mut HostRng, KEY_BITS)
        .map_err(|e| Error::internal(format!("signing key generation: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| Error::internal(format!("signing key encoding: {e}")))?;
    let kid = wire::instance_id()?;
    set_json(
        &store_key,
        &StoredKey {
            kid: kid.clone(),
            pkcs8: base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        },
    )?;
    Ok((kid, key))
}

/// The JWK of a public key: `n` and `e` big-endian, base64url.
pub fn jwk(kid: &str, key: &RsaPublicKey) -> Value {
    json!({
        "use": "sig",
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

/// `GET /v1/jwks`.
pub fn jwks(_req: &Request) -> Result<Response, Error> {
    let (kid, key) = signing_key()?;
    Ok(Response::ok(
        &json!({"keys": [jwk(&kid, &key.to_public_key())]}),
    ))
}

/// A compact RS256 JWT of `claims` with `kid` in its header.
pub fn sign(kid: &str, key: &RsaPrivateKey, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signer = SigningKey::<Sha256>::new(key.clone());
    let signature = signer.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use wt_sdk::testing;

    #[test]
    fn key_is_made_once_per_account_and_tokens_verify() {
        testing::reset();
        wt_sdk::scope::enter("sk_test_a");
        let (kid, key) = signing_key().unwrap();
        assert!(kid.starts_with("ins_"));
        let (again, same) = signing_key().unwrap();
        assert_eq!((again.as_str(), &same), (kid.as_str(), &key));
        wt_sdk::scope::enter("sk_test_b");
        assert_ne!(signing_key().unwrap().0, kid);

        let token = sign(&kid, &key, &json!({"sub": "user_1"}));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "kid": kid, "typ": "JWT"}));
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "user_1");
        let sig =
            Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
        let verifier = VerifyingKey::<Sha256>::new(key.to_public_key());
        let input = format!("{}.{}", parts[0], parts[1]);
        verifier.verify(input.as_bytes(), &sig).unwrap();
        assert!(verifier.verify(b"tampered", &sig).is_err());

        let jwk = jwk(&kid, &key.to_public_key());
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["n"].as_str().unwrap())
                .unwrap()
                .len(),
            KEY_BITS / 8
        );
    }
}
