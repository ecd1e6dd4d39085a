//! Small rooms, checked on the tree: no `.rs` file of the workspace (every member, its
//! tests, benches and examples; unit tests included) is longer than [`MAX_LINES`]. Files
//! still being split are named in [`BEING_SPLIT`]: every run prints them, and the test
//! fails once one of them fits, so that list only shrinks.

use std::path::Path;

/// The most lines a Rust source file may have.
const MAX_LINES: usize = 600;

/// Files over the limit that are being split on another branch (paths relative to the
/// workspace root). Remove an entry when its split lands.
const BEING_SPLIT: &[&str] = &[];

/// Every `.rs` file under `dir`, as (path relative to `root` with `/`, line count);
/// build output (`target`) and hidden directories (`.git`) are skipped.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, usize)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(root, &path, out);
            }
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let rel = path.strip_prefix(root).expect("under the root");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, text.lines().count()));
        }
    }
}

/// The files over the limit that are not being split, and the listed ones that fit now.
fn check(files: &[(String, usize)], being_split: &[&str]) -> (Vec<String>, Vec<String>) {
    let over: Vec<&(String, usize)> = files.iter().filter(|(_, n)| *n > MAX_LINES).collect();
    let unexpected = over
        .iter()
        .filter(|(f, _)| !being_split.contains(&f.as_str()))
        .map(|(f, n)| format!("{f} ({n} lines)"))
        .collect();
    let fitted = being_split
        .iter()
        .filter(|s| !over.iter().any(|(f, _)| f == *s))
        .map(|s| s.to_string())
        .collect();
    (unexpected, fitted)
}

#[test]
fn no_rust_file_is_longer_than_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(root, root, &mut files);
    for must in ["src/lib.rs", "crates/core/src/lib.rs", "tests/it/main.rs"] {
        assert!(
            files.iter().any(|(f, _)| f == must),
            "the walk missed {must}"
        );
    }
    for (f, n) in files
        .iter()
        .filter(|(f, _)| BEING_SPLIT.contains(&f.as_str()))
    {
        eprintln!("being split (BEING_SPLIT): {f}: {n} lines, limit {MAX_LINES}");
    }
    let (unexpected, fitted) = check(&files, BEING_SPLIT);
    assert!(
        unexpected.is_empty(),
        "over {MAX_LINES} lines (split by concern; unit tests count): {}",
        unexpected.join(", ")
    );
    assert!(
        fitted.is_empty(),
        "within {MAX_LINES} lines now, remove from BEING_SPLIT: {}",
        fitted.join(", ")
    );
}

#[test]
fn the_walk_counts_lines_and_skips_build_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |rel: &str, lines: usize| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, "x\n".repeat(lines)).expect("write");
    };
    write("src/small.rs", 3);
    write("crates/a/src/big.rs", MAX_LINES + 1);
    write("crates/a/src/split.rs", MAX_LINES + 5);
    write("crates/a/src/fits.rs", MAX_LINES);
    write("target/debug/build/out.rs", MAX_LINES + 1);
    write(".git/hooks/x.rs", MAX_LINES + 1);
    write("README.md", MAX_LINES + 1);
    let mut files = Vec::new();
    rust_files(dir.path(), dir.path(), &mut files);
    files.sort();
    assert_eq!(
        files,
        vec![
            ("crates/a/src/big.rs".to_string(), MAX_LINES + 1),
            ("crates/a/src/fits.rs".to_string(), MAX_LINES),
            ("crates/a/src/split.rs".to_string(), MAX_LINES + 5),
            ("src/small.rs".to_string(), 3),
        ]
    );
    let (unexpected, fitted) = check(&files, &["crates/a/src/split.rs", "src/small.rs"]);
    assert_eq!(
        unexpected,
        vec![format!("crates/a/src/big.rs ({} lines)", MAX_LINES + 1)]
    );
    assert_eq!(fitted, vec!["src/small.rs".to_string()]);
}
