//! Persisted job state (Kubernetes integration): the leader loads the job's state once
//! (after start or after winning the Lease), resumes or abandons an in-flight rescale,
//! claims every decision with a compare-and-swap write BEFORE its PUT (so two scalers can
//! never PUT the same decision), and saves the core state and rescale after each tick.
//! Followers read the watch-fed cache each tick, so they report what the leader decided
//! and never disagree by more than one tick.

use chrono::{DateTime, Utc};

use super::Worker;
use crate::{
    core::{Decision, Plan, Rescale, ScaledObjectRef},
    kube::{check_decision, KubeError, PersistedDecision, PersistedJob, Staleness},
    runtime::kube::KubeServices,
};

/// A persisted decision older than this is never acted on.
const MAX_DECISION_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A rescale to claim before its PUT.
pub struct Claim<'a> {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// The plan the job runs at.
    pub current: &'a Plan,
    /// The target plan.
    pub target: &'a Plan,
    /// Why (the decision's summary, or who asked for a manual rescale).
    pub reason: String,
    /// The scale target's generation.
    pub generation: Option<i64>,
}

/// What the worker knows about its persisted copy.
#[derive(Debug, Default)]
pub struct PersistState {
    /// resourceVersion of the last read/write (leader).
    pub version: Option<crate::kube::StateVersion>,
    /// The persisted document as last read/written (boxed: held by every worker, read
    /// and written only at a decision or a rescale).
    pub doc: Box<PersistedJob>,
    /// Loaded as leader since the last leadership change.
    pub loaded: bool,
    /// JSON of the last save (skip identical writes).
    pub last_saved: Option<String>,
    /// uid of the ScaledObject (from discovery): the state's owner when both live in
    /// the scaler's namespace.
    pub owner_uid: Option<String>,
}

impl Worker {
    fn job_key(&self) -> ScaledObjectRef {
        self.target.scaled_object.clone()
    }

    /// Before observing: leader loads once; follower mirrors the cache.
    pub(super) async fn persist_in(
        &mut self,
        current: Option<&Plan>,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) {
        let Some(k) = self.ctx.kube.clone() else {
            return;
        };
        let key = self.job_key();
        if self.ctx.is_leader() {
            if self.persist.loaded {
                return;
            }
            match k.store.load(&key).await {
                Ok(found) => {
                    let (doc, version) = match found {
                        Some((d, v)) => (d, Some(v)),
                        None => (PersistedJob::default(), None),
                    };
                    self.restore(&doc, current, generation, now);
                    *self.persist.doc = doc;
                    self.persist.version = version;
                    self.persist.loaded = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load persisted state; acting on fresh state after retry")
                }
            }
        } else {
            self.persist.loaded = false;
            match k.cache.get(&key) {
                Ok(Some((doc, version))) => {
                    self.job_state = doc.job_state.clone();
                    self.rescale = doc
                        .rescale
                        .clone()
                        .and_then(|v| serde_json::from_value::<Rescale>(v).ok())
                        .map(Box::new);
                    *self.persist.doc = doc;
                    self.persist.version = Some(version);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "state cache not ready"),
            }
        }
    }

    /// Restores state after a (re)start as leader: resume an in-flight rescale; drop a
    /// stale, unapplied decision (it is recomputed from fresh signals anyway).
    fn restore(
        &mut self,
        doc: &PersistedJob,
        current: Option<&Plan>,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) {
        self.job_state = doc.job_state.clone();
        if let Some(v) = &doc.rescale {
            match serde_json::from_value::<Rescale>(v.clone()) {
                Ok(r) if !r.phase.is_terminal() => {
                    tracing::info!(
                        phase = r.phase.as_str(),
                        to = r.to.task_managers,
                        "resuming the in-flight rescale from persisted state"
                    );
                    self.rescale = Some(Box::new(r));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "persisted rescale unreadable; abandoning it"),
            }
        }
        if let (Some(d), Some(current)) = (&doc.decision, current) {
            match check_decision(d, now, MAX_DECISION_AGE, current, generation) {
                Staleness::Fresh => {}
                verdict => tracing::info!(
                    decision = d.id,
                    applied = d.applied,
                    verdict = verdict.as_str(),
                    "persisted decision is stale: not acted on (decisions are recomputed from fresh signals)"
                ),
            }
        }
    }

    /// Claims a decision before its PUT: a compare-and-swap write of the decision as
    /// applied. False when another writer got there first (then nothing is PUT).
    pub(super) async fn claim(
        &mut self,
        decision: &Decision,
        target: &Plan,
        generation: Option<i64>,
    ) -> bool {
        let claim = Claim {
            at: decision.at,
            current: &decision.current,
            target,
            reason: decision.summary(),
            generation,
        };
        self.claim_plan(claim).await
    }

    /// [`Self::claim`] of any rescale (automatic or manual): leader only, a
    /// compare-and-swap write of the decision as applied; true without Kubernetes.
    pub(super) async fn claim_plan(&mut self, claim: Claim<'_>) -> bool {
        let Some(k) = self.ctx.kube.clone() else {
            return true;
        };
        if !self.ctx.is_leader() {
            return false;
        }
        let mut doc = PersistedJob::clone(&self.persist.doc);
        let id = doc.next_decision_id();
        doc.decision = Some(PersistedDecision {
            id,
            decided_at: claim.at,
            observed_generation: claim.generation,
            current: claim.current.clone(),
            target: claim.target.clone(),
            reason: claim.reason,
            applied: true,
        });
        doc.job_state = self.job_state.clone();
        match self.save(&k, doc).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "decision not claimed (another scaler wrote first or the API failed); not applying it");
                false
            }
        }
    }

    /// After a tick (leader): saves the core state and the rescale when they changed.
    pub(super) async fn persist_out(&mut self) {
        let Some(k) = self.ctx.kube.clone() else {
            return;
        };
        if !self.ctx.is_leader() || !self.persist.loaded {
            return;
        }
        let mut doc = PersistedJob::clone(&self.persist.doc);
        doc.job_state = self.job_state.clone();
        doc.rescale = self
            .rescale
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok());
        let fingerprint = serde_json::to_string(&(&doc.job_state, &doc.rescale, &doc.decision))
            .unwrap_or_default();
        if self.persist.last_saved.as_deref() == Some(fingerprint.as_str()) {
            return;
        }
        match self.save(&k, doc).await {
            Ok(()) => self.persist.last_saved = Some(fingerprint),
            Err(e) => tracing::warn!(error = %e, "cannot save state; reloading next tick"),
        }
    }

    /// Stamps `doc` with this instance and the time and writes it, compare-and-swap on the
    /// version last read or written; on success it is the persisted copy, on failure the
    /// state is reloaded on the next tick.
    async fn save(&mut self, k: &KubeServices, mut doc: PersistedJob) -> Result<(), KubeError> {
        doc.updated_by = Some(k.identity.clone());
        doc.updated_at = Some(Utc::now());
        match k
            .store
            .save_owned(
                &self.job_key(),
                &doc,
                self.persist.version.as_ref(),
                self.persist.owner_uid.as_deref(),
            )
            .await
        {
            Ok(v) => {
                self.persist.version = Some(v);
                *self.persist.doc = doc;
                Ok(())
            }
            Err(e) => {
                self.persist.loaded = false;
                Err(e)
            }
        }
    }
}
