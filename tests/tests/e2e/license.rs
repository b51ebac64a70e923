//! License enforcement through the door a user uses: `wt-host run` with
//! `--license`/`--trust-key`, HTTP requests to a paid twin beside a free one,
//! and the `wt-host license` verbs.
//!
//! The paid twin is the `licensed` fixture served as `pro`: the audience is
//! checked against that name, whatever the request or the twin itself says.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use wt_host::license::{self, IssueRequest, Tier};
use wt_tests::{HostProcess, fixture_path, json, run_to_exit, send, twin_path};

struct Keys {
    dir: tempfile::TempDir,
    signing: license::SigningKey,
    public: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let pair = license::keygen();
    let public = dir.path().join("issuer.pub");
    std::fs::write(&public, &pair.public_pem).unwrap();
    let private = dir.path().join("issuer.key");
    std::fs::write(&private, &pair.private_pem).unwrap();
    Keys {
        signing: license::read_signing_key(&private).unwrap(),
        public,
        dir,
    }
}

fn token(keys: &Keys, aud: &[&str], nbf: u64, exp: u64) -> String {
    license::issue(
        &keys.signing,
        &IssueRequest {
            issuer: "tests".into(),
            subject: "acct_tests".into(),
            audience: aud.iter().map(|s| (*s).to_owned()).collect(),
            tier: Tier::Pro,
            not_before: nbf,
            expires: exp,
            issued_at: nbf,
        },
    )
    .unwrap()
}

fn now() -> u64 {
    license::unix_now()
}

/// `pro` (paid) and `hello` (free) under one host with the given license file.
fn start(license_file: &Path, trust: &[&Path]) -> HostProcess {
    let mut extra = vec!["--license".to_owned(), license_file.display().to_string()];
    for key in trust {
        extra.push("--trust-key".into());
        extra.push(key.display().to_string());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    HostProcess::start(
        &[
            ("pro", fixture_path("licensed")),
            ("hello", twin_path("hello")),
        ],
        &extra,
    )
}

async fn get(url: String) -> (u16, Value) {
    send(reqwest::Client::new().get(url)).await
}

async fn claims(host: &HostProcess) -> (u16, Value) {
    get(format!("{}/claims", host.twin("pro").prefixed_url)).await
}

/// Waits (bounded) until the paid twin answers `status`.
async fn until_status(host: &HostProcess, status: u16) -> Value {
    until(host, status, None).await
}

/// Waits (bounded) until the paid twin refuses with `code`.
async fn until_refused(host: &HostProcess, code: &str) -> Value {
    until(host, 402, Some(code)).await
}

async fn until(host: &HostProcess, status: u16, code: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (seen, body) = claims(host).await;
        if seen == status && code.is_none_or(|c| refusal_code(&body) == c) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "still {seen} instead of {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn refusal_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_valid_license_serves_the_paid_twin_and_passes_its_claims() {
    let keys = keys();
    let file = keys.dir.path().join("license.jwt");
    let t = now();
    std::fs::write(&file, token(&keys, &["pro", "other"], t - 5, t + 3600)).unwrap();
    let host = start(&file, &[&keys.public]);
    assert!(
        !host.stdout.iter().any(|l| l.starts_with("unlicensed")),
        "{:?}",
        host.stdout
    );
    let (status, body) = claims(&host).await;
    assert_eq!(status, 200, "{body}");
    let c = &body["claims"];
    assert_eq!(
        (&c["sub"], &c["tier"], &c["aud"], &c["pro"]),
        (
            &Value::from("acct_tests"),
            &Value::from("pro"),
            &serde_json::json!(["pro", "other"]),
            &Value::Bool(true)
        )
    );
    assert_eq!(c["exp"], t + 3600);
    // The free twin beside it is served as always, and sees the license only
    // if it covers it (here it does not).
    let (status, _) = get(format!("{}/", host.twin("hello").prefixed_url)).await;
    assert_eq!(status, 200);

    let (_, twins) = get(format!("{}/_wt/twins", host.url)).await;
    let license_of = |name: &str| {
        twins["twins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["license"].clone())
            .unwrap()
    };
    assert_eq!(license_of("pro")["state"], "valid");
    assert_eq!(license_of("pro")["subject"], "acct_tests");
    assert_eq!(license_of("hello")["state"], "not_required");
    let (status, health) = get(format!("{}/_wt/health", host.url)).await;
    assert_eq!(status, 200, "{health}");
}

#[tokio::test]
async fn without_a_license_the_paid_twin_answers_402_and_the_free_one_is_untouched() {
    let keys = keys();
    let host = start(&keys.dir.path().join("absent.jwt"), &[&keys.public]);
    let line = host
        .stdout
        .iter()
        .find(|l| l.starts_with("unlicensed pro:"))
        .unwrap_or_else(|| panic!("no unlicensed line: {:?}", host.stdout));
    assert!(line.contains("no license is configured"), "{line}");
    assert_eq!(
        host.stdout
            .iter()
            .filter(|l| l.starts_with("unlicensed"))
            .count(),
        1
    );
    let (status, body) = claims(&host).await;
    assert_eq!(status, 402);
    assert_eq!(refusal_code(&body), "license_missing");
    assert_eq!(body["error"]["twin"], "pro");
    let (status, _) = get(format!("{}/", host.twin("hello").prefixed_url)).await;
    assert_eq!(status, 200);
    // Up, just unlicensed: health says so without failing.
    let (status, health) = get(format!("{}/_wt/health", host.url)).await;
    assert_eq!(status, 200, "{health}");
    let pro = health["twins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "pro")
        .unwrap();
    assert_eq!(pro["license"], "license_missing");
}

#[tokio::test]
async fn expiry_takes_effect_at_exactly_exp_without_a_restart() {
    let keys = keys();
    let file = keys.dir.path().join("license.jwt");
    let t = now();
    let exp = t + 3;
    std::fs::write(&file, token(&keys, &["pro"], t - 5, exp)).unwrap();
    let host = start(&file, &[&keys.public]);
    let (status, body) = claims(&host).await;
    // The host may have taken a moment to start; only check while valid.
    if now() < exp {
        assert_eq!(status, 200, "{body}");
    }
    while now() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = claims(&host).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(refusal_code(&body), "license_expired");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&exp.to_string()),
        "{body}"
    );
}

#[tokio::test]
async fn refresh_from_expired_to_valid_by_file_change_and_by_sighup() {
    let keys = keys();
    let file = keys.dir.path().join("license.jwt");
    let t = now();
    std::fs::write(&file, token(&keys, &["pro"], t - 100, t - 1)).unwrap();
    let host = start(&file, &[&keys.public]);
    until_refused(&host, "license_expired").await;

    // A new file is noticed by the watcher (it polls every second).
    std::fs::write(&file, token(&keys, &["pro"], t - 100, t + 3600)).unwrap();
    until_status(&host, 200).await;

    // Replace it with a not-yet-valid one and say so with SIGHUP.
    std::fs::write(&file, token(&keys, &["pro"], t + 7200, t + 9000)).unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &host.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    until_refused(&host, "license_not_yet_valid").await;
}

#[tokio::test]
async fn the_audience_is_the_served_name_not_what_the_request_says() {
    let keys = keys();
    let file = keys.dir.path().join("license.jwt");
    let t = now();
    // Covers `licensed` (the name the fixture gives itself) and `stripe`,
    // but the host serves it as `pro`.
    std::fs::write(&file, token(&keys, &["licensed", "stripe"], t, t + 3600)).unwrap();
    let host = start(&file, &[&keys.public]);
    let (status, body) = claims(&host).await;
    assert_eq!(status, 402);
    assert_eq!(refusal_code(&body), "license_wrong_audience");
    // Naming a covered twin in the request changes nothing.
    let own = host.twin("pro").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    for request in [
        client
            .get(format!("{own}/claims"))
            .header("host", "stripe.localhost"),
        client
            .get(format!("{own}/claims?aud=stripe"))
            .header("x-wt-twin", "licensed"),
        client
            .get(format!("{}/pro/claims", host.url))
            .header("authorization", "Bearer stripe"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 402);
        let body = json(&response.text().await.unwrap());
        assert_eq!(refusal_code(&body), "license_wrong_audience");
    }
}

#[tokio::test]
async fn forged_unknown_and_rotated_keys() {
    let old = keys();
    let new = keys();
    let stranger = keys();
    let file = old.dir.path().join("license.jwt");
    let t = now();
    // Trusts old and new at once (a rotation); the stranger is not trusted.
    std::fs::write(&file, token(&old, &["pro"], t, t + 3600)).unwrap();
    let host = start(&file, &[&old.public, &new.public]);
    until_status(&host, 200).await;

    std::fs::write(&file, token(&new, &["pro"], t, t + 3600)).unwrap();
    let body = until_status(&host, 200).await;
    assert_eq!(body["claims"]["sub"], "acct_tests");

    std::fs::write(&file, token(&stranger, &["pro"], t, t + 3600)).unwrap();
    until_refused(&host, "license_unknown_key").await;

    // A trusted token whose claims were edited after signing.
    let good = token(&new, &["other"], t, t + 3600);
    let parts: Vec<&str> = good.split('.').collect();
    let claims = base64_url(
        &serde_json::json!({
            "iss": "tests", "sub": "acct_tests", "aud": "*", "tier": "pro",
            "iat": t, "nbf": t, "exp": t + 3600, "jti": "forged",
        })
        .to_string(),
    );
    std::fs::write(&file, format!("{}.{claims}.{}", parts[0], parts[2])).unwrap();
    until_refused(&host, "license_bad_signature").await;
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn license_verbs_keygen_issue_inspect_and_the_trial_cap() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("acme");
    let p = prefix.display().to_string();
    let out = run_to_exit(&["license", "keygen", "--out", &p]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.starts_with("kid wt-"), "{}", out.stdout);
    let again = run_to_exit(&["license", "keygen", "--out", &p]);
    assert_eq!(again.status.code(), Some(2));
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    let key = format!("{p}.key");
    let public = format!("{p}.pub");
    let issue = |tier: &str, days: &str| {
        run_to_exit(&[
            "license",
            "issue",
            "--signing-key",
            &key,
            "--sub",
            "acct_1",
            "--aud",
            "stripe,twilio",
            "--tier",
            tier,
            "--ttl-days",
            days,
        ])
    };
    // The trial cap: 7 days is the most a trial may run.
    let refused = issue("trial", "8");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert_eq!(
        refused.stderr.trim(),
        "wt-host: a trial license may run at most 7 days; this one runs 8.00"
    );
    let trial = issue("trial", "7");
    assert!(trial.status.success(), "{trial:?}");
    let token = trial.stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3);
    assert!(issue("pro", "365").status.success());

    let inspect = run_to_exit(&[
        "license",
        "inspect",
        &token,
        "--trust-key",
        &public,
        "--twin",
        "twilio",
    ]);
    assert!(inspect.status.success(), "{inspect:?}");
    assert!(inspect.stdout.contains("\"tier\": \"trial\""));
    assert!(inspect.stdout.contains("valid: yes for twin 'twilio'"));

    let wrong = run_to_exit(&[
        "license",
        "inspect",
        &token,
        "--trust-key",
        &public,
        "--twin",
        "clerk",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(wrong.stdout.contains("does not cover twin 'clerk'"));

    let untrusted = run_to_exit(&["license", "inspect", &token]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        untrusted.stdout.contains("signed by an unknown key"),
        "{}",
        untrusted.stdout
    );
    let missing_key = run_to_exit(&[
        "license",
        "issue",
        "--signing-key",
        "/nonexistent.key",
        "--sub",
        "a",
        "--aud",
        "*",
        "--tier",
        "pro",
        "--ttl-days",
        "1",
    ]);
    assert_eq!(missing_key.status.code(), Some(2));
    assert!(
        missing_key
            .stderr
            .starts_with("wt-host: --signing-key /nonexistent.key: cannot read"),
        "{}",
        missing_key.stderr
    );
}
