//! The registry index: which twins exist, their versions, and the sha256 that
//! pins each version's one component artifact (the same bytes on every OS and
//! CPU). Unknown fields are refused so a typo in a hand-edited index fails
//! loudly instead of being ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole index: `twins` keyed by `name` or `owner/name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Format version of this file; bump on incompatible changes.
    pub schema_version: u32,
    pub twins: BTreeMap<String, TwinEntry>,
}

/// One twin and its published versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinEntry {
    pub description: String,
    /// The version `name@latest` resolves to.
    pub latest: String,
    /// Keyed by semver version.
    pub versions: BTreeMap<String, Version>,
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    pub component: Artifact,
    /// The vendor API version the twin imitates.
    pub api_version: String,
    pub tier: Tier,
    /// RFC 3339 date of publication.
    pub released: String,
    /// Yanked versions resolve only when pinned exactly.
    #[serde(default)]
    pub yanked: bool,
}

/// Where the component is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Relative to the index, `file://`, or `http(s)://`.
    pub url: String,
    /// Lower-case hex sha256 of the component bytes.
    pub sha256: String,
    pub size: u64,
}

/// Whether serving the twin needs a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Pro,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/index.json");

    #[test]
    fn example_index_parses_and_round_trips() {
        let index: Index = serde_json::from_str(EXAMPLE).unwrap();
        let hello = &index.twins["hello"];
        assert_eq!(hello.latest, "0.1.0");
        assert_eq!(hello.versions["0.1.0"].tier, Tier::Free);
        let again: Index = serde_json::from_str(&serde_json::to_string(&index).unwrap()).unwrap();
        assert_eq!(again, index);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let typo = EXAMPLE.replace("\"yanked\"", "\"yankd\"");
        let err = serde_json::from_str::<Index>(&typo).unwrap_err();
        assert!(err.to_string().contains("yankd"), "{err}");
    }
}
