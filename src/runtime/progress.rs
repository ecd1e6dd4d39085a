//! What a worker's tick is waiting on at this moment (the Flink REST or Prometheus step it
//! is in), so an rpc that times out before the tick publishes can say what it waited on
//! ("timed out after 2s waiting for the first evaluation: Prometheus 'default' at <url> has
//! not answered ...") instead of only that it timed out.

use super::sync::lock;
use std::sync::{Arc, Mutex};

/// Shared between a worker (which sets it at each step) and the rpc layer (which reads it
/// on a timeout).
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Option<String>>>);

impl Progress {
    /// The tick now waits on `what` (a sentence naming the upstream and its URL).
    pub fn set(&self, what: String) {
        *lock(&self.0) = Some(what);
    }

    /// The tick waits on nothing (it finished).
    pub fn clear(&self) {
        *lock(&self.0) = None;
    }

    /// What the tick waits on, if it is in a step.
    pub fn get(&self) -> Option<String> {
        lock(&self.0).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_seen_until_cleared() {
        let p = Progress::default();
        let seen = p.clone();
        assert_eq!(seen.get(), None);
        p.set("Flink REST http://jm:8081 has not answered".into());
        assert_eq!(
            seen.get().as_deref(),
            Some("Flink REST http://jm:8081 has not answered")
        );
        p.clear();
        assert_eq!(seen.get(), None);
    }
}
