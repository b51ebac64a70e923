//! The library's layering rule, as a test (`docs/architecture.md`): each
//! module names its layer below, and may use modules of its own layer or
//! lower, never higher, and no two modules may use each other, however
//! indirectly. A new module must be added to [`LAYERS`]; a use that goes up
//! (or closes a cycle) fails here with the file and the module it named.

use std::collections::{BTreeMap, BTreeSet};

/// Every library module (a file in `host/src/`) and its layer, bottom up.
/// `lib` is the facade (`Host`, `HostBuilder`); its `pub use` re-exports of
/// higher modules are the crate's public surface, not uses.
const LAYERS: &[(&str, u8, &str)] = &[
    // 0 options: what an operator configures, and names.
    ("limits", 0, "options"),
    ("units", 0, "options"),
    ("names", 0, "options"),
    ("project", 0, "options"),
    // 1 parts: the engine, state, and the twin-independent pieces each
    // capability is built from.
    ("bindings", 1, "parts"),
    ("cache", 1, "parts"),
    ("clock", 1, "parts"),
    ("engine", 1, "parts"),
    ("instances", 1, "parts"),
    ("journal", 1, "parts"),
    ("license", 1, "parts"),
    ("logs", 1, "parts"),
    ("metrics", 1, "parts"),
    ("faults", 1, "parts"),
    ("framing", 1, "parts"),
    ("settings", 1, "parts"),
    ("state", 1, "parts"),
    ("outbound", 1, "parts"),
    // 2 capabilities: what a twin instance can reach (the world's imports).
    ("capabilities", 2, "capabilities"),
    // 3 twin: load, call, reload, reset one twin.
    ("twin", 3, "twin"),
    // 4 pipeline: one request through one twin, as HTTP.
    ("exchange", 4, "pipeline"),
    ("pipeline", 4, "pipeline"),
    // 5 host: the facade that holds the twins.
    ("lib", 5, "host"),
    // 6 http: listeners, who is asking, the control plane.
    ("caller", 6, "http"),
    ("control", 6, "http"),
    ("server", 6, "http"),
];

/// Names a file under `host/src/` that belongs to the binary, not the
/// library (`main.rs` declares them).
const BINARY: &[&str] = &[
    "main",
    "cli",
    "errors",
    "license_cli",
    "registry_cli",
    "remote",
];

/// The crate modules `source` uses: `crate::name` paths, the names inside
/// `use crate::{…}`, and `crate::Item` (an item of `lib`).
fn uses(source: &str, skip_reexports: bool) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        if skip_reexports && code.trim_start().starts_with("pub use") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for name in inner.split(',') {
                    let head = name.trim().split("::").next().unwrap_or("").trim();
                    push(&mut found, head);
                }
            } else {
                let head: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                push(&mut found, &head);
            }
        }
    }
    found
}

fn push(found: &mut BTreeSet<String>, head: &str) {
    if head.is_empty() || head == "self" {
        return;
    }
    if head.starts_with(|c: char| c.is_ascii_uppercase()) {
        found.insert("lib".to_owned()); // an item of the crate root
    } else {
        found.insert(head.to_owned());
    }
}

fn sources() -> BTreeMap<String, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("host/src") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read_to_string(&path).expect("read"));
        }
    }
    out
}

#[test]
fn every_module_has_a_layer_and_uses_only_its_own_or_lower() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().map(|(m, l, _)| (*m, *l)).collect();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in sources() {
        if BINARY.contains(&module.as_str()) || module == "layers" {
            continue;
        }
        let Some(&own) = layer.get(module.as_str()) else {
            problems.push(format!("host/src/{module}.rs has no layer in layers.rs"));
            continue;
        };
        let used: BTreeSet<String> = uses(&source, module == "lib")
            .into_iter()
            .filter(|u| *u != module)
            .collect();
        for dependency in &used {
            match layer.get(dependency.as_str()) {
                Some(&theirs) if theirs > own => problems.push(format!(
                    "host/src/{module}.rs (layer {own}) uses `{dependency}` (layer {theirs}): a use may only go down"
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "host/src/{module}.rs uses `crate::{dependency}`, which has no layer"
                )),
            }
        }
        graph.insert(module, used);
    }
    // No cycles, within a layer or across.
    for start in graph.keys() {
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    problems.push(format!("a cycle: {} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_use_finder_reads_paths_and_groups() {
    let found = uses(
        "use crate::a::B;\nuse crate::{c, d::E, Host};\nlet x = crate::f::g(); // crate::comment\npub use crate::h;",
        true,
    );
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(names, ["a", "c", "d", "f", "lib"]);
}
