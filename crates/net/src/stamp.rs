//! Telling whether files changed without reading them: a [`FileStamp`] (modification
//! time, size, inode) per file, and [`Watched`], a value built from a set of files that is
//! rebuilt when one of their stamps changes, checked at most once per
//! [`CHECK_INTERVAL`] (a TLS handshake or a request costs at most a few `stat` calls per
//! second). A Kubernetes Secret rotation swaps a symlink: the stamp of the path changes.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

/// How often [`Watched::current`] looks at the files again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    /// The stamp of `path` (following symlinks); `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

/// A value built from files, rebuilt when they change.
pub struct Watched<T> {
    paths: Vec<PathBuf>,
    state: Mutex<State<T>>,
}

struct State<T> {
    stamps: Vec<Option<FileStamp>>,
    value: Arc<T>,
    checked: Instant,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<FileStamp>> {
    paths.iter().map(|p| FileStamp::of(p)).collect()
}

impl<T> Watched<T> {
    /// Builds the value from `paths` now (an error here is a start-up error).
    pub fn new<E>(paths: Vec<PathBuf>, build: impl FnOnce() -> Result<T, E>) -> Result<Self, E> {
        let before = stamps(&paths);
        let value = Arc::new(build()?);
        Ok(Self {
            paths,
            state: Mutex::new(State {
                stamps: before,
                value,
                checked: Instant::now(),
            }),
        })
    }

    /// The current value: rebuilt with `build` when a file changed since the last build
    /// (checked at most once per [`CHECK_INTERVAL`]). A failed rebuild (e.g. a certificate
    /// written before its key) is returned as the error and retried on the next call; the
    /// previous value stays in place until a rebuild succeeds.
    pub fn current<E>(&self, build: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() < CHECK_INTERVAL {
            return Ok(state.value.clone());
        }
        state.checked = Instant::now();
        let now = stamps(&self.paths);
        if now == state.stamps {
            return Ok(state.value.clone());
        }
        let value = Arc::new(build()?);
        tracing::info!(files = ?self.paths, "files changed: reloaded");
        state.stamps = now;
        state.value = value.clone();
        Ok(value)
    }

    /// The value as last built, without looking at the files.
    pub fn last(&self) -> Arc<T> {
        match self.state.lock() {
            Ok(g) => g.value.clone(),
            Err(poisoned) => poisoned.into_inner().value.clone(),
        }
    }

    /// Forces the next [`Self::current`] to look at the files (tests, and a caller that
    /// knows they just changed).
    pub fn expire(&self) {
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.checked = Instant::now() - CHECK_INTERVAL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A changed file rebuilds the value; an unchanged one does not; a failed rebuild keeps
    /// the old value and is retried.
    #[test]
    fn rebuilds_when_a_file_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "one").expect("write");
        let read = || std::fs::read_to_string(&path);
        let w = Watched::new(vec![path.clone()], read).expect("built");
        assert_eq!(w.last().as_str(), "one");
        w.expire();
        let again: Result<_, std::io::Error> = w.current(|| unreachable!("unchanged"));
        assert_eq!(again.expect("unchanged").as_str(), "one");
        std::fs::write(&path, "three").expect("rewrite");
        w.expire();
        let failed: Result<_, &str> = w.current(|| Err("half written"));
        assert_eq!(failed.err(), Some("half written"));
        assert_eq!(w.last().as_str(), "one");
        w.expire();
        assert_eq!(w.current(read).expect("rebuilt").as_str(), "three");
    }
}
