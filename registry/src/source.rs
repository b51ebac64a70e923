//! Where a registry is: a folder (or `file://`), or an `http(s)://` URL of
//! its index.

use std::path::{Path, PathBuf};

use crate::Error;

/// A registry location. Its index is `index.json` in the folder, or the URL
/// itself when it ends in `.json` (else `<url>/index.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder holding `index.json` and the artifacts.
    Dir(PathBuf),
    /// The index's URL.
    Http(reqwest::Url),
}

impl Source {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || Error::BadSource(text.to_owned());
        if text.starts_with("http://") || text.starts_with("https://") {
            let mut url = reqwest::Url::parse(text).map_err(|_| bad())?;
            if !url.path().ends_with(".json") {
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                url = url.join("index.json").map_err(|_| bad())?;
            }
            return Ok(Self::Http(url));
        }
        let path = match text.strip_prefix("file://") {
            Some(rest) => PathBuf::from(rest),
            None if text.contains("://") => return Err(bad()),
            None => PathBuf::from(text),
        };
        if text.is_empty() {
            return Err(bad());
        }
        // A path to the index file itself names its folder.
        let dir = if path.extension().is_some_and(|e| e == "json") {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            path
        };
        Ok(Self::Dir(dir))
    }

    /// Where the index is, for messages.
    pub fn index_location(&self) -> String {
        match self {
            Self::Dir(dir) => dir.join("index.json").display().to_string(),
            Self::Http(url) => url.to_string(),
        }
    }

    /// An artifact URL from the index made absolute: relative ones resolve
    /// against the index; an https registry may not point at plain http.
    pub fn artifact_url(&self, url: &str) -> Result<String, Error> {
        let absolute =
            url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file://");
        match self {
            Self::Http(index) => {
                let resolved = index.join(url).map_err(|e| Error::Index {
                    origin: index.to_string(),
                    message: format!("artifact URL {url:?}: {e}"),
                })?;
                if index.scheme() == "https" && resolved.scheme() != "https" {
                    return Err(Error::Downgrade {
                        url: index.to_string(),
                        to: resolved.to_string(),
                    });
                }
                Ok(resolved.to_string())
            }
            Self::Dir(_) if absolute => Ok(url.to_owned()),
            Self::Dir(dir) => {
                if Path::new(url).is_absolute() || url.split('/').any(|p| p == "..") {
                    return Err(Error::Index {
                        origin: self.index_location(),
                        message: format!(
                            "artifact path {url:?} must stay inside the registry folder"
                        ),
                    });
                }
                Ok(dir.join(url).display().to_string())
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.index_location())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_files_and_urls() {
        assert_eq!(
            Source::parse("/r").unwrap(),
            Source::Dir(PathBuf::from("/r"))
        );
        assert_eq!(
            Source::parse("file:///r/index.json").unwrap(),
            Source::Dir(PathBuf::from("/r"))
        );
        let url = Source::parse("https://reg.example.com/wt").unwrap();
        assert_eq!(url.to_string(), "https://reg.example.com/wt/index.json");
        let url = Source::parse("http://127.0.0.1:9/x/index.json").unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:9/x/index.json");
        assert!(Source::parse("ftp://x").is_err());
        assert!(Source::parse("").is_err());
    }

    #[test]
    fn artifact_urls_resolve_against_the_index() {
        let https = Source::parse("https://reg.example.com/wt/").unwrap();
        assert_eq!(
            https.artifact_url("hello/0.1.0/hello.wasm").unwrap(),
            "https://reg.example.com/wt/hello/0.1.0/hello.wasm"
        );
        assert!(matches!(
            https.artifact_url("http://evil.example.com/x.wasm"),
            Err(Error::Downgrade { .. })
        ));
        let dir = Source::parse("/r").unwrap();
        assert_eq!(
            dir.artifact_url("a/1.0.0/a.wasm").unwrap(),
            "/r/a/1.0.0/a.wasm"
        );
        assert!(dir.artifact_url("../etc/passwd").is_err());
        assert!(dir.artifact_url("/etc/passwd").is_err());
    }
}
