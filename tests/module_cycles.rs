//! No module of a crate depends on a sibling module that depends back on it.
//!
//! Each crate's sources are read, every `crate::a::b` and `super::a` path outside comments and
//! test modules becomes an edge from the module it is written in to the module it names, and
//! each edge is lifted to the two siblings under the modules' common ancestor (an edge between a
//! module and its own ancestor is not a dependency between siblings). A cycle among siblings
//! fails the test with the edges that make it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

/// Every module of the crate rooted at `src`, by path, with the file that holds it.
fn modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let mut parts: ModPath = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            let file = parts.pop().unwrap();
            match file.as_str() {
                "lib.rs" | "main.rs" if parts.is_empty() => {}
                "mod.rs" => {}
                other => parts.push(other.trim_end_matches(".rs").to_owned()),
            }
            // A binary next to a library (src/bin/*.rs) is a crate of its own.
            if parts.first().is_some_and(|p| p == "bin") {
                continue;
            }
            found.insert(parts, path);
        }
    }
    // Test modules in files of their own (`#[cfg(test)] mod tests;`) are no dependencies either:
    // drop them and everything under them.
    let mut test_modules = Vec::new();
    for (module, file) in &found {
        let text = std::fs::read_to_string(file).unwrap();
        let mut after_cfg_test = false;
        for line in text.lines().map(str::trim) {
            if after_cfg_test && let Some(name) = line.strip_prefix("mod ").and_then(|rest| rest.strip_suffix(';')) {
                let mut path = module.clone();
                path.push(name.trim().to_owned());
                test_modules.push(path);
            }
            after_cfg_test = line.starts_with("#[cfg(test)]");
        }
    }
    found.retain(|module, _| !test_modules.iter().any(|test| module.starts_with(test)));
    found
}

/// The code of a file that is not a comment and not in its test module.
fn code_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut after_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            after_cfg_test = true;
            continue;
        }
        // A test module is the file's last item by the project's habit.
        if after_cfg_test && trimmed.starts_with("mod ") {
            break;
        }
        after_cfg_test = false;
        if trimmed.starts_with("//") {
            continue;
        }
        lines.push(line.split("//").next().unwrap_or(line));
    }
    lines
}

/// Every `crate::…` / `super::…` path in `code`, with `use` groups (`a::{b, c::d}`) expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let root = ["crate::", "super::"].into_iter().find(|r| rest.starts_with(r));
        match root {
            Some(root) if starts_word => {
                let (expanded, used) = expand(&rest[root.len()..]);
                let head = root.trim_end_matches("::").to_owned();
                for mut path in expanded {
                    path.insert(0, head.clone());
                    out.push(path);
                }
                i += root.len() + used.max(1);
            }
            _ => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// Parses `a::b::{c, d::e}` at the start of `text`: the paths it names, and the bytes read.
fn expand(text: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = 0;
    loop {
        let ident: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !ident.is_empty() {
            i += ident.len();
            prefix.push(ident);
            if text[i..].starts_with("::") {
                i += 2;
                continue;
            }
            return (vec![prefix], i);
        }
        if text[i..].starts_with('{') {
            i += 1;
            let mut all = Vec::new();
            loop {
                let skipped = text[i..].len() - text[i..].trim_start().len();
                i += skipped;
                if text[i..].starts_with('}') || i >= text.len() {
                    return (all, i + 1);
                }
                let (inner, used) = expand(&text[i..]);
                for path in inner {
                    all.push(prefix.iter().cloned().chain(path).collect());
                }
                i += used.max(1);
                // Skip ` as alias`, then the separator.
                while i < text.len() && !matches!(text.as_bytes()[i], b',' | b'}') {
                    i += 1;
                }
                if text[i..].starts_with(',') {
                    i += 1;
                }
            }
        }
        return (vec![prefix], i);
    }
}

/// The module a path written in module `from` names: its longest prefix that is a module.
fn target(from: &ModPath, path: &[String], known: &BTreeMap<ModPath, PathBuf>) -> Option<ModPath> {
    let mut at: ModPath = Vec::new();
    let mut rest = path;
    match rest.first()?.as_str() {
        "crate" => rest = &rest[1..],
        "super" => {
            at = from.clone();
            while rest.first().is_some_and(|p| p == "super") {
                at.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    for part in rest {
        let mut next = at.clone();
        next.push(part.clone());
        if !known.contains_key(&next) {
            break;
        }
        at = next;
    }
    Some(at)
}

/// Sibling cycles of one crate, each as the edges (`parent: a -> b` with the file behind it).
fn sibling_cycles(src: &Path) -> Vec<String> {
    let known = modules(src);
    // parent -> (child a -> child b -> the file that made the edge)
    let mut graphs: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        let code = code_lines(&text).join("\n");
        for path in paths(&code) {
            let Some(to) = target(module, &path, &known) else { continue };
            let common = module.iter().zip(&to).take_while(|(a, b)| a == b).count();
            let (Some(a), Some(b)) = (module.get(common), to.get(common)) else { continue };
            let name = file.strip_prefix(src).unwrap().display().to_string();
            graphs
                .entry(module[..common].to_vec())
                .or_default()
                .entry(a.clone())
                .or_default()
                .entry(b.clone())
                .or_insert(format!("{name}: {}", path.join("::")));
        }
    }
    let mut cycles = Vec::new();
    // A cycle is found once from each of its modules: report it once, from its smallest name.
    let mut reported: BTreeSet<(ModPath, Vec<String>)> = BTreeSet::new();
    for (parent, graph) in &graphs {
        for (start, edges) in graph {
            for next in edges.keys() {
                // Does `next` lead back to `start`?
                let mut seen = BTreeSet::new();
                let mut stack = vec![(next.clone(), vec![start.clone(), next.clone()])];
                while let Some((node, trail)) = stack.pop() {
                    if node == *start {
                        let ring = &trail[..trail.len() - 1];
                        let first = (0..ring.len()).min_by_key(|&i| &ring[i]).unwrap_or(0);
                        let canonical = [&ring[first..], &ring[..first]].concat();
                        if !reported.insert((parent.clone(), canonical)) {
                            break;
                        }
                        let steps: Vec<String> = trail
                            .windows(2)
                            .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                            .collect();
                        cycles.push(format!("in {}: {}", display(parent), steps.join("; ")));
                        break;
                    }
                    if !seen.insert(node.clone()) {
                        continue;
                    }
                    for after in graph.get(&node).map(|e| e.keys()).into_iter().flatten() {
                        let mut longer = trail.clone();
                        longer.push(after.clone());
                        stack.push((after.clone(), longer));
                    }
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    cycles
}

fn display(parent: &ModPath) -> String {
    if parent.is_empty() { "crate".to_owned() } else { parent.join("::") }
}

#[test]
fn no_crate_has_a_cycle_among_sibling_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut crates: Vec<PathBuf> = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        crates.push(entry.unwrap().path().join("src"));
    }
    let mut report = Vec::new();
    for src in crates.iter().filter(|s| s.is_dir()) {
        for cycle in sibling_cycles(src) {
            report.push(format!("{}: {cycle}", src.display()));
        }
    }
    assert!(report.is_empty(), "module cycles:\n{}", report.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_written_with_super_and_groups() {
    let dir = std::env::temp_dir().join(format!("module-cycles-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod inner;\nuse crate::b::{Thing, other::X};\n").unwrap();
    std::fs::write(src.join("a/inner.rs"), "// crate::b is a comment\nfn f() { super::super::b::g() }\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a;\n#[cfg(test)]\nmod tests { use crate::a::inner; }\n").unwrap();
    let cycles = sibling_cycles(&src);
    assert_eq!(cycles.len(), 1, "one cycle, reported once: {cycles:?}");
    assert!(cycles[0].contains("a -> b") && cycles[0].contains("b -> a"), "{cycles:?}");
    std::fs::write(src.join("b.rs"), "pub fn g() {}\n#[cfg(test)]\nmod tests { use crate::a::inner; }\n").unwrap();
    assert_eq!(sibling_cycles(&src), Vec::<String>::new(), "a test module's imports are not dependencies");
    std::fs::write(src.join("b.rs"), "pub fn g() {}\n#[cfg(test)]\nmod tests;\n").unwrap();
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("b/tests.rs"), "use crate::a::inner;\n").unwrap();
    assert_eq!(sibling_cycles(&src), Vec::<String>::new(), "nor are those of a test module in a file of its own");
    std::fs::remove_dir_all(&dir).unwrap();
}
