//! How the local TaskManager JVMs start. The lab's pods are processes on a few shared
//! cores: a TaskManager JVM spends ~8 s of CPU loading and compiling classes until it
//! registers (measured on 2 cores, Flink 2.3.0, JDK 17), so four pods starting next to a
//! running job took 38–90 s, which measures the machine instead of the scaler (in a
//! cluster every pod starts on its own CPU). Two standard JVM settings cut that CPU:
//!
//! - **AppCDS** (`-XX:SharedArchiveFile`): the classes a TaskManager loaded registering
//!   and then running a job's tasks through a checkpoint, archived once per Flink
//!   distribution and JDK (`-XX:ArchiveClassesAtExit` on a first TaskManager of a session
//!   cluster, cached next to the distribution) and mapped by every later TaskManager:
//!   8.3 → 5.8 CPU-seconds until registered. The job's part (the streaming runtime, network
//!   stack, state backend and checkpointing classes a TaskManager loads at its first task
//!   deployment) is what a warm spare TaskManager would otherwise load and verify on the
//!   shared cores while a rescale waits for it: measured on 2 cores, Flink 2.3.0, a
//!   scale-up onto four spare TaskManagers spent ~7 s of its ~9.5 s deploying and
//!   initializing the tasks on the TaskManagers that never ran the job, against 0.3 s on
//!   the two that had.
//! - **C1 only** (`-XX:TieredStopAtLevel=1`, opt-in): no C2 compilations at start:
//!   → 3.4 CPU-seconds with the archive, at the price of slower steady-state code (only
//!   for workloads whose capacity is not the CPU, e.g. the lab's I/O-bound operator).
//!
//! Both reach the TaskManagers through `FLINK_ENV_JAVA_OPTS_TM` (which Flink's
//! `config.sh` takes over `env.java.opts.taskmanager`). A JDK or distribution that does
//! not match the archive only disables sharing (`-Xshare:auto`, the JVM's default).
//! The helper JVMs Flink's launcher runs before the TaskManager's are replayed instead
//! ([`crate::flink_launcher`]).

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{flink_cluster::FlinkCluster, procs};

/// How the cluster's TaskManager JVMs start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskManagerJvm {
    /// Map an AppCDS archive of the classes a TaskManager loaded running a job (session clusters;
    /// created on first use and cached next to the distribution).
    pub class_data_sharing: bool,
    /// `-XX:TieredStopAtLevel=1`: C1 only (less CPU at start, slower steady-state code).
    pub c1_only: bool,
    /// Replay the launcher's helper JVMs after their first run in the cluster
    /// ([`crate::flink_launcher`]): each later TaskManager waits their CPU time instead of
    /// running them again on the shared cores.
    pub replay_launcher: bool,
}

impl Default for TaskManagerJvm {
    fn default() -> Self {
        Self {
            class_data_sharing: true,
            c1_only: false,
            replay_launcher: true,
        }
    }
}

impl TaskManagerJvm {
    /// The `FLINK_ENV_JAVA_OPTS_TM` value: the C1 flag and the archive to map (`None`
    /// when there is nothing to set).
    pub fn java_opts(&self, archive: Option<&Path>) -> Option<String> {
        let mut opts = Vec::new();
        if self.c1_only {
            opts.push("-XX:TieredStopAtLevel=1".to_string());
        }
        if let Some(a) = archive.filter(|_| self.class_data_sharing) {
            opts.push(format!("-XX:SharedArchiveFile={}", a.display()));
        }
        (!opts.is_empty()).then(|| opts.join(" "))
    }

    /// The options of the TaskManager that writes the archive to `to` at its exit.
    pub fn archiving_opts(&self, to: &Path) -> String {
        let mut opts = self.java_opts(None).unwrap_or_default();
        if !opts.is_empty() {
            opts.push(' ');
        }
        opts.push_str(&format!("-XX:ArchiveClassesAtExit={}", to.display()));
        opts
    }
}

/// Where the archive of `flink_home`'s TaskManager classes for the `java` on `PATH`
/// lives: `<FLINK_HOME>/fks-cds/taskmanager-job-<jdk>.jsa`, the JDK named by a hash of the
/// `java` binary's resolved path, size and modification time (a JDK update writes a new
/// archive instead of disabling sharing). `None` without a `java` on `PATH`.
pub fn archive_path(flink_home: &Path) -> Option<PathBuf> {
    let java = std::fs::canonicalize(procs::which("java")?).ok()?;
    let meta = std::fs::metadata(&java).ok()?;
    let mut h = DefaultHasher::new();
    java.hash(&mut h);
    meta.len().hash(&mut h);
    meta.modified().ok()?.hash(&mut h);
    Some(
        flink_home
            .join("fks-cds")
            .join(format!("taskmanager-job-{:016x}.jsa", h.finish())),
    )
}

/// A file name next to `archive` that no concurrent writer uses (pid and clock), for the
/// archiving TaskManager to dump into before it is renamed into place.
pub fn scratch_path(archive: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    archive.with_extension(format!("{}-{nanos}.tmp", std::process::id()))
}

/// How long the archiving TaskManager may take to dump its classes after SIGTERM.
pub const DUMP_GRACE: Duration = Duration::from_secs(60);

/// The resource id of the TaskManager that writes the archive.
const ARCHIVING_ID: &str = "fks-cds";

/// The archive of `cluster`'s TaskManager classes: the cached one, or one written now by
/// a TaskManager that registers with the cluster's JobManager (before the cluster's own
/// job runs), runs [`WARMUP_JOB`] through a checkpoint and stops. `None` (TaskManagers
/// start without it, only slower) when it cannot be written; the reason goes to stderr.
pub(crate) async fn ensure_archive(cluster: &FlinkCluster) -> Option<PathBuf> {
    let archive = archive_path(&cluster.installed.home)?;
    if archive.is_file() {
        return Some(archive);
    }
    let scratch = scratch_path(&archive);
    let written = write_archive(cluster, &archive, &scratch).await;
    let _ = std::fs::remove_file(&scratch);
    match written {
        Ok(()) => Some(archive),
        Err(why) => {
            eprintln!(
                "note: no class-data-sharing archive for the TaskManagers ({why}); \
                 they start without it"
            );
            None
        }
    }
}

/// Runs the archiving TaskManager until it registered and ran the warm-up job, stops it
/// (SIGTERM: the JVM dumps at exit), waits until the JobManager no longer lists it and
/// renames the dump into place (atomic: concurrent clusters each write their own scratch
/// file).
async fn write_archive(
    cluster: &FlinkCluster,
    archive: &Path,
    scratch: &Path,
) -> Result<(), String> {
    let dir = archive
        .parent()
        .ok_or("the archive path has no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let opts = cluster.opts.task_manager_jvm.archiving_opts(scratch);
    let mut tm = cluster
        .spawn_task_manager(ARCHIVING_ID, "tm-cds", Some(&opts))
        .map_err(|e| e.to_string())?;
    let listed = |want: bool| async move {
        let ids = cluster.registered_ids().await?;
        (ids.iter().any(|i| i == ARCHIVING_ID) == want).then_some(())
    };
    wait(
        "the archiving TaskManager to register",
        Duration::from_secs(90),
        || listed(true),
    )
    .await?;
    warm_up(cluster).await?;
    tm.sigterm();
    wait("the archiving TaskManager to exit", DUMP_GRACE, || {
        std::future::ready(tm.exited().map(|_| ()))
    })
    .await?;
    wait(
        "the JobManager to drop the archiving TaskManager",
        Duration::from_secs(30),
        || listed(false),
    )
    .await?;
    std::fs::rename(scratch, archive).map_err(|e| format!("no archive written ({e})"))
}

/// The name of the job the archiving TaskManager runs (cancelled before the cluster's own
/// job is submitted; a terminal job no selector of the scaler resolves).
pub const WARMUP_JOB: &str = "fks-cds-warmup";

/// Runs the cluster's job jar as [`WARMUP_JOB`] at parallelism 1 on the archiving
/// TaskManager (the only one registered), takes a checkpoint (triggered over REST, so a
/// long configured interval does not hold it) and cancels it: the TaskManager has then
/// loaded what a first task deployment loads.
async fn warm_up(cluster: &FlinkCluster) -> Result<(), String> {
    let args: Vec<String> = ["--name", WARMUP_JOB, "--partitions", "1", "--rate", "200"]
        .iter()
        .chain(&["--work", "io:1000", "--max-parallelism", "8"])
        .map(|s| (*s).to_string())
        .collect();
    let job = cluster
        .submit_job(&args, 1)
        .await
        .map_err(|e| format!("warm-up job: {e}"))?;
    let trigger = checkpoint(cluster, &job).await;
    let (status, body) = cluster
        .raw(
            reqwest::Method::PATCH,
            &format!("jobs/{job}?mode=cancel"),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    if status >= 300 {
        return Err(format!("cancel the warm-up job: HTTP {status} {body}"));
    }
    wait(
        "the warm-up job to be cancelled",
        Duration::from_secs(60),
        || {
            let path = format!("jobs/{job}");
            async move { (cluster.get_json(&path).await?["state"] == "CANCELED").then_some(()) }
        },
    )
    .await?;
    trigger
}

/// Triggers a checkpoint of `job` and waits until one completed.
async fn checkpoint(cluster: &FlinkCluster, job: &str) -> Result<(), String> {
    let body = serde_json::json!({});
    let (status, text) = cluster
        .raw(
            reqwest::Method::POST,
            &format!("jobs/{job}/checkpoints"),
            Some(&body),
        )
        .await
        .map_err(|e| e.to_string())?;
    if status >= 300 {
        return Err(format!(
            "trigger a warm-up checkpoint: HTTP {status} {text}"
        ));
    }
    wait("a warm-up checkpoint", Duration::from_secs(60), || {
        let path = format!("jobs/{job}/checkpoints");
        async move {
            let v = cluster.get_json(&path).await?;
            (v["counts"]["completed"].as_u64().unwrap_or(0) > 0).then_some(())
        }
    })
    .await
}

/// [`procs::wait_for`] every 250 ms, its timeout as the reason.
async fn wait<F, Fut>(what: &str, timeout: Duration, check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    procs::wait_for(
        what,
        timeout,
        Duration::from_millis(250),
        check,
        String::new,
    )
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_the_archive_and_the_compiler_level() {
        let a = Path::new("/c/taskmanager-1.jsa");
        let default = TaskManagerJvm::default();
        assert_eq!(
            default.java_opts(Some(a)).as_deref(),
            Some("-XX:SharedArchiveFile=/c/taskmanager-1.jsa")
        );
        assert_eq!(default.java_opts(None), None);
        let c1 = TaskManagerJvm {
            c1_only: true,
            ..default
        };
        assert_eq!(
            c1.java_opts(Some(a)).as_deref(),
            Some("-XX:TieredStopAtLevel=1 -XX:SharedArchiveFile=/c/taskmanager-1.jsa")
        );
        let off = TaskManagerJvm {
            class_data_sharing: false,
            c1_only: false,
            replay_launcher: false,
        };
        assert_eq!(off.java_opts(Some(a)), None);
        assert_eq!(
            c1.archiving_opts(Path::new("/c/x.tmp")),
            "-XX:TieredStopAtLevel=1 -XX:ArchiveClassesAtExit=/c/x.tmp"
        );
    }

    #[test]
    fn scratch_files_sit_next_to_the_archive_and_differ() {
        let a = Path::new("/c/fks-cds/taskmanager-1.jsa");
        let s = scratch_path(a);
        assert_eq!(s.parent(), a.parent());
        assert!(s.to_string_lossy().ends_with(".tmp"), "{}", s.display());
        assert_ne!(s, a);
    }
}
