//! The front door's layering, checked on the source: which modules of the gateway may import
//! which. Data flows one way (HTTP in, plan, gRPC out): the assembly (`admin`, `app`, `cli`,
//! `reload`, `server`, and `fuzz`, the fuzz entry points over all of it) imports the doors, the
//! doors import the ingress, the ingress and the doors import the core (snapshot, request
//! context and policy chain, engine, transport, upstream, the gRPC-Web codec...), and never
//! the other way. No door
//! imports another door, except the endpoint door running operations through the GraphQL
//! door's prepare step and executor.
//!
//! Imports are read from the source text: every `crate::...` and `super::...` path outside
//! comments and `#[cfg(test)]` code, resolved to the longest module it names.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a module stands in the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Room {
    /// Everything below the front door.
    Core,
    /// The ingress.
    Ingress,
    /// A door (the name says which).
    Door(&'static str),
    /// The assembly.
    Top,
}

fn room(module: &str) -> Room {
    let within = |prefix: &str| module == prefix || module.starts_with(&format!("{prefix}::"));
    if ["admin", "app", "cli", "fuzz", "reload", "server"]
        .iter()
        .any(|m| within(m))
    {
        Room::Top
    } else if within("ingress") {
        Room::Ingress
    } else if within("rest::handler") || within("rest::stream") || within("rest::ndjson") {
        Room::Door("rest")
    } else if within("graphql::run") {
        Room::Door("graphql")
    } else if within("graphql::bff::endpoints::door") {
        Room::Door("endpoint")
    } else if within("grpcweb::door") {
        Room::Door("grpc_web")
    } else if within("websocket::door") {
        Room::Door("websocket")
    } else {
        Room::Core
    }
}

/// Door-to-door imports that are part of the design.
const ALLOWED_BETWEEN_DOORS: &[(&str, &str)] = &[("endpoint", "graphql")];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module of the crate (`a::b`), from the file tree, with its file.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(src()).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts.join("::"), f)
        })
        .collect()
}

/// The source without comments and without what follows the first `#[cfg(test)]`.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree or an inline path starting at `s` names (after `crate::` or the
/// `super::`s), braces expanded.
fn paths_at(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut prefix = String::new();
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_alphanumeric() || c == '_' || c == ':' {
            prefix.push(c);
            i += 1;
        } else if c == '{' {
            // A group: split its top-level items.
            let mut depth = 0;
            let mut item_start = i + 1;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b',' if depth == 1 => {
                        for p in paths_at(s[item_start..j].trim()) {
                            out.push(format!("{prefix}{p}"));
                        }
                        item_start = j + 1;
                    }
                    _ => {}
                }
                j += 1;
            }
            for p in paths_at(s[item_start..j.min(s.len())].trim()) {
                out.push(format!("{prefix}{p}"));
            }
            return out;
        } else {
            break;
        }
    }
    out.push(prefix);
    out
}

/// The modules `module`'s code names.
fn imports(module: &str, code: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let resolve = |full: &str, out: &mut BTreeSet<String>| {
        let segs: Vec<&str> = full.split("::").filter(|s| !s.is_empty()).collect();
        for n in (1..=segs.len()).rev() {
            let m = segs[..n].join("::");
            if known.contains_key(&m) {
                if m != module {
                    out.insert(m);
                }
                return;
            }
        }
    };
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        for p in paths_at(&code[i + "crate::".len()..]) {
            resolve(&p, &mut out);
        }
    }
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        let before = &rest[..i];
        rest = &rest[i..];
        if before.ends_with("super::") {
            rest = &rest["super::".len()..];
            continue;
        }
        let mut up = 0;
        let mut tail = rest;
        while let Some(t) = tail.strip_prefix("super::") {
            up += 1;
            tail = t;
        }
        let mut base: Vec<&str> = module.split("::").collect();
        base.truncate(base.len().saturating_sub(up));
        for p in paths_at(tail) {
            let full = if base.is_empty() {
                p
            } else {
                format!("{}::{p}", base.join("::"))
            };
            resolve(&full, &mut out);
        }
        rest = tail;
    }
    out
}

/// Every import edge of the crate, between modules.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let known = modules();
    known
        .iter()
        .map(|(m, f)| {
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            (m.clone(), imports(m, &code, &known))
        })
        .collect()
}

#[test]
fn the_reader_sees_grouped_and_relative_imports() {
    let known: BTreeMap<String, PathBuf> = ["a", "a::b", "a::b::c", "d", "d::e"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let code =
        "use crate::{a::b::{c::X, Y}, d::e};\nuse super::super::d::e::Z;\nlet x = crate::a::f();";
    let got = imports("a::b::c", code, &known);
    assert_eq!(
        got,
        ["a", "a::b", "d::e"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn the_core_never_imports_the_front_door_and_doors_never_import_each_other() {
    let mut wrong = Vec::new();
    for (from, tos) in edges() {
        let a = room(&from);
        for to in tos {
            let b = room(&to);
            let ok = match (a, b) {
                (_, Room::Core) => true,
                (Room::Core, _) => false,
                (Room::Ingress, Room::Ingress) => true,
                (Room::Ingress, _) => false,
                (Room::Door(_), Room::Ingress) => true,
                (Room::Door(x), Room::Door(y)) => x == y || ALLOWED_BETWEEN_DOORS.contains(&(x, y)),
                (Room::Door(_), Room::Top) => false,
                (Room::Top, _) => true,
            };
            if !ok {
                wrong.push(format!("{from} ({a:?}) imports {to} ({b:?})"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_cycle_passes_through_the_front_door() {
    // Depth-first search for a cycle in the graph of every module that is not core (the
    // assembly, the ingress, the doors), with their imports among themselves.
    let edges = edges();
    let front: BTreeMap<&String, Vec<&String>> = edges
        .iter()
        .filter(|(m, _)| room(m) != Room::Core)
        .map(|(m, tos)| (m, tos.iter().filter(|t| room(t) != Room::Core).collect()))
        .collect();
    fn visit<'a>(
        m: &'a String,
        front: &BTreeMap<&'a String, Vec<&'a String>>,
        path: &mut Vec<&'a String>,
        done: &mut BTreeSet<&'a String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            return Some(path[i..].iter().map(|s| s.to_string()).collect());
        }
        if done.contains(m) {
            return None;
        }
        path.push(m);
        for next in front.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(next, front, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(m);
        None
    }
    let mut done = BTreeSet::new();
    for m in front.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(m, &front, &mut path, &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    // The door modules exist where this test expects them (a move must update it).
    let all = modules();
    for m in [
        "app",
        "ingress",
        "rest::handler",
        "graphql::run::prepare",
        "graphql::bff::endpoints::door",
        "grpcweb::door",
        "websocket::door",
    ] {
        assert!(all.contains_key(m), "no module {m}");
    }
}
