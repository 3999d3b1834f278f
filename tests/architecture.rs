//! The layering of `src/`, read from the code's own paths (`crate::`, `super::`, a parent's
//! `use child::`): who may use whom, where bollard and clap may appear, and no import
//! cycle among files. The picture is in the README's "Design" part.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path inside the crate: `["repo", "pack"]` for `src/repo/pack.rs`.
type Module = Vec<String>;

struct File {
    /// `src/`-relative path, for messages.
    path: String,
    /// The file's text as written.
    text: String,
    /// The file's text with comments and string contents removed.
    code: String,
}

fn read_src() -> BTreeMap<Module, File> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<Module, File>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let mut module: Module = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(String::from)
                .collect();
            let is_dir = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
            if is_dir {
                module.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = strip(&text);
            out.insert(
                module,
                File {
                    path: rel,
                    text,
                    code,
                },
            );
        }
    }
    // Another tree's `src/` can be judged too (to show what an older main breaks).
    let root = std::env::var_os("DRCTL_ARCHITECTURE_SRC")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// Removes `//` comments and the contents of string literals, so that neither a doc
/// comment naming a module nor a message is read as a path.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        break;
                    }
                }
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            // A char literal holding a quote must not open a string.
            '\'' if chars.clone().nth(1) == Some('\'') => {
                out.push('\'');
                out.push(chars.next().unwrap());
            }
            c => out.push(c),
        }
    }
    out
}

/// The paths a `use` tree or an inline path names, from `text` just after `prefix::`:
/// `a::b::{c, d::e}` gives `a::b::c` and `a::b::d::e`.
fn expand(prefix: &[String], text: &str) -> Vec<Module> {
    let mut segs = prefix.to_vec();
    let mut rest = text;
    loop {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if word.is_empty() {
            break;
        }
        rest = &rest[word.len()..];
        if word != "self" {
            segs.push(word);
        }
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => return vec![segs],
        }
    }
    let Some(body) = rest.strip_prefix('{') else {
        return vec![segs];
    };
    // Split the group at its top-level commas.
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.extend(expand(&segs, body[start..i].trim()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.extend(expand(&segs, body[start..i].trim()));
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

/// Byte ranges of inline `mod name { ... }` blocks, where `super::` is the file itself.
fn inline_mods(code: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("mod ") {
        let at = from + i;
        from = at + 4;
        let rest = &code[from..];
        let name_len = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .count();
        if name_len == 0 || !rest[name_len..].trim_start().starts_with('{') {
            continue;
        }
        let open = from + name_len + rest[name_len..].find('{').unwrap();
        let mut depth = 0;
        for (j, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push((open, open + j));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The module files each file uses (itself excluded). A parent's `pub use child::X` is its
/// public interface, not a use of the child, and is not counted; `pub(crate) use` is.
fn imports(files: &BTreeMap<Module, File>) -> BTreeMap<Module, BTreeSet<Module>> {
    let resolve = |path: &Module| -> Option<Module> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| files.contains_key(m))
    };
    let mut out = BTreeMap::new();
    for (module, file) in files {
        let code = &file.code;
        // `self::` and a `use child::` name the file's own module, whether it is a
        // `mod.rs` or `stack.rs` beside `stack/plan.rs`.
        let parent: Module = module.clone();
        let inline = inline_mods(code);
        let mut paths = Vec::new();
        for key in ["crate::", "super::", "self::", "drctl::"] {
            for (at, _) in code.match_indices(key) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let base: Module = match key {
                    "super::" if inline.iter().any(|&(a, b)| a <= at && at < b) => module.clone(),
                    "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                    "self::" => parent.clone(),
                    // The binary names the library by its crate name.
                    "drctl::" if file.path == "main.rs" => Vec::new(),
                    "drctl::" => continue,
                    _ => Vec::new(),
                };
                paths.extend(expand(&base, &code[at + key.len()..]));
            }
        }
        // `use child::X;` in a module file names its own child.
        for line in code.lines() {
            // A re-export to the crate or the parent is still this file's own use.
            let line = line.trim_start();
            let line = ["pub(crate) ", "pub(super) "]
                .iter()
                .find_map(|p| line.strip_prefix(p))
                .unwrap_or(line);
            if let Some(rest) = line.strip_prefix("use ") {
                let first: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let mut child = parent.clone();
                child.push(first);
                if files.contains_key(&child) && child != *module {
                    paths.extend(expand(&parent, rest));
                }
            }
        }
        let used: BTreeSet<Module> = paths
            .iter()
            .filter_map(resolve)
            .filter(|m| m != module)
            .collect();
        out.insert(module.clone(), used);
    }
    out
}

/// The top-level module a file belongs to (`repo` for `src/repo/pack.rs`).
fn top(m: &Module) -> &str {
    m.first().map_or("lib", String::as_str)
}

/// Layers that may use only these others (besides themselves).
const ONLY: &[(&str, &[&str])] = &[
    // Bytes under keys: nothing of drctl's, not even its error type.
    ("store", &[]),
    // The format: the store below it and the error type.
    ("repo", &["store", "error"]),
    // The one user of bollard.
    ("docker", &["error"]),
];

/// Layers that must not use these others.
const NEVER: &[(&str, &[&str])] = &[
    // Producers of streams and paths, beside backup and restore, not above them.
    (
        "source",
        &["backup", "restore", "catalog", "store", "stack", "drill"],
    ),
    // The cache, below every command.
    (
        "catalog",
        &[
            "backup", "restore", "source", "stack", "drill", "schedule", "prune", "session",
        ],
    ),
    // The handle on repository and catalog, below every command.
    (
        "session",
        &[
            "backup", "restore", "source", "stack", "drill", "schedule", "prune", "check",
            "forget", "repair", "run", "status", "docker",
        ],
    ),
];

#[test]
fn modules_use_only_the_layers_below_them() {
    let files = read_src();
    let graph = imports(&files);
    let mut wrong = Vec::new();
    for (from, used) in &graph {
        for to in used {
            let (a, b) = (top(from), top(to));
            if a == b {
                continue;
            }
            let banned = ONLY.iter().any(|(l, ok)| *l == a && !ok.contains(&b))
                || NEVER.iter().any(|(l, no)| *l == a && no.contains(&b));
            // Only the binary starts the composition root.
            let into_app = b == "app" && a != "main";
            if banned || into_app {
                wrong.push(format!("{} uses {}", files[from].path, files[to].path));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn bollard_only_in_the_docker_adapter_and_clap_only_in_cli() {
    let mut wrong = Vec::new();
    for file in read_src().values() {
        let uses = |name: &str| {
            file.code.match_indices(name).any(|(at, _)| {
                let before = file.code[..at].chars().next_back();
                let after = file.code[at + name.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && after.is_some_and(|c| c == ':' || c == '_')
            })
        };
        if uses("bollard") && !file.path.starts_with("docker/") {
            wrong.push(format!("{} uses bollard", file.path));
        }
        if uses("clap") && !file.path.starts_with("cli/") && file.path != "cli.rs" {
            wrong.push(format!("{} uses clap", file.path));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn object_keys_are_spelled_only_in_the_repository_layout() {
    const PREFIXES: [&str; 10] = [
        "config\"",
        "keys/",
        "index/",
        "snapshots/",
        "points/",
        "drills/",
        "marks/",
        "locks/",
        "data/",
        "meta/",
    ];
    let mut wrong = Vec::new();
    for file in read_src().values() {
        if file.path == "repo/layout.rs" {
            continue;
        }
        for (n, line) in file.text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if let Some(p) = PREFIXES.iter().find(|p| code.contains(&format!("\"{p}"))) {
                // A JSON field named "config" is no key.
                if *p == "config\"" && code.contains("\"config\":") {
                    continue;
                }
                // Nor is Compose's `config` subcommand.
                if *p == "config\"" && file.path == "docker/compose.rs" {
                    continue;
                }
                wrong.push(format!("{}:{}: {}", file.path, n + 1, line.trim()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "object keys spelled outside repo/layout.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_cycle_among_files() {
    let files = read_src();
    let graph = imports(&files);
    // Depth-first search for a back edge, printing the cycle it closes.
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, bool>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match state.get(m) {
            Some(true) => return None,
            Some(false) => {
                let start = stack.iter().position(|s| s == m).unwrap();
                let mut cycle = stack[start..].to_vec();
                cycle.push(m.clone());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(m.clone(), false);
        stack.push(m.clone());
        for to in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(to, graph, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(m.clone(), true);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut state, &mut Vec::new()) {
            let names: Vec<&str> = cycle.iter().map(|m| files[m].path.as_str()).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
}

#[test]
fn the_reader_sees_paths_the_way_rust_does() {
    let p = |s: &str| s.split("::").map(String::from).collect::<Module>();
    assert_eq!(
        expand(&[], "repo::{id::BlobId, pack::{self, Pack}};"),
        vec![
            p("repo::id::BlobId"),
            p("repo::pack"),
            p("repo::pack::Pack")
        ]
    );
    assert_eq!(
        strip("let s = \"crate::app\"; // crate::app\nx"),
        "let s = \"\"; \nx"
    );
    assert_eq!(
        inline_mods("fn a() {}\nmod tests { use super::*; }").len(),
        1
    );
}

/// The longest a function in `src/` may be, in lines, and a file.
const MAX_FN_LINES: usize = 120;
const MAX_FILE_LINES: usize = 700;

/// Whether a line of code (comments and strings stripped) declares a function.
fn declares_fn(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(at) = words.iter().position(|w| *w == "fn") else {
        return false;
    };
    // Only qualifiers may stand before `fn`: not `Box<dyn Fn..>` or a call.
    words[..at].iter().all(|w| {
        matches!(*w, "pub" | "const" | "async" | "unsafe" | "extern")
            || w.starts_with("pub(")
            || *w == "\"C\""
            || *w == "\"\""
    })
}

#[test]
fn no_function_over_120_lines_and_no_file_over_700() {
    let mut long = Vec::new();
    for file in read_src().values() {
        let lines = file.text.lines().count();
        if lines > MAX_FILE_LINES {
            long.push(format!("{}: {lines} lines", file.path));
        }
        let code: Vec<&str> = file.code.lines().collect();
        for (start, line) in code.iter().enumerate() {
            if !declares_fn(line) {
                continue;
            }
            let (mut depth, mut opened) = (0i64, false);
            for (i, l) in code.iter().enumerate().skip(start) {
                if !opened && l.contains(';') && !l.contains('{') {
                    break; // a declaration without a body
                }
                for c in l.chars() {
                    match c {
                        '{' => (depth, opened) = (depth + 1, true),
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if opened && depth <= 0 {
                    let n = i - start + 1;
                    if n > MAX_FN_LINES {
                        long.push(format!(
                            "{}:{}: a function of {n} lines",
                            file.path,
                            start + 1
                        ));
                    }
                    break;
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_FN_LINES} lines a function or {MAX_FILE_LINES} a file:\n{}",
        long.join("\n")
    );
}
