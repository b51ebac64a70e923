//! `wt-host publish | install | list`, and resolving `run stripe` /
//! `run stripe@0.2.0` from the installed store.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wt_host::AddOptions;
use wt_registry::schema::Tier;
use wt_registry::{
    Client, ClientOptions, Error as RegistryError, LockEntry, Lockfile, Registries, Source, Spec,
    Store, VersionReq,
};

use crate::errors::BadInput;

/// The official registry, used when no `--registry` or `WT_REGISTRY` is given.
pub const OFFICIAL_REGISTRY: &str = "https://registry.wondertwin.dev/index.json";

/// Where installed twins live and which lockfile pins them.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Where installed twins are kept [default: the user's data dir, wt/twins].
    #[arg(long, value_name = "DIR", env = "WT_INSTALL_DIR")]
    pub install_dir: Option<PathBuf>,
    /// The lockfile to honor (and, for `install`, update) [default: the
    /// project's, else ./wt.lock].
    #[arg(long, value_name = "FILE")]
    pub lockfile: Option<PathBuf>,
}

impl StoreArgs {
    pub fn store(&self) -> anyhow::Result<Store> {
        let root = self
            .install_dir
            .clone()
            .or_else(Store::default_root)
            .ok_or_else(|| BadInput("no data directory: pass --install-dir".into()))?;
        Ok(Store::new(root))
    }

    pub fn lock(&self) -> anyhow::Result<Lockfile> {
        let path = match &self.lockfile {
            Some(path) => path.clone(),
            None => match wt_host::project::Project::find() {
                Some(project) => wt_host::project::Project::load(&project)
                    .map_err(|e| BadInput(e.to_string()))?
                    .lockfile
                    .unwrap_or_else(|| PathBuf::from("wt.lock")),
                None => PathBuf::from("wt.lock"),
            },
        };
        Lockfile::load(path).map_err(registry_error)
    }
}

/// Which registries to ask, and how patiently.
#[derive(Debug, Args, Clone)]
pub struct RegistryArgs {
    /// A registry: a folder, file://PATH or http(s)://URL of its index.
    /// Repeatable; earlier ones take precedence for a name they list
    /// [default: `registries` of ./wt.toml, else the official registry].
    #[arg(
        long = "registry",
        value_name = "SOURCE",
        env = "WT_REGISTRY",
        value_delimiter = ','
    )]
    pub registries: Vec<String>,
    /// Give up on a registry server that sends nothing for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = wt_host::units::parse_duration)]
    pub timeout: Duration,
}

impl RegistryArgs {
    fn registries(&self) -> anyhow::Result<Registries> {
        // --registry / WT_REGISTRY, else the project's `registries`, else
        // the official registry.
        let mut texts = self.registries.clone();
        if texts.is_empty()
            && let Some(path) = wt_host::project::Project::find()
        {
            texts = wt_host::project::Project::load(&path)
                .map_err(|e| BadInput(e.to_string()))?
                .registries;
        }
        if texts.is_empty() {
            texts.push(OFFICIAL_REGISTRY.to_owned());
        }
        let sources = texts
            .iter()
            .map(|t| Source::parse(t).map_err(|e| BadInput(format!("--registry {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let client = Client::new(ClientOptions {
            read_timeout: self.timeout,
            connect_timeout: self.timeout.min(Duration::from_secs(10)),
            progress: true,
        })
        .map_err(registry_error)?;
        Ok(Registries::new(sources, client))
    }
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Twins to install: NAME, NAME@VERSION or NAME@latest (NAME is `name`
    /// or `owner/name`). With none, the registry twins ./wt.toml names.
    #[arg(value_name = "TWIN")]
    specs: Vec<String>,
    /// Download again even if an intact copy is installed.
    #[arg(long)]
    force: bool,
    /// Install exactly what wt.lock pins; fail, changing nothing, if it
    /// would change (a twin not pinned, or pinned to other bytes). For CI.
    #[arg(long)]
    frozen: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List what the registries offer instead of what is installed.
    #[arg(long)]
    available: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The twin component to publish; its name and version come from its
    /// `describe`.
    file: PathBuf,
    /// The folder registry to publish into (created if needed).
    #[arg(long, value_name = "DIR")]
    registry: PathBuf,
    /// Write absolute artifact URLs under this base instead of paths relative
    /// to the index.
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Publish under `owner/name` instead of the described name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// `free` or `pro` [default: `pro` when its describe requires a license].
    #[arg(long, value_parser = parse_tier)]
    tier: Option<Tier>,
    /// What kind of API it imitates (payments, messaging, email, …).
    #[arg(long, default_value = "uncategorized")]
    category: String,
    #[arg(long, default_value = "unknown")]
    author: String,
    /// Where its source lives.
    #[arg(long, default_value = "")]
    repo: String,
    /// A vendor SDK it is tested against (`stripe-python 16.1.0`). Repeatable.
    #[arg(long = "sdk-target", value_name = "SDK")]
    sdk_targets: Vec<String>,
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    match s {
        "free" => Ok(Tier::Free),
        "pro" => Ok(Tier::Pro),
        other => Err(format!("tier must be `free` or `pro`, not {other:?}")),
    }
}

/// Registry errors the user can fix (a name, a version, a file) exit 2;
/// network and disk trouble exit 1.
pub fn registry_error(err: RegistryError) -> anyhow::Error {
    use RegistryError as E;
    match err {
        E::BadSpec(_)
        | E::BadSource(_)
        | E::NoRegistry
        | E::UnknownTwin { .. }
        | E::UnknownVersion { .. }
        | E::Yanked { .. }
        | E::LockMismatch { .. }
        | E::NotInstalled { .. }
        | E::Tampered { .. }
        | E::Republish { .. }
        | E::Publish(_)
        | E::Lock { .. } => anyhow::Error::new(BadInput(err.to_string())),
        other => anyhow::Error::new(other),
    }
}

/// What `install` with no names installs: the sources of ./wt.toml's twins
/// that are registry twins rather than files.
fn project_specs() -> anyhow::Result<Vec<String>> {
    let path = wt_host::project::Project::find().ok_or_else(|| {
        BadInput("name twins to install (NAME, NAME@VERSION), or run it beside a wt.toml".into())
    })?;
    let project = wt_host::project::Project::load(&path).map_err(|e| BadInput(e.to_string()))?;
    let specs: Vec<String> = project
        .twins
        .values()
        .map(|twin| twin.source.clone())
        .filter(|source| !is_file_arg(source))
        .collect();
    if specs.is_empty() {
        return Err(BadInput(format!(
            "{}: names no registry twins to install (its twins are files)",
            path.display()
        ))
        .into());
    }
    Ok(specs)
}

pub async fn install(mut args: InstallArgs) -> anyhow::Result<()> {
    if args.specs.is_empty() {
        args.specs = project_specs()?;
    }
    let registries = args.registry.registries()?;
    let store = args.store.store()?;
    let mut lock = args.store.lock()?;
    let mut resolved_all = Vec::new();
    for text in &args.specs {
        let spec = Spec::parse(text).map_err(registry_error)?;
        let resolved = registries
            .resolve(&spec, lock.get(&spec.name))
            .await
            .map_err(registry_error)?;
        resolved_all.push(resolved);
    }
    if args.frozen {
        // Checked for every twin before anything is downloaded.
        for resolved in &resolved_all {
            match lock.get(&resolved.name) {
                Some(pinned)
                    if pinned.version == resolved.version
                        && pinned.sha256 == resolved.artifact.sha256 => {}
                Some(pinned) => {
                    return Err(BadInput(format!(
                        "--frozen: {} is pinned to {} in {} but would install {} (sha256 {}); run `wt-host install` without --frozen and commit the lockfile",
                        resolved.name,
                        pinned.version,
                        lock.path().display(),
                        resolved.version,
                        resolved.artifact.sha256
                    ))
                    .into());
                }
                None => {
                    return Err(BadInput(format!(
                        "--frozen: {} is not pinned in {}; run `wt-host install` without --frozen and commit the lockfile",
                        resolved.name,
                        lock.path().display()
                    ))
                    .into());
                }
            }
        }
    }
    for resolved in resolved_all {
        if args.force {
            // Only the entry goes: a failed download leaves nothing behind
            // that could pass for installed.
            let entry = store
                .root()
                .join(&resolved.name)
                .join(&resolved.version)
                .join("entry.json");
            let _ = std::fs::remove_file(entry);
        }
        let installed = registries
            .install(&store, &resolved)
            .await
            .map_err(registry_error)?;
        lock.pin(LockEntry {
            name: installed.name.clone(),
            version: installed.version.clone(),
            sha256: installed.sha256.clone(),
            source: installed.source.clone(),
        });
        println!(
            "installed {}@{} sha256:{} ({} bytes, {}, from {})",
            installed.name,
            installed.version,
            installed.sha256,
            installed.size,
            tier_name(installed.tier),
            installed.source
        );
    }
    lock.save().map_err(registry_error)?;
    Ok(())
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    if args.available {
        let registries = args.registry.registries()?;
        for (source, index) in registries.indexes().await.map_err(registry_error)? {
            println!("# {source}");
            for (name, entry) in &index.twins {
                let latest = entry.versions.get(&entry.latest);
                println!(
                    "{name} {} {} {} [{}]",
                    entry.latest,
                    latest.map_or("?", |v| tier_name(v.tier)),
                    entry.description,
                    entry.version_list()
                );
            }
        }
        return Ok(());
    }
    let store = args.store.store()?;
    let installed = store.list();
    if installed.is_empty() {
        println!(
            "no twins installed in {} (wt-host install NAME)",
            store.root().display()
        );
    }
    for twin in installed {
        println!(
            "{} {} {} sha256:{} {}",
            twin.name,
            twin.version,
            tier_name(twin.tier),
            twin.sha256,
            twin.source
        );
    }
    Ok(())
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Free => "free",
        Tier::Pro => "pro",
    }
}

pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.file)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", args.file.display())))?;
    // Ask the component itself: the host validates it exactly as `run` would.
    let host = wt_host::Host::builder().cache_dir(None).build()?;
    let info = host
        .add_twin_bytes_as("publishing", &wasm)
        .await
        .map_err(|e| BadInput(format!("{}: {e}", args.file.display())))?;
    let name = args.name.clone().unwrap_or(info.described_name.clone());
    let tier = args.tier.unwrap_or(if info.license_required {
        Tier::Pro
    } else {
        Tier::Free
    });
    let publication = wt_registry::publish::Publication {
        name,
        version: info.version.clone(),
        api_version: info.api_version.clone(),
        description: info.description.clone(),
        tier,
        world: wt_host::WORLD.to_owned(),
        category: args.category,
        author: args.author,
        repo: args.repo,
        sdk_targets: args.sdk_targets,
        released: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        wasm,
    };
    let published =
        wt_registry::publish::publish(&args.registry, &publication, args.base_url.as_deref())
            .map_err(registry_error)?;
    println!(
        "{} {}@{} sha256:{} ({} bytes) in {}",
        if published.unchanged {
            "already published"
        } else {
            "published"
        },
        publication.name,
        publication.version,
        published.artifact.sha256,
        published.artifact.size,
        published.index.display()
    );
    Ok(())
}

/// A `run` argument that names an installed twin rather than a file.
#[derive(Debug)]
pub struct InstalledTwin {
    pub path: PathBuf,
    pub options: AddOptions,
    pub label: String,
}

/// Whether a `run` argument is a file (a path that exists or ends in
/// `.wasm`), else a spec to resolve from the store.
pub fn is_file_arg(text: &str) -> bool {
    // Registry names never contain a dot, so `x.wasm` is always a file.
    text.ends_with(".wasm") || std::path::Path::new(text).is_file()
}

/// Resolves `[NAME=]SPEC` from the store (honoring the lockfile), with the
/// digest re-checked: nothing is fetched, so this works offline.
pub fn resolve_installed(
    serve_as: Option<&str>,
    text: &str,
    store: &Store,
    lock: &Lockfile,
) -> anyhow::Result<InstalledTwin> {
    let spec = Spec::parse(text).map_err(registry_error)?;
    let locked = lock.get(&spec.name);
    let version = match (&spec.version, locked) {
        (VersionReq::Exact(v), _) => v.clone(),
        (VersionReq::Unspecified, Some(l)) => l.version.clone(),
        (VersionReq::Unspecified | VersionReq::Latest, _) => {
            store.versions_of(&spec.name).pop().ok_or_else(|| {
                BadInput(format!(
                    "{text}: not a file and not an installed twin; run `wt-host install {}`",
                    spec.name
                ))
            })?
        }
    };
    let installed = store
        .verified(&spec.name, &version)
        .map_err(registry_error)?;
    if let Some(l) = locked.filter(|l| l.version == version)
        && l.sha256 != installed.sha256
    {
        return Err(BadInput(format!(
                "{}@{version}: installed sha256 {} differs from {} pinned in {}; run `wt-host install --force {}@{version}`",
                spec.name,
                installed.sha256,
                l.sha256,
                lock.path().display(),
                spec.name
            ))
            .into());
    }
    Ok(InstalledTwin {
        path: installed.path.clone(),
        label: format!("{}@{}", installed.name, installed.version),
        options: AddOptions {
            name: Some(
                serve_as
                    .map(str::to_owned)
                    .unwrap_or_else(|| spec.route_name().to_owned()),
            ),
            identity: Some(spec.name.clone()),
            requires_license: installed.tier == Tier::Pro,
        },
    })
}
