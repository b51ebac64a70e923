//! Loading a twin: the bytes checked (text, core module, component of
//! another world), compiled or taken from the precompiled cache, linked
//! against the world's imports, and described, with what `describe` may
//! declare bounded and made printable.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};

use crate::bindings::TwinPre;
use crate::cache::ArtifactCache;
use crate::capability::InstanceState;
use crate::clock::TwinClock;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::license::Licensing;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Policy};
use crate::settings::{ConfigError, Settings};
use crate::state::TwinState;

use super::{
    IdempotencyGuard, Runtime, Sandbox, Twin, TwinInfo, is_valid_name, next_key, one_line,
};

/// The world's version, as twins and `wt-host version` report it.
pub const WORLD: &str = "wondertwin:twin@0.1.0";
const HANDLER_EXPORT: &str = "wondertwin:twin/handler@0.1.0";
const DESCRIBE_EXPORT: &str = "wondertwin:twin/describe@0.1.0";

/// Why a file could not be loaded as a twin. Each renders as one line that
/// starts with the file (or the name it was added under).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: not a WebAssembly file (it starts with {prefix:?})")]
    NotWasm { source_name: String, prefix: String },
    #[error(
        "{source_name}: is a core WebAssembly module, not a component; build twins with `--target wasm32-wasip2`"
    )]
    CoreModule { source_name: String },
    #[error("{source_name}: invalid component: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error(
        "{source_name}: is a component of another world: it exports [{exports}] but a twin exports {HANDLER_EXPORT} and {DESCRIBE_EXPORT}"
    )]
    OtherWorld {
        source_name: String,
        exports: String,
    },
    #[error("{source_name}: missing export {export}")]
    MissingExport {
        source_name: String,
        export: &'static str,
    },
    #[error("{source_name}: needs an import wt does not provide: {reason}")]
    UnsupportedImport { source_name: String, reason: String },
    #[error("{source_name}: `describe` failed: {reason}")]
    Describe { source_name: String, reason: String },
    #[error("{source_name}: {error}")]
    Config {
        source_name: String,
        error: ConfigError,
    },
    #[error(
        "{source_name}: {name:?} is not a usable twin name (use 1-63 of a-z, 0-9, '-' and '_', starting with a letter; `_wt` is reserved)"
    )]
    BadName { source_name: String, name: String },
    #[error("{source_name}: a twin named {name:?} is already loaded")]
    Duplicate { source_name: String, name: String },
    #[error(
        "{source_name}: {name:?} is the id of a live tenant; serve the twin under another name"
    )]
    TenantName { source_name: String, name: String },
    #[error("{source_name}: cannot open its state at {path}: {reason}")]
    State {
        source_name: String,
        path: String,
        reason: String,
    },
}

/// Reads a component file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|error| LoadError::Read {
        source_name: path.display().to_string(),
        error,
    })
}

pub(crate) struct LoadRequest<'a> {
    pub runtime: &'a Runtime,
    pub linker: &'a Linker<InstanceState>,
    pub cache: &'a ArtifactCache,
    pub limits: &'a Limits,
    pub clock: TwinClock,
    pub http: reqwest::Client,
    pub policy: Arc<Policy>,
    pub licensing: Arc<Licensing>,
    /// Whether the registry marks this twin `pro` (a license is then needed
    /// whatever its `describe` says).
    pub requires_license: bool,
    /// The identity licenses are checked against, when not the served name.
    pub identity: Option<String>,
    /// Serve under this name instead of the one `describe` gives.
    pub name: Option<String>,
    /// The file it came from, for reloads.
    pub path: Option<std::path::PathBuf>,
    /// A file path or `<bytes>`, for messages.
    pub source_name: String,
}

/// A component compiled, linked and described, not yet serving: the step
/// between the bytes and a [`Twin`], so the host can check the described
/// name is free and open the twin's state before anything is built on it.
pub(crate) struct Prepared {
    info: TwinInfo,
    name: Arc<str>,
    pre: TwinPre<InstanceState>,
    runtime: Runtime,
    limits: Limits,
    clock: TwinClock,
    http: reqwest::Client,
    policy: Arc<Policy>,
    licensing: Arc<Licensing>,
    settings: Settings,
    idempotency: Option<IdempotencyGuard>,
    path: Option<std::path::PathBuf>,
    forced_license: bool,
}

/// What a twin builds up while it serves, and a reload hands over.
struct Carried {
    state: TwinState,
    gate: Arc<tokio::sync::Mutex<()>>,
    queued: Arc<AtomicUsize>,
    journal: Arc<Journal>,
    faults: Arc<Faults>,
    outbound: Arc<Outbound>,
    metrics: Arc<Metrics>,
}

impl Twin {
    /// Validates, compiles (or loads from cache), links and describes a twin.
    pub(crate) async fn prepare(req: LoadRequest<'_>, wasm: &[u8]) -> Result<Prepared, LoadError> {
        let started = Instant::now();
        let source_name = req.source_name.clone();
        check_header(&source_name, wasm)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let (component, cache) = req
            .cache
            .load(req.runtime.engine(), wasm, &sha256)
            .map_err(|err| LoadError::Invalid {
                source_name: source_name.clone(),
                reason: one_line(&err),
            })?;
        check_exports(&source_name, req.runtime, &component)?;
        let instance_pre =
            req.linker
                .instantiate_pre(&component)
                .map_err(|err| LoadError::UnsupportedImport {
                    source_name: source_name.clone(),
                    reason: one_line(&err),
                })?;
        let pre = TwinPre::new(instance_pre).map_err(|err| LoadError::Invalid {
            source_name: source_name.clone(),
            reason: one_line(&err),
        })?;
        let described = describe(&req, &pre).await?;
        let name = req.name.unwrap_or_else(|| described.name.clone());
        if !is_valid_name(&name) {
            return Err(LoadError::BadName { source_name, name });
        }
        let settings = Settings::from_declared(
            &name,
            described
                .settings
                .into_iter()
                .map(|s| (s.key, s.description, s.default_value)),
        )
        .map_err(|error| LoadError::Config {
            source_name: source_name.clone(),
            error,
        })?;
        let idempotency = described.idempotency.map(|conflict| IdempotencyGuard {
            header: conflict.header.to_ascii_lowercase(),
            status: conflict.status,
            body: conflict.body.into_bytes(),
            in_flight: Default::default(),
        });
        let info = TwinInfo {
            identity: req.identity.unwrap_or_else(|| name.clone()),
            name: name.clone(),
            described_name: described.name,
            version: described.version,
            api_version: described.api_version,
            default_port: described.default_port,
            license_required: described.license_required || req.requires_license,
            description: described.description,
            idempotency_header: idempotency.as_ref().map(|guard| guard.header.clone()),
            sha256,
            source: source_name,
            cache,
            load_millis: started.elapsed().as_secs_f64() * 1000.0,
        };
        Ok(Prepared {
            info,
            name: Arc::from(name),
            pre,
            runtime: req.runtime.clone(),
            limits: req.limits.clone(),
            clock: req.clock,
            http: req.http,
            policy: req.policy,
            licensing: req.licensing,
            settings,
            idempotency,
            path: req.path,
            forced_license: req.requires_license,
        })
    }
}

/// Asks the component to describe itself, in an instance of its own whose
/// state and deliveries are thrown away, and bounds what it says.
async fn describe(
    req: &LoadRequest<'_>,
    pre: &TwinPre<InstanceState>,
) -> Result<crate::bindings::Info, LoadError> {
    let failed = |reason: String| LoadError::Describe {
        source_name: req.source_name.clone(),
        reason,
    };
    let name: Arc<str> = Arc::from(req.source_name.as_str());
    let settings = Settings::from_declared(&name, []).map_err(|err| failed(err.to_string()))?;
    let sandbox = Sandbox {
        name: &name,
        pre,
        runtime: req.runtime,
        limits: req.limits,
        state: &TwinState::default(),
        clock: &req.clock,
        outbound: &Arc::new(Outbound::new(&name, req.http.clone())),
        policy: &req.policy,
        metrics: &Arc::default(),
        settings: &settings,
    };
    let described = sandbox
        .describe()
        .await
        .map_err(|err| failed(err.to_string()))?;
    checked_description(described).map_err(failed)
}

impl Prepared {
    /// What the twin will say about itself.
    pub fn info(&self) -> &TwinInfo {
        &self.info
    }

    /// A new twin serving from `state`, with nothing built up yet.
    pub fn into_twin(self, state: TwinState) -> Twin {
        let carried = Carried {
            state,
            gate: Arc::default(),
            queued: Arc::default(),
            journal: Arc::new(Journal::new(self.limits.journal_capacity)),
            faults: Arc::new(Faults::new()),
            outbound: Arc::new(Outbound::new(&self.name, self.http.clone())),
            metrics: Arc::default(),
        };
        self.build(carried)
    }

    /// The reload hand-over: a twin with the new code that continues where
    /// `old` was, with its state, journal, faults, pending deliveries,
    /// metrics, request gate and queue (so the two never run at once), and
    /// the values of settings the new code still declares. The clock came
    /// over in the [`LoadRequest`].
    pub fn into_successor(self, old: &Twin) -> Twin {
        self.settings.carry_over(&old.settings);
        let carried = Carried {
            state: old.state.clone(),
            gate: old.gate.clone(),
            queued: old.queued.clone(),
            journal: old.journal.clone(),
            faults: old.faults.clone(),
            outbound: old.outbound.clone(),
            metrics: old.metrics.clone(),
        };
        self.build(carried)
    }

    fn build(self, carried: Carried) -> Twin {
        Twin {
            info: self.info,
            key: next_key(),
            name: self.name,
            pre: self.pre,
            runtime: self.runtime,
            limits: self.limits,
            state: carried.state,
            clock: self.clock,
            gate: carried.gate,
            queued: carried.queued,
            journal: carried.journal,
            faults: carried.faults,
            outbound: carried.outbound,
            policy: self.policy,
            http: self.http,
            metrics: carried.metrics,
            settings: self.settings,
            idempotency: self.idempotency,
            licensing: self.licensing,
            path: self.path,
            forced_license: self.forced_license,
        }
    }
}

impl Twin {
    /// This twin for another world (a tenant): the same compiled code,
    /// description, limits and license check, with everything a twin builds
    /// up of its own and new: in-memory state, a clock layered on `clock`,
    /// journal, faults, deliveries, and settings at their starting values.
    /// Metrics are shared, so the per-twin series stay one per twin however
    /// many tenants run it. Costs no compilation: instances come from the
    /// same pre-linked component.
    pub(crate) fn fork(&self, clock: &TwinClock) -> Twin {
        Twin {
            info: self.info.clone(),
            key: next_key(),
            name: self.name.clone(),
            pre: self.pre.clone(),
            runtime: self.runtime.clone(),
            limits: Limits {
                max_state_bytes: self.limits.max_tenant_state_bytes,
                ..self.limits.clone()
            },
            state: TwinState::default(),
            clock: TwinClock::layered(clock.clone()),
            gate: Arc::default(),
            queued: Arc::default(),
            journal: Arc::new(Journal::new(self.limits.journal_capacity)),
            faults: Arc::new(Faults::new()),
            outbound: Arc::new(Outbound::new(&self.name, self.http.clone())),
            policy: self.policy.clone(),
            http: self.http.clone(),
            metrics: self.metrics.clone(),
            settings: self.settings.fork(),
            idempotency: self.idempotency.as_ref().map(IdempotencyGuard::fork),
            licensing: self.licensing.clone(),
            // A fork is not reloaded from a file: a tenant keeps the code it
            // was made with until it is removed.
            path: None,
            forced_license: self.forced_license,
        }
    }
}

/// Settings one twin may declare: far more than any vendor's quirks, few
/// enough that loading and reloading stay instant.
pub const MAX_SETTINGS: usize = 256;
/// Bytes of one `describe` string (a description, a setting's default).
const MAX_DESCRIBE_TEXT: usize = 4096;
/// Bytes of the idempotency conflict body.
const MAX_CONFLICT_BODY: usize = 64 << 10;

/// What `describe` returned, within bounds and printable: it reaches the
/// operator's terminal (`ready` lines, `wt-host list`) and every listing.
fn checked_description(mut info: crate::bindings::Info) -> Result<crate::bindings::Info, String> {
    if info.settings.len() > MAX_SETTINGS {
        return Err(format!(
            "declares {} settings; at most {MAX_SETTINGS} are allowed",
            info.settings.len()
        ));
    }
    let text = |field: &str, value: &mut String| {
        if value.len() > MAX_DESCRIBE_TEXT {
            return Err(format!(
                "{field} is {} bytes; at most {MAX_DESCRIBE_TEXT} are allowed",
                value.len()
            ));
        }
        if let std::borrow::Cow::Owned(clean) = crate::logs::printable(value) {
            *value = clean;
        }
        Ok(())
    };
    text("name", &mut info.name)?;
    text("version", &mut info.version)?;
    text("api-version", &mut info.api_version)?;
    text("description", &mut info.description)?;
    for setting in &mut info.settings {
        text("a setting's key", &mut setting.key)?;
        text("a setting's description", &mut setting.description)?;
        text("a setting's default", &mut setting.default_value)?;
    }
    if let Some(conflict) = &info.idempotency {
        if http::HeaderName::from_bytes(conflict.header.as_bytes()).is_err() {
            return Err(format!(
                "idempotency header {:?} is not a header name",
                crate::logs::printable(&conflict.header)
            ));
        }
        if !(400..=599).contains(&conflict.status) {
            return Err(format!(
                "idempotency conflict status {} is not an error status",
                conflict.status
            ));
        }
        if conflict.body.len() > MAX_CONFLICT_BODY {
            return Err(format!(
                "the idempotency conflict body is {} bytes; at most {MAX_CONFLICT_BODY} are allowed",
                conflict.body.len()
            ));
        }
    }
    Ok(info)
}

/// Tells a text file, a core module and a component apart before compiling,
/// so each gets its own message.
fn check_header(source_name: &str, wasm: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if !wasm.starts_with(MAGIC) || wasm.len() < 8 {
        let prefix = String::from_utf8_lossy(&wasm[..wasm.len().min(8)]).into_owned();
        return Err(LoadError::NotWasm {
            source_name: source_name.to_owned(),
            prefix,
        });
    }
    // Bytes 4..8: version and layer. Core modules are layer 0, components 1.
    if wasm[6..8] == [0, 0] {
        return Err(LoadError::CoreModule {
            source_name: source_name.to_owned(),
        });
    }
    Ok(())
}

fn check_exports(
    source_name: &str,
    runtime: &Runtime,
    component: &Component,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(runtime.engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    let has = |wanted: &str| exports.iter().any(|e| e == wanted);
    match (has(HANDLER_EXPORT), has(DESCRIBE_EXPORT)) {
        (true, true) => Ok(()),
        (false, false) => Err(LoadError::OtherWorld {
            source_name: source_name.to_owned(),
            exports: exports.join(", "),
        }),
        (false, true) => Err(LoadError::MissingExport {
            source_name: source_name.to_owned(),
            export: HANDLER_EXPORT,
        }),
        (true, false) => Err(LoadError::MissingExport {
            source_name: source_name.to_owned(),
            export: DESCRIBE_EXPORT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_text_core_and_component_apart() {
        assert!(matches!(
            check_header("f", b"hello world"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header("f", b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(check_header("f", b"\0asm\x0d\0\x01\0").is_ok());
        assert!(matches!(
            check_header("f", b""),
            Err(LoadError::NotWasm { .. })
        ));
    }
}
