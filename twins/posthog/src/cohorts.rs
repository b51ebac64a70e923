//! Cohorts through PostHog's API, `/api/projects/{project_id}/cohorts/`:
//! dynamic cohorts defined by person-property groups (which flags target
//! with `{"type": "cohort", "value": id}`, and which local evaluation gets
//! in the definitions' `cohorts`), and static cohorts, lists of persons,
//! which only the server can evaluate.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wt_sdk::store::increment;
use wt_sdk::{Collection, Error, Request, Response, clock, datetime};

use crate::wire::{self, Project, invalid, project_from_path, require_personal_key};

/// A stored cohort.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Cohort {
    /// Numeric id, unique across the twin.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `{"properties": {"type": "AND"|"OR", "values": […]}}` for a dynamic
    /// cohort; `{}` for a static one.
    pub filters: Map<String, Value>,
    /// A static cohort is a list of persons.
    pub is_static: bool,
    /// The person UUIDs of a static cohort.
    pub persons: Vec<String>,
    /// Soft-deleted cohorts match nobody and are not listed.
    pub deleted: bool,
    /// Twin time, ISO 8601.
    pub created_at: String,
}

impl Cohort {
    /// The cohort as the API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "groups": [],
            "deleted": self.deleted,
            "filters": self.filters,
            "query": Value::Null,
            "is_calculating": false,
            "created_by": Value::Null,
            "created_at": self.created_at,
            "last_calculation": self.created_at,
            "errors_calculating": 0,
            "count": if self.is_static { json!(self.persons.len()) } else { Value::Null },
            "is_static": self.is_static,
        })
    }

    /// The property group of a dynamic cohort.
    pub fn group(&self) -> Option<&Value> {
        self.filters.get("properties")
    }
}

/// The cohorts of a project.
pub fn collection(project: &Project) -> Collection<Cohort> {
    Collection::with_prefix(format!("{}/cohorts", project.prefix()))
}

/// Every live cohort of a project.
pub fn live(project: &Project) -> Result<Vec<Cohort>, Error> {
    collection(project).all_where(|c| !c.deleted)
}

/// Checks a property group: `{"type": "AND"|"OR", "values": [filter or
/// group…]}`, each filter with a `key`.
fn check_group(group: &Value, depth: usize) -> Result<(), Error> {
    if depth > 10 {
        return Err(wire::filters_error("Property groups nest too deeply."));
    }
    let group = group
        .as_object()
        .ok_or_else(|| wire::filters_error("A property group must be an object."))?;
    if !matches!(
        group.get("type").and_then(Value::as_str),
        Some("AND" | "OR")
    ) {
        return Err(wire::filters_error(
            "A property group's `type` must be AND or OR.",
        ));
    }
    let values = group
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| wire::filters_error("A property group needs a `values` list."))?;
    for value in values {
        if value.get("values").is_some() {
            check_group(value, depth + 1)?;
        } else if value.get("key").is_none() {
            return Err(wire::filters_error("Every property filter needs a `key`."));
        }
    }
    Ok(())
}

/// The filters of a create or update: `filters.properties`, or PostHog's
/// older `groups: [{properties: […]}]` (any group may match, every
/// property of a group must).
fn filters_from(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, Error> {
    if let Some(filters) = body.get("filters").filter(|f| !f.is_null()) {
        let group = filters
            .get("properties")
            .ok_or_else(|| wire::filters_error("`filters.properties` is required."))?;
        check_group(group, 0)?;
        return Ok(Some(
            json!({"properties": group})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ));
    }
    if let Some(groups) = body.get("groups").and_then(Value::as_array) {
        let values: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({"type": "AND", "values": g.get("properties").cloned().unwrap_or(json!([]))})
            })
            .collect();
        let group = json!({"type": "OR", "values": values});
        check_group(&group, 0)?;
        return Ok(Some(
            json!({"properties": group})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ));
    }
    Ok(None)
}

/// `POST /api/projects/{id}/cohorts/`.
pub fn create(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let body = wire::object_body(request)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("required", "name", "This field is required."))?;
    let is_static = body.get("is_static") == Some(&Value::Bool(true));
    let filters = filters_from(&body)?;
    if !is_static && filters.is_none() {
        return Err(wire::filters_error(
            "A dynamic cohort needs `filters.properties` (or `groups`).",
        ));
    }
    let id = u64::try_from(increment("cohorts/seq", 1)?)
        .map_err(|_| Error::internal("cohort sequence is negative"))?;
    let cohort = Cohort {
        id,
        name: name.to_owned(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        filters: if is_static {
            Map::new()
        } else {
            filters.unwrap_or_default()
        },
        is_static,
        persons: Vec::new(),
        deleted: false,
        created_at: datetime::format_millis(clock::now_millis()),
    };
    collection(&project).insert(&id.to_string(), &cohort)?;
    Ok(Response::created(&cohort.to_json()))
}

fn load(request: &Request) -> Result<(Project, Cohort), Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let cohort = collection(&project)
        .get(request.param("id").unwrap_or_default())?
        .filter(|c| !c.deleted)
        .ok_or_else(wire::not_found)?;
    Ok((project, cohort))
}

/// `GET /api/projects/{id}/cohorts/{cohort_id}/`.
pub fn retrieve(request: &Request) -> Result<Response, Error> {
    let (_, cohort) = load(request)?;
    Ok(Response::ok(&cohort.to_json()))
}

/// `PATCH /api/projects/{id}/cohorts/{cohort_id}/`: `name`, `description`,
/// `filters`/`groups` (dynamic cohorts), `deleted`.
pub fn update(request: &Request) -> Result<Response, Error> {
    let (project, mut cohort) = load(request)?;
    let body = wire::object_body(request)?;
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        cohort.name = name.to_owned();
    }
    if let Some(d) = body.get("description").and_then(Value::as_str) {
        cohort.description = d.to_owned();
    }
    if let Some(filters) = filters_from(&body)? {
        if cohort.is_static {
            return Err(wire::filters_error("A static cohort has no filters."));
        }
        cohort.filters = filters;
    }
    if let Some(deleted) = body.get("deleted").and_then(Value::as_bool) {
        cohort.deleted = deleted;
    }
    collection(&project).put(&cohort.id.to_string(), &cohort)?;
    Ok(Response::ok(&cohort.to_json()))
}

/// `PATCH …/cohorts/{cohort_id}/add_persons_to_static_cohort/` with
/// `{"person_ids": [uuid…]}`: adds persons (by UUID, as PostHog takes them)
/// to a static cohort.
pub fn add_persons(request: &Request) -> Result<Response, Error> {
    let (project, mut cohort) = load(request)?;
    if !cohort.is_static {
        return Err(invalid(
            "invalid_input",
            "person_ids",
            "Can only add persons to a static cohort.",
        ));
    }
    let body = wire::object_body(request)?;
    let ids: Vec<String> = body
        .get("person_ids")
        .and_then(Value::as_array)
        .and_then(|ids| ids.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| {
            invalid(
                "required",
                "person_ids",
                "A list of person UUIDs is required.",
            )
        })?;
    let persons = crate::ingest::persons(&project);
    for id in ids {
        if !persons.contains(&id) {
            return Err(invalid(
                "invalid_input",
                "person_ids",
                format!("No person with UUID `{id}`."),
            ));
        }
        if !cohort.persons.contains(&id) {
            cohort.persons.push(id);
        }
    }
    collection(&project).put(&cohort.id.to_string(), &cohort)?;
    Ok(Response::ok(&json!({"success": true})))
}

/// `GET /api/projects/{id}/cohorts/`: `{"count", "next", "previous",
/// "results"}`, newest first.
pub fn list(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let mut all = live(&project)?;
    all.reverse();
    let results: Vec<Value> = all.iter().map(Cohort::to_json).collect();
    Ok(Response::ok(&json!({
        "count": results.len(),
        "next": Value::Null,
        "previous": Value::Null,
        "results": results,
    })))
}

/// `DELETE …/cohorts/{cohort_id}/`: like flags, cohorts are soft-deleted
/// with `PATCH {"deleted": true}`.
pub fn destroy(request: &Request) -> Result<Response, Error> {
    load(request)?;
    Err(wire::error(
        405,
        "invalid_request",
        "method_not_allowed",
        "Hard delete of this model is not allowed. Use a patch API call to set \"deleted\" to true",
    ))
}
