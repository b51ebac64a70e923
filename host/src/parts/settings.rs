//! A twin's run-time settings: the quirk toggles and knobs it declares in
//! `describe`, their current values, and the checks on changing them.
//!
//! Values are JSON. A change must name a declared key and keep the declared
//! default's JSON type (a boolean stays a boolean), so a typo or a wrong type
//! is refused with a message instead of silently ignored. Each request reads
//! one immutable snapshot, so a change never lands halfway through a call.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

/// One declared setting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setting {
    pub key: String,
    pub description: String,
    pub default: Value,
}

/// Values as JSON text, keyed by setting: what the `config` import reads.
pub type Snapshot = Arc<BTreeMap<String, String>>;

/// Why a config change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("twin '{twin}' has no setting {key:?}; its settings are: {known}")]
    Unknown {
        twin: String,
        key: String,
        known: String,
    },
    #[error("setting {key:?} of twin '{twin}' takes {expected}, not {got}")]
    WrongType {
        twin: String,
        key: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("the twin's `describe` declares an unusable setting {key:?}: {reason}")]
    BadDeclaration { key: String, reason: String },
}

/// A twin's settings: the declarations, the values it starts with (defaults
/// overridden by the operator's project file or flags) and the current ones.
#[derive(Debug)]
pub struct Settings {
    twin: String,
    declared: Vec<Setting>,
    initial: RwLock<Snapshot>,
    current: RwLock<Snapshot>,
}

impl Settings {
    /// Settings from a twin's `describe` (defaults as JSON text).
    pub fn from_declared(
        twin: &str,
        declared: impl IntoIterator<Item = (String, String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (key, description, default_text) in declared {
            let default =
                serde_json::from_str(&default_text).map_err(|err| ConfigError::BadDeclaration {
                    key: key.clone(),
                    reason: format!("default {default_text:?} is not JSON: {err}"),
                })?;
            if !seen.insert(key.clone()) {
                return Err(ConfigError::BadDeclaration {
                    key,
                    reason: "declared twice".into(),
                });
            }
            settings.push(Setting {
                key,
                description,
                default,
            });
        }
        let initial: Snapshot = Arc::new(
            settings
                .iter()
                .map(|s| (s.key.clone(), s.default.to_string()))
                .collect(),
        );
        Ok(Self {
            twin: twin.to_owned(),
            declared: settings,
            current: RwLock::new(initial.clone()),
            initial: RwLock::new(initial),
        })
    }

    /// Makes `values` the starting point (what a reset returns to), as the
    /// operator configured the twin at start.
    pub fn set_initial(&self, values: &Map<String, Value>) -> Result<(), ConfigError> {
        let mut initial = self.initial.write().unwrap_or_else(|e| e.into_inner());
        let merged = self.merged(&initial, values)?;
        *initial = merged.clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = merged;
        Ok(())
    }

    /// Keeps `old`'s starting and current values for every key still
    /// declared with the same JSON type (a reload keeps the operator's
    /// choices; a changed or removed setting starts from its default).
    pub fn carry_over(&self, old: &Settings) {
        // By key, so a reload costs the same per setting however many there are.
        let old_types: std::collections::HashMap<&str, &'static str> = old
            .declared
            .iter()
            .map(|o| (o.key.as_str(), json_type(&o.default)))
            .collect();
        let keep = |from: &Snapshot, into: &mut BTreeMap<String, String>| {
            for s in &self.declared {
                let compatible = old_types.get(s.key.as_str()) == Some(&json_type(&s.default));
                if let (true, Some(value)) = (compatible, from.get(&s.key)) {
                    into.insert(s.key.clone(), value.clone());
                }
            }
        };
        let old_initial = old
            .initial
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let old_current = old.snapshot();
        let mut initial = (*self
            .initial
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
        .clone();
        keep(&old_initial, &mut initial);
        let mut current = initial.clone();
        keep(&old_current, &mut current);
        *self.initial.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(initial);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(current);
    }

    /// The same declarations and starting values, current values back at
    /// the start: a tenant's copy of the twin, which begins where the
    /// operator configured it, not where another world changed it to.
    pub fn fork(&self) -> Settings {
        let initial = self
            .initial
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Settings {
            twin: self.twin.clone(),
            declared: self.declared.clone(),
            current: RwLock::new(initial.clone()),
            initial: RwLock::new(initial),
        }
    }

    /// The values a request sees.
    pub fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies a partial change: keys not named keep their values. Nothing
    /// changes unless every key is valid.
    pub fn update(&self, values: &Map<String, Value>) -> Result<(), ConfigError> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = self.merged(&current, values)?;
        Ok(())
    }

    /// Back to the starting values.
    pub fn reset(&self) {
        let initial = self
            .initial
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = initial;
    }

    /// `{settings: [{key, description, default, value}]}` for the control plane.
    pub fn to_json(&self) -> Value {
        let current = self.snapshot();
        let settings: Vec<Value> = self
            .declared
            .iter()
            .map(|s| {
                let value = current
                    .get(&s.key)
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or(Value::Null);
                serde_json::json!({
                    "key": s.key,
                    "description": s.description,
                    "default": s.default,
                    "value": value,
                })
            })
            .collect();
        serde_json::json!({ "twin": self.twin, "settings": settings })
    }

    fn merged(
        &self,
        base: &Snapshot,
        values: &Map<String, Value>,
    ) -> Result<Snapshot, ConfigError> {
        let mut next = (**base).clone();
        for (key, value) in values {
            let Some(setting) = self.declared.iter().find(|s| &s.key == key) else {
                let known: Vec<&str> = self.declared.iter().map(|s| s.key.as_str()).collect();
                return Err(ConfigError::Unknown {
                    twin: self.twin.clone(),
                    key: key.clone(),
                    known: if known.is_empty() {
                        "(none)".into()
                    } else {
                        known.join(", ")
                    },
                });
            };
            let expected = json_type(&setting.default);
            let got = json_type(value);
            // A null default declares "any type"; numbers are one type.
            if !setting.default.is_null() && expected != got {
                return Err(ConfigError::WrongType {
                    twin: self.twin.clone(),
                    key: key.clone(),
                    expected,
                    got,
                });
            }
            next.insert(key.clone(), value.to_string());
        }
        Ok(Arc::new(next))
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings::from_declared(
            "t",
            [
                ("strict".into(), "Be strict.".into(), "true".into()),
                ("delay".into(), "Delay.".into(), "30".into()),
            ],
        )
        .unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_then_updates_then_reset() {
        let s = settings();
        assert_eq!(s.snapshot().get("strict").map(String::as_str), Some("true"));
        s.update(&map(json!({"strict": false}))).unwrap();
        assert_eq!(
            s.snapshot().get("strict").map(String::as_str),
            Some("false")
        );
        assert_eq!(s.snapshot().get("delay").map(String::as_str), Some("30"));
        s.reset();
        assert_eq!(s.snapshot().get("strict").map(String::as_str), Some("true"));
    }

    #[test]
    fn initial_values_are_what_reset_returns_to() {
        let s = settings();
        s.set_initial(&map(json!({"delay": 5}))).unwrap();
        s.update(&map(json!({"delay": 9}))).unwrap();
        s.reset();
        assert_eq!(s.snapshot().get("delay").map(String::as_str), Some("5"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_change_nothing() {
        let s = settings();
        let err = s
            .update(&map(json!({"strict": false, "strcit": true})))
            .unwrap_err();
        assert!(err.to_string().contains("strict, delay"), "{err}");
        let err = s.update(&map(json!({"delay": "soon"}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting \"delay\" of twin 't' takes a number, not a string"
        );
        assert_eq!(s.snapshot().get("strict").map(String::as_str), Some("true"));
    }

    #[test]
    fn bad_declarations_are_refused() {
        let bad = Settings::from_declared("t", [("k".into(), "d".into(), "nope".into())]);
        assert!(matches!(bad, Err(ConfigError::BadDeclaration { .. })));
        let twice = Settings::from_declared(
            "t",
            [
                ("k".into(), "d".into(), "1".into()),
                ("k".into(), "d".into(), "2".into()),
            ],
        );
        assert!(matches!(twice, Err(ConfigError::BadDeclaration { .. })));
    }

    #[test]
    fn json_lists_values_beside_defaults() {
        let s = settings();
        s.update(&map(json!({"delay": 1}))).unwrap();
        let j = s.to_json();
        assert_eq!(
            j["settings"][1],
            json!({"key": "delay", "description": "Delay.", "default": 30, "value": 1})
        );
    }
}
