//! The twin's run-time settings (quirk toggles and knobs).
//!
//! A twin declares each setting with its default in [`crate::Info::settings`];
//! the operator changes them through `PUT /_wt/twins/{t}/config` or the
//! project file, and the twin reads the current value here on every request.
//! Reading an undeclared key gives `None`, so a typo shows up in tests rather
//! than as a silently ignored quirk.
//!
//! ```
//! use wt_sdk::config;
//! // Outside a twin (and in native tests without a declared setting): unset.
//! assert_eq!(config::get("strict"), None);
//! assert!(!config::flag("strict"));
//! ```

use serde_json::Value;

/// The current value of a declared setting.
pub fn get(key: &str) -> Option<Value> {
    let text = crate::sys::config_get(key)?;
    // The host only stores values that parsed as JSON; a value that does not
    // parse here can only come from a host bug, so treat it as unset.
    serde_json::from_str(&text).ok()
}

/// A boolean setting; `false` when unset or not a boolean.
pub fn flag(key: &str) -> bool {
    get(key).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// A string setting.
pub fn string(key: &str) -> Option<String> {
    match get(key)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// An integer setting.
pub fn integer(key: &str) -> Option<i64> {
    get(key)?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn reads_typed_values_and_unset_keys() {
        testing::reset();
        testing::set_config("strict", serde_json::json!(true));
        testing::set_config("region", serde_json::json!("eu"));
        testing::set_config("delay-ms", serde_json::json!(250));
        assert!(flag("strict"));
        assert_eq!(string("region").as_deref(), Some("eu"));
        assert_eq!(integer("delay-ms"), Some(250));
        assert_eq!(integer("region"), None);
        assert!(!flag("region"));
        assert_eq!(get("missing"), None);
    }
}
