//! The deployable manifests against a REAL kube-apiserver (`scripts/kube-apiserver.sh`):
//! every CRD in `manifests/crds/` is created and must become Established, the Namespaces
//! are created, and every other document in `manifests/*.yaml` and
//! `manifests/examples/*.yaml` is sent as a server-side dry-run create (`dryRun=All`) and
//! must be accepted. Also: every YAML file of the ops surface parses, and the kustomization
//! lists every manifest.

use crate::support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    api::{Api, DynamicObject, GroupVersionKind, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    discovery::{Discovery, Scope},
    Client, Config,
};
use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `*.yaml`/`*.yml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// Every non-empty YAML document of a file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn is_kustomization(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "kustomization.yaml")
}

/// Kubernetes objects: every document of manifests/*.yaml and manifests/examples/*.yaml.
fn manifest_objects() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for dir in ["manifests", "manifests/examples"] {
        for f in yaml_files(&root().join(dir)) {
            if is_kustomization(&f) {
                continue;
            }
            for (i, d) in documents(&f).into_iter().enumerate() {
                let name = format!(
                    "{}#{i} {}/{}",
                    f.strip_prefix(root()).unwrap_or(&f).display(),
                    d["kind"].as_str().unwrap_or("?"),
                    d["metadata"]["name"].as_str().unwrap_or("?")
                );
                out.push((name, d));
            }
        }
    }
    out
}

// === real kube-apiserver ===

/// etcd + kube-apiserver started by the project script; stopped on drop.
struct ApiServer {
    dir: tempfile::TempDir,
}

impl ApiServer {
    fn start() -> Option<Self> {
        let bin = support::cache_dir().join("kube/bin/kube-apiserver");
        if !bin.is_file() {
            let _ = support::component_missing("kube-apiserver (scripts/kube-apiserver.sh build)");
            return None;
        }
        if support::which("etcd").is_none() {
            let _ = support::component_missing("etcd (apt-get install etcd-server)");
            return None;
        }
        let dir = support::tempdir("fks-manifests-");
        let out = Command::new("bash")
            .arg(root().join("scripts/kube-apiserver.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run kube-apiserver.sh start");
        let server = Self { dir };
        assert!(
            out.status.success(),
            "kube-apiserver.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(server)
    }

    async fn client(&self) -> Client {
        let kc = Kubeconfig::read_from(self.dir.path().join("kubeconfig")).expect("kubeconfig");
        let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("config");
        Client::try_from(config).expect("client")
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // Stops exactly the etcd and kube-apiserver this test started (pid files in dir),
        // then waits for them to exit before the temp dir is removed.
        let pids: Vec<String> = ["apiserver.pid", "etcd.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .map(|p| p.trim().to_string())
            .collect();
        let _ = Command::new("bash")
            .arg(root().join("scripts/kube-apiserver.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn crd_files() -> Vec<PathBuf> {
    yaml_files(&root().join("manifests/crds"))
        .into_iter()
        .filter(|p| !is_kustomization(p))
        .collect()
}

async fn install_crds(client: &Client) -> Vec<String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for f in crd_files() {
        for d in documents(&f) {
            let crd: CustomResourceDefinition = serde_yaml::from_value(d)
                .unwrap_or_else(|e| panic!("{}: not a CRD: {e}", f.display()));
            let name = crd.metadata.name.clone().expect("CRD name");
            api.create(&PostParams::default(), &crd)
                .await
                .unwrap_or_else(|e| panic!("{}: CRD {name} rejected: {e}", f.display()));
            names.push(name);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in &names {
        loop {
            let crd = api.get(name).await.expect("get CRD");
            let conds = crd.status.and_then(|s| s.conditions).unwrap_or_default();
            if conds
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "CRD {name} not Established: {conds:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    names
}

fn gvk(obj: &Value) -> GroupVersionKind {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, obj["kind"].as_str().expect("kind"))
}

async fn create(
    client: &Client,
    discovery: &Discovery,
    obj: &Value,
    dry_run: bool,
) -> Result<(), String> {
    let gvk = gvk(obj);
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .ok_or_else(|| format!("kind {gvk:?} unknown to the API server (CRD missing?)"))?;
    let dynamic: DynamicObject = serde_yaml::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = dynamic
                .metadata
                .namespace
                .clone()
                .ok_or("namespaced object without metadata.namespace")?;
            Api::namespaced_with(client.clone(), &ns, &ar)
        }
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let pp = PostParams {
        dry_run,
        ..PostParams::default()
    };
    api.create(&pp, &dynamic)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_is_accepted_by_a_real_api_server() {
    let Some(server) = ApiServer::start() else {
        return;
    };
    let client = server.client().await;
    let crds = install_crds(&client).await;
    for required in [
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "scaledobjects.keda.sh",
        "triggerauthentications.keda.sh",
        "flinkdeployments.flink.apache.org",
    ] {
        assert!(
            crds.iter().any(|c| c == required),
            "manifests/crds/ lacks {required}"
        );
    }
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");

    let objects = manifest_objects();
    // Namespaces for real first: dry-run creates in a missing namespace are rejected.
    let mut failures = Vec::new();
    let mut accepted = 0;
    for (name, obj) in objects.iter().filter(|(_, o)| o["kind"] == "Namespace") {
        match create(&client, &discovery, obj, false).await {
            Ok(()) => accepted += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for (name, obj) in objects.iter().filter(|(_, o)| o["kind"] != "Namespace") {
        match create(&client, &discovery, obj, true).await {
            Ok(()) => accepted += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
    assert_eq!(accepted, objects.len());
    eprintln!(
        "{accepted} manifest documents accepted (dry-run), {} CRDs",
        crds.len()
    );

    // The stand-in CRD schemas validate: a PrometheusRule rule without expr is rejected.
    let (_, rule) = objects
        .iter()
        .find(|(_, o)| o["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let mut broken = rule.clone();
    broken["spec"]["groups"][0]["rules"][0]
        .as_mapping_mut()
        .expect("rule mapping")
        .remove("expr");
    let err = create(&client, &discovery, &broken, true)
        .await
        .expect_err("rule without expr must be rejected");
    assert!(err.contains("expr"), "{err}");
}

// === static checks ===

/// Every YAML file of the ops surface parses; every Kubernetes document has apiVersion,
/// kind and metadata.name.
#[test]
fn every_owned_yaml_file_parses() {
    let mut files = Vec::new();
    for dir in [
        "manifests",
        "manifests/examples",
        "manifests/crds",
        "manifests/alerts",
        "tests/fixtures/alerts",
    ] {
        files.extend(yaml_files(&root().join(dir)));
    }
    assert!(files.len() >= 15, "{files:?}");
    for f in &files {
        let docs = documents(f);
        assert!(!docs.is_empty(), "{}: empty", f.display());
        let k8s = f.starts_with(root().join("manifests"))
            && !f.starts_with(root().join("manifests/alerts"))
            && !is_kustomization(f);
        if k8s {
            for d in docs {
                for key in ["apiVersion", "kind"] {
                    assert!(d[key].as_str().is_some(), "{}: {key} missing", f.display());
                }
                assert!(
                    d["metadata"]["name"].as_str().is_some(),
                    "{}: metadata.name missing",
                    f.display()
                );
            }
        }
    }
}

/// The ConfigMap embeds the scaler config with the draft schema's sections.
#[test]
fn configmap_embeds_scaler_config() {
    let docs = documents(&root().join("manifests/configmap.yaml"));
    let text = docs[0]["data"]["config.yaml"]
        .as_str()
        .expect("data.config.yaml");
    let cfg: Value = serde_yaml::from_str(text).expect("config.yaml parses");
    for section in [
        "grpc",
        "http",
        "evaluation",
        "prometheus",
        "flink",
        "kubernetes",
        "policies",
    ] {
        assert!(cfg.get(section).is_some(), "config.yaml lacks {section}");
    }
    assert_eq!(cfg["grpc"]["listenAddress"], Value::from("0.0.0.0:50051"));
    assert_eq!(cfg["http"]["listenAddress"], Value::from("0.0.0.0:8080"));
    assert_eq!(
        cfg["kubernetes"]["leaderElection"]["leaseName"],
        Value::from("flink-keda-scaler")
    );
}

/// Deployment wiring: probes on the http port, ports match the config, hardening.
#[test]
fn deployment_probes_ports_and_security() {
    let d = &documents(&root().join("manifests/deployment.yaml"))[0];
    assert_eq!(d["spec"]["replicas"], Value::from(2));
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::from(true));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        Value::from("RuntimeDefault")
    );
    let c = &pod["containers"][0];
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"],
        Value::from("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"],
        Value::from("/readyz")
    );
    let ports: Vec<(String, u64)> = c["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").into(),
                p["containerPort"].as_u64().expect("port"),
            )
        })
        .collect();
    assert!(ports.contains(&("grpc".into(), 50051)) && ports.contains(&("http".into(), 8080)));
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], Value::from(true));
    assert_eq!(sc["allowPrivilegeEscalation"], Value::from(false));
    assert_eq!(sc["capabilities"]["drop"][0], Value::from("ALL"));
    let env: Vec<&str> = c["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(env.contains(&"POD_NAME") && env.contains(&"POD_NAMESPACE"));
}

/// Each kustomization lists exactly the manifests of its directory.
#[test]
fn kustomizations_list_every_manifest() {
    let crds_elsewhere = &[
        "keda-scaledobjects.yaml",
        "keda-triggerauthentications.yaml",
        "flink-flinkdeployments.yaml",
    ][..];
    for (dir, skip) in [
        ("manifests", &["rbac.yaml"][..]),
        ("manifests/crds", crds_elsewhere),
    ] {
        let k = &documents(&root().join(dir).join("kustomization.yaml"))[0];
        let mut listed: Vec<String> = k["resources"]
            .as_sequence()
            .expect("resources")
            .iter()
            .map(|r| r.as_str().expect("resource").to_string())
            .collect();
        listed.sort();
        let mut present: Vec<String> = yaml_files(&root().join(dir))
            .iter()
            .filter(|p| !is_kustomization(p))
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        // Written by the Kubernetes module; listed even when absent from this checkout.
        for s in skip {
            if !present.iter().any(|p| p == s) {
                present.push((*s).to_string());
            }
        }
        present.sort();
        assert_eq!(listed, present, "{dir}/kustomization.yaml");
    }
}

/// `kubectl kustomize manifests/` renders (needs kubectl).
#[test]
fn kustomize_build_renders() {
    let Some(kubectl) = support::which("kubectl") else {
        let _ = support::component_missing("kubectl");
        return;
    };
    let out = Command::new(kubectl)
        .args(["kustomize"])
        .arg(root().join("manifests"))
        .output()
        .expect("run kubectl kustomize");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "kind: Namespace",
        "kind: ConfigMap",
        "kind: Deployment",
        "kind: Service\n",
        "kind: ServiceMonitor",
        "kind: PrometheusRule",
        "kind: ServiceAccount",
    ] {
        assert!(text.contains(kind), "kustomize output lacks {kind}");
    }
}

/// The Dockerfile's runtime stage matches the Deployment: non-root user, the binary as
/// entrypoint, and a default command reading the config where the ConfigMap is mounted.
#[test]
fn dockerfile_matches_deployment() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let runtime = text
        .rsplit_once("\nFROM ")
        .map(|(_, r)| r)
        .expect("multi-stage Dockerfile");
    let line = |directive: &str| {
        runtime
            .lines()
            .find_map(|l| l.strip_prefix(directive))
            .map(str::trim)
            .unwrap_or_else(|| panic!("runtime stage lacks {directive}"))
    };
    let user = line("USER ");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "USER {user}"
    );
    assert_eq!(line("ENTRYPOINT "), r#"["/flink-keda-scaler"]"#);
    let cmd: Vec<String> = serde_json::from_str(line("CMD ")).expect("CMD exec form");
    let d = &documents(&root().join("manifests/deployment.yaml"))[0];
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = serde_yaml::from_value(c["args"].clone()).expect("args");
    assert_eq!(cmd, args, "Dockerfile CMD and Deployment args differ");
    let mount = c["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == "config")
        .and_then(|m| m["mountPath"].as_str())
        .expect("config mount");
    assert_eq!(
        cmd.last().map(String::as_str),
        Some(&*format!("{mount}/config.yaml"))
    );
    let uid = d["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        .as_u64()
        .expect("runAsUser");
    assert!(
        user.starts_with(&uid.to_string()),
        "USER {user} vs runAsUser {uid}"
    );
}
