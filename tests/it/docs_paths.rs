//! The contributor guide points at real files: every path `CONTRIBUTING.md` cites in
//! backticks (`src/…`, `crates/…`, `tests/…`, `scripts/…`, …) exists, so a rename that
//! forgets the guide fails here, naming the path.

use std::path::Path;

/// Top-level directories and files of the repository a cited path may start with.
const ROOTS: [&str; 14] = [
    "src/",
    "crates/",
    "tests/",
    "scripts/",
    "docs/",
    "manifests/",
    "dashboards/",
    "proto/",
    "benches/",
    "traces/",
    "examples/",
    "clippy.toml",
    "deny.toml",
    "Dockerfile",
];

/// The repository paths cited in backticks in `markdown` (a command's path arguments
/// included, `::test` filters and trailing punctuation dropped).
fn cited_paths(markdown: &str) -> Vec<String> {
    markdown
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(str::split_whitespace)
        .map(|w| w.split("::").next().unwrap_or(w))
        .map(|w| w.trim_end_matches([',', '.', ';', ')']))
        .filter(|w| ROOTS.iter().any(|r| w.starts_with(r)))
        .filter(|w| !w.contains(['*', '<', '{']))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_path_cited_in_contributing_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("CONTRIBUTING.md")).expect("CONTRIBUTING.md");
    let cited = cited_paths(&text);
    assert!(cited.len() > 20, "too few paths found: {cited:?}");
    let missing: Vec<&String> = cited.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "CONTRIBUTING.md cites paths that do not exist: {missing:?}"
    );
}

#[test]
fn citations_are_found_in_code_spans_and_commands() {
    let md = "see `src/keda` and `scripts/test.sh` or `cargo test --test it tests/it/x.rs::y`, \
              not src/plain nor `fks-core` nor `traces/*.csv`; `docs/a.md`.";
    assert_eq!(
        cited_paths(md),
        vec!["src/keda", "scripts/test.sh", "tests/it/x.rs", "docs/a.md"]
    );
}
