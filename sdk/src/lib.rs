#![doc = include_str!("../README.md")]

// Lets the export macro's absolute `::wt_sdk::…` paths resolve inside this
// crate too (doc tests and unit tests of the glue).
extern crate self as wt_sdk;

pub mod auth;
pub mod clock;
pub mod compression;
pub mod config;
pub mod datetime;
pub mod email;
pub mod error;
pub mod fields;
pub mod form;
pub mod idempotency;
pub mod ids;
pub mod license;
pub mod log;
pub mod outbound;
pub mod request;
pub mod response;
pub mod router;
pub mod scope;
pub mod signature;
pub mod store;
pub mod svix;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

/// Every twin's heap: talc instead of wasi-libc's dlmalloc. A request
/// allocates a hundred-odd small objects (parsed forms, JSON values, keys),
/// and under load dlmalloc's malloc and free were ~10% of the server core on
/// a Stripe create (bench/README.md). Talc grows the linear memory itself and
/// claims a fresh heap when libc's allocator grew it in between, so the two
/// coexist. Turn the `talc` feature off to bring another allocator.
#[cfg(all(
    feature = "talc",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use error::{Error, ErrorData, Result};
pub use request::{Method, Request};
pub use response::Response;
pub use router::Router;
pub use store::{Collection, ListPage, Page};
/// Exports a [`Twin`] implementation as the component's `handler` and
/// `describe`.
///
/// Place it on `impl Twin for YourType { … }` (once per crate). The impl is
/// kept as written; the macro adds the component-model glue, which is only
/// exported on `wasm32` so native builds and tests link cleanly.
pub use wt_sdk_macro::twin;

/// JSON values and the `json!` macro, so a twin needs no dependency of its
/// own for them (`wt_sdk::json!({"ok": true})`).
pub use serde_json::{self, json};

/// A behavioral API twin.
///
/// Both functions are associated functions rather than methods: an instance
/// may serve many requests in turn or be replaced by a fresh one at any
/// time (after a panic, a reset, a reload), so there is no `self` whose
/// fields could be trusted to outlive a call. Keep state in the [`store`].
pub trait Twin {
    /// What the twin says about itself; the host calls this once at load.
    fn describe() -> Info;

    /// Handles one HTTP request. Store writes made here commit when this
    /// returns and are discarded if it panics (the host answers 500).
    fn handle(request: Request) -> Response;
}

/// A twin's self-description, shown by the host and used for its defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// Short lower-case name, used as the default route prefix (`"stripe"`).
    pub name: String,
    /// The twin's own semver version.
    pub version: String,
    /// The vendor API version the twin imitates (`"2024-06-20"`).
    pub api_version: String,
    /// The port the twin listens on by default.
    pub default_port: u16,
    /// Whether the host must hold a valid license to serve this twin.
    pub license_required: bool,
    /// One line for listings.
    pub description: String,
    /// Settings the operator may change at run time; read them with
    /// [`config`].
    pub settings: Vec<Setting>,
    /// How the vendor answers concurrent reuse of an idempotency key; the
    /// host answers that case because only it sees requests overlap.
    pub idempotency: Option<IdempotencyConflict>,
}

/// A run-time setting a twin declares in [`Info::settings`]: a quirk toggle
/// or a knob, shown and changed through `/_wt/twins/{t}/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Lower-case key, e.g. `"strict-api-version"`.
    pub key: String,
    /// One line saying what the setting changes.
    pub description: String,
    /// The default value.
    pub default: serde_json::Value,
}

impl Setting {
    /// A setting with its default value.
    pub fn new(
        key: impl Into<String>,
        default: impl Into<serde_json::Value>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            description: description.into(),
            default: default.into(),
        }
    }
}

/// The answer to a request that reuses an idempotency key while the first
/// request with that key (and the same credentials) is still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConflict {
    /// The request header carrying the key, e.g. `"idempotency-key"`.
    pub header: String,
    /// The status of the conflict answer.
    pub status: u16,
    /// The JSON body of the conflict answer, in the vendor's error shape.
    pub body: serde_json::Value,
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The generated component bindings. Hidden because twin authors should never
/// depend on wit-bindgen's shapes; the sdk's own types are the stable API.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, unreachable_pub, clippy::all)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "twin",
        path: "../wit",
        // Twins depend on wt-sdk alone, so the generated code (including the
        // export macro expanded in the twin's crate) must reach wit-bindgen's
        // runtime and these bindings through this crate.
        runtime_path: "::wt_sdk::__wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_twin",
        default_bindings_module: "::wt_sdk::__bindings",
    });
}

/// Conversions used by the code `#[wt_sdk::twin]` emits. Kept here, not in the
/// macro output, so they are ordinary code that is type-checked and tested
/// once.
#[doc(hidden)]
pub mod __export {
    use crate::__bindings::exports::wondertwin::twin::describe as wit_describe;
    use crate::__bindings::wondertwin::twin::types as wit;
    use crate::{Info, Request, Response, Twin};

    /// The WIT request type, named for the macro.
    pub type WitRequest = wit::Request;
    /// The WIT response type, named for the macro.
    pub type WitResponse = wit::Response;
    /// The WIT info type, named for the macro.
    pub type WitInfo = wit_describe::Info;
    pub use crate::__bindings::exports::wondertwin::twin::describe::Guest as DescribeGuest;
    pub use crate::__bindings::exports::wondertwin::twin::handler::Guest as HandlerGuest;

    /// Runs `T::handle` on a request from the host.
    pub fn handle<T: Twin>(request: WitRequest) -> WitResponse {
        let response = T::handle(request_from_wit(request));
        response_to_wit(response)
    }

    /// Runs `T::describe` for the host.
    pub fn describe<T: Twin>() -> WitInfo {
        info_to_wit(T::describe())
    }

    pub(crate) fn request_from_wit(r: WitRequest) -> Request {
        Request::from_parts(r.method.into(), r.path, r.query, r.headers, r.body)
    }

    pub(crate) fn response_to_wit(r: Response) -> WitResponse {
        WitResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }

    pub(crate) fn info_to_wit(i: Info) -> WitInfo {
        WitInfo {
            name: i.name,
            version: i.version,
            api_version: i.api_version,
            default_port: i.default_port,
            license_required: i.license_required,
            description: i.description,
            settings: i
                .settings
                .into_iter()
                .map(|s| wit_describe::Setting {
                    key: s.key,
                    description: s.description,
                    default_value: s.default.to_string(),
                })
                .collect(),
            idempotency: i.idempotency.map(|c| wit_describe::IdempotencyConflict {
                header: c.header.to_ascii_lowercase(),
                status: c.status,
                body: c.body.to_string(),
            }),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::Method;

        struct Probe;

        #[crate::twin]
        impl Twin for Probe {
            fn describe() -> Info {
                Info {
                    name: "probe".into(),
                    version: "1.2.3".into(),
                    api_version: "2020-01-01".into(),
                    default_port: 9,
                    license_required: true,
                    description: "d".into(),
                    settings: vec![crate::Setting::new("strict", true, "Be strict.")],
                    idempotency: Some(crate::IdempotencyConflict {
                        header: "Idempotency-Key".into(),
                        status: 409,
                        body: serde_json::json!({"error": "busy"}),
                    }),
                }
            }
            fn handle(request: Request) -> Response {
                assert_eq!(request.method, Method::Patch);
                Response::text(201, format!("{}?{}", request.path, request.query))
                    .with_header("X-Seen", request.header("x-a").unwrap_or("-"))
            }
        }

        #[test]
        fn handle_converts_both_ways() {
            let out = handle::<Probe>(WitRequest {
                method: "PATCH".into(),
                path: "/p".into(),
                query: "q=1".into(),
                headers: vec![("x-a".into(), "b".into())],
                body: b"x".to_vec(),
            });
            assert_eq!(out.status, 201);
            assert_eq!(out.body, b"/p?q=1");
            assert!(out.headers.contains(&("x-seen".into(), "b".into())));
        }

        #[test]
        fn describe_converts_every_field() {
            let info = describe::<Probe>();
            assert_eq!(
                (
                    info.name.as_str(),
                    info.version.as_str(),
                    info.api_version.as_str()
                ),
                ("probe", "1.2.3", "2020-01-01")
            );
            assert_eq!((info.default_port, info.license_required), (9, true));
            assert_eq!(info.description, "d");
            assert_eq!(
                (
                    info.settings[0].key.as_str(),
                    info.settings[0].default_value.as_str()
                ),
                ("strict", "true")
            );
            let conflict = info.idempotency.expect("declared");
            assert_eq!(
                (
                    conflict.header.as_str(),
                    conflict.status,
                    conflict.body.as_str()
                ),
                ("idempotency-key", 409, r#"{"error":"busy"}"#)
            );
        }
    }
}
