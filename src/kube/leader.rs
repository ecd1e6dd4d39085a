//! Lease-based leader election (`coordination.k8s.io/v1`), client-go style.
//!
//! Every `retry_period` each instance reads the Lease: the holder renews `renewTime`; a
//! non-holder takes over only when `renewTime + leaseDurationSeconds` has passed (or the
//! Lease is free). Every write carries the Lease's `resourceVersion`, so of two racing
//! instances exactly one wins (the other gets a 409). A leader that cannot renew for
//! `renew_deadline` steps down *locally* — [`LeaderElector::is_leader`] turns false
//! even if its task is stuck — before anyone else can acquire (`renew_deadline` <
//! `lease_duration`). On shutdown the leader releases the Lease so a follower takes
//! over at its next retry. Times compared across pods are wall-clock: keep clock skew
//! well below `lease_duration - renew_deadline`.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    api::{Api, ObjectMeta, PostParams},
    Client,
};
use tokio::{sync::watch, time::Instant};

use super::{
    error::KubeError,
    timeout::{bounded, API_TIMEOUT},
};

/// Timing and identity of a [`LeaderElector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectorConfig {
    /// Namespace of the Lease (the scaler's own).
    pub namespace: String,
    /// Lease name.
    pub lease_name: String,
    /// This instance's identity (pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal (client-go default 15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal (default 10 s).
    pub renew_deadline: Duration,
    /// Pause between attempts (default 2 s).
    pub retry_period: Duration,
}

struct Inner {
    api: Api<Lease>,
    config: LeaderElectorConfig,
    tx: watch::Sender<bool>,
    last_renew: Mutex<Option<Instant>>,
}

/// A Lease-based leader elector. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct LeaderElector {
    inner: Arc<Inner>,
}

fn micro(ts: Timestamp) -> MicroTime {
    MicroTime(ts)
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// True when the Lease is free or its holder's renewal has expired at `now` (pure).
pub fn lease_expired(spec: &LeaseSpec, now: Timestamp, default_duration: Duration) -> bool {
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = spec
        .lease_duration_seconds
        .map_or_else(|| secs_i32(default_duration), |s| s.max(0));
    match renewed
        .0
        .checked_add(SignedDuration::from_secs(i64::from(secs)))
    {
        Ok(until) => until <= now,
        Err(_) => false,
    }
}

impl LeaderElector {
    /// An elector; call [`Self::run`] in a task to take part in the election.
    pub fn new(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: &str,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        Self::with_config(
            client,
            LeaderElectorConfig {
                namespace: namespace.into(),
                lease_name: lease_name.into(),
                identity: identity.into(),
                lease_duration,
                renew_deadline,
                retry_period,
            },
        )
    }

    /// An elector from a config.
    pub fn with_config(client: Client, config: LeaderElectorConfig) -> Self {
        let (tx, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                api: Api::namespaced(client, &config.namespace),
                config,
                tx,
                last_renew: Mutex::new(None),
            }),
        }
    }

    /// This instance's identity.
    pub fn identity(&self) -> &str {
        &self.inner.config.identity
    }

    /// Leadership changes (true = leading).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.tx.subscribe()
    }

    /// True while this instance holds the Lease *and* renewed it within `renew_deadline`
    /// (so a stalled leader stops acting before the Lease can expire).
    pub fn is_leader(&self) -> bool {
        *self.inner.tx.borrow() && self.renewed_recently()
    }

    fn renewed_recently(&self) -> bool {
        let last = self.inner.last_renew.lock().map(|g| *g).unwrap_or(None);
        last.is_some_and(|t| t.elapsed() < self.inner.config.renew_deadline)
    }

    fn set_leader(&self, leading: bool) {
        let changed = self.inner.tx.send_if_modified(|v| {
            let changed = *v != leading;
            *v = leading;
            changed
        });
        if changed {
            tracing::info!(identity = %self.identity(), lease = %self.inner.config.lease_name, leading, "leadership changed");
        }
    }

    fn op(&self, verb: &str) -> String {
        let c = &self.inner.config;
        format!("{verb} Lease {}/{}", c.namespace, c.lease_name)
    }

    fn call_timeout(&self) -> Duration {
        API_TIMEOUT.min(self.inner.config.renew_deadline)
    }

    /// One election round: create, renew or take over the Lease. Returns true when this
    /// instance holds it afterwards. A lost race (409) is `Ok(false)`.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, KubeError> {
        let c = &self.inner.config;
        let api = &self.inner.api;
        let now = Timestamp::now();
        let current = bounded(
            self.op("get"),
            self.call_timeout(),
            api.get_opt(&c.lease_name),
        )
        .await?;
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(c.lease_name.clone()),
                        namespace: Some(c.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(c.identity.clone()),
                        lease_duration_seconds: Some(secs_i32(c.lease_duration)),
                        acquire_time: Some(micro(now)),
                        renew_time: Some(micro(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                bounded(
                    self.op("create"),
                    self.call_timeout(),
                    api.create(&PostParams::default(), &lease),
                )
                .await
            }
            Some(mut lease) => {
                let mut spec = lease.spec.take().unwrap_or_default();
                let mine = spec.holder_identity.as_deref() == Some(c.identity.as_str());
                if !mine && !lease_expired(&spec, now, c.lease_duration) {
                    return Ok(false);
                }
                if !mine {
                    spec.acquire_time = Some(micro(now));
                    spec.lease_transitions =
                        Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                    spec.holder_identity = Some(c.identity.clone());
                }
                spec.renew_time = Some(micro(now));
                spec.lease_duration_seconds = Some(secs_i32(c.lease_duration));
                lease.spec = Some(spec);
                bounded(
                    self.op("update"),
                    self.call_timeout(),
                    api.replace(&c.lease_name, &PostParams::default(), &lease),
                )
                .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this instance holds it (clears the holder).
    pub async fn release(&self) -> Result<(), KubeError> {
        let c = &self.inner.config;
        let api = &self.inner.api;
        self.set_leader(false);
        if let Ok(mut g) = self.inner.last_renew.lock() {
            *g = None;
        }
        let Some(mut lease) = bounded(
            self.op("get"),
            self.call_timeout(),
            api.get_opt(&c.lease_name),
        )
        .await?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(c.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        lease.spec = Some(spec);
        match bounded(
            self.op("release"),
            self.call_timeout(),
            api.replace(&c.lease_name, &PostParams::default(), &lease),
        )
        .await
        {
            Ok(_) => Ok(()),
            // Someone else already took it: nothing to release.
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes part in the election until `shutdown` completes, then releases the Lease.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    if let Ok(mut g) = self.inner.last_renew.lock() {
                        *g = Some(Instant::now());
                    }
                    self.set_leader(true);
                }
                Ok(false) => self.set_leader(false),
                Err(error) => {
                    tracing::warn!(identity = %self.identity(), %error, kind = error.kind(), "lease round failed");
                    if !self.renewed_recently() {
                        self.set_leader(false);
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.inner.config.retry_period) => {}
            }
        }
        if let Err(error) = self.release().await {
            tracing::warn!(identity = %self.identity(), %error, "releasing the lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed: Option<Timestamp>, secs: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            renew_time: renewed.map(micro),
            lease_duration_seconds: secs,
            ..Default::default()
        }
    }

    /// A held Lease expires exactly `leaseDurationSeconds` after its renewal; a free one
    /// is always acquirable.
    #[test]
    fn lease_expiry_follows_renew_time_plus_duration() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let d = Duration::from_secs(15);
        let held = spec(Some("a"), Some(t0), Some(10));
        let at = |s: i64| t0.checked_add(SignedDuration::from_secs(s)).unwrap_or(t0);
        assert!(!lease_expired(&held, at(9), d));
        assert!(lease_expired(&held, at(10), d));
        assert!(lease_expired(&spec(None, Some(t0), Some(10)), t0, d));
        assert!(lease_expired(&spec(Some(""), Some(t0), Some(10)), t0, d));
        assert!(lease_expired(&spec(Some("a"), None, Some(10)), t0, d));
        let default_duration = spec(Some("a"), Some(t0), None);
        assert!(!lease_expired(&default_duration, at(14), d));
        assert!(lease_expired(&default_duration, at(15), d));
    }
}
