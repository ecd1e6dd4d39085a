//! kube test harness (see mod.rs): a real kube-apiserver + etcd started by
//! `scripts/kube-apiserver.sh start <tempdir>` on free loopback ports, shared by the tests
//! of one test binary while any of them holds it, and stopped on Drop. Each test works in
//! its own namespace. Helpers install the CRDs from `manifests/crds/`, apply
//! `manifests/rbac.yaml` into a namespace, and build clients that act as the scaler's
//! ServiceAccount through impersonation (the admin token is `system:masters`).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        core::v1::{Namespace, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    api::{Api, ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    Client, Config,
};

/// Name of the scaler's ServiceAccount in `manifests/rbac.yaml`.
pub const SERVICE_ACCOUNT: &str = "flink-keda-scaler";

/// A running kube-apiserver + etcd.
pub struct KubeApiServer {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    /// Seconds from `start` to `/readyz` OK.
    pub start_secs: f64,
}

static SHARED: Mutex<Weak<KubeApiServer>> = Mutex::new(Weak::new());
static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("scripts/kube-apiserver.sh")
}

impl KubeApiServer {
    /// The shared server of this test binary, started on first use. `None` (after
    /// printing SKIPPED; a panic in CI) when kube-apiserver or etcd is not installed.
    pub fn shared() -> Option<Arc<Self>> {
        let bin = super::cache_dir().join("kube/bin/kube-apiserver");
        if !bin.is_file() {
            let _ = super::component_missing("kube-apiserver (scripts/kube-apiserver.sh build)");
            return None;
        }
        if super::which("etcd").is_none() {
            let _ = super::component_missing("etcd (apt-get install etcd-server)");
            return None;
        }
        let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = guard.upgrade() {
            return Some(s);
        }
        let dir = super::tempdir("fks-kube-");
        let t0 = Instant::now();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/kube-apiserver.sh start");
        assert!(
            out.status.success(),
            "kube-apiserver.sh start failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let start_secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "kube-apiserver + etcd ready in {start_secs:.2} s ({})",
            dir.path().display()
        );
        let server = Arc::new(Self {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            start_secs,
        });
        *guard = Arc::downgrade(&server);
        Some(server)
    }

    /// Directory holding kubeconfig, logs and etcd data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn config(&self) -> Config {
        let kc = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig → config");
        config.connect_timeout = Some(Duration::from_secs(5));
        config
    }

    /// A `system:masters` client (setup and assertions only).
    pub async fn admin(&self) -> Client {
        Client::try_from(self.config().await).expect("admin client")
    }

    /// A client acting as ServiceAccount `namespace/name` (impersonation).
    pub async fn as_service_account(&self, namespace: &str, name: &str) -> Client {
        let mut config = self.config().await;
        config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
        config.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ]);
        Client::try_from(config).expect("service-account client")
    }

    /// The scaler's client in `namespace` (after [`apply_rbac`]).
    pub async fn scaler(&self, namespace: &str) -> Client {
        self.as_service_account(namespace, SERVICE_ACCOUNT).await
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Creates a fresh namespace `<prefix>-<pid>-<n>` and returns its name.
pub async fn namespace(admin: &Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NS_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

fn created_or_exists<T>(r: Result<T, kube::Error>, what: &str) {
    match r {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create {what}: {e}"),
    }
}

/// Installs every CRD of `manifests/crds/` (idempotent) and waits until they are Established.
pub async fn install_crds(admin: &Client) -> Vec<String> {
    let api = Api::<CustomResourceDefinition>::all(admin.clone());
    let mut names = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("manifests/crds"))
        .expect("manifests/crds")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read CRD");
        let kind: serde_yaml::Value = serde_yaml::from_str(&text).expect("parse YAML");
        if kind.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
            continue; // e.g. the kustomization.yaml next to the CRDs
        }
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("parse CRD");
        let name = crd.metadata.name.clone().expect("CRD name");
        created_or_exists(api.create(&PostParams::default(), &crd).await, &name);
        names.push(name);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in &names {
        loop {
            let crd = api.get(name).await.expect("get CRD");
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not Established");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    names
}

/// Applies `manifests/rbac.yaml` with every namespace replaced by `namespace` (the
/// ClusterRoleBinding is renamed `flink-keda-scaler-<namespace>` so tests don't collide).
pub async fn apply_rbac(server: &KubeApiServer, admin: &Client, namespace: &str) {
    let text = std::fs::read_to_string(repo().join("manifests/rbac.yaml")).expect("read rbac.yaml");
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v = serde_yaml::Value::deserialize(doc).expect("parse rbac.yaml document");
        let kind = v["kind"].as_str().expect("kind").to_string();
        if v["metadata"].get("namespace").is_some() {
            v["metadata"]["namespace"] = namespace.into();
        }
        if let Some(subjects) = v.get_mut("subjects").and_then(|s| s.as_sequence_mut()) {
            for s in subjects {
                s["namespace"] = namespace.into();
            }
        }
        if kind == "ClusterRoleBinding" {
            v["metadata"]["name"] = format!("{SERVICE_ACCOUNT}-{namespace}").into();
        }
        create_object(admin, &kind, namespace, v).await;
    }
    // The RBAC authorizer learns new bindings through an informer: wait until both the
    // Role (leases get) and the ClusterRole (scaledobjects list) apply to the scaler.
    let sa = server.scaler(namespace).await;
    let leases =
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(sa.clone(), namespace);
    let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(sa, namespace);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = leases.get_opt("rbac-probe").await;
        let b = deployments.list(&Default::default()).await;
        if a.is_ok() && b.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "RBAC not effective: {a:?} {b:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates one object of the RBAC manifests as the admin (409 tolerated).
async fn create_object(admin: &Client, kind: &str, namespace: &str, v: serde_yaml::Value) {
    let pp = PostParams::default();
    match kind {
        "ServiceAccount" => {
            let o: ServiceAccount = serde_yaml::from_value(v).expect("ServiceAccount");
            let r = Api::namespaced(admin.clone(), namespace)
                .create(&pp, &o)
                .await;
            created_or_exists(r, kind);
        }
        "Role" => {
            let o: Role = serde_yaml::from_value(v).expect("Role");
            let r = Api::namespaced(admin.clone(), namespace)
                .create(&pp, &o)
                .await;
            created_or_exists(r, kind);
        }
        "RoleBinding" => {
            let o: RoleBinding = serde_yaml::from_value(v).expect("RoleBinding");
            let r = Api::namespaced(admin.clone(), namespace)
                .create(&pp, &o)
                .await;
            created_or_exists(r, kind);
        }
        "ClusterRole" => {
            let o: ClusterRole = serde_yaml::from_value(v).expect("ClusterRole");
            created_or_exists(Api::all(admin.clone()).create(&pp, &o).await, kind);
        }
        "ClusterRoleBinding" => {
            let o: ClusterRoleBinding = serde_yaml::from_value(v).expect("ClusterRoleBinding");
            created_or_exists(Api::all(admin.clone()).create(&pp, &o).await, kind);
        }
        other => panic!("unexpected kind {other} in an RBAC manifest"),
    }
}

/// The namespaced install, applied from the shipped files as their comments say: the
/// ServiceAccount, Role and RoleBinding of `manifests/rbac.yaml` in the scaler's namespace
/// `own` (its ClusterRole and ClusterRoleBinding are left out), and the Role and
/// RoleBinding of `manifests/examples/rbac-namespaced.yaml` in each of `watched`. Only
/// namespaces are rewritten. Returns the kinds applied per namespace.
pub async fn apply_namespaced_rbac(
    admin: &Client,
    own: &str,
    watched: &[&str],
) -> Vec<(String, String)> {
    let mut applied = Vec::new();
    let files: Vec<(&str, Vec<&str>)> = std::iter::once(("manifests/rbac.yaml", vec![own]))
        .chain(std::iter::once((
            "manifests/examples/rbac-namespaced.yaml",
            watched.to_vec(),
        )))
        .collect();
    for (file, namespaces) in files {
        let text = std::fs::read_to_string(repo().join(file)).expect("read RBAC manifest");
        for ns in namespaces {
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let mut v = serde_yaml::Value::deserialize(doc).expect("parse RBAC document");
                let kind = v["kind"].as_str().expect("kind").to_string();
                if kind.starts_with("Cluster") {
                    continue; // the namespaced install deletes them
                }
                v["metadata"]["namespace"] = ns.into();
                if let Some(subjects) = v.get_mut("subjects").and_then(|s| s.as_sequence_mut()) {
                    for s in subjects {
                        s["namespace"] = own.into();
                    }
                }
                create_object(admin, &kind, ns, v).await;
                applied.push((kind, ns.to_string()));
            }
        }
    }
    applied
}

/// A real ServiceAccount token (TokenRequest API, 1 h), as a kubelet would project it.
pub async fn service_account_token(admin: &Client, namespace: &str, name: &str) -> String {
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(serde_json::json!({"spec": {"expirationSeconds": 3600}}))
            .expect("TokenRequest");
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("TokenRequest status")
        .token
}

impl KubeApiServer {
    /// The admin kubeconfig with its user replaced by `token` (written to `dir`).
    pub fn kubeconfig_with_token(&self, token: &str, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig");
        let mut kc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig yaml");
        kc["users"][0]["user"] =
            serde_yaml::to_value(std::collections::BTreeMap::from([("token", token)]))
                .expect("user");
        let path = dir.join("kubeconfig-token");
        std::fs::write(&path, serde_yaml::to_string(&kc).expect("yaml")).expect("kubeconfig");
        path
    }

    /// The apiserver's audit log so far (one JSON event per request, see
    /// `scripts/kube-apiserver.sh`), filtered to requests made by `user`.
    pub fn audit_of(&self, user: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"].as_str() == Some(user))
            .collect()
    }
}

use serde::Deserialize as _;
