use super::issue::sign;
use super::*;

const NOW: u64 = 1_800_000_000;

fn pair() -> (SigningKey, TrustStore) {
    let pair = keygen();
    let key = SigningKey::from_pkcs8_pem(&pair.private_pem).unwrap();
    let mut trust = TrustStore::official();
    assert_eq!(trust.add_pem(&pair.public_pem, "test").unwrap(), pair.kid);
    (key, trust)
}

fn request(aud: &[&str], tier: Tier, nbf: u64, exp: u64) -> IssueRequest {
    IssueRequest {
        issuer: "test".into(),
        subject: "acct_1".into(),
        audience: aud.iter().map(|s| (*s).to_owned()).collect(),
        tier,
        not_before: nbf,
        expires: exp,
        issued_at: nbf,
    }
}

fn token(key: &SigningKey, aud: &[&str], nbf: u64, exp: u64) -> String {
    issue(key, &request(aud, Tier::Pro, nbf, exp)).unwrap()
}

#[test]
fn valid_until_exactly_exp() {
    let (key, trust) = pair();
    let v = trust
        .verify(&token(&key, &["stripe"], NOW - 10, NOW + 10))
        .unwrap();
    assert_eq!(v.check("stripe", NOW), Ok(()));
    assert_eq!(v.check("stripe", NOW + 9), Ok(()));
    assert_eq!(
        v.check("stripe", NOW + 10),
        Err(Refusal::Expired { exp: NOW + 10 })
    );
}

#[test]
fn not_yet_valid_beyond_the_leeway_only() {
    let (key, trust) = pair();
    let soon = trust
        .verify(&token(&key, &["*"], NOW + NBF_LEEWAY_SECS, NOW + 1000))
        .unwrap();
    assert_eq!(soon.check("stripe", NOW), Ok(()));
    let later = trust
        .verify(&token(&key, &["*"], NOW + NBF_LEEWAY_SECS + 1, NOW + 1000))
        .unwrap();
    assert_eq!(
        later.check("stripe", NOW),
        Err(Refusal::NotYetValid {
            nbf: NOW + NBF_LEEWAY_SECS + 1
        })
    );
}

#[test]
fn audience_is_the_served_identity() {
    let (key, trust) = pair();
    let v = trust
        .verify(&token(&key, &["stripe", "twilio"], NOW, NOW + 10))
        .unwrap();
    assert_eq!(v.check("twilio", NOW), Ok(()));
    assert!(matches!(
        v.check("clerk", NOW),
        Err(Refusal::WrongAudience { .. })
    ));
    let all = trust.verify(&token(&key, &["*"], NOW, NOW + 10)).unwrap();
    assert_eq!(all.check("clerk", NOW), Ok(()));
}

#[test]
fn forged_signature_and_unknown_key_are_told_apart() {
    let (key, trust) = pair();
    let good = token(&key, &["stripe"], NOW, NOW + 10);
    // Same header and signature, other claims: the signature no longer fits.
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"iss":"x","sub":"acct_1","aud":"*","tier":"pro","iat":1,"nbf":1,"exp":9999999999,"jti":"j"}"#,
    );
    parts[1] = &forged_claims;
    assert_eq!(
        trust.verify(&parts.join(".")),
        Err(TokenProblem::BadSignature)
    );
    let (stranger, _) = pair();
    let unknown = token(&stranger, &["stripe"], NOW, NOW + 10);
    assert!(matches!(
        trust.verify(&unknown),
        Err(TokenProblem::UnknownKey(_))
    ));
    assert!(matches!(
        trust.verify("not.a.token"),
        Err(TokenProblem::Malformed(_))
    ));
    assert_eq!(trust.verify("  "), Err(TokenProblem::Missing));
}

#[test]
fn two_trusted_keys_at_once() {
    let (old, mut trust) = pair();
    let new = keygen();
    trust.add_pem(&new.public_pem, "new").unwrap();
    let new_key = SigningKey::from_pkcs8_pem(&new.private_pem).unwrap();
    for key in [&old, &new_key] {
        assert!(trust.verify(&token(key, &["*"], NOW, NOW + 1)).is_ok());
    }
    assert_eq!(trust.kids().len(), 3);
}

#[test]
fn a_longer_trial_signed_elsewhere_ends_after_seven_days() {
    let (key, trust) = pair();
    let week = MAX_TRIAL_DAYS * 86_400;
    let claims = Claims {
        iss: "someone-else".into(),
        sub: "acct".into(),
        aud: Audience::One("stripe".into()),
        tier: Tier::Trial,
        iat: NOW,
        nbf: NOW,
        exp: NOW + 30 * 86_400,
        jti: "t".into(),
    };
    let v = trust.verify(&sign(&key, &claims).unwrap()).unwrap();
    assert_eq!(v.check("stripe", NOW + week - 1), Ok(()));
    assert_eq!(
        v.check("stripe", NOW + week),
        Err(Refusal::Expired { exp: NOW + week })
    );
    // A pro license runs to its exp.
    let pro = Claims {
        tier: Tier::Pro,
        ..claims
    };
    let v = trust.verify(&sign(&key, &pro).unwrap()).unwrap();
    assert_eq!(v.check("stripe", NOW + week), Ok(()));
}

#[test]
fn trial_is_capped_at_seven_days() {
    let (key, _) = pair();
    let week = MAX_TRIAL_DAYS * 86_400;
    assert!(issue(&key, &request(&["*"], Tier::Trial, NOW, NOW + week)).is_ok());
    let err = issue(&key, &request(&["*"], Tier::Trial, NOW, NOW + week + 1)).unwrap_err();
    assert!(matches!(err, IssueError::TrialTooLong { .. }), "{err}");
    assert!(issue(&key, &request(&["*"], Tier::Pro, NOW, NOW + 10 * week)).is_ok());
    assert!(matches!(
        issue(&key, &request(&[], Tier::Pro, NOW, NOW + 1)),
        Err(IssueError::NoAudience)
    ));
    assert!(matches!(
        issue(&key, &request(&["*"], Tier::Pro, NOW, NOW)),
        Err(IssueError::EmptyWindow { .. })
    ));
}

#[test]
fn unknown_claims_are_malformed() {
    let (key, trust) = pair();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid_of(&key.verifying_key()));
    let der = key.to_pkcs8_der().unwrap();
    let odd = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"sub": "a", "aud": "*", "tier": "gold", "iss": "i", "iat": 1, "nbf": 1, "exp": 2, "jti": "j"}),
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        trust.verify(&odd),
        Err(TokenProblem::Malformed(_))
    ));
}

#[test]
fn licensing_reloads_a_changed_file() {
    let (key, trust) = pair();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("license.jwt");
    let licensing = Licensing::new(trust, LicenseSource::File(path.clone()));
    assert_eq!(
        licensing.check("stripe", NOW),
        Err(Refusal::Token(TokenProblem::Missing))
    );
    assert_eq!(licensing.covering("stripe", NOW), None);
    std::fs::write(&path, token(&key, &["stripe"], NOW - 100, NOW - 1)).unwrap();
    assert!(licensing.reload());
    assert_eq!(
        licensing.check("stripe", NOW),
        Err(Refusal::Expired { exp: NOW - 1 })
    );
    assert_eq!(licensing.covering("stripe", NOW), None);
    assert!(!licensing.reload(), "unchanged file");
    std::fs::write(&path, token(&key, &["stripe"], NOW - 100, NOW + 100)).unwrap();
    assert!(licensing.reload());
    assert_eq!(licensing.check("stripe", NOW).unwrap().sub, "acct_1");
    assert_eq!(
        licensing.covering("stripe", NOW),
        licensing.check("stripe", NOW).ok()
    );
    assert_eq!(licensing.covering("clerk", NOW), None, "wrong audience");
    assert_eq!(licensing.covering("stripe", NOW + 100), None, "at exp");
    let status = licensing.status("free", false, NOW);
    assert_eq!(status.state, "not_required");
    let status = licensing.status("clerk", true, NOW);
    assert_eq!(status.state, "license_wrong_audience");
}
