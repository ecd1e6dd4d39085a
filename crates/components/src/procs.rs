//! Process and polling helpers shared by the components: free ports, `PATH` lookup,
//! child processes killed on drop, bounded waits, HTTP JSON reads with timeouts.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::error::{ComponentError, Result};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for local processes).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ComponentError::io("bind a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| ComponentError::io("read the free port", e))
}

/// True when running in CI (`CI=true` or `1`): a missing component fails a test there
/// instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// The OS pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// `Some(status)` when the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM (graceful stop) to this child only.
    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; blocks until reaped.
    pub fn terminate(&mut self, grace: Duration) {
        self.sigterm();
        if let Some(mut child) = self.0.take() {
            let start = Instant::now();
            while start.elapsed() < grace {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every `every` until it yields `Some`; a [`ComponentError::Timeout`] naming
/// `what` (with `detail()` appended) after `timeout`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
    detail: impl FnOnce() -> String,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            let d = detail();
            return Err(ComponentError::Timeout {
                what: what.to_string(),
                timeout,
                detail: if d.is_empty() { d } else { format!("\n{d}") },
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// An HTTP client with a total timeout per request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ComponentError::http("build an HTTP client", e))
}

/// GET `url` as JSON; `None` on any error or non-2xx status.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let r = http.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Waits (at most 90 s, every 250 ms) until the JobManager at `rest_url` lists every
/// TaskManager resource id of `ids` in `/taskmanagers`; `detail` explains a timeout.
pub async fn wait_registered(
    http: &reqwest::Client,
    rest_url: &str,
    ids: &[String],
    detail: impl FnOnce() -> String,
) -> Result<()> {
    wait_for(
        &format!("{} TaskManager(s) to register", ids.len()),
        Duration::from_secs(90),
        Duration::from_millis(250),
        || all_registered(http, rest_url, ids),
        detail,
    )
    .await
}

/// `Some(())` once the JobManager at `rest_url` lists every TaskManager resource id of
/// `ids` in `/taskmanagers` (`None` while one is missing or the REST API does not answer).
async fn all_registered(http: &reqwest::Client, rest_url: &str, ids: &[String]) -> Option<()> {
    let v = get_json(http, &format!("{rest_url}/taskmanagers")).await?;
    let listed: Vec<&str> = v["taskmanagers"]
        .as_array()?
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    ids.iter()
        .all(|id| listed.contains(&id.as_str()))
        .then_some(())
}

/// The last `lines` lines of every file in `dir` (for failure messages).
pub fn log_tails(dir: &Path, lines: usize) -> String {
    let mut out = String::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = rd.flatten().map(|f| f.path()).collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        out.push_str(&format!("--- {}\n{tail}\n", f.display()));
    }
    out
}

/// A log file at `path` (created) as stdout and stderr of a child process.
pub fn log_stdio(path: &Path) -> Result<(std::process::Stdio, std::process::Stdio)> {
    let out = std::fs::File::create(path)
        .map_err(|e| ComponentError::io(format!("create {}", path.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| ComponentError::io("duplicate a log file handle", e))?;
    Ok((out.into(), err.into()))
}

/// Atomically replaces `path` with `text` (write a sibling, then rename).
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .map_err(|e| ComponentError::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| ComponentError::io(format!("replace {}", path.display()), e))
}
