//! `wt.toml`: a project's twins, ports, settings and host options, so
//! `wt-host run` with no arguments starts the whole set, and the control
//! verbs find the running host.
//!
//! ```toml
//! listen = "127.0.0.1:4100"
//! state_dir = ".wt/state"
//!
//! [twins.stripe]
//! source = "stripe@0.1.0"          # an installed twin, or a path to a .wasm
//! port = 4111
//! config = { strict = true }        # settings the twin declares
//!
//! [twins.hello]
//! source = "target/twins/hello.wasm"
//! ```
//!
//! Relative paths are relative to the file. `docs/wt.toml.schema.json` is
//! generated from these types ([`json_schema`]); a test keeps it current.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

/// The file `wt-host run` looks for in the current directory.
pub const FILE_NAME: &str = "wt.toml";

/// A project file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Address of the shared listener (default `127.0.0.1:4100`); the
    /// control verbs talk to it.
    pub listen: Option<SocketAddr>,
    /// Keep each twin's state here (a redb file per twin) so it survives
    /// restarts.
    pub state_dir: Option<PathBuf>,
    /// Registries for `wt-host install`, in precedence order.
    #[serde(default)]
    pub registries: Vec<String>,
    /// Public keys (PEM) trusted to sign licenses, beside the official one.
    #[serde(default)]
    pub trust_keys: Vec<PathBuf>,
    /// The license file for paid twins.
    pub license: Option<PathBuf>,
    /// The lockfile (default `wt.lock` beside this file).
    pub lockfile: Option<PathBuf>,
    /// Destinations twins may send webhooks to beyond loopback
    /// (`HOST[:PORT]`, `*.domain`, or `self`), added to `--allow-outbound`.
    #[serde(default)]
    pub allow_outbound: Vec<String>,
    /// Extra `Host` names the listeners answer to (a proxy's, a container's
    /// service name), added to `--allow-host`.
    #[serde(default)]
    pub allow_host: Vec<String>,
    /// A domain twins are also named under (`--domain`):
    /// `stripe.twins.example.internal`, `stripe.ci-7.twins.example.internal`.
    pub domain: Option<String>,
    /// Twins by the name they are served under.
    #[serde(default)]
    pub twins: BTreeMap<String, ProjectTwin>,
}

/// One twin of a project.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectTwin {
    /// A component path (`target/twins/stripe.wasm`) or an installed twin
    /// (`stripe`, `stripe@0.1.0`, `acme/stripe`).
    pub source: String,
    /// Its own port (0 for any free port); default: the port its
    /// `describe` names.
    pub port: Option<u16>,
    /// Values for settings the twin declares; a reset returns to these.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// Why a project file could not be used: one line naming the file and,
/// where known, the line and field.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{path}: cannot read: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: twin {name:?}: {message}")]
    Twin {
        path: String,
        name: String,
        message: String,
    },
}

impl Project {
    /// Reads and checks a project file; relative paths become relative to
    /// its folder.
    pub fn load(path: &Path) -> Result<Self, ProjectError> {
        let text = std::fs::read_to_string(path).map_err(|error| ProjectError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let mut project: Project = toml::from_str(&text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(&text, span.start))
                .unwrap_or((1, 1));
            ProjectError::Parse {
                path: path.display().to_string(),
                line,
                column,
                message: e.message().replace('\n', " "),
            }
        })?;
        for name in project.twins.keys() {
            if !crate::names::is_valid_name(name) {
                return Err(ProjectError::Twin {
                    path: path.display().to_string(),
                    name: name.clone(),
                    message: "not a usable twin name (1-63 of a-z, 0-9, '-', '_', starting with a letter)".into(),
                });
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = project.state_dir.as_mut() {
            rebase(p);
        }
        if let Some(p) = project.license.as_mut() {
            rebase(p);
        }
        if let Some(p) = project.lockfile.as_mut() {
            rebase(p);
        }
        project.trust_keys.iter_mut().for_each(rebase);
        for registry in &mut project.registries {
            // A folder registry is relative to the file; URLs are not paths.
            if !registry.contains("://") && Path::new(registry.as_str()).is_relative() {
                *registry = base.join(registry.as_str()).display().to_string();
            }
        }
        for twin in project.twins.values_mut() {
            // A path-looking source is relative to the file; a spec is not a path.
            if twin.source.ends_with(".wasm") && Path::new(&twin.source).is_relative() {
                twin.source = base.join(&twin.source).display().to_string();
            }
        }
        if project.lockfile.is_none() {
            project.lockfile = Some(base.join("wt.lock"));
        }
        Ok(project)
    }

    /// `wt.toml` in the current directory, if there is one.
    pub fn find() -> Option<PathBuf> {
        let path = PathBuf::from(FILE_NAME);
        path.is_file().then_some(path)
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The JSON Schema of `wt.toml`, pretty-printed with a trailing newline
/// (editors with TOML schema support use it).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Project);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Project, ProjectError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wt.toml");
        std::fs::write(&path, text).unwrap();
        Project::load(&path).map(|mut p| {
            // Make paths comparable across temp dirs.
            let strip = |p: &mut PathBuf| {
                if let Ok(rest) = p.strip_prefix(dir.path()) {
                    *p = rest.to_path_buf();
                }
            };
            p.state_dir.as_mut().map(strip);
            p.lockfile.as_mut().map(strip);
            for t in p.twins.values_mut() {
                t.source = t
                    .source
                    .trim_start_matches(&format!("{}/", dir.path().display()))
                    .to_owned();
            }
            p
        })
    }

    #[test]
    fn a_full_project_parses_with_paths_relative_to_the_file() {
        let p = load(
            r#"
listen = "127.0.0.1:4200"
state_dir = "state"

[twins.stripe]
source = "stripe@0.1.0"
port = 4111
config = { strict = true, delay = 3 }

[twins.hello]
source = "twins/hello.wasm"
"#,
        )
        .unwrap();
        assert_eq!(p.listen, Some("127.0.0.1:4200".parse().unwrap()));
        assert_eq!(p.state_dir, Some(PathBuf::from("state")));
        assert_eq!(p.lockfile, Some(PathBuf::from("wt.lock")));
        assert_eq!(p.twins["stripe"].source, "stripe@0.1.0");
        assert_eq!(p.twins["stripe"].port, Some(4111));
        assert_eq!(p.twins["stripe"].config["strict"], true);
        assert_eq!(p.twins["hello"].source, "twins/hello.wasm");
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let err = load("listen = \"127.0.0.1:4200\"\n[twins.a]\nsource = \"x.wasm\"\nprot = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("wt.toml:4:1: unknown field `prot`"), "{err}");
        let err = load("listen = \"nope\"\n").unwrap_err().to_string();
        assert!(err.contains("wt.toml:1:10:"), "{err}");
        let err = load("[twins.Bad]\nsource = \"x.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("twin \"Bad\": not a usable twin name"),
            "{err}"
        );
    }

    #[test]
    fn the_readme_example_is_a_valid_project() {
        let readme = include_str!("../../../README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("README has a ```toml block");
        let project = load(example).unwrap_or_else(|e| panic!("README's wt.toml: {e}"));
        assert!(!project.twins.is_empty() && !project.allow_outbound.is_empty());
    }

    #[test]
    fn the_checked_in_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/wt.toml.schema.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == json_schema(),
            "docs/wt.toml.schema.json is stale: run `cargo run -p wt-host -- schema > docs/wt.toml.schema.json`"
        );
    }
}
