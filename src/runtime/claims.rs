//! One rescale per job at a time, automatic or manual: the in-process claim both paths
//! take before their PUT (the leader is the only replica that PUTs, so one process is
//! the whole contest). A job worker holds its job's claim while its rescale is in flight
//! (started, or resumed from persisted state); `POST /admin/rescale` holds it until its
//! apply-and-wait ends. Whoever comes second is refused, naming the holder. Keyed by
//! Flink's JobId (random 128 bits, the same whatever URL reaches the JobManager).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use crate::core::JobId;

/// The claims held, by job.
#[derive(Debug, Default)]
pub struct RescaleClaims {
    held: Mutex<HashMap<JobId, String>>,
}

/// A held claim; dropping it releases the job.
#[derive(Debug)]
pub struct ClaimGuard {
    claims: Arc<RescaleClaims>,
    job: JobId,
}

impl ClaimGuard {
    /// The job claimed.
    pub fn job(&self) -> &JobId {
        &self.job
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.claims.lock().remove(&self.job);
    }
}

impl RescaleClaims {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, String>> {
        match self.held.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Claims `job` for `holder` (e.g. "automatic rescale of ns/so"), or says who holds it.
    pub fn try_claim(self: &Arc<Self>, job: &JobId, holder: String) -> Result<ClaimGuard, String> {
        let mut held = self.lock();
        if let Some(h) = held.get(job) {
            return Err(h.clone());
        }
        held.insert(job.clone(), holder);
        Ok(ClaimGuard {
            claims: Arc::clone(self),
            job: job.clone(),
        })
    }

    /// Who holds `job`'s claim, if anyone.
    pub fn holder(&self, job: &JobId) -> Option<String> {
        self.lock().get(job).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(c: char) -> JobId {
        c.to_string().repeat(32).parse().expect("job id")
    }

    /// One holder per job; released on drop; jobs are independent.
    #[test]
    fn one_holder_per_job_until_dropped() {
        let claims = Arc::new(RescaleClaims::default());
        let a = claims
            .try_claim(&job('a'), "automatic".into())
            .expect("first");
        assert_eq!(
            claims
                .try_claim(&job('a'), "manual".into())
                .err()
                .as_deref(),
            Some("automatic")
        );
        let b = claims
            .try_claim(&job('b'), "manual".into())
            .expect("other job");
        assert_eq!(b.job(), &job('b'));
        drop(a);
        assert_eq!(claims.holder(&job('a')), None);
        assert!(claims.try_claim(&job('a'), "manual".into()).is_ok());
    }
}
