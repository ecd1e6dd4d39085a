//! [`Limiter`]: a bound on the requests in flight to one upstream, so a slow server
//! holds a bounded number of connections (and file descriptors) however many jobs wait
//! on it. Waiting for a turn counts against the caller's deadline.

use std::{sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `limit` requests in flight; cheap to clone (clones share the bound).
#[derive(Debug, Clone)]
pub struct Limiter {
    permits: Arc<Semaphore>,
    limit: usize,
}

/// No turn came within the wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{limit} requests already in flight (the limit); no turn within {}ms", waited.as_millis())]
pub struct Saturated {
    /// The bound.
    pub limit: usize,
    /// How long the caller waited.
    pub waited: Duration,
}

impl Limiter {
    /// At most `limit` (≥ 1) requests in flight.
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// A turn, waiting at most `wait`; the request runs while the permit is held.
    pub async fn turn(&self, wait: Duration) -> Result<OwnedSemaphorePermit, Saturated> {
        let saturated = Saturated {
            limit: self.limit,
            waited: wait,
        };
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // the semaphore is never closed; a timeout is the only other outcome
            Ok(Err(_)) | Err(_) => Err(saturated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound holds and a waiter times out with the limit in its error.
    #[tokio::test]
    async fn bounds_requests_in_flight() {
        let l = Limiter::new(2);
        let a = l.turn(Duration::from_millis(10)).await.expect("first");
        let _b = l.turn(Duration::from_millis(10)).await.expect("second");
        assert_eq!(l.in_flight(), 2);
        let e = l
            .turn(Duration::from_millis(20))
            .await
            .expect_err("third waits");
        assert_eq!(e.limit, 2);
        assert!(
            e.to_string().starts_with("2 requests already in flight"),
            "{e}"
        );
        drop(a);
        assert!(l.turn(Duration::from_millis(10)).await.is_ok());
    }
}
