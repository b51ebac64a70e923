//! Event ingestion (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/track/`)
//! and the persons that `$set`, `$set_once`, `$unset`, `$identify` and
//! `$create_alias` shape; plus the read-back routes
//! `GET /api/projects/{id}/events/` and `/persons/`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wt_sdk::store::{get_json, set_json};
use wt_sdk::{Collection, Error, Page, Request, Response, clock, datetime, ids};

use crate::wire::{
    self, Project, decode_document, missing_project_key, project_for_key, project_from_path,
    require_personal_key,
};

/// PostHog keeps at most 200 characters of a distinct id.
pub const MAX_DISTINCT_ID: usize = 200;

/// A stored event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// The event's UUID: the client's, or one the twin made.
    pub uuid: String,
    /// The event name (`$pageview`, `signed_up`, …).
    pub event: String,
    /// Who did it.
    pub distinct_id: String,
    /// The properties as sent (with top-level `$set`/`$set_once` folded in).
    pub properties: Map<String, Value>,
    /// When it happened, ISO 8601 UTC, after PostHog's clock-skew correction.
    pub timestamp: String,
    /// When the twin received it (twin time).
    pub created_at: String,
    /// The person the event was attributed to, when persons were processed.
    #[serde(default)]
    pub person_id: Option<String>,
}

impl Event {
    /// The event as the events API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.uuid,
            "uuid": self.uuid,
            "distinct_id": self.distinct_id,
            "properties": self.properties,
            "event": self.event,
            "timestamp": self.timestamp,
            "person": Value::Null,
            "person_id": self.person_id,
            "elements": [],
            "elements_chain": "",
        })
    }
}

/// A person: one or more distinct ids sharing properties.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Person {
    /// The person's UUID.
    pub uuid: String,
    /// Every distinct id merged into the person, first seen first.
    pub distinct_ids: Vec<String>,
    /// Properties from `$set` and `$set_once`.
    pub properties: Map<String, Value>,
    /// First seen (twin time).
    pub created_at: String,
    /// Whether an `$identify` named the person.
    pub is_identified: bool,
}

impl Person {
    /// The person as the persons API shows it.
    pub fn to_json(&self) -> Value {
        let name = self
            .properties
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.distinct_ids.first().cloned())
            .unwrap_or_default();
        json!({
            "id": self.uuid,
            "uuid": self.uuid,
            "name": name,
            "distinct_ids": self.distinct_ids,
            "properties": self.properties,
            "created_at": self.created_at,
            "is_identified": self.is_identified,
        })
    }
}

/// The events of a project, in the order received.
pub fn events(project: &Project) -> Collection<Event> {
    Collection::with_prefix(format!("{}/events", project.prefix()))
}

/// The persons of a project.
pub fn persons(project: &Project) -> Collection<Person> {
    Collection::with_prefix(format!("{}/persons", project.prefix()))
}

fn did_key(project: &Project, distinct_id: &str) -> String {
    format!("{}/did/{distinct_id}", project.prefix())
}

/// The person a distinct id belongs to.
pub fn person_of(project: &Project, distinct_id: &str) -> Result<Option<Person>, Error> {
    match get_json::<String>(&did_key(project, distinct_id))? {
        Some(uuid) => persons(project).get(&uuid),
        None => Ok(None),
    }
}

fn payload_error(detail: impl Into<String>) -> Error {
    wire::error(400, "validation_error", "invalid_payload", detail)
}

/// `POST /batch/` and the single-event endpoints: stores every event of
/// the document and answers `{"status": 1}`. A batch with one bad event is
/// refused whole, as PostHog's capture service does, so nothing is half
/// ingested.
pub fn capture(request: &Request) -> Result<Response, Error> {
    let doc = decode_document(request)?;
    let key = wire::project_key_of(request, &doc).ok_or_else(missing_project_key)?;
    let project = project_for_key(&key)?;
    let (raw_events, sent_at) = events_of(&doc)?;
    let now = clock::now_millis();
    let mut prepared = Vec::with_capacity(raw_events.len());
    for raw in raw_events {
        prepared.push(normalize(raw, sent_at, now)?);
    }
    for event in prepared {
        store_event(&project, event)?;
    }
    Ok(Response::ok(&json!({"status": 1})))
}

/// Stores a normalized event: registers its group types, applies it to its
/// person, and keeps it. PostHog deduplicates on the event UUID, so an SDK
/// retry of a batch that did arrive does not count twice.
pub fn store_event(project: &Project, mut event: Event) -> Result<(), Error> {
    let store = events(project);
    if store.contains(&event.uuid) {
        return Ok(());
    }
    register_groups(project, &event)?;
    event.person_id = process_person(project, &event)?;
    store.insert(&event.uuid.clone(), &event)
}

/// The events of a document, and its `sent_at` in milliseconds.
type Batch<'a> = (Vec<&'a Map<String, Value>>, Option<u64>);

/// The events of a document and its `sent_at`: an array of events, a
/// `{"batch": […]}` envelope, or one event object.
fn events_of(doc: &Value) -> Result<Batch<'_>, Error> {
    let sent_at = doc
        .get("sent_at")
        .and_then(Value::as_str)
        .and_then(datetime::parse_millis);
    let items: Vec<&Value> = match doc {
        Value::Array(items) => items.iter().collect(),
        Value::Object(o) => match o.get("batch").or_else(|| o.get("data")) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(_) => return Err(payload_error("Invalid payload: `batch` must be a list.")),
            None => vec![doc],
        },
        _ => {
            return Err(payload_error(
                "Invalid payload: expected an event or a batch.",
            ));
        }
    };
    if items.is_empty() {
        return Err(payload_error("Invalid payload: the batch is empty."));
    }
    let events = items
        .into_iter()
        .map(|v| {
            v.as_object()
                .ok_or_else(|| payload_error("Invalid payload: every event must be an object."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((events, sent_at))
}

/// A string, or a number written as text (distinct ids may be numbers).
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks one event and gives it its final form: UUID, distinct id,
/// properties with the top-level `$set`/`$set_once` folded in, and a
/// timestamp corrected for the client's clock skew the way PostHog does
/// (`now + (timestamp - sent_at)`), or `now - offset`, or `now`.
pub fn normalize(
    raw: &Map<String, Value>,
    batch_sent_at: Option<u64>,
    now: u64,
) -> Result<Event, Error> {
    let name = raw
        .get("event")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            payload_error("Invalid payload: All events must have the event name field 'event'!")
        })?;
    let mut properties = match raw.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => {
            return Err(payload_error(
                "Invalid payload: `properties` must be an object.",
            ));
        }
    };
    let distinct_id = text_of(raw.get("distinct_id"))
        .or_else(|| text_of(raw.get("$distinct_id")))
        .or_else(|| text_of(properties.get("distinct_id")))
        .ok_or_else(|| {
            payload_error(
                "Invalid payload: All events must have the distinct_id field 'distinct_id'!",
            )
        })?;
    let distinct_id: String = distinct_id.chars().take(MAX_DISTINCT_ID).collect();
    for field in ["$set", "$set_once", "$unset"] {
        if let Some(v) = raw.get(field)
            && !properties.contains_key(field)
        {
            properties.insert(field.to_owned(), v.clone());
        }
    }
    let uuid = raw
        .get("uuid")
        .and_then(Value::as_str)
        .filter(|u| ids::is_uuid(u))
        .map_or_else(ids::uuid_v4, str::to_ascii_lowercase);
    let sent_at = raw
        .get("sent_at")
        .and_then(Value::as_str)
        .and_then(datetime::parse_millis)
        .or(batch_sent_at);
    let ignore_sent_at = properties.get("$ignore_sent_at") == Some(&Value::Bool(true));
    let stamp = raw
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(datetime::parse_millis);
    let millis = match (stamp, sent_at, raw.get("offset").and_then(Value::as_u64)) {
        (Some(ts), Some(sent), _) if !ignore_sent_at => {
            let skewed = i128::from(now) + i128::from(ts) - i128::from(sent);
            u64::try_from(skewed.max(0)).unwrap_or(now)
        }
        (Some(ts), _, _) => ts,
        (None, _, Some(offset)) => now.saturating_sub(offset),
        (None, _, None) => now,
    };
    Ok(Event {
        uuid,
        event: name.to_owned(),
        distinct_id,
        properties,
        timestamp: datetime::format_millis(millis),
        created_at: datetime::format_millis(now),
        person_id: None,
    })
}

/// Gives the group types an event names (`$groups`, or `$group_type` of a
/// `$groupidentify`) their index in the project's group type mapping.
fn register_groups(project: &Project, event: &Event) -> Result<(), Error> {
    let mut names: Vec<&str> = event
        .properties
        .get("$groups")
        .and_then(Value::as_object)
        .map(|g| g.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if event.event == "$groupidentify"
        && let Some(t) = event.properties.get("$group_type").and_then(Value::as_str)
    {
        names.push(t);
    }
    if names.is_empty() {
        return Ok(());
    }
    crate::flags::register_group_types(project, names)
}

/// Applies what the event says about its person; returns the person's UUID
/// (`None` when the event opts out with `$process_person_profile: false`).
fn process_person(project: &Project, event: &Event) -> Result<Option<String>, Error> {
    let props = &event.properties;
    if props.get("$process_person_profile") == Some(&Value::Bool(false)) {
        return Ok(None);
    }
    let other = match event.event.as_str() {
        "$identify" => text_of(props.get("$anon_distinct_id")),
        "$create_alias" | "$merge_dangerously" => text_of(props.get("alias")),
        _ => None,
    };
    let mut person = match other {
        Some(other) if other != event.distinct_id => merge(
            project,
            &event.distinct_id,
            &other,
            event.event == "$merge_dangerously",
            &event.created_at,
        )?,
        _ => get_or_create(project, &event.distinct_id, &event.created_at)?,
    };
    if event.event == "$identify" {
        person.is_identified = true;
    }
    if let Some(Value::Object(once)) = props.get("$set_once") {
        for (k, v) in once {
            person
                .properties
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
    if let Some(Value::Object(set)) = props.get("$set") {
        for (k, v) in set {
            person.properties.insert(k.clone(), v.clone());
        }
    }
    match props.get("$unset") {
        Some(Value::Array(keys)) => {
            for k in keys.iter().filter_map(Value::as_str) {
                person.properties.remove(k);
            }
        }
        Some(Value::Object(keys)) => {
            for k in keys.keys() {
                person.properties.remove(k);
            }
        }
        _ => {}
    }
    persons(project).put(&person.uuid, &person)?;
    Ok(Some(person.uuid))
}

fn get_or_create(project: &Project, distinct_id: &str, now: &str) -> Result<Person, Error> {
    if let Some(p) = person_of(project, distinct_id)? {
        return Ok(p);
    }
    let person = Person {
        uuid: ids::uuid_v4(),
        distinct_ids: vec![distinct_id.to_owned()],
        properties: Map::new(),
        created_at: now.to_owned(),
        is_identified: false,
    };
    persons(project).insert(&person.uuid, &person)?;
    set_json(&did_key(project, distinct_id), &person.uuid)?;
    Ok(person)
}

/// Joins `other`'s person into `target`'s. Like PostHog, a person that
/// was already identified is not merged away by `$identify` or
/// `$create_alias` (only `$merge_dangerously` may); the target keeps its
/// own values where both have a property.
fn merge(
    project: &Project,
    target: &str,
    other: &str,
    dangerously: bool,
    now: &str,
) -> Result<Person, Error> {
    let mut person = get_or_create(project, target, now)?;
    match person_of(project, other)? {
        None => {
            person.distinct_ids.push(other.to_owned());
            set_json(&did_key(project, other), &person.uuid)?;
        }
        Some(o) if o.uuid == person.uuid => {}
        Some(o) if o.is_identified && !dangerously => {}
        Some(o) => {
            for (k, v) in o.properties {
                person.properties.entry(k).or_insert(v);
            }
            for id in o.distinct_ids {
                set_json(&did_key(project, &id), &person.uuid)?;
                if !person.distinct_ids.contains(&id) {
                    person.distinct_ids.push(id);
                }
            }
            if o.created_at < person.created_at {
                person.created_at = o.created_at;
            }
            person.is_identified |= o.is_identified;
            persons(project).remove(&o.uuid)?;
        }
    }
    Ok(person)
}

/// The absolute URL of `path?query` on this twin, for `next` links.
pub fn absolute(request: &Request, path_and_query: &str) -> String {
    format!("{}{path_and_query}", request.base_url())
}

/// `limit` from the query: default 100, at most 1000.
fn limit_of(request: &Request) -> Result<u32, Error> {
    match request.query_param("limit").filter(|l| !l.is_empty()) {
        None => Ok(100),
        Some(l) => l
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                wire::invalid(
                    "invalid_input",
                    "limit",
                    "A valid integer between 1 and 1000 is required.",
                )
            }),
    }
}

/// The `next` link of a page: the same query with `cursor` set.
fn next_link(request: &Request, cursor: &str) -> String {
    let mut pairs: Vec<(String, String)> = request
        .query_pairs()
        .into_iter()
        .filter(|(k, _)| k != "cursor")
        .collect();
    pairs.push(("cursor".into(), cursor.to_owned()));
    let query: String = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    absolute(request, &format!("{}?{query}", request.path))
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /api/projects/{id}/events/`: newest received first, filtered by
/// `event`, `distinct_id` (any id of the same person), `person_id`,
/// `after`/`before` (timestamps); `limit` (≤ 1000) and the `cursor` of the
/// `next` link page through.
pub fn list_events(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let limit = limit_of(request)?;
    let event = request.query_param("event").filter(|e| !e.is_empty());
    let distinct = request.query_param("distinct_id").filter(|d| !d.is_empty());
    // A distinct id stands for its whole person: every id merged into it,
    // and the person's events from before a merge.
    let person = match (&distinct, request.query_param("person_id")) {
        (Some(d), _) => person_of(&project, d)?,
        (None, Some(uuid)) if !uuid.is_empty() => persons(&project).get(&uuid)?,
        _ => None,
    };
    let person_id = person
        .as_ref()
        .map(|p| p.uuid.clone())
        .or_else(|| request.query_param("person_id").filter(|p| !p.is_empty()));
    let person_ids: Vec<String> = person.map(|p| p.distinct_ids).unwrap_or_default();
    let bound = |name: &str| -> Result<Option<u64>, Error> {
        match request.query_param(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => datetime::parse_millis(&v).map(Some).ok_or_else(|| {
                wire::invalid(
                    "invalid_input",
                    name,
                    format!("`{name}` is not a valid timestamp."),
                )
            }),
        }
    };
    let (after, before) = (bound("after")?, bound("before")?);
    let page = Page {
        limit,
        starting_after: request.query_param("cursor").filter(|c| !c.is_empty()),
        ending_before: None,
    };
    let listed = events(&project)
        .list_where(&page, true, |e| {
            let ts = datetime::parse_millis(&e.timestamp).unwrap_or(0);
            event.as_ref().is_none_or(|n| &e.event == n)
                && match (&distinct, &person_id) {
                    (_, Some(p)) => {
                        e.person_id.as_ref() == Some(p)
                            || person_ids.contains(&e.distinct_id)
                            || distinct.as_ref() == Some(&e.distinct_id)
                    }
                    (Some(d), None) => &e.distinct_id == d,
                    (None, None) => true,
                }
                && after.is_none_or(|a| ts > a)
                && before.is_none_or(|b| ts < b)
        })
        .map_err(|e| {
            if e.status == 404 {
                wire::invalid("invalid_input", "cursor", "Invalid cursor.")
            } else {
                e
            }
        })?;
    let next = match (listed.has_more, listed.items.last()) {
        (true, Some(last)) => Value::String(next_link(request, &last.uuid)),
        _ => Value::Null,
    };
    let results: Vec<Value> = listed.items.iter().map(Event::to_json).collect();
    Ok(Response::ok(&json!({"next": next, "results": results})))
}

/// `GET /api/projects/{id}/events/{uuid}/`.
pub fn get_event(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let id = request.param("id").unwrap_or_default();
    let event = events(&project).get(id)?.ok_or_else(wire::not_found)?;
    Ok(Response::ok(&event.to_json()))
}

/// `GET /api/projects/{id}/persons/`: filtered by `distinct_id`, else every
/// person, newest first, paged like events.
pub fn list_persons(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let limit = limit_of(request)?;
    if let Some(d) = request.query_param("distinct_id").filter(|d| !d.is_empty()) {
        let results: Vec<Value> = person_of(&project, &d)?
            .iter()
            .map(Person::to_json)
            .collect();
        return Ok(Response::ok(
            &json!({"next": null, "previous": null, "count": results.len(), "results": results}),
        ));
    }
    let page = Page {
        limit,
        starting_after: request.query_param("cursor").filter(|c| !c.is_empty()),
        ending_before: None,
    };
    let listed = persons(&project).list(&page, true).map_err(|e| {
        if e.status == 404 {
            wire::invalid("invalid_input", "cursor", "Invalid cursor.")
        } else {
            e
        }
    })?;
    let next = match (listed.has_more, listed.items.last()) {
        (true, Some(last)) => Value::String(next_link(request, &last.uuid)),
        _ => Value::Null,
    };
    let results: Vec<Value> = listed.items.iter().map(Person::to_json).collect();
    Ok(Response::ok(
        &json!({"next": next, "previous": null, "count": results.len(), "results": results}),
    ))
}

/// `DELETE /api/projects/{id}/persons/{uuid}/`: forgets the person and
/// its distinct ids (their next event starts a new person); the events
/// stay, as on PostHog unless asked to delete them too.
pub fn delete_person(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let id = request.param("id").unwrap_or_default();
    let person = persons(&project).remove(id)?.ok_or_else(wire::not_found)?;
    for distinct_id in &person.distinct_ids {
        wt_sdk::store::delete(&did_key(&project, distinct_id));
    }
    Ok(Response::no_content())
}

/// `GET /api/projects/{id}/persons/{uuid}/`.
pub fn get_person(request: &Request) -> Result<Response, Error> {
    require_personal_key(request)?;
    let project = project_from_path(request)?;
    let id = request.param("id").unwrap_or_default();
    let person = persons(&project).get(id)?.ok_or_else(wire::not_found)?;
    Ok(Response::ok(&person.to_json()))
}
