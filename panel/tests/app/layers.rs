//! The panel's layers point one way (see `panel/ARCHITECTURE.md`): the pure domain imports
//! nothing of the panel, the database only the domain, services never the edges, and no
//! two modules import each other, directly or round a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::a::b` of a source file (`mod.rs` names its directory).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    std::iter::once("crate".to_string())
        .chain(parts)
        .collect::<Vec<_>>()
        .join("::")
}

/// The `crate::...` and `super::...` paths a file names, as module paths.
fn paths_in(text: &str, module: &str, is_mod_rs: bool) -> Vec<Vec<String>> {
    let parent: Vec<&str> = {
        let mut p: Vec<&str> = module.split("::").collect();
        if !is_mod_rs || p.len() > 1 {
            p.pop();
        }
        p
    };
    let mut out = Vec::new();
    for (start, _) in text.match_indices("::") {
        let before = &text[..start];
        let word_start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let head = &before[word_start..];
        if (head != "crate" && head != "super") || before[..word_start].ends_with("::") {
            continue;
        }
        let rest = &text[start + 2..];
        let tail: Vec<String> = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut path: Vec<String> = if head == "crate" {
            vec!["crate".into()]
        } else {
            parent.iter().map(|s| s.to_string()).collect()
        };
        path.extend(tail);
        out.push(path);
    }
    out
}

fn graph() -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, usize>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_of(&root, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        lines.insert(module.clone(), text.lines().count());
        let is_mod_rs = file.ends_with("mod.rs");
        let deps = edges.entry(module.clone()).or_default();
        for path in paths_in(&text, module, is_mod_rs) {
            // The longest prefix that is a module of the panel.
            let target = (1..=path.len())
                .rev()
                .map(|k| path[..k].join("::"))
                .find(|p| modules.contains_key(p));
            if let Some(t) = target {
                let related = t == *module
                    || module.starts_with(&format!("{t}::"))
                    || t.starts_with(&format!("{module}::"));
                if !related && t != "crate" {
                    deps.insert(t);
                }
            }
        }
    }
    (edges, lines)
}

fn layer(module: &str) -> &str {
    module.split("::").nth(1).unwrap_or("crate")
}

#[test]
fn layers_point_one_way() {
    let (edges, _) = graph();
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("domain", &["domain", "error"][..]),
        ("db", &["db", "domain", "error"]),
        ("runtime", &["runtime", "error"]),
        ("error", &[]),
        ("service", &["service", "db", "domain", "runtime", "error"]),
        (
            "http",
            &["http", "service", "domain", "db", "runtime", "error"],
        ),
        ("ssh", &["ssh", "service", "domain", "runtime", "error"]),
        ("front", &["front", "service"]),
    ]);
    let mut wrong = Vec::new();
    for (module, deps) in &edges {
        let Some(ok) = allowed.get(layer(module)) else {
            continue;
        };
        for dep in deps {
            if !ok.contains(&layer(dep)) {
                wrong.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn no_module_imports_round_a_circle() {
    let (edges, _) = graph();
    // Tarjan's strongly connected components.
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        circles: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.circles.push(comp);
            }
        }
    }
    let mut s = State {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        circles: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    assert!(s.circles.is_empty(), "import circles: {:#?}", s.circles);
}

#[test]
fn files_stay_small() {
    let (_, lines) = graph();
    let big: Vec<_> = lines.iter().filter(|(_, n)| **n > 520).collect();
    assert!(big.is_empty(), "files over ~500 lines: {big:?}");
}
