//! `spec/grammar.abnf` is real ABNF (RFC 5234 + RFC 7405), closed (every rule it uses is
//! defined or a core rule, every rule is reachable), and every rule the codec quotes in an
//! ```abnf doc block exists in it with the same definition.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use abnf::types::{Kind, Node};

const CORE_RULES: &[&str] = &[
    "ALPHA", "BIT", "CHAR", "CR", "CRLF", "CTL", "DIGIT", "DQUOTE", "HEXDIG", "HTAB", "LF", "LWSP",
    "OCTET", "SP", "VCHAR", "WSP",
];
/// Where every rule must be reachable from: the streams of ferry/1, and the extensions' own
/// requests, replies and greeting parameters (section 16).
const ROOTS: &[&str] = &[
    "client-stream",
    "server-stream",
    "request",
    "reply",
    "ext-request",
    "ext-reply",
    "auth-param",
    // The requests that replace get-req and put-req once tree is enabled (section 17).
    "tree-get-req",
    "tree-put-req",
];

fn grammar_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/grammar.abnf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every rule by name. An incremental alternative (`=/`, RFC 5234 section 3.3: how each
/// extension adds to `ext-request` and `ext-reply`) is merged into the rule it extends, which
/// must be defined with `=` before it.
fn rules() -> BTreeMap<String, Node> {
    let rules =
        abnf::rulelist(&grammar_text()).unwrap_or_else(|e| panic!("grammar.abnf is not ABNF: {e}"));
    let mut map: BTreeMap<String, Node> = BTreeMap::new();
    for r in rules {
        match r.kind() {
            Kind::Basic => assert!(
                map.insert(r.name().to_owned(), r.node().clone()).is_none(),
                "rule {} defined twice",
                r.name()
            ),
            Kind::Incremental => {
                let base = map
                    .get_mut(r.name())
                    .unwrap_or_else(|| panic!("rule {} has =/ before its = definition", r.name()));
                *base = Node::Alternatives(vec![base.clone(), r.node().clone()]);
            }
        }
    }
    map
}

fn referenced(node: &Node, out: &mut BTreeSet<String>) {
    match node {
        Node::Alternatives(v) | Node::Concatenation(v) => v.iter().for_each(|n| referenced(n, out)),
        Node::Repetition { node, .. } => referenced(node, out),
        Node::Group(n) | Node::Optional(n) => referenced(n, out),
        Node::Rulename(name) => {
            out.insert(name.clone());
        }
        Node::String(_) | Node::TerminalValues(_) | Node::Prose(_) => {}
    }
}

#[test]
fn grammar_parses_and_is_closed() {
    let rules = rules();
    assert!(rules.len() > 50, "suspiciously few rules: {}", rules.len());
    for (name, node) in &rules {
        let mut used = BTreeSet::new();
        referenced(node, &mut used);
        for u in used {
            assert!(
                rules.contains_key(&u) || CORE_RULES.contains(&u.as_str()),
                "rule {name} uses undefined rule {u}"
            );
        }
        assert!(!matches!(node, Node::Prose(_)), "rule {name} is prose only");
    }
    // Every rule is reachable from the top-level rules.
    let mut seen: BTreeSet<String> = ROOTS.iter().map(|s| s.to_string()).collect();
    let mut todo: Vec<String> = seen.iter().cloned().collect();
    while let Some(r) = todo.pop() {
        let mut used = BTreeSet::new();
        if let Some(node) = rules.get(&r) {
            referenced(node, &mut used);
        }
        for u in used {
            if seen.insert(u.clone()) {
                todo.push(u);
            }
        }
    }
    let unreachable: Vec<&String> = rules.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(unreachable.is_empty(), "unreachable rules: {unreachable:?}");
}

/// Removes `;` comments (outside quoted strings) and folds white space.
fn normalise(def: &str) -> String {
    let mut out = String::new();
    for line in def.lines() {
        let mut in_quote = false;
        let mut kept = String::new();
        for c in line.chars() {
            if c == '"' {
                in_quote = !in_quote;
            }
            if c == ';' && !in_quote {
                break;
            }
            kept.push(c);
        }
        out.push(' ');
        out.push_str(&kept);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// rule name -> normalised definitions, from ABNF text where continuation lines are
/// indented. A rule's `=` definition is keyed by its name; its incremental alternatives
/// (`=/`) by its name followed by ` =/`, each one a definition of that key.
fn definitions(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut defs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut add = |(n, d): (String, String)| defs.entry(n).or_default().push(normalise(&d));
    for line in text.lines() {
        let starts_rule =
            line.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && line.contains('=');
        if starts_rule {
            if let Some(done) = current.take() {
                add(done);
            }
            let (name, def) = line.split_once('=').unwrap_or_default();
            current = Some(match def.strip_prefix('/') {
                Some(alternatives) => (format!("{} =/", name.trim()), alternatives.to_owned()),
                None => (name.trim().to_owned(), def.to_owned()),
            });
        } else if let Some((_, d)) = current.as_mut() {
            d.push('\n');
            d.push_str(line);
        }
    }
    if let Some(done) = current {
        add(done);
    }
    defs
}

#[test]
fn every_rule_the_code_quotes_is_in_the_grammar_verbatim() {
    let grammar = definitions(&grammar_text());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut quoted = 0;
    for entry in std::fs::read_dir(&src).expect("src dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file");
        let mut block: Option<String> = None;
        for line in text.lines() {
            let doc = line
                .trim_start()
                .strip_prefix("///")
                .map(|l| l.strip_prefix(' ').unwrap_or(l));
            match (doc, block.as_mut()) {
                (Some("```abnf"), None) => block = Some(String::new()),
                (Some("```"), Some(b)) => {
                    for (name, defs) in definitions(b) {
                        let want = grammar.get(&name).unwrap_or_else(|| {
                            panic!(
                                "{}: quotes rule `{name}`, which grammar.abnf does not define",
                                path.display()
                            )
                        });
                        for def in defs {
                            quoted += 1;
                            assert!(
                                want.contains(&def),
                                "{}: rule `{name}` differs from grammar.abnf: {def:?} is not \
                                 one of {want:?}",
                                path.display()
                            );
                        }
                    }
                    block = None;
                }
                (Some(l), Some(b)) => {
                    b.push_str(l);
                    b.push('\n');
                }
                _ => {}
            }
        }
    }
    assert!(
        quoted >= 30,
        "only {quoted} quoted rules found: the scan is broken"
    );
}

/// The fuzz dictionary holds every string terminal of the grammar, so a grammar change that
/// adds a keyword cannot leave the fuzzers blind to it.
#[test]
fn fuzz_dictionary_has_every_terminal() {
    let dict = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/terminals.dict"),
    )
    .expect("fuzz/terminals.dict");
    let entries: BTreeSet<&str> = dict
        .lines()
        .filter(|l| l.starts_with('"'))
        .map(|l| l.trim_matches('"'))
        .collect();
    let mut missing = Vec::new();
    for line in grammar_text().lines() {
        let code = line.split(';').next().unwrap_or_default();
        let mut parts = code.split('"');
        parts.next();
        while let (Some(term), Some(_)) = (parts.next(), parts.next()) {
            if !entries.contains(term) {
                missing.push(term.to_owned());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "terminals missing from fuzz/terminals.dict: {missing:?}"
    );
}
