//! Alert rules: `promtool check rules` and `promtool test rules` on the plain rules file,
//! the PrometheusRule manifest kept identical to it, and the shape every alert must have
//! (severity, summary, description, runbook linked to a `docs/deploy.md` section, and a
//! firing plus a non-firing unit-test case).

use crate::support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rules_file() -> PathBuf {
    root().join("manifests/alerts/flink-keda-scaler.rules.yml")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn alerts(rules: &Value) -> Vec<&Value> {
    rules["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

fn test_files() -> Vec<PathBuf> {
    let dir = root().join("tests/fixtures/alerts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/alerts")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with("_test.yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *_test.yml in {}", dir.display());
    files
}

fn promtool(args: &[&str]) -> Option<(bool, String)> {
    let Some(bin) = support::which("promtool") else {
        let _ = support::component_missing("promtool (Debian package `prometheus`)");
        return None;
    };
    let out = Command::new(bin).args(args).output().expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn promtool_check_rules_accepts_both_rule_sources() {
    // The PrometheusRule spec, written out as a plain rules file, must pass too.
    let dir = support::tempdir("fks-rules-");
    let spec = load(&root().join("manifests/prometheusrule.yaml"))["spec"].clone();
    let from_crd = dir.path().join("from-prometheusrule.yml");
    std::fs::write(&from_crd, serde_yaml::to_string(&spec).expect("yaml")).expect("write");
    let rules = rules_file();
    let Some((ok, out)) = promtool(&[
        "check",
        "rules",
        rules.to_str().expect("utf-8 path"),
        from_crd.to_str().expect("utf-8 path"),
    ]) else {
        return;
    };
    assert!(ok, "promtool check rules failed:\n{out}");
    let n = alerts(&load(&rules)).len();
    assert_eq!(
        out.matches(&format!("SUCCESS: {n} rules found")).count(),
        2,
        "{out}"
    );
}

#[test]
fn promtool_unit_tests_pass() {
    let files = test_files();
    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some((ok, out)) = promtool(&args) else {
        return;
    };
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn prometheusrule_groups_equal_rules_file() {
    let plain = load(&rules_file());
    let crd = load(&root().join("manifests/prometheusrule.yaml"));
    assert_eq!(crd["apiVersion"], Value::from("monitoring.coreos.com/v1"));
    assert_eq!(crd["kind"], Value::from("PrometheusRule"));
    assert_eq!(
        crd["spec"]["groups"], plain["groups"],
        "manifests/prometheusrule.yaml and manifests/alerts/*.rules.yml differ"
    );
}

/// Every alert carries severity, summary, description, a runbook and a runbook_url to an
/// existing `docs/deploy.md` heading.
#[test]
fn every_alert_is_documented() {
    let deploy = std::fs::read_to_string(root().join("docs/deploy.md")).expect("docs/deploy.md");
    let anchors: Vec<String> = deploy
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let rules = load(&rules_file());
    let all = alerts(&rules);
    assert_eq!(all.len(), 8, "expected the 8 documented alerts");
    for a in all {
        let name = a["alert"].as_str().expect("alert name");
        let sev = a["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&sev),
            "{name}: severity {sev:?}"
        );
        for key in ["summary", "description", "runbook", "runbook_url"] {
            let v = a["annotations"][key].as_str().unwrap_or_default();
            assert!(!v.trim().is_empty(), "{name}: annotation {key} missing");
        }
        let url = a["annotations"]["runbook_url"].as_str().unwrap_or_default();
        let anchor = url
            .strip_prefix("docs/deploy.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} not docs/deploy.md#..."));
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{name}: docs/deploy.md has no heading for #{anchor}"
        );
    }
}

/// Each alert has a promtool case where it fires and one where it does not.
#[test]
fn every_alert_has_firing_and_silent_cases() {
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for f in test_files() {
        let doc = load(&f);
        for t in doc["tests"].as_sequence().expect("tests") {
            for c in t["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = c["alertname"].as_str().expect("alertname").to_string();
                let firing = c["exp_alerts"].as_sequence().is_some_and(|s| !s.is_empty());
                let e = cases.entry(name).or_default();
                if firing {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
    }
    for a in alerts(&load(&rules_file())) {
        let name = a["alert"].as_str().expect("alert name");
        let (fire, silent) = cases.get(name).copied().unwrap_or_default();
        assert!(
            fire > 0 && silent > 0,
            "{name}: {fire} firing / {silent} silent cases"
        );
    }
}
