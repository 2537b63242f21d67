//! The layers of `src/` stay as `lib.rs` describes them:
//!
//! ```text
//! main.rs -> cli.rs, docs.rs -> commands/ -> ca/ -> pki/ -> support/
//! ```
//!
//! A module may name its own layer and the layers below it, never one
//! above; and no set of modules may import each other in a circle. Imports
//! are read from the source (`crate::` paths, `use crate::{...}` groups and
//! `super::` paths), leaving out `#[cfg(test)]` modules, which may reach for
//! any helper. The unit tests at the end show that each rule does fail.
//! And no file but `src/support/sys.rs` holds `unsafe` code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layer names, lowest first; anything else at the top of `src/` is the
/// command-line layer above them all.
const LAYERS: [&str; 4] = ["support", "pki", "ca", "commands"];

fn layer_of(module: &str) -> usize {
    let first = module.split("::").next().unwrap_or("");
    LAYERS
        .iter()
        .position(|l| *l == first)
        .unwrap_or(LAYERS.len())
}

/// `src/ca/store.rs` -> `ca::store`; `src/commands/vault/mod.rs` ->
/// `commands::vault`; `src/lib.rs` -> `lib`.
fn module_path(rel: &Path) -> String {
    let text = rel.with_extension("").to_string_lossy().replace('/', "::");
    text.strip_suffix("::mod").unwrap_or(&text).to_string()
}

fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            out.insert(module_path(rel), std::fs::read_to_string(&path).unwrap());
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The `a::b::c` path that starts at `text` (identifiers and `::`).
fn path_at(text: &str) -> String {
    let mut end = 0;
    let bytes: Vec<char> = text.chars().collect();
    while end < bytes.len() {
        if is_ident(bytes[end]) {
            end += 1;
        } else if text[end..].starts_with("::") && bytes.get(end + 2).is_some_and(|c| is_ident(*c))
        {
            end += 2;
        } else {
            break;
        }
    }
    text[..end].to_string()
}

/// Every module path `module` names, before its first `#[cfg(test)]`.
fn references(module: &str, text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let head = path_at(rest);
        // `crate::{a, b::c}` and `crate::a::{b, c::{d, e}}`: every member.
        let group = if head.is_empty() {
            rest.strip_prefix('{')
        } else {
            rest[head.len()..].strip_prefix("::{")
        };
        match group {
            Some(group) => {
                let inner = &group[..group.find("};").unwrap_or(group.len())];
                for part in inner.split([',', '{', '}']) {
                    let member = path_at(part.trim());
                    if member.is_empty() || member == "self" {
                        out.insert(head.clone());
                    } else if head.is_empty() {
                        out.insert(member);
                    } else {
                        out.insert(format!("{head}::{member}"));
                    }
                }
            }
            None => {
                out.insert(head);
            }
        }
    }
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    for (i, _) in text.match_indices("super::") {
        let name = path_at(&text[i + "super::".len()..]);
        out.insert(if parent.is_empty() {
            name
        } else {
            format!("{parent}::{name}")
        });
    }
    out
}

/// module -> the modules of the tree it imports.
fn graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, text) in files {
        let mut to = BTreeSet::new();
        for path in references(module, text) {
            let parts: Vec<&str> = path.split("::").collect();
            // The longest prefix that is a module of the tree.
            if let Some(target) = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|c| files.contains_key(c))
            {
                if &target != module {
                    to.insert(target);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

/// Imports that reach up a layer, as "from -> to" lines.
fn upward(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut bad = Vec::new();
    for (from, tos) in edges {
        for to in tos {
            if layer_of(to) > layer_of(from) {
                bad.push(format!("{from} -> {to}"));
            }
        }
    }
    bad
}

/// The verb a `commands::` module belongs to (`commands::vault::tls` ->
/// `vault`), if it is one.
fn verb_of(module: &str) -> Option<&str> {
    module.strip_prefix("commands::")?.split("::").next()
}

/// What every verb may use in `commands/`: the shared argument groups and
/// the progress bar.
const SHARED: [&str; 2] = ["args", "progress"];

/// Verbs that use another verb, as "from -> to" lines: a verb uses only
/// the [`SHARED`] modules and its own files; only `ceremony`, which runs
/// the others, may call them.
fn verb_to_verb(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut bad = Vec::new();
    for (from, tos) in edges {
        let Some(verb) = verb_of(from) else { continue };
        for to in tos {
            match verb_of(to) {
                Some(other) if other != verb && !SHARED.contains(&other) && verb != "ceremony" => {
                    bad.push(format!("{from} -> {to}"));
                }
                _ => {}
            }
        }
    }
    bad
}

/// The import circles (strongly connected components of two or more).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges = self.edges;
            for w in edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

#[test]
fn every_module_uses_only_its_own_layer_and_those_below_and_no_circle_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&src, &src, &mut files);
    for layer in LAYERS {
        assert!(
            files.keys().any(|m| m.starts_with(&format!("{layer}::"))),
            "src/{layer}/ is missing or empty: the layers of lib.rs must exist"
        );
    }
    let edges = graph(&files);
    // The parser must see the imports it is there to check.
    assert!(
        edges["ca::store"].contains("pki::x509"),
        "the import parser no longer sees ca::store -> pki::x509: {:?}",
        edges["ca::store"]
    );
    let bad = upward(&edges);
    assert!(
        bad.is_empty(),
        "imports that reach up a layer (support < pki < ca < commands < cli):\n{}",
        bad.join("\n")
    );
    let found = circles(&edges);
    assert!(found.is_empty(), "import circles: {found:?}");
    let crossing = verb_to_verb(&edges);
    assert!(
        crossing.is_empty(),
        "a verb uses another verb (only ceremony may):\n{}",
        crossing.join("\n")
    );
    // `#![deny(unsafe_code)]` in lib.rs covers the library; this covers
    // main.rs too, which is a crate of its own.
    let unsafe_outside: Vec<&String> = files
        .iter()
        .filter(|(m, text)| *m != "support::sys" && has_unsafe_code(text))
        .map(|(m, _)| m)
        .collect();
    assert!(
        unsafe_outside.is_empty(),
        "unsafe code outside src/support/sys.rs: {unsafe_outside:?}"
    );
    assert!(
        has_unsafe_code(&files["support::sys"]),
        "the unsafe-code check no longer sees src/support/sys.rs's unsafe blocks"
    );
    // Changing the process environment races with threads (unsafe from
    // edition 2024 on): it is process code, and lives in `support::sys`.
    let env_outside: Vec<&String> = files
        .iter()
        .filter(|(m, text)| *m != "support::sys" && changes_environment(text))
        .map(|(m, _)| m)
        .collect();
    assert!(
        env_outside.is_empty(),
        "the process environment is changed outside src/support/sys.rs: {env_outside:?}"
    );
    assert!(changes_environment(&files["support::sys"]));
    // Printing is the commands layer's: below it only `support::stdout`,
    // the one way out that commands print through, touches the terminal.
    let printing_below: Vec<&String> = files
        .iter()
        .filter(|(m, text)| {
            layer_of(m) < layer_of("commands::issue") && *m != "support::stdout" && prints(text)
        })
        .map(|(m, _)| m)
        .collect();
    assert!(
        printing_below.is_empty(),
        "printing below the commands layer: {printing_below:?}"
    );
    assert!(prints(&files["support::stdout"]));
}

/// Whether `text` writes to the terminal (standard output or error, or a
/// progress bar) outside `//` comments and its tests.
fn prints(text: &str) -> bool {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines().any(|line| {
        let line = line.split("//").next().unwrap_or("");
        [
            "stdout()",
            "stderr()",
            "indicatif::",
            "println!",
            "eprintln!",
            "print!",
            "eprint!",
        ]
        .iter()
        .any(|p| line.contains(p))
    })
}

/// Whether `text` calls `env::remove_var` or `env::set_var` outside `//`
/// comments and its tests.
fn changes_environment(text: &str) -> bool {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines().any(|line| {
        let line = line.split("//").next().unwrap_or("");
        line.contains("remove_var(") || line.contains("set_var(")
    })
}

/// One issuing pipeline: `ca::issuance` is the only module that runs the
/// bulk engine, so every issuing verb (issue, registry, vault tls,
/// ceremony) validates, refuses what exists and locks the same way.
#[test]
fn only_the_issuance_pipeline_runs_the_bulk_engine() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&src, &src, &mut files);
    let runs_bulk = |text: &str| {
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        code.contains("bulk::execute(") || code.contains("bulk::{execute")
    };
    let callers: Vec<&String> = files
        .iter()
        .filter(|(m, text)| *m != "ca::bulk" && runs_bulk(text))
        .map(|(m, _)| m)
        .collect();
    assert_eq!(
        callers,
        vec!["ca::issuance"],
        "the bulk engine must be run through ca::issuance only"
    );
}

/// The map in lib.rs's header names every module of each layer and every
/// verb (a file or folder directly under `src/commands/`), in backquotes.
#[test]
fn lib_rs_names_every_module_of_every_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let header: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join(" ")
        .replace("//!", "");
    let mut missing = Vec::new();
    for layer in LAYERS {
        for entry in std::fs::read_dir(src.join(layer)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
            if module && name != "mod" && !header.contains(&format!("`{name}`")) {
                missing.push(format!("{layer}/{name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "src/lib.rs's map does not name: {missing:?}"
    );
}

/// Whether `text` says `unsafe ` outside `//` comments.
fn has_unsafe_code(text: &str) -> bool {
    text.lines()
        .any(|line| line.split("//").next().unwrap_or("").contains("unsafe "))
}

fn tree(modules: &[(&str, &str)]) -> BTreeMap<String, String> {
    modules
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect()
}

#[test]
fn an_import_from_a_higher_layer_is_caught() {
    let files = tree(&[
        ("pki::x509", "use crate::support::error::Error;\n"),
        ("support::error", "pub struct Error;\n"),
        ("ca::store", "use crate::{pki::x509, commands::init};\n"),
        ("commands::init", "use crate::ca::store::CaStore;\n"),
    ]);
    let bad = upward(&graph(&files));
    assert_eq!(bad, vec!["ca::store -> commands::init".to_string()]);
}

#[test]
fn printing_is_seen_but_a_comment_about_it_is_not() {
    assert!(prints("    let bar = indicatif::ProgressBar::new(3);\n"));
    assert!(prints("    let _ = writeln!(std::io::stderr(), \"x\");\n"));
    assert!(!prints("    f(); // not to stdout() here\n"));
    assert!(!prints(
        "fn f() {}\n#[cfg(test)]\nmod tests { fn g() { eprintln!(\"t\"); } }\n"
    ));
}

#[test]
fn unsafe_code_is_seen_but_a_comment_about_it_is_not() {
    assert!(has_unsafe_code("    let x = unsafe { f() };\n"));
    assert!(!has_unsafe_code(
        "//! rcgen's defaults are unsafe for a CA\n"
    ));
    assert!(!has_unsafe_code("    g(); // unsafe in edition 2024\n"));
}

#[test]
fn an_import_circle_is_caught_and_test_modules_are_left_out() {
    let files = tree(&[
        ("pki::profile", "fn f() { crate::pki::x509::parse(); }\n"),
        (
            "pki::x509",
            "use super::profile;\n#[cfg(test)]\nmod tests { use crate::ca::store; }\n",
        ),
        ("ca::store", "\n"),
    ]);
    let edges = graph(&files);
    assert_eq!(
        circles(&edges),
        vec![vec!["pki::profile".to_string(), "pki::x509".to_string()]]
    );
    assert!(upward(&edges).is_empty(), "a test module's import counted");
}

#[test]
fn a_verb_using_another_verb_is_caught_except_from_ceremony() {
    let files = tree(&[
        ("commands::args", "\n"),
        (
            "commands::check",
            "use crate::commands::{args, inspect::model};\n",
        ),
        ("commands::inspect", "\n"),
        ("commands::inspect::model", "\n"),
        ("commands::ceremony", "use crate::commands::inspect;\n"),
    ]);
    assert_eq!(
        verb_to_verb(&graph(&files)),
        vec!["commands::check -> commands::inspect::model".to_string()]
    );
}

/// Functions in `src/` of 100 lines or more, as "module::name (N lines)".
/// A function whose doc comment calls it a lookup table is left out.
fn long_functions(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = fn_name(line) else { continue };
            let Some(length) = body_lines(&lines[i..]) else {
                continue;
            };
            let doc = lines[..i]
                .iter()
                .rev()
                .take_while(|l| {
                    l.trim_start().starts_with("///") || l.trim_start().starts_with("#[")
                })
                .any(|l| l.contains("lookup table"));
            if length >= 100 && !doc {
                found.push(format!("{module}::{name} ({length} lines)"));
            }
        }
    }
    found
}

/// The function a line declares, if it does.
fn fn_name(line: &str) -> Option<String> {
    let code = line.split("//").next().unwrap_or("");
    let at = code.find("fn ")?;
    let before = code[..at].trim();
    let qualifiers = [
        "pub",
        "pub(crate)",
        "pub(super)",
        "const",
        "async",
        "unsafe",
        "extern",
    ];
    if !before.split_whitespace().all(|w| qualifiers.contains(&w)) {
        return None;
    }
    let name = path_at(&code[at + 3..]);
    (!name.is_empty()).then_some(name)
}

/// Lines from a `fn` line to its closing brace; `None` for a declaration
/// without a body. Braces inside strings, characters and comments do not
/// count.
fn body_lines(lines: &[&str]) -> Option<usize> {
    let (mut depth, mut opened) = (0i64, false);
    let mut in_string = false;
    for (n, line) in lines.iter().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if in_string {
                match c {
                    '\\' => i += 1,
                    '"' => in_string = false,
                    _ => {}
                }
            } else if c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            } else if c == '"' {
                in_string = true;
            } else if c == 'r' && chars.get(i + 1) == Some(&'#') {
                // r#"..."#: skip to the closing quote and hash on this line.
                let rest: String = chars[i..].iter().collect();
                let end = rest[3..].find("\"#").map_or(rest.len(), |e| e + 5);
                i += rest[..end].chars().count();
                continue;
            } else if c == '\'' {
                // A character literal ('x', '\n', '{'), not a lifetime.
                if chars.get(i + 1) == Some(&'\\') {
                    i += chars[i + 2..]
                        .iter()
                        .position(|&c| c == '\'')
                        .map_or(0, |p| p + 2);
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            } else if c == '{' {
                depth += 1;
                opened = true;
            } else if c == '}' {
                depth -= 1;
                if opened && depth == 0 {
                    return Some(n + 1);
                }
            } else if c == ';' && !opened {
                return None;
            }
            i += 1;
        }
    }
    None
}

/// Functions known to be 100 lines or more, each with the reason it is
/// not split yet. An entry that stops being true fails the test, so the
/// list only shrinks.
const LONG_FUNCTIONS_PENDING: &[(&str, &str)] = &[];

#[test]
fn no_function_in_src_is_100_lines_or_more() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&src, &src, &mut files);
    let found = long_functions(&files);
    let pending = |f: &String| {
        LONG_FUNCTIONS_PENDING
            .iter()
            .any(|(p, _)| f.starts_with(&format!("{p} (")))
    };
    let new: Vec<&String> = found.iter().filter(|f| !pending(f)).collect();
    assert!(
        new.is_empty(),
        "functions of 100 lines or more (split them into named steps):\n{new:#?}"
    );
    for (p, why) in LONG_FUNCTIONS_PENDING {
        assert!(
            found.iter().any(|f| f.starts_with(&format!("{p} ("))),
            "{p} is now under 100 lines: remove it from LONG_FUNCTIONS_PENDING ({why})"
        );
    }
}

#[test]
fn a_long_function_is_caught_but_a_lookup_table_and_braces_in_strings_are_not() {
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let files = tree(&[
        ("ca::long", &format!("pub fn long() {{\n{}}}\n", body(98))),
        ("ca::short", &format!("fn short() {{\n{}}}\n", body(97))),
        (
            "ca::table",
            &format!("/// A lookup table.\nfn table() {{\n{}}}\n", body(120)),
        ),
        (
            "ca::strings",
            &format!(
                "fn s() {{\n    let a = \"}}}}\"; let b = '}}';\n{}}}\nfn t() {{}}\n",
                body(5)
            ),
        ),
    ]);
    assert_eq!(
        long_functions(&files),
        vec!["ca::long::long (100 lines)".to_string()]
    );
}
