//! Flink's TaskManager launcher, replayed. `taskmanager.sh start-foreground` (what a
//! standalone TaskManager pod runs: the image's `docker-entrypoint.sh taskmanager`) starts
//! helper JVMs before the TaskManager's own: `config.sh` flattens `config.yaml`
//! (`BashJavaUtils UPDATE_AND_GET_FLINK_CONFIGURATION`; on some paths it also reads the
//! Java version, `java -XshowSettings:properties`), `taskmanager.sh` computes the memory settings
//! (`BashJavaUtils GET_TM_RESOURCE_PARAMS`), and `flink-console.sh` sources `config.sh`
//! again. Each is a short JVM of 1–2 CPU-seconds (Flink 2.3.0, JDK 17: `config.sh` 1.7,
//! with the memory settings 3.2), ~5 per TaskManager. On a pod's own core that is ~5 s; four
//! pods' helpers at once on the lab's 2 shared cores took 15 s, next to the running job
//! (measured: `fks-lab demo`, 2 → 6 TaskManagers, both cores busy for 15 s before the first
//! TaskManager JVM logged a line).
//!
//! So the lab starts its TaskManagers through a `java` shim (`JAVA_HOME` of the launcher):
//! the TaskManager's JVM runs as Flink's scripts start it, and each helper call is
//! memoized per cluster — run once (at the cluster's first TaskManager), its output,
//! status and CPU time kept, and replayed to later launches after sleeping that CPU time:
//! what the helper takes on one core of its own. The helpers' output depends only on the
//! configuration directory and the arguments, the same for every TaskManager of a cluster
//! but for its `taskmanager.resource-id`, which the key leaves out and the replay puts back.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::error::{ComponentError, Result};

/// The shim. `@REAL_JAVA@` is replaced by the real `java`, `@MEMO@` by the memo directory.
const SHIM: &str = r#"#!/usr/bin/env bash
# Written by fks-components (flink_launcher.rs): replays Flink's launcher helper JVMs.
real='@REAL_JAVA@'
memo='@MEMO@'
for a in "$@"; do
  if [ "$a" = org.apache.flink.runtime.taskexecutor.TaskManagerRunner ]; then
    exec "$real" "$@"
  fi
done
id=''
norm=()
for a in "$@"; do
  case "$a" in
    taskmanager.resource-id=*) id="${a#taskmanager.resource-id=}"; norm+=('taskmanager.resource-id=*') ;;
    *) norm+=("$a") ;;
  esac
done
key=$(printf '%s\n' "${norm[@]}" | cksum | tr ' ' '-')
m="$memo/$key"
swap() {
  if [ -n "$id" ] && [ -s "$m.id" ]; then
    sed "s/taskmanager\.resource-id\([,=] *\)$(cat "$m.id")\b/taskmanager.resource-id\1$id/g" "$1"
  else
    cat "$1"
  fi
}
if [ -f "$m.done" ]; then
  sleep "$(cat "$m.cpu")"
  swap "$m.out"
  swap "$m.err" >&2
  exit 0
fi
t="$m.$$"
TIMEFORMAT='%3U %3S'
{ time "$real" "$@" >"$t.out" 2>"$t.err"; } 2>"$t.time"
rc=$?
cat "$t.out"
cat "$t.err" >&2
if [ "$rc" -eq 0 ]; then
  awk '{ printf "%.3f\n", $1 + $2 }' "$t.time" >"$t.cpu"
  printf '%s' "$id" >"$t.id"
  for f in out err cpu id; do mv -f "$t.$f" "$m.$f"; done
  : >"$m.done"
fi
rm -f "$t".*
exit "$rc"
"#;

/// Writes the `JAVA_HOME` whose `bin/java` replays the launcher's helper JVMs for the
/// cluster under `root` (the memo in `root/launcher/memo`). Once per cluster, before its
/// first TaskManager: bash reads a script as it runs it.
pub fn java_home(root: &Path) -> Result<PathBuf> {
    let real = real_java().ok_or_else(|| {
        ComponentError::Failed("no java: JAVA_HOME/bin/java nor java on PATH".into())
    })?;
    write_shim(&root.join("launcher"), &real)
}

/// The `java` Flink's scripts would run: `$JAVA_HOME/bin/java` when `JAVA_HOME` is a
/// directory (`bash-java-utils.sh` `setJavaRun`), else `java` on `PATH`.
fn real_java() -> Option<PathBuf> {
    std::env::var_os("JAVA_HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_dir())
        .map(|h| h.join("bin/java"))
        .or_else(|| crate::procs::which("java"))
}

/// Writes `home/bin/java` (the shim calling `real`) and `home/memo`; returns `home`.
fn write_shim(home: &Path, real: &Path) -> Result<PathBuf> {
    let bin = home.join("bin");
    let memo = home.join("memo");
    for d in [&bin, &memo] {
        fs::create_dir_all(d)
            .map_err(|e| ComponentError::io(format!("create {}", d.display()), e))?;
    }
    let script = SHIM
        .replace("@REAL_JAVA@", &real.display().to_string())
        .replace("@MEMO@", &memo.display().to_string());
    let java = bin.join("java");
    fs::write(&java, script).map_err(|e| ComponentError::io("write the java shim", e))?;
    set_executable(&java)?;
    Ok(home.to_path_buf())
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| ComponentError::io(format!("chmod {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A fake `java` that counts its runs, echoes its arguments and burns no CPU.
    fn fake_java(dir: &Path) -> PathBuf {
        let p = dir.join("real-java");
        fs::write(
            &p,
            format!(
                "#!/usr/bin/env bash\necho run >> {}/runs\necho \"out $*\"\necho \"err $*\" >&2\n[ \"$1\" = fail ] && exit 3\nexit 0\n",
                dir.display()
            ),
        )
        .unwrap();
        set_executable(&p).unwrap();
        p
    }

    fn run(home: &Path, args: &[&str]) -> (i32, String, String) {
        let o = Command::new(home.join("bin/java"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn runs(dir: &Path) -> usize {
        fs::read_to_string(dir.join("runs")).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn a_helper_runs_once_and_is_replayed_with_the_callers_resource_id() {
        let dir = tempfile::tempdir().unwrap();
        let home = write_shim(&dir.path().join("launcher"), &fake_java(dir.path())).unwrap();
        let args = |id: &'static str| {
            [
                "-cp",
                "x",
                "BashJavaUtils",
                "GET_TM_RESOURCE_PARAMS",
                "-D",
                id,
            ]
        };
        let first = run(&home, &args("taskmanager.resource-id=fks-tm-1"));
        assert_eq!(first.0, 0);
        assert!(
            first.1.contains("taskmanager.resource-id=fks-tm-1"),
            "{first:?}"
        );
        let again = run(&home, &args("taskmanager.resource-id=fks-tm-12"));
        assert_eq!(runs(dir.path()), 1, "the second call is replayed");
        assert_eq!(again.0, 0);
        assert_eq!(again.1, first.1.replace("fks-tm-1", "fks-tm-12"));
        assert_eq!(again.2, first.2.replace("fks-tm-1", "fks-tm-12"));
        // other arguments are another helper call
        run(&home, &["-XshowSettings:properties"]);
        assert_eq!(runs(dir.path()), 2);
    }

    #[test]
    fn a_failed_helper_is_not_kept_and_the_task_manager_always_runs() {
        let dir = tempfile::tempdir().unwrap();
        let home = write_shim(&dir.path().join("launcher"), &fake_java(dir.path())).unwrap();
        assert_eq!(run(&home, &["fail"]).0, 3);
        assert_eq!(run(&home, &["fail"]).0, 3);
        assert_eq!(runs(dir.path()), 2, "a failure is not replayed");
        let tm = [
            "-cp",
            "x",
            "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
        ];
        run(&home, &tm);
        run(&home, &tm);
        assert_eq!(
            runs(dir.path()),
            4,
            "the TaskManager's JVM is never replayed"
        );
    }
}
