//! Feature flag definitions through PostHog's own API:
//! `/api/projects/{project_id}/feature_flags/` (create, list, retrieve,
//! update, soft delete), the definitions server SDKs poll for local
//! evaluation (`/api/feature_flag/local_evaluation`,
//! `/flags/definitions`), and `…/feature_flags/{key}/remote_config`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wt_sdk::store::{delete, get_json, increment, set_json};
use wt_sdk::{Collection, Error, Request, Response, clock, datetime};

use crate::wire::{
    self, Project, invalid, project_for_key, project_from_path, require_personal_key,
};

/// A flag as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Flag {
    /// Numeric id, unique across the twin like PostHog's.
    pub id: u64,
    /// The project's numeric id (`team_id`).
    pub team_id: u64,
    /// The key SDKs ask for.
    pub key: String,
    /// PostHog calls the description `name`.
    pub name: String,
    /// `groups`, `multivariate`, `payloads`, `aggregation_group_type_index`.
    pub filters: Map<String, Value>,
    /// An inactive flag evaluates to `false` for everyone.
    pub active: bool,
    /// Soft-deleted flags are gone from lists and evaluation.
    pub deleted: bool,
    /// Bucket on the id the user had before identifying (see
    /// `eval::hash_key_overrides`).
    pub ensure_experience_continuity: bool,
    /// Bumped on every update.
    pub version: u64,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// A remote-config flag carries only a payload.
    pub is_remote_configuration: bool,
    /// `all`, `server` or `client`.
    pub evaluation_runtime: String,
    /// Twin time, ISO 8601.
    pub created_at: String,
    /// Twin time, ISO 8601.
    pub updated_at: String,
}

impl Flag {
    /// The conditions (`filters.groups`).
    pub fn groups(&self) -> &[Value] {
        self.filters
            .get("groups")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The multivariate variants, `(key, rollout_percentage)` in order.
    pub fn variants(&self) -> Vec<(String, f64)> {
        variants_of(&self.filters)
    }

    /// The payload configured for a value (`"true"` or a variant key).
    pub fn payload_for(&self, value: &str) -> Option<String> {
        self.filters
            .get("payloads")
            .and_then(|p| p.get(value))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// One condition and no variants: the UI's "simple" flag.
    fn is_simple(&self) -> bool {
        self.variants().is_empty()
            && self.groups().len() == 1
            && self.groups()[0]
                .get("properties")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
    }

    /// The flag as the management API shows it.
    pub fn to_json(&self) -> Value {
        let rollout = if self.is_simple() {
            self.groups()[0]
                .get("rollout_percentage")
                .cloned()
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        json!({
            "id": self.id,
            "name": self.name,
            "key": self.key,
            "filters": self.filters,
            "deleted": self.deleted,
            "active": self.active,
            "created_by": Value::Null,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
            "last_modified_by": Value::Null,
            "is_simple_flag": self.is_simple(),
            "rollout_percentage": rollout,
            "ensure_experience_continuity": self.ensure_experience_continuity,
            "experiment_set": [],
            "surveys": [],
            "features": [],
            "rollback_conditions": Value::Null,
            "performed_rollback": false,
            "can_edit": true,
            "tags": self.tags,
            "evaluation_tags": [],
            "usage_dashboard": Value::Null,
            "analytics_dashboards": [],
            "has_enriched_analytics": false,
            "user_access_level": "editor",
            "creation_context": "feature_flags",
            "is_remote_configuration": self.is_remote_configuration,
            "has_encrypted_payloads": false,
            "status": "ACTIVE",
            "evaluation_runtime": self.evaluation_runtime,
        })
    }

    /// The flag as local-evaluation definitions carry it.
    pub fn to_definition(&self) -> Value {
        json!({
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "key": self.key,
            "filters": self.filters,
            "deleted": self.deleted,
            "active": self.active,
            "ensure_experience_continuity": self.ensure_experience_continuity,
            "version": self.version,
            "has_encrypted_payloads": false,
            "evaluation_runtime": self.evaluation_runtime,
        })
    }
}

fn variants_of(filters: &Map<String, Value>) -> Vec<(String, f64)> {
    filters
        .get("multivariate")
        .and_then(|m| m.get("variants"))
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    Some((
                        v.get("key")?.as_str()?.to_owned(),
                        v.get("rollout_percentage")?.as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The flags of a project, in creation order.
pub fn collection(project: &Project) -> Collection<Flag> {
    Collection::with_prefix(format!("{}/flags", project.prefix()))
}

fn key_index(project: &Project, key: &str) -> String {
    format!("{}/flag-key/{key}", project.prefix())
}

/// Every live (not deleted) flag of a project, oldest first.
pub fn live_flags(project: &Project) -> Result<Vec<Flag>, Error> {
    collection(project).all_where(|f| !f.deleted)
}

/// The live flag with `key`.
pub fn by_key(project: &Project, key: &str) -> Result<Option<Flag>, Error> {
    match get_json::<u64>(&key_index(project, key))? {
        Some(id) => collection(project).get(&id.to_string()),
        None => Ok(None),
    }
}

fn check_key(key: &Value) -> Result<String, Error> {
    let key = key
        .as_str()
        .ok_or_else(|| invalid("invalid", "key", "Not a valid string."))?;
    if key.is_empty() {
        return Err(invalid("blank", "key", "This field may not be blank."));
    }
    if key.len() > 400
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "invalid_key",
            "key",
            "Only letters, numbers, hyphens (-) & underscores (_) are allowed.",
        ));
    }
    Ok(key.to_owned())
}

/// Validates `filters` as PostHog's serializer does and normalizes payloads
/// to JSON text (PostHog stores every payload as a JSON string).
fn check_filters(raw: &Value) -> Result<Map<String, Value>, Error> {
    let Value::Object(filters) = raw else {
        return Err(wire::filters_error("Filters must be an object."));
    };
    let mut filters = filters.clone();
    let variants = variants_of(&filters);
    if let Some(m) = filters.get("multivariate").filter(|m| !m.is_null()) {
        let listed = m.get("variants").and_then(Value::as_array).ok_or_else(|| {
            wire::filters_error("Invalid variant definitions: `variants` must be a list.")
        })?;
        if listed.len() != variants.len() {
            return Err(wire::filters_error(
                "Invalid variant definitions: every variant needs a `key` and a `rollout_percentage`.",
            ));
        }
        let total: f64 = variants.iter().map(|(_, p)| p).sum();
        if (total - 100.0).abs() > 1e-9 || variants.iter().any(|(_, p)| *p < 0.0) {
            return Err(wire::filters_error(
                "Invalid variant definitions: Variant rollout percentages must sum to 100.",
            ));
        }
        let mut keys: Vec<&str> = variants.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.len() != variants.len() || keys.contains(&"") {
            return Err(wire::filters_error(
                "Invalid variant definitions: variant keys must be unique and not empty.",
            ));
        }
    }
    if let Some(holdout) = filters.get("holdout").filter(|h| !h.is_null()) {
        let ok = holdout.get("id").and_then(Value::as_u64).is_some()
            && holdout
                .get("exclusion_percentage")
                .and_then(Value::as_f64)
                .is_some_and(|p| (0.0..=100.0).contains(&p));
        if !ok {
            return Err(wire::filters_error(
                "A holdout needs an integer `id` and an `exclusion_percentage` from 0 to 100.",
            ));
        }
    }
    match filters.get("groups") {
        None | Some(Value::Null) => {
            filters.insert("groups".into(), json!([]));
        }
        Some(Value::Array(groups)) => {
            for group in groups {
                check_group(group, &variants)?;
            }
        }
        Some(_) => return Err(wire::filters_error("`groups` must be a list.")),
    }
    if let Some(payloads) = filters.get_mut("payloads") {
        match payloads {
            Value::Null => *payloads = json!({}),
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if key != "true" && !variants.iter().any(|(k, _)| k == key) {
                        return Err(wire::filters_error(&format!(
                            "Payload key `{key}` is neither `true` nor a variant key."
                        )));
                    }
                    if let Value::String(text) = value {
                        if serde_json::from_str::<Value>(text).is_err() {
                            return Err(wire::filters_error("Payload value is not valid JSON"));
                        }
                    } else {
                        *value = Value::String(value.to_string());
                    }
                }
            }
            _ => return Err(wire::filters_error("`payloads` must be an object.")),
        }
    } else {
        filters.insert("payloads".into(), json!({}));
    }
    Ok(filters)
}

fn check_group(group: &Value, variants: &[(String, f64)]) -> Result<(), Error> {
    let group = group
        .as_object()
        .ok_or_else(|| wire::filters_error("Every condition group must be an object."))?;
    match group.get("rollout_percentage") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_f64() {
            Some(p) if (0.0..=100.0).contains(&p) => {}
            _ => {
                return Err(wire::filters_error(
                    "Invalid rollout percentage: it must be a number from 0 to 100.",
                ));
            }
        },
    }
    match group.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Array(props)) => {
            for prop in props {
                if prop.get("key").and_then(Value::as_str).is_none() {
                    return Err(wire::filters_error("Every property filter needs a `key`."));
                }
            }
        }
        Some(_) => {
            return Err(wire::filters_error(
                "A condition's `properties` must be a list.",
            ));
        }
    }
    if let Some(variant) = group.get("variant").and_then(Value::as_str)
        && !variants.iter().any(|(k, _)| k == variant)
    {
        return Err(wire::filters_error(
            "Filters are not valid (variant override does not exist)",
        ));
    }
    Ok(())
}

/// Applies the writable fields of `body` to `flag`.
fn apply(project: &Project, flag: &mut Flag, body: &Map<String, Value>) -> Result<(), Error> {
    if let Some(key) = body.get("key") {
        let key = check_key(key)?;
        if let Some(existing) = get_json::<u64>(&key_index(project, &key))?
            && existing != flag.id
        {
            return Err(invalid(
                "unique",
                "key",
                "There is already a feature flag with this key.",
            ));
        }
        flag.key = key;
    }
    let bool_field = |name: &str| -> Result<Option<bool>, Error> {
        match body.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid("invalid", name, "Must be a valid boolean.")),
        }
    };
    if let Some(name) = body.get("name") {
        flag.name = match name {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            _ => return Err(invalid("invalid", "name", "Not a valid string.")),
        };
    }
    if let Some(filters) = body.get("filters") {
        flag.filters = check_filters(filters)?;
    } else if let Some(rollout) = body.get("rollout_percentage").filter(|r| !r.is_null()) {
        // The legacy top-level rollout of a simple flag.
        flag.filters =
            check_filters(&json!({"groups": [{"properties": [], "rollout_percentage": rollout}]}))?;
    }
    if let Some(active) = bool_field("active")? {
        flag.active = active;
    }
    if let Some(deleted) = bool_field("deleted")? {
        flag.deleted = deleted;
    }
    if let Some(c) = bool_field("ensure_experience_continuity")? {
        flag.ensure_experience_continuity = c;
    }
    if let Some(r) = bool_field("is_remote_configuration")? {
        flag.is_remote_configuration = r;
    }
    if let Some(tags) = body.get("tags") {
        flag.tags = tags
            .as_array()
            .and_then(|t| t.iter().map(|x| x.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| invalid("invalid", "tags", "Expected a list of items."))?;
    }
    if let Some(runtime) = body.get("evaluation_runtime") {
        match runtime.as_str() {
            Some(r @ ("all" | "server" | "client")) => flag.evaluation_runtime = r.to_owned(),
            _ => {
                return Err(invalid(
                    "invalid_choice",
                    "evaluation_runtime",
                    format!("\"{runtime}\" is not a valid choice."),
                ));
            }
        }
    }
    Ok(())
}

/// `POST /api/projects/{id}/feature_flags/`.
pub fn create(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let body = wire::object_body(request)?;
    if !body.contains_key("key") {
        return Err(invalid("required", "key", "This field is required."));
    }
    let now = datetime::format_millis(clock::now_millis());
    let id = u64::try_from(increment("flags/seq", 1)?)
        .map_err(|_| Error::internal("flag sequence is negative"))?;
    let mut flag = Flag {
        id,
        team_id: project.id,
        key: String::new(),
        name: String::new(),
        filters: check_filters(&json!({"groups": []}))?,
        active: true,
        deleted: false,
        ensure_experience_continuity: false,
        version: 1,
        tags: Vec::new(),
        is_remote_configuration: false,
        evaluation_runtime: "all".into(),
        created_at: now.clone(),
        updated_at: now,
    };
    apply(&project, &mut flag, &body)?;
    collection(&project).insert(&id.to_string(), &flag)?;
    if !flag.deleted {
        set_json(&key_index(&project, &flag.key), &flag.id)?;
    }
    Ok(Response::created(&flag.to_json()))
}

fn load(request: &Request) -> Result<(Project, Flag), Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let id = request.param("id").unwrap_or_default();
    let flag = collection(&project)
        .get(id)?
        .filter(|f| !f.deleted)
        .ok_or_else(wire::not_found)?;
    Ok((project, flag))
}

/// `GET /api/projects/{id}/feature_flags/{flag_id}/`.
pub fn retrieve(request: &Request) -> Result<Response, Error> {
    let (_, flag) = load(request)?;
    Ok(Response::ok(&flag.to_json()))
}

/// `PATCH` (or `PUT`) `/api/projects/{id}/feature_flags/{flag_id}/`;
/// `{"deleted": true}` is PostHog's way to delete a flag.
pub fn update(request: &Request) -> Result<Response, Error> {
    let (project, mut flag) = load(request)?;
    let body = wire::object_body(request)?;
    let old_key = flag.key.clone();
    apply(&project, &mut flag, &body)?;
    flag.version += 1;
    flag.updated_at = datetime::format_millis(clock::now_millis());
    collection(&project).put(&flag.id.to_string(), &flag)?;
    delete(&key_index(&project, &old_key));
    if !flag.deleted {
        set_json(&key_index(&project, &flag.key), &flag.id)?;
    }
    Ok(Response::ok(&flag.to_json()))
}

/// `DELETE …/feature_flags/{flag_id}/`: PostHog forbids hard deletes of
/// flags and says how to soft-delete instead.
pub fn destroy(request: &Request) -> Result<Response, Error> {
    load(request)?;
    Err(wire::error(
        405,
        "invalid_request",
        "method_not_allowed",
        "Hard delete of this model is not allowed. Use a patch API call to set \"deleted\" to true",
    ))
}

/// `GET /api/projects/{id}/feature_flags/`: newest first, `limit`/`offset`
/// pages, `active=true|false` and `search` (in key or name) filters.
pub fn list(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let number = |name: &str, default: usize| -> Result<usize, Error> {
        match request.query_param(name).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| invalid("invalid", name, "A valid integer is required.")),
        }
    };
    let limit = number("limit", 100)?.clamp(1, 1000);
    let offset = number("offset", 0)?;
    let active = request.query_param("active");
    let search = request
        .query_param("search")
        .map(|s| s.to_lowercase())
        .filter(|s| !s.is_empty());
    let mut all = live_flags(&project)?;
    all.reverse();
    all.retain(|f| match active.as_deref() {
        Some("true") => f.active,
        Some("false") => !f.active,
        _ => true,
    });
    if let Some(s) = &search {
        all.retain(|f| f.key.to_lowercase().contains(s) || f.name.to_lowercase().contains(s));
    }
    let count = all.len();
    let results: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(Flag::to_json)
        .collect();
    let link = |offset: usize| {
        Value::String(crate::ingest::absolute(
            request,
            &format!("{}?limit={limit}&offset={offset}", request.path),
        ))
    };
    let next = if offset + limit < count {
        link(offset + limit)
    } else {
        Value::Null
    };
    let previous = if offset > 0 {
        link(offset.saturating_sub(limit))
    } else {
        Value::Null
    };
    Ok(Response::ok(
        &json!({"count": count, "next": next, "previous": previous, "results": results}),
    ))
}

/// The group type mapping of a project (`{"0": "company"}`): group types get
/// the next index the first time an event or a `/flags` request names them.
pub fn group_types(project: &Project) -> Result<Map<String, Value>, Error> {
    Ok(get_json(&format!("{}/group-types", project.prefix()))?.unwrap_or_default())
}

/// Registers group type names not seen before (at most 5, PostHog's limit).
pub fn register_group_types<'a>(
    project: &Project,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), Error> {
    let mut mapping = group_types(project)?;
    let mut changed = false;
    for name in names {
        if mapping.values().any(|v| v.as_str() == Some(name)) || mapping.len() >= 5 {
            continue;
        }
        mapping.insert(mapping.len().to_string(), Value::String(name.to_owned()));
        changed = true;
    }
    if changed {
        set_json(&format!("{}/group-types", project.prefix()), &mapping)?;
    }
    Ok(())
}

/// `GET /api/feature_flag/local_evaluation?token=phc_…` and
/// `GET /flags/definitions?token=phc_…` with a personal key: every live flag
/// with the group type mapping and (no) cohorts. Carries an `ETag` and
/// answers `304` to a matching `If-None-Match`, as the SDK's poller expects.
pub fn definitions(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let token = request
        .query_param("token")
        .or_else(|| request.query_param("project_api_key"))
        .ok_or_else(|| {
            invalid(
                "required",
                "token",
                "The `token` query parameter (the project API key) is required.",
            )
        })?;
    let project = project_for_key(&token)?;
    let ctx = crate::eval::Context::load(&project)?;
    let flags: Vec<Value> = ctx
        .flags
        .iter()
        .map(|f| with_dependency_chains(f.to_definition(), &ctx))
        .collect();
    // Dynamic cohorts travel with the definitions; static ones are lists of
    // persons only the server knows, so SDKs fall back to `/flags` for them.
    let cohorts: Map<String, Value> = ctx
        .cohorts
        .iter()
        .filter(|c| !c.is_static)
        .filter_map(|c| Some((c.id.to_string(), c.group()?.clone())))
        .collect();
    let doc = json!({
        "flags": flags,
        "group_type_mapping": ctx.group_types,
        "cohorts": cohorts,
    });
    let text = doc.to_string();
    let etag = format!("\"{}\"", &crate::eval::sha1_hex(text.as_bytes())[..16]);
    let unchanged = request
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if unchanged {
        return Ok(Response::empty(304).with_header("etag", etag));
    }
    Ok(Response::bytes(200, "application/json", text).with_header("etag", etag))
}

/// A definition with every flag-dependency filter given the flag's key (a
/// filter may name it by id) and its `dependency_chain`, as local
/// evaluation needs.
fn with_dependency_chains(mut definition: Value, ctx: &crate::eval::Context) -> Value {
    let groups = definition
        .get_mut("filters")
        .and_then(|f| f.get_mut("groups"))
        .and_then(Value::as_array_mut);
    for group in groups.into_iter().flatten() {
        let props = group.get_mut("properties").and_then(Value::as_array_mut);
        for prop in props.into_iter().flatten() {
            if prop.get("type").and_then(Value::as_str) != Some("flag") {
                continue;
            }
            let target = prop.get("key").cloned().unwrap_or(Value::Null);
            if let Some(flag) = ctx.flag(&target) {
                prop["key"] = Value::String(flag.key.clone());
            }
            prop["dependency_chain"] = json!(ctx.dependency_chain(&target));
        }
    }
    definition
}

/// `GET /api/projects/{id}/feature_flags/{key}/remote_config`: the payload
/// of a remote-config flag (its `true` payload), as JSON text.
pub fn remote_config(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let key = request.param("id").unwrap_or_default();
    let flag = match by_key(&project, key)? {
        Some(f) => Some(f),
        None => collection(&project).get(key)?.filter(|f| !f.deleted),
    }
    .ok_or_else(wire::not_found)?;
    match flag.payload_for("true") {
        Some(payload) => Ok(Response::ok(&Value::String(payload))),
        None => Ok(Response::ok(&Value::Null)),
    }
}

/// `GET /api/projects/{id}/`: the project, so a test can learn the numeric
/// id of its `phc_…` key.
pub fn project(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    Ok(Response::ok(&project.to_json()))
}
