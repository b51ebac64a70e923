//! Property filters as PostHog's flag service evaluates them: equality,
//! text, regex, numeric, date and semantic-version operators. Server-side
//! semantics throughout: a filter that cannot be decided (a missing
//! property, a value of the wrong kind, an unknown operator) does not match,
//! except `is_not_set`, which a missing property satisfies.

use serde_json::{Map, Value};
use wt_sdk::{clock, datetime};

/// A value as text for comparisons: strings as they are, booleans and
/// numbers as JSON writes them.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether `properties` satisfy one property filter (cohort and flag
/// filters are decided by the evaluator, not here, and never match here).
pub fn match_property(filter: &Value, properties: &Map<String, Value>) -> bool {
    let Some(key) = filter.get("key").and_then(Value::as_str) else {
        return false;
    };
    if matches!(
        filter.get("type").and_then(Value::as_str),
        Some("cohort" | "flag")
    ) {
        return false;
    }
    let operator = filter
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("exact");
    let expected = filter.get("value").unwrap_or(&Value::Null);
    let Some(actual) = properties.get(key) else {
        return operator == "is_not_set";
    };
    let lower = |v: &Value| as_text(v).to_lowercase();
    match operator {
        "is_set" => true,
        "is_not_set" => false,
        "exact" | "is_not" => {
            let actual = lower(actual);
            let hit = match expected {
                Value::Array(options) => options.iter().any(|o| lower(o) == actual),
                other => lower(other) == actual,
            };
            hit == (operator == "exact")
        }
        "icontains" | "not_icontains" => {
            lower(actual).contains(&lower(expected)) == (operator == "icontains")
        }
        "starts_with" | "not_starts_with" => {
            lower(actual).starts_with(&lower(expected)) == (operator == "starts_with")
        }
        "ends_with" | "not_ends_with" => {
            lower(actual).ends_with(&lower(expected)) == (operator == "ends_with")
        }
        "regex" | "not_regex" => match regex_lite::Regex::new(&as_text(expected)) {
            Ok(re) => re.is_match(&as_text(actual)) == (operator == "regex"),
            Err(_) => false,
        },
        "gt" | "gte" | "lt" | "lte" => match (as_number(actual), as_number(expected)) {
            (Some(a), Some(e)) => match operator {
                "gt" => a > e,
                "gte" => a >= e,
                "lt" => a < e,
                _ => a <= e,
            },
            _ => false,
        },
        "is_date_before" | "is_date_after" => {
            let (Some(limit), Some(at)) = (
                date_filter(&as_text(expected), clock::now_millis()),
                actual.as_str().and_then(datetime::parse_millis),
            ) else {
                return false;
            };
            if operator == "is_date_before" {
                at < limit
            } else {
                at > limit
            }
        }
        op if op.starts_with("semver_") => match_semver(op, expected, actual).unwrap_or(false),
        _ => false,
    }
}

/// A date filter value: `-{n}{h|d|w|m|y}` before `now` (twin time; n below
/// 10,000, months and years on the calendar with the day clamped), or an
/// ISO 8601 date or date-time.
pub fn date_filter(value: &str, now: u64) -> Option<u64> {
    let value = value.trim();
    let relative = value.strip_prefix('-').unwrap_or(value);
    if let Some(unit) = relative.chars().last().filter(char::is_ascii_lowercase) {
        let digits = &relative[..relative.len() - 1];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = digits.parse().ok().filter(|n| *n < 10_000)?;
            const HOUR: u64 = 3_600_000;
            return match unit {
                'h' => now.checked_sub(n * HOUR),
                'd' => now.checked_sub(n * 24 * HOUR),
                'w' => now.checked_sub(n * 7 * 24 * HOUR),
                'm' => months_before(now, n),
                'y' => months_before(now, n * 12),
                _ => None,
            };
        }
    }
    datetime::parse_millis(value)
}

/// `now` moved `months` calendar months back, keeping the time of day and
/// clamping the day to the target month's length.
fn months_before(now: u64, months: u64) -> Option<u64> {
    let text = datetime::format_millis(now);
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: i64 = text.get(5..7)?.parse().ok()?;
    let day: u32 = text.get(8..10)?.parse().ok()?;
    let index = year * 12 + (month - 1) - i64::try_from(months).ok()?;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    if year < 1970 {
        return None;
    }
    // The last valid day of the target month.
    let last = (28..=31)
        .rev()
        .find(|d| datetime::parse_millis(&format!("{year:04}-{month:02}-{d:02}")).is_some())?;
    datetime::parse_millis(&format!(
        "{year:04}-{month:02}-{:02}{}",
        day.min(last),
        text.get(10..)?
    ))
}

/// `(major, minor, patch)`.
pub type Version = (u64, u64, u64);

/// A version as `(major, minor, patch)`: an optional `v`, missing parts 0,
/// pre-release and build suffixes ignored, numbers without leading zeros.
pub fn parse_semver(text: &str) -> Option<Version> {
    let text = text.trim().trim_start_matches(['v', 'V']);
    let core = text.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.');
    let major = numeric(parts.next()?)?;
    let part = |p: Option<&str>| match p {
        None | Some("") => Some(0),
        Some(p) => numeric(p),
    };
    let minor = part(parts.next())?;
    let patch = part(parts.next())?;
    Some((major, minor, patch))
}

fn numeric(part: &str) -> Option<u64> {
    if part.is_empty()
        || !part.bytes().all(|b| b.is_ascii_digit())
        || (part.len() > 1 && part.starts_with('0'))
    {
        return None;
    }
    part.parse().ok()
}

/// The `[lower, upper)` range of `~`, `^` and `*` filters.
fn semver_range(operator: &str, value: &str) -> Option<(Version, Version)> {
    match operator {
        "semver_tilde" => {
            let (a, b, c) = parse_semver(value)?;
            Some(((a, b, c), (a, b + 1, 0)))
        }
        "semver_caret" => {
            let (a, b, c) = parse_semver(value)?;
            let upper = if a > 0 {
                (a + 1, 0, 0)
            } else if b > 0 {
                (0, b + 1, 0)
            } else {
                (0, 0, c + 1)
            };
            Some(((a, b, c), upper))
        }
        "semver_wildcard" => {
            let cleaned = value.trim().trim_start_matches(['v', 'V']).replace('*', "");
            let parts: Vec<&str> = cleaned
                .trim_end_matches('.')
                .split('.')
                .filter(|p| !p.is_empty())
                .collect();
            match parts.as_slice() {
                [a] => {
                    let a = numeric(a)?;
                    Some(((a, 0, 0), (a + 1, 0, 0)))
                }
                [a, b] => {
                    let (a, b) = (numeric(a)?, numeric(b)?);
                    Some(((a, b, 0), (a, b + 1, 0)))
                }
                [a, b, c, ..] => {
                    let (a, b, c) = (numeric(a)?, numeric(b)?, numeric(c)?);
                    Some(((a, b, c), (a, b, c + 1)))
                }
                [] => None,
            }
        }
        _ => None,
    }
}

/// The `semver_*` operators; `None` when either side is not a version.
fn match_semver(operator: &str, expected: &Value, actual: &Value) -> Option<bool> {
    let have = parse_semver(actual.as_str()?)?;
    let want = as_text(expected);
    if let Some((lower, upper)) = semver_range(operator, &want) {
        return Some(lower <= have && have < upper);
    }
    let want = parse_semver(&want)?;
    Some(match operator {
        "semver_eq" => have == want,
        "semver_neq" => have != want,
        "semver_gt" => have > want,
        "semver_gte" => have >= want,
        "semver_lt" => have < want,
        "semver_lte" => have <= want,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(filter: Value, props: Value) -> bool {
        match_property(&filter, props.as_object().unwrap())
    }

    #[test]
    fn text_operators() {
        let p = json!({"url": "https://App.example.com/x"});
        assert!(m(
            json!({"key": "url", "operator": "starts_with", "value": "https://app"}),
            p.clone()
        ));
        assert!(m(
            json!({"key": "url", "operator": "ends_with", "value": "/X"}),
            p.clone()
        ));
        assert!(m(
            json!({"key": "url", "operator": "not_starts_with", "value": "http://"}),
            p.clone()
        ));
        assert!(!m(
            json!({"key": "url", "operator": "not_ends_with", "value": "/x"}),
            p
        ));
    }

    #[test]
    fn date_operators_use_twin_time() {
        wt_sdk::testing::set_now_millis(datetime::parse_millis("2024-03-31T12:00:00Z").unwrap());
        let p = json!({"signup": "2024-03-20T00:00:00Z", "bad": "not a date"});
        assert!(m(
            json!({"key": "signup", "operator": "is_date_after", "value": "-2w"}),
            p.clone()
        ));
        assert!(!m(
            json!({"key": "signup", "operator": "is_date_after", "value": "-7d"}),
            p.clone()
        ));
        assert!(m(
            json!({"key": "signup", "operator": "is_date_before", "value": "2024-03-21"}),
            p.clone()
        ));
        assert!(!m(
            json!({"key": "bad", "operator": "is_date_before", "value": "2030-01-01"}),
            p.clone()
        ));
        assert!(!m(
            json!({"key": "signup", "operator": "is_date_before", "value": "yesterday"}),
            p
        ));
        let now = datetime::parse_millis("2024-03-31T12:00:00Z").unwrap();
        assert_eq!(
            date_filter("-1m", now)
                .map(datetime::format_millis)
                .as_deref(),
            Some("2024-02-29T12:00:00.000Z")
        );
        assert_eq!(
            date_filter("-1y", now)
                .map(datetime::format_millis)
                .as_deref(),
            Some("2023-03-31T12:00:00.000Z")
        );
        assert_eq!(date_filter("-3h", now), Some(now - 3 * 3_600_000));
        assert_eq!(date_filter("-10000d", now), None);
    }

    #[test]
    fn semver_operators() {
        assert_eq!(parse_semver("v1.2.3-beta+7"), Some((1, 2, 3)));
        assert_eq!(parse_semver("2"), Some((2, 0, 0)));
        assert_eq!(parse_semver("1.02.0"), None);
        assert_eq!(parse_semver("x"), None);
        let p = json!({"v": "1.4.2", "junk": "abc"});
        let s = |op: &str, value: &str| {
            m(
                json!({"key": "v", "operator": op, "value": value}),
                p.clone(),
            )
        };
        assert!(s("semver_eq", "1.4.2") && s("semver_neq", "1.4.3"));
        assert!(s("semver_gt", "1.4.1") && s("semver_gte", "1.4.2"));
        assert!(s("semver_lt", "1.10.0") && s("semver_lte", "1.4.2"));
        assert!(s("semver_tilde", "1.4.0") && !s("semver_tilde", "1.3.0"));
        assert!(s("semver_caret", "1.0.0") && !s("semver_caret", "0.9.0"));
        assert!(
            s("semver_wildcard", "1.*")
                && s("semver_wildcard", "1.4.*")
                && !s("semver_wildcard", "1.5.*")
        );
        assert!(!m(
            json!({"key": "junk", "operator": "semver_eq", "value": "1.0.0"}),
            p.clone()
        ));
        assert!(!s("semver_eq", "nope"));
        assert!(!s("semver_bogus", "1.4.2"));
    }
}
