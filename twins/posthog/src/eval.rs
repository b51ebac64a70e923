//! Flag evaluation, hashed exactly as PostHog does so that the SDK's local
//! evaluation and the twin's `/flags` agree for every distinct id, and the
//! `/flags` and legacy `/decide` endpoints.

use std::cell::RefCell;

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use wt_sdk::{Error, Request, Response, clock, ids};

use crate::cohorts::{self, Cohort};
use crate::flags::{self, Flag};
use crate::ingest::person_of;
use crate::wire::{self, Project, decode_document, missing_project_key, project_for_key};

/// `0xFFFFFFFFFFFFFFF`: the largest 15-hex-digit number, PostHog's scale.
const LONG_SCALE: f64 = 0x0FFF_FFFF_FFFF_FFFF_u64 as f64;

/// Lower-case hex SHA-1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    let digest = Sha1::digest(data);
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// PostHog's bucket of `bucketing_value` for `key`: the first 15 hex digits
/// of `sha1("{key}.{value}{salt}")` over `0xFFFFFFFFFFFFFFF`, a number in
/// `[0, 1]`. Salt `""` decides rollout, `"variant"` picks the variant.
pub fn hash(key: &str, bucketing_value: &str, salt: &str) -> f64 {
    bucket(&format!("{key}.{bucketing_value}{salt}"))
}

/// The holdout bucket: PostHog hashes `holdout-{value}` (a dash, not the
/// rollout's dot), so holdouts pick people independently of every flag.
pub fn holdout_hash(bucketing_value: &str) -> f64 {
    bucket(&format!("holdout-{bucketing_value}"))
}

fn bucket(text: &str) -> f64 {
    let hex = sha1_hex(text.as_bytes());
    let value = u64::from_str_radix(&hex[..15], 16).unwrap_or(0);
    // Same int-to-double rounding and division as Python's `int / float`.
    value as f64 / LONG_SCALE
}

/// Why a flag has the value it has: PostHog's reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A condition matched (and its rollout included the id).
    ConditionMatch,
    /// No condition's properties matched.
    NoConditionMatch,
    /// A condition's properties matched but the rollout excluded the id.
    OutOfRolloutBound,
    /// A group flag evaluated without that group in the request.
    NoGroupType,
    /// The flag is switched off.
    FlagDisabled,
    /// The id falls in the flag's holdout group.
    HoldoutConditionValue,
}

impl Reason {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ConditionMatch => "condition_match",
            Reason::NoConditionMatch => "no_condition_match",
            Reason::OutOfRolloutBound => "out_of_rollout_bound",
            Reason::NoGroupType => "no_group_type",
            Reason::FlagDisabled => "flag_disabled",
            Reason::HoldoutConditionValue => "holdout_condition_value",
        }
    }

    fn description(self, index: Option<usize>) -> String {
        match self {
            Reason::ConditionMatch => format!("Matched condition set {}", index.unwrap_or(0) + 1),
            Reason::NoConditionMatch => "No matching condition set".into(),
            Reason::OutOfRolloutBound => "Out of rollout bound".into(),
            Reason::NoGroupType => "No group type".into(),
            Reason::FlagDisabled => "Feature flag is disabled".into(),
            Reason::HoldoutConditionValue => "Holdout condition value".into(),
        }
    }
}

/// The result of evaluating one flag for one id.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the flag is on.
    pub enabled: bool,
    /// The variant, for a multivariate flag that is on.
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// The condition that decided, when one did.
    pub condition_index: Option<usize>,
    /// The payload of the value, JSON text.
    pub payload: Option<String>,
}

impl Outcome {
    fn off(reason: Reason, condition_index: Option<usize>) -> Self {
        Outcome {
            enabled: false,
            variant: None,
            reason,
            condition_index,
            payload: None,
        }
    }

    /// The flag's value as SDKs report it: the variant, or the boolean.
    pub fn value(&self) -> Value {
        match &self.variant {
            Some(v) => Value::String(v.clone()),
            None => Value::Bool(self.enabled),
        }
    }
}

/// What an evaluation knows about the caller.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The distinct id.
    pub distinct_id: String,
    /// Person properties: stored ones overlaid with the request's.
    pub person: Map<String, Value>,
    /// Group type name to group key, from the request.
    pub groups: Map<String, Value>,
    /// Group type name to that group's properties, from the request.
    pub group_properties: Map<String, Value>,
    /// The UUID of the distinct id's person, for static cohorts.
    pub person_uuid: Option<String>,
    /// Flag key to the id that flag buckets on instead of `distinct_id`
    /// (experience continuity's hash key overrides).
    pub hash_keys: Map<String, Value>,
}

/// What evaluating a flag may need besides the subject: the project's
/// group types, its live flags (for flag dependencies) and cohorts.
#[derive(Debug, Default)]
pub struct Context {
    /// Group type index (as text) to name.
    pub group_types: Map<String, Value>,
    /// Every live flag of the project.
    pub flags: Vec<Flag>,
    /// Every live cohort of the project.
    pub cohorts: Vec<Cohort>,
    /// The flags being evaluated up the current dependency chain, so a cycle
    /// ends as a non-match instead of recursing forever.
    visiting: RefCell<Vec<String>>,
}

impl Context {
    /// The context of a project.
    pub fn load(project: &Project) -> Result<Context, Error> {
        Ok(Context {
            group_types: flags::group_types(project)?,
            flags: flags::live_flags(project)?,
            cohorts: cohorts::live(project)?,
            visiting: RefCell::new(Vec::new()),
        })
    }

    /// The live flag with this key, or with this numeric id.
    pub fn flag(&self, key_or_id: &Value) -> Option<&Flag> {
        let text = match key_or_id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        self.flags
            .iter()
            .find(|f| f.key == text)
            .or_else(|| self.flags.iter().find(|f| f.id.to_string() == text))
    }

    fn cohort(&self, id: &Value) -> Option<&Cohort> {
        let text = match id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        self.cohorts.iter().find(|c| c.id.to_string() == text)
    }

    /// The keys a flag filter depends on, dependencies first and the
    /// referenced flag last (PostHog's `dependency_chain`); empty when the
    /// chain has a cycle, which is how PostHog marks one.
    pub fn dependency_chain(&self, key_or_id: &Value) -> Vec<String> {
        let mut chain = Vec::new();
        let mut path = Vec::new();
        if self.collect_chain(key_or_id, &mut path, &mut chain) {
            chain
        } else {
            Vec::new()
        }
    }

    fn collect_chain(
        &self,
        key_or_id: &Value,
        path: &mut Vec<String>,
        chain: &mut Vec<String>,
    ) -> bool {
        let Some(flag) = self.flag(key_or_id) else {
            // A missing flag stays in the chain; evaluation reports it.
            if let Some(k) = key_or_id.as_str() {
                chain.push(k.to_owned());
            }
            return true;
        };
        if path.contains(&flag.key) {
            return false;
        }
        if chain.contains(&flag.key) {
            return true;
        }
        path.push(flag.key.clone());
        for group in flag.groups() {
            for prop in group
                .get("properties")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if prop.get("type").and_then(Value::as_str) == Some("flag")
                    && !self.collect_chain(prop.get("key").unwrap_or(&Value::Null), path, chain)
                {
                    return false;
                }
            }
        }
        path.pop();
        chain.push(flag.key.clone());
        true
    }
}

/// Evaluates `flag` for `subject`.
pub fn evaluate(flag: &Flag, subject: &Subject, ctx: &Context) -> Outcome {
    let group_types = &ctx.group_types;
    if !flag.active {
        return Outcome::off(Reason::FlagDisabled, None);
    }
    let empty = Map::new();
    let (bucketing, properties) = match flag.filters.get("aggregation_group_type_index") {
        None | Some(Value::Null) => {
            let bucketing = subject
                .hash_keys
                .get(&flag.key)
                .and_then(Value::as_str)
                .filter(|_| flag.ensure_experience_continuity)
                .unwrap_or(&subject.distinct_id);
            (bucketing.to_owned(), &subject.person)
        }
        Some(index) => {
            let name = group_types
                .get(&index.to_string())
                .and_then(Value::as_str)
                .unwrap_or_default();
            let key = match subject.groups.get(name) {
                Some(Value::String(k)) => k.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Outcome::off(Reason::NoGroupType, None),
            };
            let props = subject
                .group_properties
                .get(name)
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            (key, props)
        }
    };
    // A held-out id never reaches the release conditions: it gets the
    // holdout's own variant.
    if let Some(holdout) = flag.filters.get("holdout").filter(|h| !h.is_null())
        && let (Some(pct), Some(id)) = (
            holdout.get("exclusion_percentage").and_then(Value::as_f64),
            holdout.get("id").and_then(Value::as_u64),
        )
    {
        let pct = pct.clamp(0.0, 100.0);
        if pct == 100.0 || holdout_hash(&bucketing) <= pct / 100.0 {
            let variant = format!("holdout-{id}");
            return Outcome {
                enabled: true,
                payload: flag.payload_for(&variant),
                variant: Some(variant),
                reason: Reason::HoldoutConditionValue,
                condition_index: None,
            };
        }
    }
    let mut best: Option<(Reason, Option<usize>)> = None;
    for (index, group) in flag.groups().iter().enumerate() {
        let props_match = group
            .get("properties")
            .and_then(Value::as_array)
            .is_none_or(|props| {
                props
                    .iter()
                    .all(|p| match_filter(p, properties, subject, ctx))
            });
        if !props_match {
            continue;
        }
        let rollout = group.get("rollout_percentage").and_then(Value::as_f64);
        if let Some(rollout) = rollout
            && hash(&flag.key, &bucketing, "") > rollout / 100.0
        {
            if best.is_none() {
                best = Some((Reason::OutOfRolloutBound, Some(index)));
            }
            continue;
        }
        let variants = flag.variants();
        let variant = group
            .get("variant")
            .and_then(Value::as_str)
            .filter(|v| variants.iter().any(|(k, _)| k == v))
            .map(str::to_owned)
            .or_else(|| matching_variant(&flag.key, &bucketing, &variants));
        let payload = flag.payload_for(variant.as_deref().unwrap_or("true"));
        return Outcome {
            enabled: true,
            variant,
            reason: Reason::ConditionMatch,
            condition_index: Some(index),
            payload,
        };
    }
    let (reason, index) = best.unwrap_or((Reason::NoConditionMatch, None));
    Outcome::off(reason, index)
}

/// The variant whose slice of `[0, 1)` holds the id's variant hash; slices
/// are laid out in order, each `rollout_percentage / 100` wide.
fn matching_variant(key: &str, bucketing: &str, variants: &[(String, f64)]) -> Option<String> {
    if variants.is_empty() {
        return None;
    }
    let h = hash(key, bucketing, "variant");
    let mut min = 0.0;
    for (k, pct) in variants {
        let max = min + pct / 100.0;
        if h >= min && h < max {
            return Some(k.clone());
        }
        min = max;
    }
    None
}

/// Whether one filter of a condition (or cohort) matches: cohort
/// membership, a flag dependency, or a property filter; `negation: true`
/// inverts it, as in cohort definitions.
fn match_filter(
    filter: &Value,
    properties: &Map<String, Value>,
    subject: &Subject,
    ctx: &Context,
) -> bool {
    let hit = match filter.get("type").and_then(Value::as_str) {
        Some("cohort") => match_cohort(filter, properties, subject, ctx),
        Some("flag") => match_dependency(filter, subject, ctx),
        _ => match_property(filter, properties),
    };
    hit != (filter.get("negation") == Some(&Value::Bool(true)))
}

/// `{"type": "cohort", "value": id, "operator": "in"|"exact"|"not_in"}`.
fn match_cohort(
    filter: &Value,
    properties: &Map<String, Value>,
    subject: &Subject,
    ctx: &Context,
) -> bool {
    let Some(cohort) = ctx.cohort(filter.get("value").unwrap_or(&Value::Null)) else {
        return false;
    };
    let marker = format!("cohort:{}", cohort.id);
    if ctx.visiting.borrow().contains(&marker) {
        return false;
    }
    ctx.visiting.borrow_mut().push(marker);
    let member = if cohort.is_static {
        subject
            .person_uuid
            .as_ref()
            .is_some_and(|p| cohort.persons.contains(p))
    } else {
        cohort
            .group()
            .is_some_and(|g| match_group(g, properties, subject, ctx))
    };
    ctx.visiting.borrow_mut().pop();
    match filter.get("operator").and_then(Value::as_str) {
        Some("not_in") => !member,
        Some("in" | "exact") | None => member,
        Some(_) => false,
    }
}

/// A property group: `AND` needs every entry, `OR` any; entries are
/// filters or nested groups. An empty group matches.
fn match_group(
    group: &Value,
    properties: &Map<String, Value>,
    subject: &Subject,
    ctx: &Context,
) -> bool {
    let values = group
        .get("values")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if values.is_empty() {
        return true;
    }
    let entry = |v: &Value| {
        if v.get("values").is_some() {
            match_group(v, properties, subject, ctx)
        } else {
            match_filter(v, properties, subject, ctx)
        }
    };
    match group.get("type").and_then(Value::as_str) {
        Some("OR") => values.iter().any(entry),
        _ => values.iter().all(entry),
    }
}

/// `{"type": "flag", "key": flag, "operator": "flag_evaluates_to", "value":
/// true|false|"variant"}`: evaluates the other flag for the same subject.
/// `true` matches any enabled value, a variant only itself, `false` only
/// a disabled flag; a malformed filter, a missing flag or a cycle does not
/// match.
fn match_dependency(filter: &Value, subject: &Subject, ctx: &Context) -> bool {
    if filter.get("operator").and_then(Value::as_str) != Some("flag_evaluates_to") {
        return false;
    }
    let expected = filter.get("value").unwrap_or(&Value::Null);
    let Some(flag) = ctx.flag(filter.get("key").unwrap_or(&Value::Null)) else {
        return false;
    };
    if ctx.visiting.borrow().contains(&flag.key) {
        return false;
    }
    ctx.visiting.borrow_mut().push(flag.key.clone());
    let actual = evaluate(flag, subject, ctx).value();
    ctx.visiting.borrow_mut().pop();
    match (&actual, expected) {
        (Value::String(variant), Value::Bool(b)) => !variant.is_empty() && *b,
        (Value::String(variant), Value::String(want)) => variant == want,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        _ => false,
    }
}

pub use crate::props::match_property;

/// A JSON object field of the document (`{}` when absent or not one).
fn object_field(doc: &Value, name: &str) -> Map<String, Value> {
    doc.get(name)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Evaluates every live flag of the project for the request's subject.
fn evaluate_all(project: &Project, doc: &Value) -> Result<Vec<(Flag, Outcome)>, Error> {
    let distinct_id = match doc.get("distinct_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(wire::error(
                400,
                "validation_error",
                "invalid_payload",
                "The distinct_id field is missing from the request",
            ));
        }
    };
    let stored = person_of(project, &distinct_id)?;
    let person_uuid = stored.as_ref().map(|p| p.uuid.clone());
    let mut person = stored.map(|p| p.properties).unwrap_or_default();
    for (k, v) in object_field(doc, "person_properties") {
        person.insert(k, v);
    }
    let groups = object_field(doc, "groups");
    flags::register_group_types(project, groups.keys().map(String::as_str))?;
    let ctx = Context::load(project)?;
    let hash_keys = hash_key_overrides(project, &ctx, &distinct_id, person_uuid.as_deref(), doc)?;
    let subject = Subject {
        distinct_id,
        person,
        groups,
        group_properties: object_field(doc, "group_properties"),
        person_uuid,
        hash_keys,
    };
    let only: Option<Vec<String>> = doc
        .get("flag_keys_to_evaluate")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    Ok(ctx
        .flags
        .iter()
        .filter(|f| only.as_ref().is_none_or(|keys| keys.contains(&f.key)))
        .map(|f| (f.clone(), evaluate(f, &subject, &ctx)))
        .collect())
}

/// Experience continuity: the first time a request names the id the user
/// had before identifying (`$anon_distinct_id`), every flag with
/// `ensure_experience_continuity` remembers that id for the person (or,
/// without a person, the distinct id) and keeps bucketing on it, so the
/// user does not flip variants on login. Overrides already set win.
fn hash_key_overrides(
    project: &Project,
    ctx: &Context,
    distinct_id: &str,
    person_uuid: Option<&str>,
    doc: &Value,
) -> Result<Map<String, Value>, Error> {
    let owner = person_uuid.unwrap_or(distinct_id);
    let key = format!("{}/hash-keys/{owner}", project.prefix());
    let mut overrides: Map<String, Value> = wt_sdk::store::get_json(&key)?.unwrap_or_default();
    let anon = doc
        .get("$anon_distinct_id")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty());
    if let Some(anon) = anon {
        let mut changed = false;
        for flag in ctx.flags.iter().filter(|f| f.ensure_experience_continuity) {
            if !overrides.contains_key(&flag.key) {
                overrides.insert(flag.key.clone(), Value::String(anon.to_owned()));
                changed = true;
            }
        }
        if changed {
            wt_sdk::store::set_json(&key, &overrides)?;
        }
    }
    Ok(overrides)
}

/// The project and document of a `/flags` or `/decide` request.
fn project_and_doc(request: &Request) -> Result<(Project, Value), Error> {
    let doc = decode_document(request)?;
    let key = wire::project_key_of(request, &doc).ok_or_else(missing_project_key)?;
    Ok((project_for_key(&key)?, doc))
}

fn version(request: &Request) -> u32 {
    request
        .query_param("v")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// The `/flags` (v2 and later) body: one detailed record per flag. From
/// v4 each record also carries its typed `value`.
fn detailed(results: &[(Flag, Outcome)], typed: bool) -> Value {
    let mut flags = Map::new();
    for (flag, outcome) in results {
        let mut record = json!({
            "key": flag.key,
            "enabled": outcome.enabled,
            "variant": outcome.variant,
            "reason": {
                "code": outcome.reason.code(),
                "condition_index": outcome.condition_index,
                "description": outcome.reason.description(outcome.condition_index),
            },
            "metadata": {
                "id": flag.id,
                "version": flag.version,
                "description": flag.name,
                "payload": outcome.payload,
            },
        });
        if typed {
            record["value"] = outcome.value();
        }
        flags.insert(flag.key.clone(), record);
    }
    json!({
        "flags": flags,
        "errorsWhileComputingFlags": false,
        "requestId": ids::uuid_v4(),
        "evaluatedAt": clock::now_millis(),
    })
}

/// The legacy body: `featureFlags` (key to value) and, when asked,
/// `featureFlagPayloads` (key to payload, for flags that are on).
fn legacy(results: &[(Flag, Outcome)], payloads: bool) -> Value {
    let mut values = Map::new();
    let mut loads = Map::new();
    for (flag, outcome) in results {
        values.insert(flag.key.clone(), outcome.value());
        if let Some(p) = &outcome.payload {
            loads.insert(flag.key.clone(), Value::String(p.clone()));
        }
    }
    let mut body = json!({
        "featureFlags": values,
        "errorsWhileComputingFlags": false,
        "requestId": ids::uuid_v4(),
    });
    if payloads {
        body["featureFlagPayloads"] = Value::Object(loads);
    }
    body
}

/// `POST /flags/?v=…`: v1 is the legacy `featureFlags` +
/// `featureFlagPayloads` body, v2 and v3 the detailed `flags` body, v4 adds
/// typed values (what `posthog` 7.x asks for).
pub fn flags_endpoint(request: &Request) -> Result<Response, Error> {
    let (project, doc) = project_and_doc(request)?;
    let results = evaluate_all(&project, &doc)?;
    let body = match version(request) {
        0 | 1 => legacy(&results, true),
        v => detailed(&results, v >= 4),
    };
    Ok(Response::ok(&body))
}

/// `POST /decide/?v=…`, the endpoint `/flags` replaced: v1 lists the keys of
/// the flags that are on, v2 maps keys to values, v3 adds payloads, v4 is
/// the detailed body.
pub fn decide(request: &Request) -> Result<Response, Error> {
    let (project, doc) = project_and_doc(request)?;
    let results = evaluate_all(&project, &doc)?;
    let body = match version(request) {
        0 | 1 => {
            let on: Vec<&str> = results
                .iter()
                .filter(|(_, o)| o.enabled)
                .map(|(f, _)| f.key.as_str())
                .collect();
            json!({"featureFlags": on, "errorsWhileComputingFlags": false})
        }
        2 => legacy(&results, false),
        3 => legacy(&results, true),
        _ => detailed(&results, false),
    };
    Ok(Response::ok(&body))
}
