//! A user's email addresses and phone numbers after creation:
//! `/v1/email_addresses` and `/v1/phone_numbers` (create, get, update,
//! delete). Both live inside their user object, so each endpoint finds the
//! owner first; uniqueness per instance is the same index users keep.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response};

use crate::users::{self, reject_unknown};
use crate::webhooks;
use crate::wire::{self, all, boolean, now};

/// What differs between the two kinds of identifier.
struct Kind {
    /// The user's list field (`email_addresses`).
    list: &'static str,
    /// The value's field and request parameter (`email_address`).
    field: &'static str,
    /// The identifier index kind (`email`).
    index: &'static str,
    /// The user's primary id field.
    primary: &'static str,
    /// The route parameter naming one identifier.
    route: &'static str,
    /// The name in error messages.
    label: &'static str,
}

const EMAIL: Kind = Kind {
    list: "email_addresses",
    field: "email_address",
    index: "email",
    primary: "primary_email_address_id",
    route: "email_address_id",
    label: "Email address",
};

const PHONE: Kind = Kind {
    list: "phone_numbers",
    field: "phone_number",
    index: "phone",
    primary: "primary_phone_number_id",
    route: "phone_number_id",
    label: "Phone number",
};

/// The user holding identifier `id`, and the identifier's index in its list.
fn owner(kind: &Kind, id: &str) -> Result<(Value, usize), Error> {
    for user in all(users::COLL)? {
        if let Some(i) = user[kind.list]
            .as_array()
            .and_then(|items| items.iter().position(|x| x["id"] == id))
        {
            return Ok((user, i));
        }
    }
    Err(wire::not_found(kind.label))
}

/// Applies `verified`, `primary` and (phones) `reserved_for_second_factor`.
fn apply(
    kind: &Kind,
    user: &mut Value,
    index: usize,
    body: &mut serde_json::Map<String, Value>,
) -> Result<(), Error> {
    let id = user[kind.list][index]["id"].clone();
    if let Some(verified) = boolean(body, "verified")? {
        user[kind.list][index]["verification"] = if verified {
            users::admin_verification("verification_admin")
        } else {
            Value::Null
        };
    }
    if boolean(body, "primary")? == Some(true) || user[kind.primary].is_null() {
        user[kind.primary] = id;
    }
    if let Some(reserved) = boolean(body, "reserved_for_second_factor")? {
        user[kind.list][index]["reserved_for_second_factor"] = json!(reserved);
    }
    body.remove("notify_primary_email_address_changed");
    user[kind.list][index]["updated_at"] = json!(now());
    user["updated_at"] = json!(now());
    Ok(())
}

fn create(kind: &Kind, req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    let extra: &[&str] = if kind.index == "email" {
        &["notify_primary_email_address_changed"]
    } else {
        &["reserved_for_second_factor"]
    };
    let mut allowed = vec!["user_id", kind.field, "verified", "primary"];
    allowed.extend_from_slice(extra);
    reject_unknown(&body, &allowed)?;
    let user_id = wire::required_string(&mut body, "user_id")?;
    let value = wire::required_string(&mut body, kind.field)?;
    let mut user = users::load(&user_id)?;
    let valid = if kind.index == "email" {
        users::valid_email(&value)
    } else {
        users::valid_phone(&value)
    };
    if !valid {
        return Err(wire::invalid(
            kind.field,
            format!(
                "{} must be a valid {}.",
                kind.field,
                kind.label.to_lowercase()
            ),
        ));
    }
    users::ensure_free(kind.index, &value, kind.field, None)?;
    let at = now();
    let object = if kind.index == "email" {
        users::email_object(&value, at)
    } else {
        users::phone_object(&value, at)
    };
    let index = user[kind.list].as_array().map_or(0, Vec::len);
    match user[kind.list].as_array_mut() {
        Some(items) => items.push(object),
        None => user[kind.list] = json!([object]),
    }
    apply(kind, &mut user, index, &mut body)?;
    users::save(&user)?;
    users::claim(kind.index, &value, &user_id)?;
    webhooks::emit("user.updated", user.clone())?;
    Ok(Response::ok(&user[kind.list][index]))
}

fn retrieve(kind: &Kind, req: &Request) -> Result<Response, Error> {
    let (user, index) = owner(kind, wire::param(req, kind.route))?;
    Ok(Response::ok(&user[kind.list][index]))
}

fn update(kind: &Kind, req: &Request) -> Result<Response, Error> {
    let (mut user, index) = owner(kind, wire::param(req, kind.route))?;
    let mut body = wire::body(req)?;
    let mut allowed = vec!["verified", "primary"];
    allowed.push(if kind.index == "email" {
        "notify_primary_email_address_changed"
    } else {
        "reserved_for_second_factor"
    });
    reject_unknown(&body, &allowed)?;
    apply(kind, &mut user, index, &mut body)?;
    users::save(&user)?;
    webhooks::emit("user.updated", user.clone())?;
    Ok(Response::ok(&user[kind.list][index]))
}

fn delete(kind: &Kind, req: &Request) -> Result<Response, Error> {
    let id = wire::param(req, kind.route).to_owned();
    let (mut user, index) = owner(kind, &id)?;
    let Some(items) = user[kind.list].as_array_mut() else {
        return Err(wire::not_found(kind.label));
    };
    let removed = items.remove(index);
    // The primary moves to the next identifier of the kind, if any.
    let next = items
        .first()
        .map(|x| x["id"].clone())
        .unwrap_or(Value::Null);
    if user[kind.primary] == id.as_str() {
        user[kind.primary] = next;
    }
    user["updated_at"] = json!(now());
    users::save(&user)?;
    users::release(kind.index, removed[kind.field].as_str().unwrap_or_default());
    webhooks::emit("user.updated", user.clone())?;
    Ok(wire::deleted(kind.field, &id))
}

pub fn create_email(req: &Request) -> Result<Response, Error> {
    create(&EMAIL, req)
}

pub fn retrieve_email(req: &Request) -> Result<Response, Error> {
    retrieve(&EMAIL, req)
}

pub fn update_email(req: &Request) -> Result<Response, Error> {
    update(&EMAIL, req)
}

pub fn delete_email(req: &Request) -> Result<Response, Error> {
    delete(&EMAIL, req)
}

pub fn create_phone(req: &Request) -> Result<Response, Error> {
    create(&PHONE, req)
}

pub fn retrieve_phone(req: &Request) -> Result<Response, Error> {
    retrieve(&PHONE, req)
}

pub fn update_phone(req: &Request) -> Result<Response, Error> {
    update(&PHONE, req)
}

pub fn delete_phone(req: &Request) -> Result<Response, Error> {
    delete(&PHONE, req)
}
