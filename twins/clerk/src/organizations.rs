//! Organizations and their memberships.
//!
//! Memberships are stored once, keyed `{org_id}:{user_id}` (a user is a
//! member at most once); `members_count` and the membership's embedded
//! organization are computed when shown, so they never go stale.

use serde_json::{Map, Value, json};
use wt_sdk::{Error, Request, Response, store};

use crate::users::{self, reject_unknown};
use crate::webhooks;
use crate::wire::{
    self, all, boolean, coll, error, integer, metadata, new_id, now, query_list, string,
};

pub const COLL: &str = "organizations";
pub const MEMBERSHIPS: &str = "memberships";

/// Members an organization may have unless created with another limit
/// (Clerk's default on development instances).
pub const DEFAULT_MAX_MEMBERSHIPS: u64 = 5;

/// The roles every Clerk instance has, with their names and system
/// permissions.
const ROLES: &[(&str, &str, &[&str])] = &[
    (
        "org:admin",
        "Admin",
        &[
            "org:sys_profile:manage",
            "org:sys_profile:delete",
            "org:sys_memberships:read",
            "org:sys_memberships:manage",
            "org:sys_domains:read",
            "org:sys_domains:manage",
        ],
    ),
    ("org:member", "Member", &["org:sys_memberships:read"]),
];

fn role(
    name: &str,
) -> Result<&'static (&'static str, &'static str, &'static [&'static str]), Error> {
    ROLES.iter().find(|r| r.0 == name).ok_or_else(|| {
        wire::value_invalid(
            "role",
            format!("{name} is not a role of this instance (org:admin, org:member)."),
        )
    })
}

fn slug_key(slug: &str) -> String {
    wire::key(&format!("org-slug/{slug}"))
}

/// A slug from a name: lower-case letters and digits, other runs as `-`.
fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn check_slug(slug: &str, except: Option<&str>) -> Result<(), Error> {
    let ok = !slug.is_empty()
        && slug.len() <= 255
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(wire::invalid(
            "slug",
            "slug must contain only lowercase alphanumeric characters, dashes and underscores.",
        ));
    }
    if let Some(owner) = store::get(&slug_key(slug))
        && Some(String::from_utf8_lossy(&owner).as_ref()) != except
    {
        return Err(wire::with_param(
            error(
                422,
                "form_identifier_exists",
                "That slug is taken. Please try another.",
                "That slug is taken. Please try another.",
            ),
            "slug",
        ));
    }
    Ok(())
}

/// The stored organization with this id or slug.
pub fn load(id_or_slug: &str) -> Result<Value, Error> {
    if let Some(org) = coll(COLL).get(id_or_slug)? {
        return Ok(org);
    }
    if let Some(id) = store::get(&slug_key(id_or_slug))
        && let Some(org) = coll(COLL).get(&String::from_utf8_lossy(&id))?
    {
        return Ok(org);
    }
    Err(wire::not_found("Organization"))
}

fn members_of(org_id: &str) -> Result<Vec<Value>, Error> {
    Ok(all(MEMBERSHIPS)?
        .into_iter()
        .filter(|m| m["org_id"] == org_id)
        .collect())
}

/// The organization as the API shows it, with its current counts.
fn show(org: &Value) -> Result<Value, Error> {
    let mut out = org.clone();
    let id = org["id"].as_str().unwrap_or_default();
    out["members_count"] = json!(members_of(id)?.len());
    Ok(out)
}

fn save(org: &Value) -> Result<(), Error> {
    coll(COLL).put(org["id"].as_str().unwrap_or_default(), org)
}

fn max_memberships(body: &mut Map<String, Value>) -> Result<Option<u64>, Error> {
    integer(body, "max_allowed_memberships")
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    reject_unknown(
        &body,
        &[
            "name",
            "created_by",
            "private_metadata",
            "public_metadata",
            "slug",
            "max_allowed_memberships",
            "created_at",
            "role_set_key",
        ],
    )?;
    let name = wire::required_string(&mut body, "name")?;
    if name.chars().count() > 256 {
        return Err(wire::invalid(
            "name",
            "name must be at most 256 characters.",
        ));
    }
    let id = new_id("org");
    let slug = match string(&mut body, "slug")? {
        Some(s) => s,
        None => format!("{}-{}", slugify(&name), &id[4..10].to_ascii_lowercase()),
    };
    check_slug(&slug, None)?;
    let created_by = string(&mut body, "created_by")?;
    if let Some(user) = &created_by {
        users::load(user)?;
    }
    let at = match string(&mut body, "created_at")? {
        Some(s) => wt_sdk::datetime::parse_millis(&s).ok_or_else(|| {
            wire::invalid(
                "created_at",
                "created_at must be a valid RFC 3339 date-time.",
            )
        })?,
        None => now(),
    };
    if body.remove("role_set_key").is_some_and(|v| !v.is_null()) {
        return Err(wire::value_invalid(
            "role_set_key",
            "This instance has only the default role set.",
        ));
    }
    let org = json!({
        "object": "organization",
        "id": id,
        "name": name,
        "slug": slug,
        "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9",
        "has_image": false,
        "max_allowed_memberships": max_memberships(&mut body)?.unwrap_or(DEFAULT_MAX_MEMBERSHIPS),
        "admin_delete_enabled": true,
        "public_metadata": metadata(&mut body, "public_metadata")?.unwrap_or_default(),
        "private_metadata": metadata(&mut body, "private_metadata")?.unwrap_or_default(),
        "created_by": created_by,
        "created_at": at,
        "updated_at": at,
    });
    coll(COLL).insert(&id, &org)?;
    store::set(&slug_key(&slug), id.as_bytes())?;
    webhooks::emit("organization.created", show(&org)?)?;
    if let Some(user) = &created_by {
        let m = add_member(&org, user, "org:admin", Map::new(), Map::new())?;
        webhooks::emit("organizationMembership.created", show_membership(&m)?)?;
    }
    Ok(Response::ok(&show(&org)?))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&show(&load(wire::param(
        req,
        "organization_id",
    ))?)?))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let (limit, offset) = wire::paging(req)?;
    let query = req
        .query_param("query")
        .filter(|q| !q.is_empty())
        .map(|q| q.to_lowercase());
    let user_ids = query_list(req, "user_id");
    let org_ids = query_list(req, "organization_id");
    let memberships = all(MEMBERSHIPS)?;
    let mut orgs = Vec::new();
    for org in all(COLL)? {
        let id = org["id"].as_str().unwrap_or_default();
        let text = |f: &str| org[f].as_str().unwrap_or_default().to_lowercase();
        let keep = query.as_ref().is_none_or(|q| {
            id.to_lowercase().contains(q) || text("name").contains(q) || text("slug").contains(q)
        }) && (org_ids.is_empty()
            || org_ids.iter().any(|o| o == id || org["slug"] == o.as_str()))
            && (user_ids.is_empty()
                || memberships.iter().any(|m| {
                    m["org_id"] == id && user_ids.iter().any(|u| m["user_id"] == u.as_str())
                }));
        if keep {
            orgs.push(show(&org)?);
        }
    }
    wire::order(
        req,
        &mut orgs,
        "-created_at",
        &["name", "created_at", "members_count"],
        |o, f| o[f].clone(),
    )?;
    let total = orgs.len();
    Ok(Response::ok(
        &json!({"data": wire::page(orgs, limit, offset), "total_count": total}),
    ))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut org = load(wire::param(req, "organization_id"))?;
    let id = org["id"].as_str().unwrap_or_default().to_owned();
    let mut body = wire::body(req)?;
    reject_unknown(
        &body,
        &[
            "name",
            "slug",
            "max_allowed_memberships",
            "admin_delete_enabled",
            "public_metadata",
            "private_metadata",
            "created_at",
            "role_set_key",
        ],
    )?;
    if let Some(name) = string(&mut body, "name")? {
        if name.trim().is_empty() {
            return Err(wire::missing("name"));
        }
        org["name"] = json!(name);
    }
    if let Some(slug) = string(&mut body, "slug")? {
        check_slug(&slug, Some(&id))?;
        if let Some(old) = org["slug"].as_str() {
            store::delete(&slug_key(old));
        }
        store::set(&slug_key(&slug), id.as_bytes())?;
        org["slug"] = json!(slug);
    }
    if let Some(n) = max_memberships(&mut body)? {
        org["max_allowed_memberships"] = json!(n);
    }
    if let Some(b) = boolean(&mut body, "admin_delete_enabled")? {
        org["admin_delete_enabled"] = json!(b);
    }
    for field in ["public_metadata", "private_metadata"] {
        if let Some(m) = metadata(&mut body, field)? {
            org[field] = Value::Object(m);
        }
    }
    if let Some(s) = string(&mut body, "created_at")? {
        let at = wt_sdk::datetime::parse_millis(&s).ok_or_else(|| {
            wire::invalid(
                "created_at",
                "created_at must be a valid RFC 3339 date-time.",
            )
        })?;
        org["created_at"] = json!(at);
    }
    if body.remove("role_set_key").is_some_and(|v| !v.is_null()) {
        return Err(wire::value_invalid(
            "role_set_key",
            "This instance has only the default role set.",
        ));
    }
    org["updated_at"] = json!(now());
    save(&org)?;
    let shown = show(&org)?;
    webhooks::emit("organization.updated", shown.clone())?;
    Ok(Response::ok(&shown))
}

pub fn merge_metadata(req: &Request) -> Result<Response, Error> {
    let mut org = load(wire::param(req, "organization_id"))?;
    let mut body = wire::body(req)?;
    reject_unknown(&body, &["public_metadata", "private_metadata"])?;
    for field in ["public_metadata", "private_metadata"] {
        if let Some(patch) = metadata(&mut body, field)? {
            let mut target = org[field].as_object().cloned().unwrap_or_default();
            wire::deep_merge(&mut target, patch);
            org[field] = Value::Object(target);
        }
    }
    org["updated_at"] = json!(now());
    save(&org)?;
    let shown = show(&org)?;
    webhooks::emit("organization.updated", shown.clone())?;
    Ok(Response::ok(&shown))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    let org = load(wire::param(req, "organization_id"))?;
    let id = org["id"].as_str().unwrap_or_default().to_owned();
    for m in members_of(&id)? {
        coll(MEMBERSHIPS).remove(&membership_key(
            &id,
            m["user_id"].as_str().unwrap_or_default(),
        ))?;
    }
    if let Some(slug) = org["slug"].as_str() {
        store::delete(&slug_key(slug));
    }
    coll(COLL).remove(&id)?;
    webhooks::emit(
        "organization.deleted",
        webhooks::deleted("organization", &id),
    )?;
    Ok(Response::ok(
        &json!({"object": "organization", "id": id, "slug": org["slug"], "deleted": true}),
    ))
}

// --- memberships -----------------------------------------------------------

fn membership_key(org_id: &str, user_id: &str) -> String {
    format!("{org_id}:{user_id}")
}

/// The stored membership of `user_id` in `org_id`, if any.
pub fn membership(org_id: &str, user_id: &str) -> Result<Option<Value>, Error> {
    coll(MEMBERSHIPS).get(&membership_key(org_id, user_id))
}

/// The ids of the users who belong to any of `org_ids`.
pub fn member_ids(org_ids: &[String]) -> Result<Vec<String>, Error> {
    Ok(all(MEMBERSHIPS)?
        .into_iter()
        .filter(|m| org_ids.iter().any(|o| m["org_id"] == o.as_str()))
        .filter_map(|m| m["user_id"].as_str().map(str::to_owned))
        .collect())
}

/// Drops a deleted user's memberships.
pub fn user_removed(user_id: &str) -> Result<(), Error> {
    for m in all(MEMBERSHIPS)? {
        if m["user_id"] == user_id {
            coll(MEMBERSHIPS).remove(&membership_key(
                m["org_id"].as_str().unwrap_or_default(),
                user_id,
            ))?;
        }
    }
    Ok(())
}

/// The membership as the API shows it: with its role's name and
/// permissions, the organization, and the member's public data.
fn show_membership(m: &Value) -> Result<Value, Error> {
    let role_name = m["role"].as_str().unwrap_or_default();
    let (label, permissions) = ROLES
        .iter()
        .find(|r| r.0 == role_name)
        .map(|r| (r.1, r.2.to_vec()))
        .unwrap_or(("", Vec::new()));
    let org = load(m["org_id"].as_str().unwrap_or_default())?;
    let user_id = m["user_id"].as_str().unwrap_or_default();
    let user = coll(users::COLL).get(user_id)?.unwrap_or(Value::Null);
    Ok(json!({
        "object": "organization_membership",
        "id": m["id"],
        "role": role_name,
        "role_name": label,
        "permissions": permissions,
        "public_metadata": m["public_metadata"],
        "private_metadata": m["private_metadata"],
        "organization": show(&org)?,
        "public_user_data": {
            "user_id": user_id,
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "profile_image_url": user["profile_image_url"],
            "image_url": user["image_url"].as_str().unwrap_or_default(),
            "has_image": user["has_image"].as_bool().unwrap_or(false),
            "identifier": users::primary_email(&user)
                .map(Value::String)
                .unwrap_or_else(|| user["username"].clone()),
            "username": user["username"],
            "banned": user["banned"].as_bool().unwrap_or(false),
        },
        "created_at": m["created_at"],
        "updated_at": m["updated_at"],
    }))
}

fn add_member(
    org: &Value,
    user_id: &str,
    role_name: &str,
    public: Map<String, Value>,
    private: Map<String, Value>,
) -> Result<Value, Error> {
    let org_id = org["id"].as_str().unwrap_or_default();
    role(role_name)?;
    if membership(org_id, user_id)?.is_some() {
        return Err(error(
            400,
            "already_a_member_in_organization",
            "already a member",
            "This user is already a member of the organization.",
        ));
    }
    let max = org["max_allowed_memberships"].as_u64().unwrap_or(0);
    if max > 0 && members_of(org_id)?.len() as u64 >= max {
        return Err(error(
            403,
            "organization_membership_quota_exceeded",
            "membership quota exceeded",
            format!("The organization has reached its limit of {max} members."),
        ));
    }
    let at = now();
    let m = json!({
        "id": new_id("orgmem"),
        "org_id": org_id,
        "user_id": user_id,
        "role": role_name,
        "public_metadata": public,
        "private_metadata": private,
        "created_at": at,
        "updated_at": at,
    });
    coll(MEMBERSHIPS).insert(&membership_key(org_id, user_id), &m)?;
    Ok(m)
}

pub fn create_membership(req: &Request) -> Result<Response, Error> {
    let org = load(wire::param(req, "organization_id"))?;
    let mut body = wire::body(req)?;
    reject_unknown(
        &body,
        &["user_id", "role", "public_metadata", "private_metadata"],
    )?;
    let user_id = wire::required_string(&mut body, "user_id")?;
    let role_name = wire::required_string(&mut body, "role")?;
    users::load(&user_id)?;
    let public = metadata(&mut body, "public_metadata")?.unwrap_or_default();
    let private = metadata(&mut body, "private_metadata")?.unwrap_or_default();
    let m = add_member(&org, &user_id, &role_name, public, private)?;
    let shown = show_membership(&m)?;
    webhooks::emit("organizationMembership.created", shown.clone())?;
    Ok(Response::ok(&shown))
}

fn load_membership(req: &Request) -> Result<Value, Error> {
    let org = load(wire::param(req, "organization_id"))?;
    membership(
        org["id"].as_str().unwrap_or_default(),
        wire::param(req, "user_id"),
    )?
    .ok_or_else(|| wire::not_found("Organization membership"))
}

fn save_membership(m: &Value) -> Result<(), Error> {
    coll(MEMBERSHIPS).put(
        &membership_key(
            m["org_id"].as_str().unwrap_or_default(),
            m["user_id"].as_str().unwrap_or_default(),
        ),
        m,
    )
}

/// Memberships as `{data, total_count}`, filtered and ordered by `req`.
fn membership_page(req: &Request, found: Vec<Value>) -> Result<Response, Error> {
    let (limit, offset) = wire::paging(req)?;
    let user_ids = query_list(req, "user_id");
    let roles = query_list(req, "role");
    let emails: Vec<String> = query_list(req, "email_address")
        .into_iter()
        .map(|e| e.to_lowercase())
        .collect();
    let query = req
        .query_param("query")
        .filter(|q| !q.is_empty())
        .map(|q| q.to_lowercase());
    let mut shown = Vec::new();
    for m in found {
        if !(user_ids.is_empty() || user_ids.iter().any(|u| m["user_id"] == u.as_str()))
            || !(roles.is_empty() || roles.iter().any(|r| m["role"] == r.as_str()))
        {
            continue;
        }
        let s = show_membership(&m)?;
        let data = &s["public_user_data"];
        let identifier = data["identifier"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        if !emails.is_empty() && !emails.contains(&identifier) {
            continue;
        }
        if let Some(q) = &query {
            let hay = format!(
                "{} {} {} {} {}",
                data["user_id"].as_str().unwrap_or_default(),
                identifier,
                data["username"].as_str().unwrap_or_default(),
                data["first_name"].as_str().unwrap_or_default(),
                data["last_name"].as_str().unwrap_or_default()
            )
            .to_lowercase();
            if !hay.contains(q.as_str()) {
                continue;
            }
        }
        shown.push(s);
    }
    wire::order(
        req,
        &mut shown,
        "-created_at",
        &[
            "created_at",
            "first_name",
            "last_name",
            "email_address",
            "username",
            "phone_number",
        ],
        |m, f| match f {
            "created_at" => m["created_at"].clone(),
            "email_address" => m["public_user_data"]["identifier"].clone(),
            "phone_number" => Value::Null,
            other => m["public_user_data"][other].clone(),
        },
    )?;
    let total = shown.len();
    Ok(Response::ok(
        &json!({"data": wire::page(shown, limit, offset), "total_count": total}),
    ))
}

pub fn list_memberships(req: &Request) -> Result<Response, Error> {
    let org = load(wire::param(req, "organization_id"))?;
    let found = members_of(org["id"].as_str().unwrap_or_default())?;
    membership_page(req, found)
}

/// `GET /v1/users/{user_id}/organization_memberships`.
pub fn list_user_memberships(req: &Request) -> Result<Response, Error> {
    let user = users::load(wire::param(req, "user_id"))?;
    let found: Vec<Value> = all(MEMBERSHIPS)?
        .into_iter()
        .filter(|m| m["user_id"] == user["id"])
        .collect();
    // The user is fixed here; a `user_id` filter would be meaningless.
    let (limit, offset) = wire::paging(req)?;
    let mut shown = found
        .iter()
        .map(show_membership)
        .collect::<Result<Vec<_>, _>>()?;
    shown.reverse();
    let total = shown.len();
    Ok(Response::ok(
        &json!({"data": wire::page(shown, limit, offset), "total_count": total}),
    ))
}

pub fn update_membership(req: &Request) -> Result<Response, Error> {
    let mut m = load_membership(req)?;
    let mut body = wire::body(req)?;
    reject_unknown(&body, &["role"])?;
    let role_name = wire::required_string(&mut body, "role")?;
    role(&role_name)?;
    m["role"] = json!(role_name);
    m["updated_at"] = json!(now());
    save_membership(&m)?;
    let shown = show_membership(&m)?;
    webhooks::emit("organizationMembership.updated", shown.clone())?;
    Ok(Response::ok(&shown))
}

pub fn merge_membership_metadata(req: &Request) -> Result<Response, Error> {
    let mut m = load_membership(req)?;
    let mut body = wire::body(req)?;
    reject_unknown(&body, &["public_metadata", "private_metadata"])?;
    for field in ["public_metadata", "private_metadata"] {
        if let Some(patch) = metadata(&mut body, field)? {
            let mut target = m[field].as_object().cloned().unwrap_or_default();
            wire::deep_merge(&mut target, patch);
            m[field] = Value::Object(target);
        }
    }
    m["updated_at"] = json!(now());
    save_membership(&m)?;
    let shown = show_membership(&m)?;
    webhooks::emit("organizationMembership.updated", shown.clone())?;
    Ok(Response::ok(&shown))
}

pub fn delete_membership(req: &Request) -> Result<Response, Error> {
    let m = load_membership(req)?;
    let shown = show_membership(&m)?;
    coll(MEMBERSHIPS).remove(&membership_key(
        m["org_id"].as_str().unwrap_or_default(),
        m["user_id"].as_str().unwrap_or_default(),
    ))?;
    webhooks::emit("organizationMembership.deleted", shown.clone())?;
    Ok(Response::ok(&shown))
}
