//! Locking of the runtime's shared in-memory state (caches, progress, intervals): a
//! poisoned mutex (a panic while held) is still read, since every value kept behind one
//! is whole between statements and a stale read beats stopping every worker.

use std::sync::{Mutex, MutexGuard};

/// `m`'s guard, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
