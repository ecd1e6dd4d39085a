//! Harness of the lab's suites: the repository root, the built scaler binary, temp dirs,
//! and the CI policy for missing components (fail in CI, skip outside it).

use std::path::PathBuf;

pub use fks_components::flink_cluster::version_under_test as flink_version;

/// The repository root (the lab runs `scripts/flink.sh` from there).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The built `flink-keda-scaler` binary: `$FKS_SCALER_BIN`, else the one in this test's
/// target dir (`cargo test --workspace` builds it; `cargo build --bin flink-keda-scaler`
/// after changing the scaler when running this crate alone).
pub fn scaler_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FKS_SCALER_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/it-<hash> → target/<profile>/flink-keda-scaler
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("flink-keda-scaler");
    assert!(
        bin.is_file(),
        "scaler binary {} not built: run `cargo build --bin flink-keda-scaler` (or `cargo test --workspace`), or set FKS_SCALER_BIN",
        bin.display()
    );
    bin
}

/// Call when a component is missing: panics in CI, otherwise prints SKIPPED and returns
/// `false` so the test can `return`.
#[must_use]
pub fn component_missing(what: &str) -> bool {
    if fks_components::procs::in_ci() {
        panic!("required test component missing in CI: {what} (run scripts/install-components.sh)");
    }
    eprintln!("SKIPPED: {what} is not installed (run scripts/install-components.sh)");
    false
}

/// A temporary directory that is removed on drop, unless `FKS_KEEP_WORK` is set (then its
/// path is printed and it stays, with the Flink, Prometheus and scaler logs in it).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    let keep = std::env::var_os("FKS_KEEP_WORK").is_some();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .disable_cleanup(keep)
        .tempdir()
        .expect("create temp dir");
    if keep {
        eprintln!("work dir kept: {}", dir.path().display());
    }
    dir
}

/// One lab at a time in this binary: each runs a Flink cluster, Prometheus and the
/// scaler on the machine's cores, and the figures they assert on are timings.
pub static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the lab on `profile` in `work` (Flink `FKS_FLINK_VERSION`): `None` when a
/// component is missing outside CI (in CI that fails the test).
pub async fn start_lab(
    profile: fks_lab::scenario::Profile,
    work: &std::path::Path,
) -> Option<fks_lab::scenario::Lab> {
    let opts = fks_lab::scenario::LabOptions {
        flink_version: flink_version(),
        flink_script: repo_root().join("scripts/flink.sh"),
        scaler_bin: scaler_bin(),
        work_dir: work.to_path_buf(),
        progress: true,
    };
    match fks_lab::scenario::Lab::start(&opts, profile).await {
        Ok(lab) => Some(lab),
        Err(e) if e.is_missing_component() => {
            let _ = component_missing(&e.to_string());
            None
        }
        Err(e) => panic!("lab set-up: {e}"),
    }
}

/// Plays the lab's profile (panics with the scaler's log when the scenario fails) and
/// prints the timeline and the figures.
pub async fn run_lab(lab: &fks_lab::scenario::Lab) -> fks_lab::scenario::Outcome {
    let outcome = lab
        .run()
        .await
        .unwrap_or_else(|e| panic!("scenario: {e}\nscaler log:\n{}", lab.scaler.log()));
    eprintln!("{}", outcome.timeline.table(0.0));
    eprintln!("{}", outcome.measurements.markdown());
    outcome
}

/// Every check of one run, evaluated in full: a run that fails prints its context (the
/// scaler's log tail, the rescales) and returns the failed checks as one short error, so
/// the last lines of a CI log say what failed (a returned error has no backtrace after it).
#[derive(Debug, Default)]
pub struct Checks(Vec<String>);

/// The failed checks of a run, printed as they are (not as an escaped string).
pub struct Failed(String);

impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Checks {
    /// Notes `what` as failed unless `ok`.
    pub fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Notes a failure unless `got == want`, naming both.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        self.that(got == want, || {
            format!("{what}: got {got:?}, want {want:?}")
        });
    }

    /// `Ok` when every check held; otherwise prints `context` and returns the failures.
    pub fn finish(self, context: impl FnOnce() -> String) -> Result<(), Failed> {
        if self.0.is_empty() {
            return Ok(());
        }
        eprintln!("{}", context());
        Err(Failed(format!(
            "{} check(s) failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        )))
    }
}

/// What a failed run prints before its checks: the rescales the scaler showed, its
/// rescale log lines and the tail of its log.
pub fn context(lab: &fks_lab::scenario::Lab, outcome: &fks_lab::scenario::Outcome) -> String {
    let log = lab.scaler.log();
    let rescale_lines = log
        .lines()
        .filter(|l| l.contains("rescale"))
        .take(40)
        .collect::<Vec<_>>()
        .join("\n");
    let tail = log.lines().rev().take(40).collect::<Vec<_>>();
    format!(
        "rescales {:#?}\ndriver rounds with actions:\n{}\nscaler rescale lines:\n{rescale_lines}\nscaler log tail:\n{}",
        outcome.rescales,
        outcome
            .driver
            .samples
            .iter()
            .filter(|s| !s.actions.is_empty())
            .map(|s| format!("{:?}", s))
            .collect::<Vec<_>>()
            .join("\n"),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}
