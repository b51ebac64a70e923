//! Method + path routing.
//!
//! Routes are `&'static str` patterns, split into segments when added and
//! matched segment by segment against the path (split once per request), and
//! handlers are plain `fn` pointers, so a `Router` is `Sync` and can live in
//! a `static`. The host keeps a twin's instance between its requests
//! (docs/decisions.md §15), so build the table once per instance rather than
//! on every call; for an 80-route table that was a fifth of a request:
//!
//! ```
//! use std::sync::LazyLock;
//! use wt_sdk::{Request, Response, Router};
//!
//! static ROUTER: LazyLock<Router> = LazyLock::new(|| {
//!     Router::new().get("/ping", |_| Ok(Response::text(200, "pong")))
//! });
//!
//! let response = ROUTER.route(Request::new("GET", "/ping"));
//! assert_eq!(response.status, 200);
//! ```
//!
//! Patterns are `/`-separated segments; `{name}` captures one non-empty
//! segment and a final `{*name}` captures the rest of the path (at least one
//! segment, possibly empty, e.g. the `""` of `/echo/`). Captures are
//! percent-decoded into [`Request::param`]. Matching is exact otherwise: a
//! trailing `/` is a different path, unless the router is built with
//! [`Router::optional_trailing_slash`] (Django-style APIs such as PostHog's
//! answer `/flags` and `/flags/` alike).
//!
//! An unknown path is a 404 and a known path with the wrong method a 405 with
//! `Allow`; both are [`Error`]s rendered by the router's [`Renderer`], so they
//! come out in the vendor's shape like every other error.

use crate::error::{Renderer, render_plain};
use crate::{Error, Method, Request, Response, form};

/// A request handler. Plain `fn`s (and non-capturing closures) coerce to it.
pub type Handler = fn(&Request) -> Result<Response, Error>;

struct Route {
    /// `None` matches every method.
    method: Option<Method>,
    /// What [`Router::nest`] put in front of `pattern`, for `Debug`.
    prefix: Option<&'static str>,
    pattern: &'static str,
    /// `pattern` split once, when the route is added.
    segments: Box<[Segment]>,
    handler: Handler,
}

impl Route {
    fn new(method: Option<Method>, pattern: &'static str, handler: Handler) -> Self {
        Route {
            method,
            prefix: None,
            pattern,
            segments: compile(pattern),
            handler,
        }
    }
}

/// One `/`-separated piece of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    /// `{name}`: one non-empty segment.
    Param(&'static str),
    /// `{*name}`: the rest of the path; always the last segment.
    Rest(&'static str),
}

/// Routes requests to handlers by method and path.
///
/// ```
/// use wt_sdk::{Error, Request, Response, Router};
///
/// fn show(req: &Request) -> Result<Response, Error> {
///     Ok(Response::ok(&serde_json::json!({ "id": req.param("id") })))
/// }
///
/// let router = Router::new().get("/v1/customers/{id}", show);
/// let resp = router.route(Request::new("GET", "/v1/customers/cus_1"));
/// assert_eq!(resp.body_text(), r#"{"id":"cus_1"}"#);
/// assert_eq!(router.route(Request::new("POST", "/v1/customers/cus_1")).status, 405);
/// ```
pub struct Router {
    routes: Vec<Route>,
    renderer: Renderer,
    /// Match `/x/` where a route says `/x`.
    optional_trailing_slash: bool,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for r in &self.routes {
            list.entry(&format_args!(
                "{} {}{}",
                r.method.as_ref().map_or("*", Method::as_str),
                r.prefix.unwrap_or(""),
                r.pattern
            ));
        }
        list.finish()
    }
}

impl Router {
    /// An empty router rendering errors with [`render_plain`].
    pub fn new() -> Self {
        Router {
            routes: Vec::with_capacity(16),
            renderer: render_plain,
            optional_trailing_slash: false,
        }
    }

    /// Matches a path with one trailing `/` as the path without it, so
    /// `.get("/flags", h)` answers `GET /flags/` too, with the request's
    /// path unchanged: one route per endpoint instead of two. Patterns are
    /// then written without the slash; the root `/` is left as it is.
    ///
    /// ```
    /// use wt_sdk::{Request, Response, Router};
    ///
    /// let router = Router::new()
    ///     .optional_trailing_slash()
    ///     .get("/flags", |_| Ok(Response::text(200, "ok")));
    /// assert_eq!(router.route(Request::new("GET", "/flags/")).status, 200);
    /// assert_eq!(router.route(Request::new("GET", "/flags")).status, 200);
    /// assert_eq!(router.route(Request::new("GET", "/flags//")).status, 404);
    /// ```
    pub fn optional_trailing_slash(mut self) -> Self {
        self.optional_trailing_slash = true;
        self
    }

    /// The part of `path` that patterns are matched against.
    fn matched_path<'p>(&self, path: &'p str) -> &'p str {
        if self.optional_trailing_slash && path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        }
    }

    /// Uses `renderer` for every error, including the router's 404 and 405.
    pub fn on_error(mut self, renderer: Renderer) -> Self {
        self.renderer = renderer;
        self
    }

    /// Adds a route for `method`.
    ///
    /// # Panics
    /// If `pattern` is malformed (no leading `/`, a brace that is not a whole
    /// segment, `{*rest}` not last): a programming error that every request
    /// would hit, so it is loud at once.
    pub fn add(mut self, method: Method, pattern: &'static str, handler: Handler) -> Self {
        self.routes.push(Route::new(Some(method), pattern, handler));
        self
    }

    /// Adds the same route for several methods.
    pub fn methods(
        mut self,
        methods: impl IntoIterator<Item = Method>,
        pattern: &'static str,
        handler: Handler,
    ) -> Self {
        for m in methods {
            self = self.add(m, pattern, handler);
        }
        self
    }

    /// Adds a route matching every method.
    pub fn any(mut self, pattern: &'static str, handler: Handler) -> Self {
        self.routes.push(Route::new(None, pattern, handler));
        self
    }

    /// Adds `routes` under `prefix`: `.nest("/api/projects/{project_id}",
    /// Router::new().get("/cohorts", list))` answers
    /// `GET /api/projects/1/cohorts`, with `project_id` captured. A nested
    /// `/` is the prefix itself. Twins with one API under several prefixes
    /// (PostHog's `projects` and `environments`) nest the same routes twice.
    /// `routes`' own error renderer is not used: this router renders.
    ///
    /// # Panics
    /// If `prefix` is malformed, or ends in a `{*rest}` capture (nothing can
    /// follow one).
    pub fn nest(mut self, prefix: &'static str, routes: Router) -> Self {
        let head = compile(prefix);
        assert!(
            !head.iter().any(|s| matches!(s, Segment::Rest(_))),
            "nest prefix {prefix:?} may not end in a {{*rest}} capture"
        );
        for mut route in routes.routes {
            let tail: &[Segment] = if route.pattern == "/" {
                &[]
            } else {
                &route.segments
            };
            route.segments = head.iter().chain(tail).copied().collect();
            route.prefix = Some(prefix);
            self.routes.push(route);
        }
        self
    }

    /// `GET pattern`.
    pub fn get(self, pattern: &'static str, handler: Handler) -> Self {
        self.add(Method::Get, pattern, handler)
    }

    /// `POST pattern`.
    pub fn post(self, pattern: &'static str, handler: Handler) -> Self {
        self.add(Method::Post, pattern, handler)
    }

    /// `PUT pattern`.
    pub fn put(self, pattern: &'static str, handler: Handler) -> Self {
        self.add(Method::Put, pattern, handler)
    }

    /// `PATCH pattern`.
    pub fn patch(self, pattern: &'static str, handler: Handler) -> Self {
        self.add(Method::Patch, pattern, handler)
    }

    /// `DELETE pattern`.
    pub fn delete(self, pattern: &'static str, handler: Handler) -> Self {
        self.add(Method::Delete, pattern, handler)
    }

    /// Dispatches `request` and renders any error with the router's renderer.
    pub fn route(&self, request: Request) -> Response {
        match self.dispatch(request) {
            Ok(response) => response,
            Err(err) => self.render(&err),
        }
    }

    /// Dispatches `request`, returning the handler's result or the router's
    /// own 404/405 as an [`Error`], for twins that post-process errors.
    pub fn dispatch(&self, mut request: Request) -> Result<Response, Error> {
        let mut captures: Vec<(&'static str, &str)> = Vec::new();
        let mut path_matched = false;
        let path = self.matched_path(&request.path);
        let parts = split_path(path);
        for route in &self.routes {
            if !matches(&route.segments, path, &parts, &mut captures) {
                continue;
            }
            path_matched = true;
            if route.method.as_ref().is_some_and(|m| *m != request.method) {
                continue;
            }
            let decoded: Vec<(&'static str, String)> = captures
                .iter()
                .map(|(name, raw)| (*name, form::percent_decode(raw).into_owned()))
                .collect();
            request.clear_params();
            for (name, value) in decoded {
                request.set_param(name, value);
            }
            return (route.handler)(&request);
        }
        if path_matched {
            Err(self.method_not_allowed(&request))
        } else {
            Err(Error::not_found(format!(
                "Unrecognized request URL ({}: {}).",
                request.method, request.path
            )))
        }
    }

    /// Renders `err` with this router's renderer, adding its headers.
    pub fn render(&self, err: &Error) -> Response {
        err.render_with(self.renderer)
    }

    fn method_not_allowed(&self, request: &Request) -> Error {
        let mut scratch = Vec::new();
        let mut allow: Vec<&str> = Vec::new();
        let path = self.matched_path(&request.path);
        let parts = split_path(path);
        for route in &self.routes {
            if let Some(m) = &route.method
                && matches(&route.segments, path, &parts, &mut scratch)
                && !allow.contains(&m.as_str())
            {
                allow.push(m.as_str());
            }
        }
        Error::method_not_allowed(format!(
            "Method {} is not allowed for {}.",
            request.method, request.path
        ))
        .with_header("allow", allow.join(", "))
    }
}

/// Splits a pattern into segments.
///
/// # Panics
/// If the pattern is malformed (see [`Router::add`]).
fn compile(pattern: &'static str) -> Box<[Segment]> {
    let Some(body) = pattern.strip_prefix('/') else {
        panic!("route pattern {pattern:?} must start with '/'");
    };
    let mut segments = Vec::new();
    let mut pieces = body.split('/').peekable();
    while let Some(seg) = pieces.next() {
        if !seg.contains(['{', '}']) {
            segments.push(Segment::Literal(seg));
            continue;
        }
        let inner = seg
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or_else(|| {
                panic!("route pattern {pattern:?}: `{seg}` must be a whole `{{name}}` segment")
            });
        let (name, rest) = match inner.strip_prefix('*') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        assert!(
            !name.is_empty() && !name.contains(['{', '}', '*']),
            "route pattern {pattern:?}: bad capture `{seg}`"
        );
        assert!(
            !rest || pieces.peek().is_none(),
            "route pattern {pattern:?}: `{seg}` must be the last segment"
        );
        segments.push(if rest {
            Segment::Rest(name)
        } else {
            Segment::Param(name)
        });
    }
    segments.into_boxed_slice()
}

/// A path's segments with where each starts, split once per request; empty
/// (matching nothing) when the path does not start with `/`.
fn split_path(path: &str) -> Vec<(usize, &str)> {
    let Some(body) = path.strip_prefix('/') else {
        return Vec::new();
    };
    let mut start = 1;
    body.split('/')
        .map(|seg| {
            let part = (start, seg);
            start += seg.len() + 1;
            part
        })
        .collect()
}

/// Whether a route's segments match the path's, filling `captures` with
/// raw (still percent-encoded) slices of `path`.
fn matches<'p>(
    segments: &[Segment],
    path: &'p str,
    parts: &[(usize, &'p str)],
    captures: &mut Vec<(&'static str, &'p str)>,
) -> bool {
    captures.clear();
    let rest = matches!(segments.last(), Some(Segment::Rest(_)));
    // Most routes differ in length; they cost one comparison.
    if parts.is_empty() || (!rest && parts.len() != segments.len()) || parts.len() < segments.len()
    {
        return false;
    }
    for (segment, &(start, part)) in segments.iter().zip(parts) {
        match *segment {
            Segment::Literal(literal) if literal != part => return false,
            Segment::Literal(_) => {}
            Segment::Param(_) if part.is_empty() => return false,
            Segment::Param(name) => captures.push((name, part)),
            Segment::Rest(name) => captures.push((name, &path[start..])),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn show(req: &Request) -> Result<Response, Error> {
        let params: Vec<_> = req.params().collect();
        Ok(Response::ok(&json!({"route": "show", "params": params})))
    }
    fn list(_: &Request) -> Result<Response, Error> {
        Ok(Response::ok(&json!({"route": "list"})))
    }
    fn fail(_: &Request) -> Result<Response, Error> {
        Err(Error::conflict("nope").with_code("c"))
    }

    #[test]
    fn nested_routes_answer_under_each_prefix_with_its_captures() {
        let api = || {
            Router::new()
                .get("/", list)
                .get("/cohorts/{id}", show)
                .delete("/cohorts/{id}", show)
        };
        let router = Router::new()
            .optional_trailing_slash()
            .nest("/api/projects/{project_id}", api())
            .nest("/api/environments/{project_id}", api());
        for base in ["/api/projects/7", "/api/environments/7"] {
            let one = router.route(Request::new("GET", &format!("{base}/cohorts/c1/")));
            assert_eq!(
                body(&one)["params"],
                json!([["project_id", "7"], ["id", "c1"]]),
                "{base}"
            );
            for root in [base.to_owned(), format!("{base}/")] {
                assert_eq!(
                    body(&router.route(Request::new("GET", &root)))["route"],
                    "list"
                );
            }
            let wrong = router.route(Request::new("POST", &format!("{base}/cohorts/c1/")));
            assert_eq!(wrong.status, 405);
            assert_eq!(wrong.header("allow"), Some("GET, DELETE"));
        }
        assert_eq!(
            router.route(Request::new("GET", "/api/projects")).status,
            404
        );
        assert!(format!("{router:?}").contains("GET /api/environments/{project_id}/cohorts/{id}"));
    }

    #[test]
    fn without_the_option_a_trailing_slash_is_another_path() {
        let router = Router::new().get("/flags", list);
        assert_eq!(router.route(Request::new("GET", "/flags/")).status, 404);
    }

    fn router() -> Router {
        Router::new()
            .get("/", list)
            .get("/v1/customers", list)
            .post("/v1/customers", list)
            .get("/v1/customers/{id}", show)
            .delete("/v1/customers/{id}", show)
            .get("/v1/customers/{id}/sources/{source}", show)
            .methods([Method::Get, Method::Put], "/files/{*path}", show)
            .get("/fail", fail)
    }

    fn body(r: &Response) -> Value {
        r.json_body().unwrap()
    }

    #[test]
    fn matches_literals_and_captures() {
        let r = router();
        assert_eq!(body(&r.route(Request::new("GET", "/")))["route"], "list");
        assert_eq!(
            body(&r.route(Request::new("GET", "/v1/customers")))["route"],
            "list"
        );
        assert_eq!(
            body(&r.route(Request::new("GET", "/v1/customers/cus%201?x=1"))),
            json!({"route": "show", "params": [["id", "cus 1"]]})
        );
        assert_eq!(
            body(&r.route(Request::new("GET", "/v1/customers/c/sources/s")))["params"],
            json!([["id", "c"], ["source", "s"]])
        );
    }

    #[test]
    fn catch_all_takes_the_rest() {
        let r = router();
        let got = |p: &str| body(&r.route(Request::new("PUT", p)))["params"].clone();
        assert_eq!(got("/files/a/b%2Fc"), json!([["path", "a/b/c"]]));
        assert_eq!(got("/files/"), json!([["path", ""]]));
        assert_eq!(r.route(Request::new("GET", "/files")).status, 404);
    }

    #[test]
    fn exact_segments_only() {
        let r = router();
        for p in [
            "/v1/customers/",
            "/v1/customer",
            "/v1/customers//sources/s",
            "/v1",
        ] {
            assert_eq!(r.route(Request::new("GET", p)).status, 404, "{p}");
        }
    }

    #[test]
    fn the_root_is_only_slash_and_a_path_needs_its_slash() {
        let r = router();
        assert_eq!(r.route(Request::new("GET", "/")).status, 200);
        assert_eq!(r.route(Request::new("GET", "//")).status, 404);
        // The host always sends a leading `/`; without one nothing matches.
        for p in ["", "v1/customers", "files/a"] {
            let raw = Request::from_parts(Method::Get, p.into(), String::new(), vec![], vec![]);
            assert_eq!(r.route(raw).status, 404, "{p:?}");
        }
    }

    #[test]
    fn patterns_compile_to_segments() {
        assert_eq!(
            *compile("/v1/customers/{id}/sources/{*rest}"),
            [
                Segment::Literal("v1"),
                Segment::Literal("customers"),
                Segment::Param("id"),
                Segment::Literal("sources"),
                Segment::Rest("rest"),
            ]
        );
        assert_eq!(*compile("/"), [Segment::Literal("")]);
        assert_eq!(split_path("/a//b"), [(1, "a"), (3, ""), (4, "b")]);
        assert!(split_path("a/b").is_empty());
    }

    #[test]
    fn unknown_path_is_a_rendered_404() {
        let resp = router().route(Request::new("GET", "/nope"));
        assert_eq!(resp.status, 404);
        assert_eq!(
            body(&resp),
            json!({"error": {"message": "Unrecognized request URL (GET: /nope)."}})
        );
    }

    #[test]
    fn wrong_method_is_a_405_with_allow() {
        let resp = router().route(Request::new("PATCH", "/v1/customers/x"));
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("GET, DELETE"));
        assert_eq!(
            body(&resp)["error"]["message"],
            "Method PATCH is not allowed for /v1/customers/x."
        );
    }

    #[test]
    fn errors_go_through_the_custom_renderer() {
        fn plain(e: &Error) -> Response {
            Response::text(
                e.status,
                format!("{}|{}", e.code.as_deref().unwrap_or("-"), e.message),
            )
        }
        let r = router().on_error(plain);
        assert_eq!(r.route(Request::new("GET", "/fail")).body_text(), "c|nope");
        assert_eq!(
            r.route(Request::new("GET", "/zzz")).body_text(),
            "-|Unrecognized request URL (GET: /zzz)."
        );
        let resp = r.route(Request::new("POST", "/"));
        assert_eq!((resp.status, resp.header("allow")), (405, Some("GET")));
    }

    #[test]
    fn any_matches_every_method() {
        let r = Router::new().any("/x", list);
        assert_eq!(r.route(Request::new("OPTIONS", "/x")).status, 200);
        assert!(format!("{r:?}").contains("* /x"));
    }

    #[test]
    #[should_panic(expected = "must be the last segment")]
    fn catch_all_must_be_last() {
        let _ = Router::new().get("/a/{*rest}/b", list);
    }

    #[test]
    #[should_panic(expected = "whole `{name}` segment")]
    fn captures_are_whole_segments() {
        let _ = Router::new().get("/a/x{id}", list);
    }

    #[test]
    #[should_panic(expected = "must start with '/'")]
    fn patterns_are_absolute() {
        let _ = Router::new().get("a", list);
    }
}
