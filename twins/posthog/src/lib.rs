//! The PostHog twin: a stateful fake of PostHog's ingestion, feature flag
//! and (a slice of its) management API that the official SDKs talk to
//! unchanged. Every well-formed `phc_…` project key is its own project;
//! every well-formed `phx_…` personal key may manage every project.
//!
//! Objects are typed structs, rendered to the vendor's shape when answered:
//! its records have few fields, with behaviour (statuses, schedules, rules)
//! that reads best as code on types (docs/architecture.md, "Twins").

use std::sync::LazyLock;

use wt_sdk::{Info, Method, Request, Response, Router, Twin};

pub mod capture_v1;
pub mod cohorts;
pub mod eval;
pub mod flags;
pub mod ingest;
pub mod props;
pub mod wire;

/// PostHog does not version its API; this is the date of the surface
/// `posthog` 7.91 (Python) speaks: `/batch/`, `/flags/?v=4`,
/// `/flags/definitions`.
pub const API_VERSION: &str = "2026-01-01";

pub struct PostHog;

#[wt_sdk::twin]
impl Twin for PostHog {
    fn describe() -> Info {
        Info {
            name: "posthog".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4115,
            license_required: false,
            description: "PostHog: event capture (batch, gzip, forms), persons, feature flags \
                          (remote and local evaluation)."
                .into(),
            settings: Vec::new(),
            idempotency: None,
        }
    }

    fn handle(request: Request) -> Response {
        let origin = request.header("origin").map(str::to_owned);
        if request.method == Method::Options {
            return preflight(&request);
        }
        let response = ROUTER.route(request);
        with_cors(response, origin.as_deref())
    }
}

/// Browsers (posthog-js) call ingestion and `/flags` cross-origin, so
/// PostHog answers preflights and echoes the caller's origin.
fn preflight(request: &Request) -> Response {
    let headers = request
        .header("access-control-request-headers")
        .unwrap_or("content-type")
        .to_owned();
    with_cors(Response::empty(200), request.header("origin"))
        .with_header(
            "access-control-allow-methods",
            "GET, POST, PATCH, PUT, DELETE, OPTIONS",
        )
        .with_header("access-control-allow-headers", headers)
        .with_header("access-control-max-age", "86400")
}

fn with_cors(response: Response, origin: Option<&str>) -> Response {
    match origin {
        Some(o) => response
            .with_header("access-control-allow-origin", o)
            .with_header("access-control-allow-credentials", "true")
            .with_header("vary", "Origin"),
        None => response.with_header("access-control-allow-origin", "*"),
    }
}

static ROUTER: LazyLock<Router> = LazyLock::new(router);

/// PostHog (Django) takes a trailing slash as optional everywhere, and
/// serves its project API under both `/api/projects/{id}` and the newer
/// `/api/environments/{id}`.
fn router() -> Router {
    use Method::{Get, Post};
    let mut r = Router::new()
        .on_error(wire::render)
        .optional_trailing_slash();
    for path in ["/batch", "/capture", "/e", "/i/v0/e", "/track", "/engage"] {
        r = r.methods([Get, Post], path, ingest::capture);
    }
    r = r
        .post("/i/v1/analytics/events", capture_v1::capture)
        .post("/flags", eval::flags_endpoint)
        .post("/decide", eval::decide)
        .get("/flags/definitions", flags::definitions)
        .get("/api/feature_flag/local_evaluation", flags::definitions)
        // Remote config is only under `projects`.
        .get(
            "/api/projects/{project_id}/feature_flags/{id}/remote_config",
            flags::remote_config,
        )
        .patch(
            "/api/projects/{project_id}/cohorts/{id}/add_persons_to_static_cohort",
            cohorts::add_persons,
        );
    for prefix in [
        "/api/projects/{project_id}",
        "/api/environments/{project_id}",
    ] {
        r = r.nest(prefix, project_api());
    }
    r
}

/// The routes under one project (or environment).
fn project_api() -> Router {
    use Method::{Patch, Put};
    Router::new()
        .get("/", flags::project)
        .get("/feature_flags", flags::list)
        .post("/feature_flags", flags::create)
        .get("/feature_flags/{id}", flags::retrieve)
        .methods([Patch, Put], "/feature_flags/{id}", flags::update)
        .delete("/feature_flags/{id}", flags::destroy)
        .get("/cohorts", cohorts::list)
        .post("/cohorts", cohorts::create)
        .get("/cohorts/{id}", cohorts::retrieve)
        .methods([Patch, Put], "/cohorts/{id}", cohorts::update)
        .delete("/cohorts/{id}", cohorts::destroy)
        .get("/events", ingest::list_events)
        .get("/events/{id}", ingest::get_event)
        .get("/persons", ingest::list_persons)
        .get("/persons/{id}", ingest::get_person)
        .delete("/persons/{id}", ingest::delete_person)
}

#[cfg(test)]
mod tests;
