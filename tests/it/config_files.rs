//! Every config YAML in the repo parses and validates; every negative fixture fails with
//! the field path its `# expect:` header names; `check-config` reports that path.

use std::{path::Path, process::Command};

use flink_keda_scaler::config::Config;
use serde::Deserialize;

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    out.sort();
    out
}

fn expectation(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .expect("negative fixture needs a '# expect: ' header")
        .to_string()
}

#[test]
fn example_configs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let files = yaml_files(&dir);
    assert!(!files.is_empty(), "no example configs found");
    for f in files {
        let cfg = Config::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // every named policy resolves
        for name in cfg.policies.keys() {
            cfg.policy(Some(name))
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }
}

#[test]
fn example_config_resolves_expected_values() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scaler.yaml");
    let cfg = Config::load(&f).expect("valid");
    let p = cfg.policy(Some("peak-hours")).expect("policy");
    assert_eq!(p.target_utilization, 0.6);
    assert_eq!((p.min_task_managers, p.max_task_managers), (2, 20));
    assert_eq!(p.schedules.len(), 1);
    assert_eq!(p.schedules[0].task_managers, 6);
    assert_eq!(
        p.schedules[0].duration,
        std::time::Duration::from_secs(3 * 3600)
    );
    let d = cfg.policy(None).expect("default");
    assert_eq!(d.cooldown, std::time::Duration::from_secs(60));
    assert!(cfg
        .policy(Some("nope"))
        .expect_err("unknown policy")
        .to_string()
        .contains("no policy named 'nope'"));
}

#[test]
fn invalid_configs_name_the_field_path() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/invalid");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 8,
        "expected negative fixtures, found {}",
        files.len()
    );
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let expect = expectation(&text);
        let err = Config::parse(&text).expect_err(&format!("{} must be rejected", f.display()));
        let msg = err.to_string();
        assert!(
            msg.starts_with(&expect),
            "{}: expected error starting with {expect:?}, got {msg:?}",
            f.display()
        );
    }
}

#[test]
fn check_config_cli_reports_field_path_and_fails() {
    let bin = env!("CARGO_BIN_EXE_flink-keda-scaler");
    let bad = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config/invalid/target-utilization.yaml");
    let out = Command::new(bin)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policies.default.targetUtilization: must be in (0, 1]"),
        "stderr: {stderr}"
    );

    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scaler.yaml");
    let out = Command::new(bin)
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("policy peak-hours: targetUtilization=0.6"),
        "stdout: {stdout}"
    );
}

#[test]
fn secrets_are_not_inline() {
    // A password/token field inline must be rejected as an unknown field: secrets come
    // from files or env only.
    let text = "prometheus:\n  default:\n    url: http://p:9090\n    password: hunter2\n";
    let err = Config::parse(text)
        .expect_err("inline secret rejected")
        .to_string();
    assert!(err.starts_with("prometheus.default"), "{err}");
    assert!(!err.contains("hunter2"), "secret leaked into error: {err}");
}

#[test]
fn configmap_manifest_config_is_valid() {
    // The config shipped in manifests/configmap.yaml is the one the Deployment mounts.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/configmap.yaml");
    let text = std::fs::read_to_string(&path).expect("read configmap.yaml");
    let mut found = 0;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(doc).expect("yaml");
        if value.get("kind").and_then(|k| k.as_str()) != Some("ConfigMap") {
            continue;
        }
        let data = value
            .get("data")
            .and_then(|d| d.as_mapping())
            .expect("ConfigMap data");
        for (key, body) in data {
            let key = key.as_str().unwrap_or_default();
            if key.ends_with(".yaml") || key.ends_with(".yml") {
                let body = body.as_str().expect("config text");
                let cfg = Config::parse(body)
                    .unwrap_or_else(|e| panic!("{}: data.{key}: {e}", path.display()));
                assert!(
                    cfg.kubernetes.enabled,
                    "the in-cluster config enables the Kubernetes integration"
                );
                found += 1;
            }
        }
    }
    assert_eq!(
        found, 1,
        "expected exactly one config file in the ConfigMap"
    );
}
