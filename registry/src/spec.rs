//! `name`, `name@1.2.3`, `name@latest`, `owner/name@…`.

use crate::Error;

/// Which version a spec asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionReq {
    /// No `@`: the lockfile's pin if there is one, else `latest`.
    Unspecified,
    /// `@latest`: the index's latest, ignoring the lockfile.
    Latest,
    /// `@1.2.3`: exactly this version (yanked or not).
    Exact(String),
}

/// A twin named on the command line or in the project file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub version: VersionReq,
}

impl Spec {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || Error::BadSpec(text.to_owned());
        let (name, version) = match text.split_once('@') {
            None => (text, VersionReq::Unspecified),
            Some((name, "latest")) => (name, VersionReq::Latest),
            Some((name, version)) => {
                semver::Version::parse(version).map_err(|_| bad())?;
                (name, VersionReq::Exact(version.to_owned()))
            }
        };
        if !wt_registry_schema::is_valid_name(name) {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_owned(),
            version,
        })
    }

    /// The name the host serves the twin under: the part after `owner/`.
    pub fn route_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            VersionReq::Unspecified => write!(f, "{}", self.name),
            VersionReq::Latest => write!(f, "{}@latest", self.name),
            VersionReq::Exact(v) => write!(f, "{}@{v}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Spec::parse("stripe").unwrap().version,
            VersionReq::Unspecified
        );
        assert_eq!(
            Spec::parse("stripe@latest").unwrap().version,
            VersionReq::Latest
        );
        let s = Spec::parse("acme/stripe@0.2.0").unwrap();
        assert_eq!(
            (s.name.as_str(), s.route_name(), s.version.clone()),
            ("acme/stripe", "stripe", VersionReq::Exact("0.2.0".into()))
        );
        for bad in [
            "",
            "Stripe",
            "stripe@",
            "stripe@1",
            "stripe@x.y.z",
            "a/b/c",
            "stripe.wasm",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }
}
