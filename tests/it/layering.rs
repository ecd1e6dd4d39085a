//! The layering rule, checked on the source: an adapter (`keda`, `promql`, `flink`,
//! `kube`, `exporter`) refers to the pure core and to itself only — never to another
//! adapter, to `config`, to `runtime` or to any other module of the scaler. Every `use`
//! tree (groups like `crate::{a, b::c}` included), every path in code and every
//! `crate::`/`super::` path inside macro calls is resolved against the file's module path
//! (`super::super::x` climbs out of nested and inline modules).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use syn::visit::Visit;

/// The adapter modules of the scaler.
const ADAPTERS: [&str; 5] = ["keda", "promql", "flink", "kube", "exporter"];
/// What every adapter may use besides itself.
const SHARED: [&str; 1] = ["core"];
/// The scaler crate's name, as an absolute path root.
const CRATE_NAME: &str = "flink_keda_scaler";

/// A reference from a file to a top-level module of the crate it may not use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    path: String,
    target: String,
}

/// Collects, for one file, the crate-local top-level modules its paths resolve to.
struct Refs {
    /// The module path of the code being visited (`["keda", "service", "tests"]`).
    module: Vec<String>,
    /// (rendered path, top-level module it reaches).
    found: Vec<(String, String)>,
}

impl Refs {
    /// Resolves a path given as segments; records the top-level module it names when the
    /// path starts at the crate root (`crate`, the crate's name, or enough `super`s).
    fn resolve(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let rest: &[String] = match first.as_str() {
            "crate" | CRATE_NAME => &segments[1..],
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                if ups < self.module.len() {
                    // still inside a top-level module: the first kept segment names it
                    let top = self.module[0].clone();
                    self.found.push((segments.join("::"), top));
                    return;
                }
                &segments[ups..]
            }
            _ => return,
        };
        if let Some(top) = rest.first() {
            self.found.push((segments.join("::"), top.clone()));
        }
    }

    /// A `use` tree: every leaf path with its prefix (groups expanded).
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(prefix, n.ident.to_string()),
            syn::UseTree::Rename(r) => self.leaf(prefix, r.ident.to_string()),
            syn::UseTree::Glob(_) => self.leaf(prefix, "*".into()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn leaf(&mut self, prefix: &[String], last: String) {
        let mut segments = prefix.to_vec();
        // `use crate::{self}` / `use super::{self}` name the prefix itself
        if last != "self" {
            segments.push(last);
        }
        self.resolve(&segments);
    }

    /// Paths written inside macro calls (`matches!(e, crate::x::Y)`), found in the tokens.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        let trees: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                proc_macro2::TokenTree::Group(g) => self.tokens(g.stream()),
                proc_macro2::TokenTree::Ident(id)
                    if ["crate", "super"].contains(&id.to_string().as_str()) =>
                {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(proc_macro2::TokenTree::Punct(a)),
                        Some(proc_macro2::TokenTree::Punct(b)),
                        Some(proc_macro2::TokenTree::Ident(next)),
                    ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    self.resolve(&segments);
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Refs {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(&segments);
        syn::visit::visit_path(self, p);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// The top-level modules `source` (the file of module `module`) refers to, with the path.
fn references(module: &[&str], source: &str) -> Result<Vec<(String, String)>, syn::Error> {
    let file = syn::parse_file(source)?;
    let mut refs = Refs {
        module: module.iter().map(|s| s.to_string()).collect(),
        found: Vec::new(),
    };
    refs.visit_file(&file);
    Ok(refs.found)
}

/// What `source` (module `module`, in adapter `module[0]`) may not refer to.
fn violations(file: &str, module: &[&str], source: &str) -> Result<Vec<Violation>, syn::Error> {
    let own = module.first().copied().unwrap_or_default();
    Ok(references(module, source)?
        .into_iter()
        .filter(|(_, target)| target != own && !SHARED.contains(&target.as_str()))
        .map(|(path, target)| Violation {
            file: file.to_string(),
            path,
            target,
        })
        .collect())
}

/// Every `.rs` file of an adapter with its module path: `src/<a>.rs` and `src/<a>/**`.
fn adapter_files(src: &Path, adapter: &str) -> Vec<(PathBuf, Vec<String>)> {
    let mut out = vec![(src.join(format!("{adapter}.rs")), vec![adapter.to_string()])];
    let mut stack = vec![(src.join(adapter), vec![adapter.to_string()])];
    while let Some((dir, module)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut m = module.clone();
            if path.is_dir() {
                m.push(name);
                stack.push((path, m));
            } else if path.extension().is_some_and(|x| x == "rs") {
                if name != "mod" {
                    m.push(name);
                }
                out.push((path, m));
            }
        }
    }
    out
}

#[test]
fn adapters_use_only_the_core_and_themselves() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = BTreeSet::new();
    let mut files = 0;
    for adapter in ADAPTERS {
        for (path, module) in adapter_files(&src, adapter) {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let module: Vec<&str> = module.iter().map(String::as_str).collect();
            let rel = path
                .strip_prefix(&src)
                .unwrap_or(&path)
                .display()
                .to_string();
            let v = violations(&format!("src/{rel}"), &module, &text)
                .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
            all.extend(v);
            files += 1;
        }
    }
    assert!(
        files > 40,
        "only {files} adapter files found under {}",
        src.display()
    );
    assert!(
        all.is_empty(),
        "adapters must depend on the core only (docs/architecture.md):\n{}",
        all.iter()
            .map(|v| format!("  {}: `{}` reaches `{}`", v.file, v.path, v.target))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_checker_resolves_groups_supers_inline_modules_and_macros() {
    let source = r#"
        use std::collections::BTreeMap;
        use crate::{core::Policy, config::{self, Config}};
        use super::target::ScalerTarget;
        use super::super::runtime::Context;
        use flink_keda_scaler::kube::JobKey;
        fn f() -> crate::promql::PromClient { todo!() }
        fn g() -> bool { matches!(x(), crate::flink::FlinkError::NotFound { .. }) }
        mod tests {
            use super::super::super::exporter::Metrics;
            use super::super::evaluator::Evaluator;
        }
    "#;
    let found = violations("src/keda/service.rs", &["keda", "service"], source).expect("parses");
    let targets: Vec<(&str, &str)> = found
        .iter()
        .map(|v| (v.path.as_str(), v.target.as_str()))
        .collect();
    assert_eq!(
        targets,
        vec![
            ("crate::config", "config"),
            ("crate::config::Config", "config"),
            ("super::super::runtime::Context", "runtime"),
            ("flink_keda_scaler::kube::JobKey", "kube"),
            ("crate::promql::PromClient", "promql"),
            ("crate::flink::FlinkError::NotFound", "flink"),
            ("super::super::super::exporter::Metrics", "exporter"),
        ]
    );
    // the allowed ones resolve too, to the core and to keda itself
    let all = references(&["keda", "service"], source).expect("parses");
    assert!(all
        .iter()
        .any(|(p, t)| p == "crate::core::Policy" && t == "core"));
    assert!(all
        .iter()
        .any(|(p, t)| p == "super::target::ScalerTarget" && t == "keda"));
    assert!(all
        .iter()
        .any(|(p, t)| p == "super::super::evaluator::Evaluator" && t == "keda"));
}
