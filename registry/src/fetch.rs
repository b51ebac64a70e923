//! Reading indexes and artifacts: from folders, or over HTTP(S) with rustls
//! (TLS 1.2 or newer, bundled web roots so a fresh machine needs no system
//! store), connect and stall timeouts, a User-Agent, and a redirect policy
//! that never downgrades https to http.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use wt_registry_schema::{Artifact, Index};

use crate::{Error, Source};

/// How patient and how loud the client is.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response: a stalled server fails
    /// after this, however large the file.
    pub read_timeout: Duration,
    /// Show a progress bar for downloads (only drawn on a terminal).
    pub progress: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            progress: true,
        }
    }
}

/// Fetches indexes and artifacts.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    options: ClientOptions,
}

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self, Error> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let was_https = attempt.previous().iter().any(|u| u.scheme() == "https");
            if was_https && attempt.url().scheme() != "https" {
                let to = attempt.url().to_string();
                return attempt.error(format!(
                    "refusing to follow a redirect from https to plain http ({to})"
                ));
            }
            attempt.follow()
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "wt-host/",
                env!("CARGO_PKG_VERSION"),
                " (registry)"
            ))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .https_only(false)
            .redirect(policy)
            .build()
            .map_err(|e| Error::Http {
                url: "(client)".into(),
                message: e.to_string(),
            })?;
        Ok(Self { http, options })
    }

    /// Reads and validates a registry's index.
    pub async fn index(&self, source: &Source) -> Result<Index, Error> {
        let origin = source.index_location();
        let text = match source {
            Source::Dir(dir) => {
                let path = dir.join("index.json");
                std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?
            }
            Source::Http(url) => {
                let response = self.get(url.as_str()).await?;
                response
                    .text()
                    .await
                    .map_err(|e| http_error(url.as_str(), &e, &self.options))?
            }
        };
        Index::from_json(&text).map_err(|e| Error::Index {
            origin,
            message: e.to_string(),
        })
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, Error> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| http_error(url, &e, &self.options))?;
        if !response.status().is_success() {
            return Err(Error::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        Ok(response)
    }

    /// Writes the artifact to `dest` and checks its size and sha256; on any
    /// failure `dest` may hold partial bytes and the caller deletes it.
    pub async fn download(
        &self,
        artifact: &Artifact,
        dest: &Path,
        label: &str,
    ) -> Result<(), Error> {
        let url = artifact.url.as_str();
        let mut file = std::fs::File::create(dest).map_err(|e| Error::io(dest, e))?;
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        let mut accept = |chunk: &[u8]| -> Result<(), Error> {
            written += chunk.len() as u64;
            // Stop at once when a server sends more than promised.
            if written > artifact.size {
                return Err(Error::SizeMismatch {
                    url: url.to_owned(),
                    expected: artifact.size,
                    actual: written,
                });
            }
            hasher.update(chunk);
            file.write_all(chunk).map_err(|e| Error::io(dest, e))
        };
        if url.starts_with("http://") || url.starts_with("https://") {
            let mut response = self.get(url).await?;
            let bar = self.progress_bar(artifact.size, label);
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| http_error(url, &e, &self.options))?
            {
                accept(&chunk)?;
                bar.inc(chunk.len() as u64);
            }
            bar.finish_and_clear();
        } else {
            let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            accept(&bytes)?;
        }
        file.sync_all().map_err(|e| Error::io(dest, e))?;
        let actual = hex::encode(hasher.finalize());
        if written != artifact.size {
            return Err(Error::SizeMismatch {
                url: url.to_owned(),
                expected: artifact.size,
                actual: written,
            });
        }
        if actual != artifact.sha256 {
            return Err(Error::DigestMismatch {
                url: url.to_owned(),
                expected: artifact.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }

    fn progress_bar(&self, size: u64, label: &str) -> ProgressBar {
        if !self.options.progress {
            return ProgressBar::hidden();
        }
        // indicatif draws to stderr only when it is a terminal.
        let bar = ProgressBar::new(size);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        bar
    }
}

/// One line for a failed request: timeouts and redirects say so plainly.
fn http_error(url: &str, err: &reqwest::Error, options: &ClientOptions) -> Error {
    let message = if err.is_timeout() {
        format!(
            "timed out (connect {:?}, no data for {:?})",
            options.connect_timeout, options.read_timeout
        )
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    };
    Error::Http {
        url: url.to_owned(),
        message,
    }
}
