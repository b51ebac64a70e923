//! The smallest twin: echo, a counter in the store, items with Stripe-style
//! forms and pagination, the twin clock, logging, and routes that trap on
//! purpose. It imitates no vendor, so its errors take the SDK's default
//! shape, the host's own. The host's tests and benches depend on these exact
//! routes and shapes.

use std::sync::LazyLock;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wt_sdk::{
    Collection, Error, Info, Method, Page, Request, Response, Router, Twin, clock, form, ids, log,
    store,
};

/// The hello twin.
pub struct Hello;

const VERSION: &str = "0.1.0";
const COUNTER: &str = "counter";
const ITEMS: Collection<Item> = Collection::new("items");

#[wt_sdk::twin]
impl Twin for Hello {
    fn describe() -> Info {
        Info {
            name: "hello".into(),
            version: VERSION.into(),
            api_version: "2026-11-01".into(),
            default_port: 4110,
            license_required: false,
            description: "A minimal twin: echo, a counter, items, a trap.".into(),
            ..Info::default()
        }
    }

    fn handle(request: Request) -> Response {
        ROUTER.route(request)
    }
}

static ROUTER: LazyLock<Router> = LazyLock::new(router);

fn router() -> Router {
    const ECHO_METHODS: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];
    Router::new()
        .get("/", root)
        .methods(ECHO_METHODS, "/echo", echo)
        .methods(ECHO_METHODS, "/echo/{*rest}", echo)
        .get("/counter", counter_get)
        .post("/counter", counter_post)
        .get("/trap", trap)
        .post("/trap-after-write", trap_after_write)
        .post("/items", item_create)
        .get("/items", item_list)
        .get("/items/{id}", item_get)
        .delete("/items/{id}", item_delete)
        .get("/time", time)
        .post("/log", log_body)
        .get("/spin", spin)
}

fn root(_: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&json!({"twin": "hello", "version": VERSION})))
}

/// Everything the twin saw, so host tests can check what crosses the
/// boundary (prefix stripping, raw query, lower-case headers, bytes).
fn echo(req: &Request) -> Result<Response, Error> {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        // A repeated header folds into one comma-separated value, as HTTP
        // allows.
        match headers.get_mut(name) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    Ok(Response::ok(&json!({
        "method": req.method.as_str(),
        "path": req.path,
        "query": req.query,
        "headers": headers,
        "body": req.body_text(),
    })))
}

fn counter_get(_: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&json!({"value": store::counter(COUNTER)?})))
}

/// Exactly one store read and one write, so the host's concurrency test
/// (concurrent increments all counted) is meaningful.
fn counter_post(req: &Request) -> Result<Response, Error> {
    let by = increment_by(req)?;
    Ok(Response::ok(
        &json!({"value": store::increment(COUNTER, by)?}),
    ))
}

/// `by` from a JSON body (`{"by":2}`) or a form (`by=2`); 1 when absent.
fn increment_by(req: &Request) -> Result<i64, Error> {
    let invalid = || Error::bad_request("`by` must be an integer.").with_param("by");
    match req.body_value()?.get("by") {
        None => Ok(1),
        Some(Value::String(s)) if s.is_empty() => Ok(1),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| invalid()),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(invalid),
        Some(_) => Err(invalid()),
    }
}

fn trap(_: &Request) -> Result<Response, Error> {
    panic!("hello: trap requested");
}

fn trap_after_write(_: &Request) -> Result<Response, Error> {
    let value = store::increment(COUNTER, 1)?;
    panic!("hello: trap requested after writing counter {value}");
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    id: String,
    object: String,
    created: u64,
    name: Option<String>,
    metadata: BTreeMap<String, String>,
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct CreateItem {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<String>,
}

fn item_create(req: &Request) -> Result<Response, Error> {
    let Value::Object(mut params) = req.body_value()? else {
        return Err(Error::bad_request("The request body must be an object."));
    };
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "metadata" | "tags"))
    {
        return Err(
            Error::bad_request(format!("Received unknown parameter: {unknown}"))
                .with_param(unknown.clone()),
        );
    }
    // An empty form value means "unset": `name=` is no name, `metadata[k]=`
    // no such key.
    params.retain(|_, v| v.as_str() != Some(""));
    let input: CreateItem = form::from_value(&Value::Object(params))?;
    let item = Item {
        id: ids::new("item"),
        object: "item".into(),
        created: clock::now_secs(),
        name: input.name,
        metadata: input
            .metadata
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
        tags: input.tags,
    };
    ITEMS.insert(&item.id, &item)?;
    Ok(Response::ok(&item))
}

fn item_id(req: &Request) -> &str {
    req.param("id").unwrap_or_default()
}

fn item_get(req: &Request) -> Result<Response, Error> {
    let id = item_id(req);
    let item = ITEMS
        .get(id)?
        .ok_or_else(|| Error::resource_missing("item", id))?;
    Ok(Response::ok(&item))
}

fn item_delete(req: &Request) -> Result<Response, Error> {
    let id = item_id(req);
    ITEMS
        .remove(id)?
        .ok_or_else(|| Error::resource_missing("item", id))?;
    Ok(Response::ok(
        &json!({"id": id, "object": "item", "deleted": true}),
    ))
}

fn item_list(req: &Request) -> Result<Response, Error> {
    let page = Page::from_query(req, 10, 100)?;
    let list = ITEMS.list(&page, true)?;
    Ok(Response::ok(&json!({
        "object": "list",
        "url": "/items",
        "has_more": list.has_more,
        "data": list.items,
    })))
}

fn time(_: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&json!({
        "now_millis": clock::now_millis(),
        "wall_millis": clock::wall_millis(),
    })))
}

/// Keeps the CPU busy for `ms` milliseconds of wall time (default 100, at
/// most 60 000): lets the host's tests hold a request in flight, hit a
/// deadline, and watch one busy twin beside others.
fn spin(req: &Request) -> Result<Response, Error> {
    let ms = match req.query_param("ms") {
        None => 100,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| Error::bad_request(format!("Invalid integer: {text}")).with_param("ms"))?,
    }
    .min(60_000);
    let until = clock::wall_millis().saturating_add(ms);
    let mut iterations: u64 = 0;
    while clock::wall_millis() < until {
        iterations += 1;
    }
    Ok(Response::ok(
        &json!({ "spun_ms": ms, "iterations": iterations }),
    ))
}

fn log_body(req: &Request) -> Result<Response, Error> {
    log::info(req.body_text());
    Ok(Response::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wt_sdk::log::Level;
    use wt_sdk::testing;

    fn call(req: Request) -> Response {
        testing::call::<Hello>(req)
    }

    fn json_of(resp: &Response) -> Value {
        resp.json_body()
            .unwrap_or_else(|e| panic!("{e}: {}", resp.body_text()))
    }

    fn ok(req: Request) -> Value {
        let resp = call(req);
        assert_eq!(resp.status, 200, "{}", resp.body_text());
        json_of(&resp)
    }

    #[test]
    fn describes_itself() {
        let info = Hello::describe();
        assert_eq!(
            (
                info.name.as_str(),
                info.version.as_str(),
                info.api_version.as_str()
            ),
            ("hello", "0.1.0", "2026-11-01")
        );
        assert_eq!((info.default_port, info.license_required), (4110, false));
        assert_eq!(
            info.description,
            "A minimal twin: echo, a counter, items, a trap."
        );
    }

    #[test]
    fn root() {
        assert_eq!(
            ok(Request::new("GET", "/")),
            json!({"twin": "hello", "version": "0.1.0"})
        );
    }

    #[test]
    fn echo_reports_what_it_saw() {
        let req = Request::new("PATCH", "/echo/a/b%20c?x=1&y=%5B")
            .with_header("X-One", "1")
            .with_header("x-one", "2")
            .with_header("Content-Type", "text/plain")
            .with_body(b"hi \xff".to_vec());
        assert_eq!(
            ok(req),
            json!({
                "method": "PATCH",
                "path": "/echo/a/b%20c",
                "query": "x=1&y=%5B",
                "headers": {"x-one": "1, 2", "content-type": "text/plain"},
                "body": "hi \u{FFFD}",
            })
        );
        for method in ["GET", "POST", "PUT", "DELETE"] {
            assert_eq!(ok(Request::new(method, "/echo"))["method"], method);
        }
        assert_eq!(ok(Request::new("GET", "/echo/"))["path"], "/echo/");
        let resp = call(Request::new("OPTIONS", "/echo"));
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("GET, POST, PUT, PATCH, DELETE"));
    }

    #[test]
    fn counter_counts_by_one_json_or_form() {
        assert_eq!(ok(Request::new("GET", "/counter")), json!({"value": 0}));
        assert_eq!(ok(Request::new("POST", "/counter")), json!({"value": 1}));
        assert_eq!(
            ok(Request::new("POST", "/counter").with_json(&json!({"by": 5}))),
            json!({"value": 6})
        );
        assert_eq!(
            ok(Request::new("POST", "/counter").with_form("by=-2")),
            json!({"value": 4})
        );
        assert_eq!(
            ok(Request::new("POST", "/counter").with_form("by=")),
            json!({"value": 5})
        );
        assert_eq!(ok(Request::new("GET", "/counter")), json!({"value": 5}));
        for bad in [
            Request::new("POST", "/counter").with_form("by=x"),
            Request::new("POST", "/counter").with_json(&json!({"by": 1.5})),
            Request::new("POST", "/counter").with_json(&json!({"by": [1]})),
        ] {
            let resp = call(bad);
            assert_eq!(resp.status, 400);
            assert_eq!(json_of(&resp)["error"]["param"], "by");
        }
        assert_eq!(testing::store_keys(), ["counter"]);
    }

    #[test]
    fn trap_panics_and_trap_after_write_rolls_back() {
        let resp = call(Request::new("GET", "/trap"));
        assert_eq!(resp.status, 500);
        assert_eq!(resp.body_text(), "twin trapped: hello: trap requested");
        ok(Request::new("POST", "/counter"));
        let trap =
            testing::try_call::<Hello>(Request::new("POST", "/trap-after-write")).unwrap_err();
        assert!(
            trap.message.starts_with("hello: trap requested"),
            "{}",
            trap.message
        );
        assert_eq!(ok(Request::new("GET", "/counter")), json!({"value": 1}));
    }

    #[test]
    fn items_from_a_nested_form() {
        testing::set_now_millis(1_800_000_000_500);
        let item = ok(Request::new("POST", "/items")
            .with_form("name=Blue+widget&metadata[color]=red&metadata%5Bsize%5D=L&metadata[gone]=&tags[]=a&tags[]=b"));
        let id = item["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("item_") && id.len() == 5 + 24, "{id}");
        assert_eq!(
            item,
            json!({
                "id": id, "object": "item", "created": 1_800_000_000u64, "name": "Blue widget",
                "metadata": {"color": "red", "size": "L"}, "tags": ["a", "b"],
            })
        );
        assert_eq!(ok(Request::new("GET", &format!("/items/{id}"))), item);
    }

    #[test]
    fn items_from_json_and_defaults() {
        let item = ok(Request::new("POST", "/items")
            .with_json(&json!({"name": "j", "tags": ["x"], "metadata": {"k": "v"}})));
        assert_eq!(
            (&item["name"], &item["tags"], &item["metadata"]),
            (&json!("j"), &json!(["x"]), &json!({"k": "v"}))
        );
        let bare = ok(Request::new("POST", "/items").with_form("name="));
        assert_eq!(
            (&bare["name"], &bare["tags"], &bare["metadata"]),
            (&Value::Null, &json!([]), &json!({}))
        );
    }

    #[test]
    fn item_create_rejects_bad_input() {
        let cases = [
            (
                Request::new("POST", "/items").with_form("name=x&metadata=1&metadata[a]=2"),
                Some("metadata[a]"),
            ),
            (
                Request::new("POST", "/items").with_form("tags[=a"),
                Some("tags["),
            ),
            (
                Request::new("POST", "/items").with_form("color=red"),
                Some("color"),
            ),
            (
                Request::new("POST", "/items").with_json(&json!({"tags": "nope"})),
                None,
            ),
            (Request::new("POST", "/items").with_json(&json!([1])), None),
            (
                Request::new("POST", "/items").with_json(&json!({"name": {"a": 1}})),
                None,
            ),
        ];
        for (req, param) in cases {
            let resp = call(req);
            assert_eq!(resp.status, 400, "{}", resp.body_text());
            let err = &json_of(&resp)["error"];
            assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(err.get("param").and_then(Value::as_str), param);
        }
        assert!(testing::store_keys().is_empty());
    }

    #[test]
    fn missing_items_are_404s_in_the_hosts_error_shape() {
        for method in ["GET", "DELETE"] {
            let resp = call(Request::new(method, "/items/item_nope"));
            assert_eq!(resp.status, 404);
            assert_eq!(
                json_of(&resp),
                json!({"error": {
                    "code": "resource_missing",
                    "message": "No such item: 'item_nope'",
                    "param": "id",
                }})
            );
        }
    }

    #[test]
    fn delete_removes_the_item() {
        let id = ok(Request::new("POST", "/items").with_form("name=a"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            ok(Request::new("DELETE", &format!("/items/{id}"))),
            json!({"id": id, "object": "item", "deleted": true})
        );
        assert_eq!(
            call(Request::new("GET", &format!("/items/{id}"))).status,
            404
        );
        assert_eq!(ok(Request::new("GET", "/items"))["data"], json!([]));
    }

    fn create(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                ok(Request::new("POST", "/items").with_form(&format!("name=n{i}")))["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn list(query: &str) -> (Vec<String>, bool) {
        let body = ok(Request::new("GET", &format!("/items?{query}")));
        assert_eq!(
            (&body["object"], &body["url"]),
            (&json!("list"), &json!("/items"))
        );
        let names = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        (names, body["has_more"].as_bool().unwrap())
    }

    fn names(ns: &[usize]) -> Vec<String> {
        ns.iter().map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn list_pages_newest_first_with_cursors_both_ways() {
        let ids = create(12);
        assert_eq!(list(""), (names(&[11, 10, 9, 8, 7, 6, 5, 4, 3, 2]), true));
        assert_eq!(list("limit=5"), (names(&[11, 10, 9, 8, 7]), true));
        assert_eq!(
            list(&format!("limit=5&starting_after={}", ids[7])),
            (names(&[6, 5, 4, 3, 2]), true)
        );
        assert_eq!(
            list(&format!("limit=5&starting_after={}", ids[2])),
            (names(&[1, 0]), false)
        );
        assert_eq!(
            list(&format!("limit=5&ending_before={}", ids[1])),
            (names(&[6, 5, 4, 3, 2]), true)
        );
        assert_eq!(
            list(&format!("limit=5&ending_before={}", ids[6])),
            (names(&[11, 10, 9, 8, 7]), false)
        );
        assert_eq!(
            list(&format!("limit=3&ending_before={}", ids[10])),
            (names(&[11]), false)
        );
        assert_eq!(
            list("limit=100&starting_after="),
            (names(&[11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]), false)
        );
    }

    #[test]
    fn list_rejects_bad_limits_and_cursors() {
        create(1);
        for q in ["limit=0", "limit=101", "limit=ten"] {
            let resp = call(Request::new("GET", &format!("/items?{q}")));
            assert_eq!(resp.status, 400, "{q}");
            assert_eq!(json_of(&resp)["error"]["param"], "limit");
        }
        let resp = call(Request::new("GET", "/items?starting_after=item_gone"));
        assert_eq!(resp.status, 404);
        assert_eq!(json_of(&resp)["error"]["param"], "starting_after");
    }

    #[test]
    fn spin_runs_for_the_time_asked_and_rejects_bad_input() {
        let started = std::time::Instant::now();
        let resp = call(Request::new("GET", "/spin?ms=20"));
        assert_eq!(resp.status, 200);
        // Wall time is read in whole milliseconds, so allow one short.
        assert!(started.elapsed() >= std::time::Duration::from_millis(19));
        assert_eq!(json_of(&resp)["spun_ms"], 20);
        let bad = call(Request::new("GET", "/spin?ms=soon"));
        assert_eq!(bad.status, 400);
        assert_eq!(json_of(&bad)["error"]["param"], "ms");
    }

    #[test]
    fn time_reports_twin_and_wall_time() {
        testing::set_now_millis(42_000);
        let body = ok(Request::new("GET", "/time"));
        assert_eq!(body["now_millis"], 42_000);
        assert!(body["wall_millis"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn log_logs_the_body() {
        let resp = call(Request::new("POST", "/log").with_body("hello there"));
        assert_eq!((resp.status, resp.body.len()), (204, 0));
        assert_eq!(
            testing::take_logs(),
            [(Level::Info, "hello there".to_owned())]
        );
    }

    #[test]
    fn unknown_routes() {
        let resp = call(Request::new("GET", "/nope"));
        assert_eq!(resp.status, 404);
        assert_eq!(
            json_of(&resp)["error"]["message"],
            "Unrecognized request URL (GET: /nope)."
        );
        let resp = call(Request::new("PUT", "/counter"));
        assert_eq!(
            (resp.status, resp.header("allow")),
            (405, Some("GET, POST"))
        );
    }
}
