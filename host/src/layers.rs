//! The library's layering rule, as a test (`docs/architecture.md`): each
//! folder of `host/src/` is a layer, and a module may use modules of its own
//! layer or lower, never higher, and no two modules may use each other,
//! however indirectly. A use that goes up (or closes a cycle) fails here
//! with the file and the module it named; a new folder must be added to
//! [`LAYERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The folders (layers) of the library, bottom up. `lib.rs` is the facade
/// (`Host`, `HostBuilder`) at layer 5; its `pub use` re-exports of higher
/// modules are the crate's public surface, not uses. `bin/` is the binary,
/// a crate of its own that sees only the public API.
const LAYERS: &[(&str, u8)] = &[
    ("options", 0),
    ("runtime", 1),
    ("parts", 1),
    ("capability", 2),
    ("twin", 3),
    ("pipeline", 4),
    ("tenancy", 4),
    ("lib", 5),
    ("hosting", 5),
    ("serving", 6),
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

/// The names `lib.rs` gives at the crate root, each with the folder it
/// lives in: `mod F;` names folder `F` (its `mod.rs`), and
/// `use F::{a, b};` names `F/a.rs` and `F/b.rs`. A `crate::a` path resolves
/// through these, whatever file it is written in.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let line = line.trim();
        let line = line.strip_prefix("pub ").unwrap_or(line);
        if let Some(folder) = line.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            names.insert(folder.to_owned(), folder.to_owned());
        } else if let Some(rest) = line.strip_prefix("use ").and_then(|r| r.strip_suffix(';')) {
            let Some((folder, tail)) = rest.split_once("::") else {
                continue;
            };
            if !LAYERS.iter().any(|(f, _)| *f == folder) {
                continue; // an outside crate's item
            }
            let tail = tail.trim_start_matches('{').trim_end_matches('}');
            for name in tail.split(',') {
                let name = name.trim();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    names.insert(name.to_owned(), folder.to_owned());
                }
            }
        }
    }
    names
}

/// Every library file: the module it belongs to (a name at the crate
/// root; a file private to a module, such as `twin/load.rs`, belongs to
/// that module), the layer of its folder, its path and its source.
fn modules() -> Vec<(String, u8, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let roots = root_names(&lib);
    let layer = |folder: &str| LAYERS.iter().find(|(f, _)| *f == folder).map(|(_, l)| *l);
    let mut out = Vec::new();
    let mut folders = vec![src.clone()];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir).expect("a folder under host/src") {
            let path = entry.expect("an entry").path();
            let relative = path.strip_prefix(&src).expect("under src").to_path_buf();
            let shown = format!("host/src/{}", relative.display());
            if path.is_dir() {
                if !relative.starts_with("bin") {
                    folders.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || relative == Path::new("layers.rs") {
                continue;
            }
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let folder = relative
                .parent()
                .and_then(|p| p.iter().next())
                .and_then(|p| p.to_str())
                .unwrap_or("lib")
                .to_owned();
            // `parts/state.rs` and everything in `parts/state/` belong to
            // module `state`; a file of a folder's own (`twin/load.rs`) to
            // the folder's module.
            let parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let candidate = if parts.len() > 2 {
                parts[1].clone()
            } else {
                stem.clone()
            };
            let module = if folder == "lib" {
                "lib".to_owned()
            } else if candidate != "mod" && roots.get(&candidate) == Some(&folder) {
                candidate
            } else {
                folder.clone()
            };
            let own = layer(&folder).unwrap_or(u8::MAX);
            let source = std::fs::read_to_string(&path).expect("read a module");
            out.push((module, own, shown, source));
        }
    }
    out
}

#[test]
fn every_module_uses_only_its_own_layer_or_lower_and_no_cycle() {
    let modules = modules();
    let layer_of: BTreeMap<&str, u8> = modules
        .iter()
        .map(|(name, layer, _, _)| (name.as_str(), *layer))
        .collect();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, own, shown, source) in &modules {
        if *own == u8::MAX {
            problems.push(format!("{shown} is in a folder with no layer in layers.rs"));
            continue;
        }
        let used: BTreeSet<String> = uses(source, module == "lib")
            .into_iter()
            .filter(|u| u != module)
            .collect();
        for dependency in &used {
            match layer_of.get(dependency.as_str()) {
                Some(&theirs) if theirs > *own => problems.push(format!(
                    "{shown} (layer {own}) uses `{dependency}` (layer {theirs}): a use may only go down"
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{shown} uses `crate::{dependency}`, which is no module of the library"
                )),
            }
        }
        graph.entry(module.clone()).or_default().extend(used);
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
