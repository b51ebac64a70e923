//! `wt-host license keygen|issue|inspect`: make signing keys, mint tokens,
//! and say whether a token would be accepted and, if not, why.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use wt_host::license::{self, IssueRequest, LicenseSource, Licensing, Tier, TrustStore};

use crate::errors::BadInput;

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Generate an Ed25519 signing key pair: PREFIX.key (private, PKCS#8 PEM)
    /// and PREFIX.pub (public, for `--trust-key`).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, value_name = "PREFIX", default_value = "wt-license")]
        out: PathBuf,
    },
    /// Sign a license token and print it.
    Issue(IssueArgs),
    /// Print a token's claims, whether it is valid now, and why not.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The private key from `license keygen`.
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// The licensed account.
    #[arg(long, value_name = "ACCOUNT")]
    sub: String,
    /// The twin identities covered, comma-separated, or `*`.
    #[arg(long, value_name = "TWINS", value_delimiter = ',', required = true)]
    aud: Vec<String>,
    /// `trial` (at most 7 days) or `pro`.
    #[arg(long, value_parser = parse_tier)]
    tier: Tier,
    /// Days from now until the license expires.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=3650))]
    ttl_days: u64,
    /// The issuer named in the token.
    #[arg(long, value_name = "ISSUER", default_value = "wt-host")]
    iss: String,
    /// Write the token here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A token, or a file holding one.
    token: String,
    /// Also trust this public key (PEM). Repeatable.
    #[arg(long = "trust-key", value_name = "FILE")]
    trust_keys: Vec<PathBuf>,
    /// Check the audience for this twin name too.
    #[arg(long, value_name = "NAME")]
    twin: Option<String>,
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.parse()
}

/// The trusted keys: the official one plus the operator's files.
pub fn trust_store(files: &[PathBuf]) -> anyhow::Result<TrustStore> {
    let mut trust = TrustStore::official();
    for file in files {
        trust
            .add_file(file)
            .map_err(|err| anyhow::Error::new(BadInput(format!("--trust-key {err}"))))?;
    }
    Ok(trust)
}

/// `--license FILE`, `WT_LICENSE`, or the default file, checked against the
/// trusted keys.
pub fn licensing(license: Option<PathBuf>, trust_keys: &[PathBuf]) -> anyhow::Result<Licensing> {
    let source = LicenseSource::resolve(license, std::env::var("WT_LICENSE").ok());
    Ok(Licensing::new(trust_store(trust_keys)?, source))
}

pub fn run(command: LicenseCommand) -> anyhow::Result<()> {
    match command {
        LicenseCommand::Keygen { out } => keygen(&out),
        LicenseCommand::Issue(args) => issue(args),
        LicenseCommand::Inspect(args) => inspect(args),
    }
}

fn keygen(prefix: &Path) -> anyhow::Result<()> {
    let private = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    for path in [&private, &public] {
        if path.exists() {
            return Err(BadInput(format!(
                "{}: already exists; refusing to overwrite a key",
                path.display()
            ))
            .into());
        }
    }
    let pair = license::keygen();
    write_private(&private, pair.private_pem.as_bytes())
        .with_context(|| format!("writing {}", private.display()))?;
    std::fs::write(&public, &pair.public_pem)
        .with_context(|| format!("writing {}", public.display()))?;
    println!("kid {}", pair.kid);
    println!("private key {} (keep it secret)", private.display());
    println!(
        "public key {} (pass to `wt-host run --trust-key`)",
        public.display()
    );
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

fn issue(args: IssueArgs) -> anyhow::Result<()> {
    let key = license::read_signing_key(&args.signing_key)
        .map_err(|err| BadInput(format!("--signing-key {err}")))?;
    let now = license::unix_now();
    let request = IssueRequest {
        issuer: args.iss,
        subject: args.sub,
        audience: args.aud.iter().map(|a| a.trim().to_owned()).collect(),
        tier: args.tier,
        not_before: now,
        expires: now + args.ttl_days * 86_400,
        issued_at: now,
    };
    let token = license::issue(&key, &request).map_err(|err| BadInput(err.to_string()))?;
    match args.output {
        Some(path) => write_private(&path, format!("{token}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{token}"),
    }
    Ok(())
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let trust = trust_store(&args.trust_keys)?;
    let text = if Path::new(&args.token).is_file() {
        std::fs::read_to_string(&args.token)
            .map_err(|err| BadInput(format!("{}: cannot read: {err}", args.token)))?
    } else {
        args.token.clone()
    };
    let now = license::unix_now();
    let mut out = std::io::stdout().lock();
    let verified = match trust.verify(&text) {
        Ok(verified) => verified,
        Err(problem) => {
            writeln!(out, "valid: no")?;
            writeln!(out, "why: {problem}")?;
            if let Ok(claims) =
                jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(text.trim())
            {
                writeln!(
                    out,
                    "claims (unverified): {}",
                    serde_json::to_string_pretty(&claims.claims)?
                )?;
            }
            return Err(anyhow::Error::new(Invalid));
        }
    };
    writeln!(out, "kid: {}", verified.kid)?;
    writeln!(
        out,
        "claims: {}",
        serde_json::to_string_pretty(&verified.claims)?
    )?;
    let twin = args.twin.as_deref();
    // Without a twin, only the time window is checked (`*` covers anything).
    let identity = twin.unwrap_or("*");
    let check = if twin.is_some() {
        verified.check(identity, now)
    } else {
        let mut any = verified.clone();
        any.claims.aud = license::Audience::One("*".into());
        any.check("*", now)
    };
    match check {
        Ok(()) => {
            writeln!(
                out,
                "valid: yes{} (expires in {})",
                twin.map(|t| format!(" for twin '{t}'")).unwrap_or_default(),
                human_secs(verified.claims.exp.saturating_sub(now))
            )?;
            Ok(())
        }
        Err(refusal) => {
            writeln!(out, "valid: no")?;
            writeln!(out, "why: {refusal}")?;
            Err(anyhow::Error::new(Invalid))
        }
    }
}

/// `inspect` found the token unusable: exit 1 with no further message (the
/// reason is already printed).
#[derive(Debug, thiserror::Error)]
#[error("the license is not valid")]
pub struct Invalid;

fn human_secs(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{:.1} days", s as f64 / 86_400.0),
        s if s >= 3_600 => format!("{:.1} hours", s as f64 / 3_600.0),
        s => format!("{s} s"),
    }
}
