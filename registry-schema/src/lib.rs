//! The registry index: which twins exist, their versions, and the sha256 that
//! pins each version's one component artifact (the same bytes on every OS and
//! CPU). Unknown fields are refused so a typo in a hand-edited index fails
//! loudly instead of being ignored, and [`Index::validate`] checks what serde
//! cannot (names, versions, digests, `latest`).
//!
//! `schema/index.schema.json` is generated from these types
//! ([`json_schema`]); a test fails when the checked-in copy drifts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The format version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole index: `twins` keyed by `name` or `owner/name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Format version of this file; bump on incompatible changes.
    pub schema_version: u32,
    /// Twins by name (`stripe`) or owner and name (`acme/stripe`). A name
    /// appearing twice is an error, not "last one wins".
    #[serde(deserialize_with = "unique_keys")]
    pub twins: BTreeMap<String, TwinEntry>,
}

/// One twin and its published versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwinEntry {
    /// One line, shown by `wt-host list --available`.
    pub description: String,
    /// What kind of API it imitates (`payments`, `messaging`, `email`, `auth`,
    /// `analytics`, `media`, …).
    pub category: String,
    /// Who publishes it.
    pub author: String,
    /// Where its source lives.
    pub repo: String,
    /// The version `name@latest` resolves to.
    pub latest: String,
    /// Keyed by semver version. A version appearing twice is an error.
    #[serde(deserialize_with = "unique_keys")]
    pub versions: BTreeMap<String, Version>,
}

impl TwinEntry {
    /// Its versions for messages and listings: `0.9.0 (yanked), 1.0.0`.
    pub fn version_list(&self) -> String {
        self.versions
            .iter()
            .map(|(v, meta)| {
                if meta.yanked {
                    format!("{v} (yanked)")
                } else {
                    v.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// The one artifact, for every OS and CPU.
    pub component: Artifact,
    /// RFC 3339 time of publication.
    pub released: String,
    /// The vendor API version the twin imitates (`2024-06-20`).
    pub api_version: String,
    /// The vendor SDKs the twin is tested against (`stripe-python 16.1.0`).
    #[serde(default)]
    pub sdk_targets: Vec<String>,
    /// Whether serving it needs a license.
    pub tier: Tier,
    /// The WIT world the component implements (`wondertwin:twin@0.1.0`).
    pub world: String,
    /// Yanked versions resolve only when pinned exactly.
    #[serde(default)]
    pub yanked: bool,
}

/// Where the component is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Relative to the index, `file://`, or `http(s)://`.
    pub url: String,
    /// Lower-case hex sha256 of the component bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Whether serving the twin needs a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Anyone may run it.
    Free,
    /// Served only under a valid license.
    Pro,
}

/// What is wrong with an index, beyond what its types enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index schema_version {found} is not supported (this wt reads {SCHEMA_VERSION})")]
    SchemaVersion { found: u32 },
    #[error(
        "twin name {0:?} is not valid (lower-case `name` or `owner/name`: a-z, 0-9, '-', '_', starting with a letter)"
    )]
    Name(String),
    #[error("{twin}: version {version:?} is not semver")]
    Version { twin: String, version: String },
    #[error("{twin}: latest {latest:?} is not one of its versions")]
    Latest { twin: String, latest: String },
    #[error("{twin}@{version}: sha256 {sha256:?} is not 64 lower-case hex digits")]
    Digest {
        twin: String,
        version: String,
        sha256: String,
    },
}

impl Index {
    /// An index with no twins.
    pub fn empty() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            twins: BTreeMap::new(),
        }
    }

    /// Parses and validates an index.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let index: Self = serde_json::from_str(text).map_err(ParseError::Json)?;
        index.validate().map_err(ParseError::Invalid)?;
        Ok(index)
    }

    /// Checks names, versions, digests and `latest`.
    pub fn validate(&self) -> Result<(), IndexError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(IndexError::SchemaVersion {
                found: self.schema_version,
            });
        }
        for (name, entry) in &self.twins {
            if !is_valid_name(name) {
                return Err(IndexError::Name(name.clone()));
            }
            for (version, v) in &entry.versions {
                if semver::Version::parse(version).is_err() {
                    return Err(IndexError::Version {
                        twin: name.clone(),
                        version: version.clone(),
                    });
                }
                if !is_sha256_hex(&v.component.sha256) {
                    return Err(IndexError::Digest {
                        twin: name.clone(),
                        version: version.clone(),
                        sha256: v.component.sha256.clone(),
                    });
                }
            }
            if !entry.versions.contains_key(&entry.latest) {
                return Err(IndexError::Latest {
                    twin: name.clone(),
                    latest: entry.latest.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why index text could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("{0}")]
    Invalid(IndexError),
}

/// `name` or `owner/name`, each part a DNS-label-like lower-case word.
pub fn is_valid_name(name: &str) -> bool {
    let part = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
    };
    match name.split_once('/') {
        Some((owner, twin)) => part(owner) && part(twin),
        None => part(name),
    }
}

/// Whether `s` is a lower-case hex sha256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The JSON Schema of [`Index`], pretty-printed with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Index);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// Deserializes a map, refusing a key that appears twice.
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Visitor<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map with unique keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/index.json");
    const SCHEMA: &str = include_str!("../schema/index.schema.json");

    #[test]
    fn example_index_is_valid_and_round_trips() {
        let index = Index::from_json(EXAMPLE).unwrap();
        let hello = &index.twins["hello"];
        assert_eq!(hello.latest, "0.1.0");
        assert_eq!(hello.versions["0.1.0"].tier, Tier::Free);
        assert_eq!(
            index.twins["acme/stripe-pro"].versions["1.0.0"].tier,
            Tier::Pro
        );
        let again = Index::from_json(&serde_json::to_string(&index).unwrap()).unwrap();
        assert_eq!(again, index);
    }

    #[test]
    fn the_checked_in_schema_matches_the_types() {
        assert!(
            SCHEMA == json_schema(),
            "registry-schema/schema/index.schema.json is stale: run `cargo run -p wt-registry-schema --example write-schema`"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let typo = EXAMPLE.replacen("\"yanked\"", "\"yankd\"", 1);
        let err = Index::from_json(&typo).unwrap_err();
        assert!(err.to_string().contains("yankd"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let twice = r#"{"schema_version":1,"twins":{"a":X,"a":X}}"#.replace(
            'X',
            r#"{"description":"","category":"","author":"","repo":"","latest":"0.1.0","versions":{}}"#,
        );
        let err = Index::from_json(&twice).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"a\""), "{err}");
    }

    #[test]
    fn semantic_checks() {
        let index = Index::from_json(EXAMPLE).unwrap();
        let mut bad = index.clone();
        let entry = bad.twins.remove("hello").unwrap();
        bad.twins.insert("Hello".into(), entry);
        assert_eq!(bad.validate(), Err(IndexError::Name("Hello".into())));

        let mut bad = index.clone();
        bad.twins.get_mut("hello").unwrap().latest = "9.9.9".into();
        assert!(matches!(bad.validate(), Err(IndexError::Latest { .. })));

        let mut bad = index.clone();
        let v = bad
            .twins
            .get_mut("hello")
            .unwrap()
            .versions
            .get_mut("0.1.0")
            .unwrap();
        v.component.sha256 = "ABC".into();
        assert!(matches!(bad.validate(), Err(IndexError::Digest { .. })));

        let mut bad = index;
        bad.schema_version = 2;
        assert!(matches!(
            bad.validate(),
            Err(IndexError::SchemaVersion { found: 2 })
        ));
    }

    #[test]
    fn names() {
        for ok in ["stripe", "acme/stripe", "a-b_c2/x"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "/x", "x/", "a/b/c", "Stripe", "1x", "x y"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
