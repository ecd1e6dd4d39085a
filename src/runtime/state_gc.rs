//! Garbage collection of stale state ConfigMaps (leader only). A state ConfigMap whose
//! ScaledObject lives in the scaler's own namespace is owned by it and deleted with it by
//! Kubernetes (`crate::kube::StateStore::owner_reference`); every other one is collected
//! here, since Kubernetes forbids cross-namespace owners.
//!
//! Each round (every `min(grace, 1 min)`) reads the watch caches only: a ConfigMap whose
//! ScaledObject is absent from a ready discovery cache is remembered with its
//! resourceVersion; once it has been absent for `kubernetes.staleStateGrace` with the
//! same resourceVersion, the leader deletes it with uid + resourceVersion preconditions
//! (so a state written again in between, e.g. by a re-created ScaledObject, is kept),
//! logs it and counts it (`flink_keda_scaler_state_configmaps_collected_total`). A
//! ConfigMap of a namespace this scaler does not watch is never touched (its
//! ScaledObject cannot be seen). A follower forgets what it remembered: a new leader
//! waits a whole grace period again.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{kube::KubeServices, shutdown::ShutdownSignal};
use crate::{exporter::Metrics, kube::StateEntry};

/// Longest time between two rounds.
const MAX_PERIOD: Duration = Duration::from_secs(60);

/// A state ConfigMap to delete now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The cached entry (name, uid, resourceVersion, job).
    pub entry: StateEntry,
    /// How long its ScaledObject has been seen absent.
    pub missing_for: Duration,
}

/// What is remembered between rounds: since when each ConfigMap's ScaledObject has been
/// absent, at which resourceVersion.
#[derive(Debug, Default)]
pub struct StaleStates {
    missing: HashMap<String, (Instant, String)>,
}

impl StaleStates {
    /// One round over `entries`. `exists` answers from the discovery caches: Some(true)
    /// present, Some(false) absent, None unknown (namespace not watched). Returns the
    /// ConfigMaps absent for at least `grace` at an unchanged resourceVersion.
    pub fn round(
        &mut self,
        entries: &[StateEntry],
        mut exists: impl FnMut(&StateEntry) -> Option<bool>,
        now: Instant,
        grace: Duration,
    ) -> Vec<Stale> {
        let mut due = Vec::new();
        let mut still = HashMap::new();
        for e in entries {
            if e.job.is_none() || e.uid.is_empty() || exists(e) != Some(false) {
                continue;
            }
            let since = match self.missing.remove(&e.name) {
                Some((t, rv)) if rv == e.resource_version => t,
                _ => now, // newly absent, or written again: the grace starts over
            };
            let missing_for = now.saturating_duration_since(since);
            if missing_for >= grace {
                due.push(Stale {
                    entry: e.clone(),
                    missing_for,
                });
            }
            still.insert(e.name.clone(), (since, e.resource_version.clone()));
        }
        self.missing = still;
        due
    }

    /// Forgets everything (leadership lost).
    pub fn clear(&mut self) {
        self.missing.clear();
    }
}

/// Runs the collection until `shutdown`.
pub fn spawn(
    kube: Arc<KubeServices>,
    metrics: Arc<Metrics>,
    grace: Duration,
    shutdown: ShutdownSignal,
) {
    let period = grace.min(MAX_PERIOD).max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut states = StaleStates::default();
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = shutdown.clone().wait() => break,
            }
            collect(&kube, &metrics, &mut states, grace).await;
        }
    });
}

/// One round: leader only, from ready caches only.
async fn collect(
    kube: &KubeServices,
    metrics: &Metrics,
    states: &mut StaleStates,
    grace: Duration,
) {
    if !kube.leader.is_leader() {
        states.clear();
        return;
    }
    let entries = match kube.cache.entries() {
        Ok(e) => e,
        Err(e) => return tracing::debug!(error = %e, "state GC: cache not ready"),
    };
    let mut not_ready = false;
    let due = states.round(
        &entries,
        |e| {
            let job = e.job.as_ref()?;
            match kube
                .discovery
                .scaled_object_exists(&job.namespace, &job.name)
            {
                Ok(found) => found,
                Err(_) => {
                    not_ready = true;
                    None
                }
            }
        },
        Instant::now(),
        grace,
    );
    if not_ready {
        tracing::debug!("state GC: a discovery cache is not ready; skipping those states");
    }
    for stale in due {
        delete(kube, metrics, &stale).await;
    }
}

async fn delete(kube: &KubeServices, metrics: &Metrics, stale: &Stale) {
    if !kube.leader.is_leader() {
        return;
    }
    let e = &stale.entry;
    let job = e.job.as_ref().map(ToString::to_string).unwrap_or_default();
    match kube
        .store
        .delete_stale(&e.name, &e.uid, &e.resource_version)
        .await
    {
        Ok(true) => {
            metrics.count_state_collected();
            tracing::info!(
                config_map = %e.name,
                scaled_object = %job,
                missing_for_secs = stale.missing_for.as_secs(),
                "stale state ConfigMap collected (its ScaledObject is gone)"
            );
        }
        Ok(false) => tracing::info!(
            config_map = %e.name,
            scaled_object = %job,
            "state ConfigMap changed or gone since it was seen stale; kept"
        ),
        Err(error) => {
            tracing::warn!(config_map = %e.name, %error, "cannot delete a stale state ConfigMap")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ScaledObjectRef;

    fn entry(name: &str, rv: &str) -> StateEntry {
        StateEntry {
            name: name.into(),
            job: Some(ScaledObjectRef::new("ns", name)),
            uid: format!("uid-{name}"),
            resource_version: rv.into(),
        }
    }

    const GRACE: Duration = Duration::from_secs(60);

    /// Absent for the grace at one resourceVersion: due; present or unknown: never.
    #[test]
    fn due_only_after_the_grace_while_absent() {
        let mut s = StaleStates::default();
        let t0 = Instant::now();
        let all = [
            entry("gone", "1"),
            entry("live", "1"),
            entry("elsewhere", "1"),
        ];
        let exists = |e: &StateEntry| match e.name.as_str() {
            "gone" => Some(false),
            "live" => Some(true),
            _ => None,
        };
        assert!(s.round(&all, exists, t0, GRACE).is_empty());
        assert!(s.round(&all, exists, t0 + GRACE / 2, GRACE).is_empty());
        let due = s.round(&all, exists, t0 + GRACE, GRACE);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].entry.name, "gone");
        assert_eq!(due[0].missing_for, GRACE);
    }

    /// A state written again (new resourceVersion) or whose ScaledObject came back
    /// starts the grace over.
    #[test]
    fn written_again_or_back_restarts_the_grace() {
        let mut s = StaleStates::default();
        let t0 = Instant::now();
        let absent = |_: &StateEntry| Some(false);
        assert!(s.round(&[entry("a", "1")], absent, t0, GRACE).is_empty());
        let t1 = t0 + GRACE;
        assert!(s.round(&[entry("a", "2")], absent, t1, GRACE).is_empty());
        assert_eq!(
            s.round(&[entry("a", "2")], absent, t1 + GRACE, GRACE).len(),
            1
        );
        let mut s = StaleStates::default();
        assert!(s.round(&[entry("b", "1")], absent, t0, GRACE).is_empty());
        assert!(s
            .round(&[entry("b", "1")], |_| Some(true), t0 + GRACE / 2, GRACE)
            .is_empty());
        assert!(s.round(&[entry("b", "1")], absent, t1, GRACE).is_empty());
    }

    /// After leadership changes nothing remembered survives; entries without a job
    /// annotation are never collected.
    #[test]
    fn cleared_and_unannotated_are_not_due() {
        let mut s = StaleStates::default();
        let t0 = Instant::now();
        let absent = |_: &StateEntry| Some(false);
        let mut bare = entry("bare", "1");
        bare.job = None;
        let all = [entry("a", "1"), bare];
        assert!(s.round(&all, absent, t0, GRACE).is_empty());
        s.clear();
        assert!(s.round(&all, absent, t0 + GRACE, GRACE).is_empty());
        assert_eq!(s.round(&all, absent, t0 + GRACE * 2, GRACE).len(), 1);
    }
}
