//! A KEDA + HPA stand-in: it talks to the scaler only over gRPC (`GetMetricSpec`,
//! `GetMetrics`, `IsActive`) and controls TaskManagers only as processes (start one, stop
//! one), as KEDA and the HPA do in a cluster. It never reads the scaler's internals.
//!
//! What it models (documented behaviour):
//! * **KEDA operator poll**, every `pollingInterval` (default 30 s) and once at start:
//!   `GetMetricSpec`, then `GetMetrics` and `IsActive` for the spec's metric
//!   (<https://keda.sh/docs/latest/concepts/external-scalers/>,
//!   <https://keda.sh/docs/latest/reference/scaledobject-spec/#pollinginterval>; KEDA's
//!   `scale_handler.go` `GetMetricsAndActivityForScaler`). Activation (0 ↔ 1) is KEDA's;
//!   with `minReplicaCount ≥ 1` it changes nothing and is only recorded.
//! * **HPA sync**, every `--horizontal-pod-autoscaler-sync-period` (default 15 s): the HPA
//!   reads the external metric through KEDA's metrics server, which calls
//!   `GetMetricSpec` + `GetMetrics` (+ `IsActive`) again (no `useCachedMetrics`). For an
//!   `AverageValue` target, `desired = ceil(sum(values) / target)`, applied only when
//!   `|1 − sum / (target × current)| > 0.1` (`--horizontal-pod-autoscaler-tolerance`) —
//!   <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details>.
//! * Replicas are clamped to `[minReplicaCount, maxReplicaCount]`; scale-up is limited per
//!   sync by the `scaleUp` policies (Kubernetes' default `max(100 %, 4 pods)`; the lab
//!   uses what the example ScaledObjects ship: up to `maxReplicaCount` pods); scale-down is
//!   stabilized: the HPA takes the **highest** recommendation of the stabilization window
//!   (default 300 s, the examples ship 0 s; scale-up 0 s) — same page, "Stabilization
//!   window".
//!
//! The replica arithmetic is the simulator's pure HPA model
//! (`flink_keda_scaler::sim::hpa`), so the lab and `simulate` share one HPA.
//! * A failing `GetMetrics` leaves the replicas unchanged (no `fallback` configured).
//! * Removing a pod: the ReplicaSet removes the pod with the lowest
//!   `controller.kubernetes.io/pod-deletion-cost`, which the scaler sets on idle
//!   TaskManagers
//!   (<https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost>);
//!   the process side picks a TaskManager with all slots free and **refuses** to stop a
//!   busy one, and the refusal is recorded (it means the scaler reported too few).

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use flink_keda_scaler::{
    keda::pb::{external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef},
    sim::hpa::{Hpa, HpaConfig},
};

use super::error::{LabError, Result};

/// Driver settings (the ScaledObject's and the HPA's).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// KEDA `pollingInterval`.
    pub polling_interval: Duration,
    /// The HPA: `minReplicaCount`/`maxReplicaCount` (KEDA copies them), tolerance, sync
    /// period, scale-down stabilization window.
    pub hpa: HpaConfig,
}

/// What the process side sees of Flink at one moment (REST, not the scaler).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlinkView {
    /// Registered TaskManagers.
    pub task_managers: u32,
    /// Parallelism per vertex name, in job-graph order.
    pub vertices: Vec<(String, u32)>,
    /// Job id.
    pub job_id: String,
    /// Job state.
    pub job_state: String,
    /// Slots per TaskManager.
    pub slots_per_task_manager: u32,
}

impl FlinkView {
    /// Highest vertex parallelism.
    pub fn max_parallelism(&self) -> u32 {
        self.vertices.iter().map(|(_, p)| *p).max().unwrap_or(0)
    }

    /// TaskManagers the running slots need: `ceil(max parallelism / slots per TM)` (one
    /// slot-sharing group).
    pub fn required_task_managers(&self) -> u32 {
        self.max_parallelism()
            .div_ceil(self.slots_per_task_manager.max(1))
    }
}

/// The process side: starting and stopping TaskManagers (a Deployment and its ReplicaSet).
/// Cloned for each start: the HPA goes on syncing while pods start, as in a cluster.
pub trait TaskManagerControl: Clone + Send + 'static {
    /// Starts `n` TaskManagers at once, as a ReplicaSet creates pods (returns their ids
    /// when they are registered).
    fn start(
        &mut self,
        n: u32,
    ) -> impl Future<Output = std::result::Result<Vec<String>, String>> + Send;
    /// Stops one TaskManager with all slots free; `Err(why)` (and nothing stopped) when
    /// none is idle.
    fn stop_idle(&mut self) -> impl Future<Output = std::result::Result<String, String>> + Send;
}

/// What one KEDA/HPA call round saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Round {
    /// Operator poll (`pollingInterval`).
    Poll,
    /// HPA sync.
    HpaSync,
}

/// One round of the driver.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the driver's origin.
    pub at: Duration,
    /// Which round.
    pub round: Round,
    /// `GetMetrics` value summed over metric values (`Err(status)` on failure).
    pub reported: std::result::Result<f64, String>,
    /// `IsActive` (`None` when it failed).
    pub active: Option<bool>,
    /// Replicas after this round.
    pub replicas: u32,
    /// What the driver did (`started fks-tm-2`, `stopped fks-tm-2`, `refused: ...`).
    pub actions: Vec<Action>,
}

/// A replica change the driver made or could not make.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The HPA sync raised the replicas (seconds since the origin, from → to), before the
    /// pods were started: splits "HPA sync" from "TaskManager start" in P1's breakdown.
    Scaled(f64, u32, u32),
    /// A TaskManager was started: its id, when the HPA sync created its pod and when it
    /// registered (seconds since the origin; recorded in the first round after that).
    Started {
        /// Resource id.
        id: String,
        /// The sync that raised the replicas.
        created_at: f64,
        /// When Flink listed it.
        registered_at: f64,
    },
    /// An idle TaskManager was stopped (its id).
    Stopped(String),
    /// A TaskManager could not be started.
    StartFailed(String),
    /// No idle TaskManager to stop.
    Refused(String),
}

/// What the driver hands back.
#[derive(Debug, Default, Clone)]
pub struct DriverReport {
    /// Every round.
    pub samples: Vec<Sample>,
}

impl DriverReport {
    /// TaskManagers whose pods the HPA created at or after `from_s` and that registered by
    /// `to_s` (seconds since the origin): the registration time alone cannot tell a spare
    /// that registered just as the step began from a pod created for the step.
    pub fn created_and_registered_within(&self, from_s: f64, to_s: f64) -> usize {
        self.samples
            .iter()
            .flat_map(|s| s.actions.iter())
            .filter(|a| {
                matches!(a, Action::Started { created_at, registered_at, .. }
                    if *created_at >= from_s && *registered_at <= to_s)
            })
            .count()
    }

    /// Refused or failed replica changes.
    pub fn refused(&self) -> Vec<String> {
        self.samples
            .iter()
            .flat_map(|s| s.actions.iter())
            .filter_map(|a| match a {
                Action::Refused(why) | Action::StartFailed(why) => Some(why.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The newest values, for a live view while the driver runs.
#[derive(Debug, Clone, Default)]
pub struct DriverState {
    /// Replicas.
    pub replicas: u32,
    /// Last `GetMetrics` value.
    pub reported: Option<std::result::Result<f64, String>>,
}

/// Handle of a running driver.
pub struct Driver {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<DriverState>>,
    task: tokio::task::JoinHandle<Result<DriverReport>>,
}

impl Driver {
    /// Starts driving `scaled_object` on `grpc_addr` (`127.0.0.1:port`) with `initial`
    /// replicas; sample times are measured from `origin`.
    pub fn start<C: TaskManagerControl>(
        grpc_addr: String,
        scaled_object: ScaledObjectRef,
        config: DriverConfig,
        initial: u32,
        control: C,
        origin: Instant,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(DriverState {
            replicas: initial,
            reported: None,
        }));
        let run = Run {
            addr: grpc_addr,
            so: scaled_object,
            polling_interval: config.polling_interval,
            hpa: Hpa::with_config(initial, config.hpa),
            origin,
            stop: stop.clone(),
            state: state.clone(),
        };
        let task = tokio::spawn(run.run(control));
        Self { stop, state, task }
    }

    /// The newest replicas and value.
    pub fn state(&self) -> DriverState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops and returns the report.
    pub async fn finish(self) -> Result<DriverReport> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.map_err(|e| LabError::Grpc {
            what: "driver task".into(),
            detail: e.to_string(),
        })?
    }
}

/// A background start that ended.
struct StartDone {
    pods: u32,
    created_at: f64,
    ended_at: f64,
    result: std::result::Result<Vec<String>, String>,
}

type StartsDone = tokio::sync::mpsc::UnboundedReceiver<StartDone>;

struct Run {
    addr: String,
    so: ScaledObjectRef,
    polling_interval: Duration,
    /// The HPA model; its `replicas` are the TaskManagers actually running.
    hpa: Hpa,
    origin: Instant,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<DriverState>>,
}

type Client = ExternalScalerClient<tonic::transport::Channel>;

/// `GetMetricSpec` → `GetMetrics` → `IsActive`, as KEDA does per round: (sum of values,
/// target, active).
async fn keda_round(
    client: &mut Client,
    r: &ScaledObjectRef,
) -> (std::result::Result<(f64, f64), String>, Option<bool>) {
    let value = async {
        let spec = client
            .get_metric_spec(r.clone())
            .await
            .map_err(|e| format!("GetMetricSpec {:?}: {}", e.code(), e.message()))?
            .into_inner();
        let m = spec
            .metric_specs
            .first()
            .ok_or("GetMetricSpec: empty metric spec list")?;
        #[allow(deprecated)]
        let target = if m.target_size_float > 0.0 {
            m.target_size_float
        } else {
            m.target_size as f64
        };
        let resp = client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(r.clone()),
                metric_name: m.metric_name.clone(),
            })
            .await
            .map_err(|e| format!("GetMetrics {:?}: {}", e.code(), e.message()))?
            .into_inner();
        #[allow(deprecated)]
        let sum: f64 = resp
            .metric_values
            .iter()
            .map(|v| {
                if v.metric_value_float != 0.0 {
                    v.metric_value_float
                } else {
                    v.metric_value as f64
                }
            })
            .sum();
        Ok::<(f64, f64), String>((sum, target))
    }
    .await;
    let active = client
        .is_active(r.clone())
        .await
        .ok()
        .map(|a| a.into_inner().result);
    (value, active)
}

impl Run {
    async fn run<C: TaskManagerControl>(mut self, mut control: C) -> Result<DriverReport> {
        let mut client = ExternalScalerClient::connect(format!("http://{}", self.addr))
            .await
            .map_err(|e| LabError::Grpc {
                what: format!("connect to {}", self.addr),
                detail: e.to_string(),
            })?;
        let mut report = DriverReport::default();
        let sync_period = Duration::from_secs_f64(self.hpa.config.sync_period_s);
        let start = tokio::time::Instant::now();
        let (mut next_poll, mut next_sync) = (start, start + sync_period);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        while !self.stop.load(Ordering::SeqCst) {
            let now = tokio::time::Instant::now();
            let round = if now >= next_sync {
                next_sync += sync_period;
                Round::HpaSync
            } else if now >= next_poll {
                next_poll += self.polling_interval;
                Round::Poll
            } else {
                let wake = next_poll.min(next_sync);
                tokio::time::sleep_until(wake.min(now + Duration::from_millis(250))).await;
                continue;
            };
            let (value, active) = keda_round(&mut client, &self.so).await;
            let mut actions = self.finished_starts(&mut done_rx);
            if let (Round::HpaSync, Ok((sum, target))) = (&round, &value) {
                actions.extend(self.hpa_step(*sum, *target, &mut control, &done_tx).await);
            }
            let reported = value.map(|(sum, _)| sum);
            if let Ok(mut s) = self.state.lock() {
                s.replicas = self.hpa.replicas;
                s.reported = Some(reported.clone());
            }
            report.samples.push(Sample {
                at: self.origin.elapsed(),
                round,
                reported,
                active,
                replicas: self.hpa.replicas,
                actions,
            });
        }
        Ok(report)
    }

    /// The starts that ended since the last round: their TaskManagers registered, or the
    /// start failed (its pods no longer count as replicas).
    fn finished_starts(&mut self, done: &mut StartsDone) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Ok(start) = done.try_recv() {
            match start.result {
                Ok(ids) => actions.extend(ids.into_iter().map(|id| Action::Started {
                    id,
                    created_at: start.created_at,
                    registered_at: start.ended_at,
                })),
                Err(why) => {
                    self.hpa.replicas = self.hpa.replicas.saturating_sub(start.pods);
                    actions.push(Action::StartFailed(why));
                }
            }
        }
        actions
    }

    /// One HPA sync: the model's replica count, then pods created (started in the
    /// background: the next syncs do not wait for them to register, as the HPA does not
    /// wait for pods) or idle ones stopped until the running count reaches it (or the
    /// process side refuses).
    async fn hpa_step<C: TaskManagerControl>(
        &mut self,
        sum: f64,
        target: f64,
        control: &mut C,
        done: &tokio::sync::mpsc::UnboundedSender<StartDone>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let now = self.origin.elapsed().as_secs_f64();
        let Some(desired) = self.hpa.desired(now, sum, target) else {
            return actions;
        };
        if self.hpa.replicas < desired {
            actions.push(Action::Scaled(now, self.hpa.replicas, desired));
            let pods = desired - self.hpa.replicas;
            let (mut control, done, origin) = (control.clone(), done.clone(), self.origin);
            tokio::spawn(async move {
                let result = control.start(pods).await;
                let ended_at = origin.elapsed().as_secs_f64();
                let _ = done.send(StartDone {
                    pods,
                    created_at: now,
                    ended_at,
                    result,
                });
            });
            self.hpa.replicas = desired;
        }
        while self.hpa.replicas > desired {
            match control.stop_idle().await {
                Ok(id) => {
                    self.hpa.replicas -= 1;
                    actions.push(Action::Stopped(id));
                }
                Err(why) => {
                    actions.push(Action::Refused(why));
                    break;
                }
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, actions: Vec<Action>) -> Sample {
        Sample {
            at: Duration::from_secs_f64(at),
            round: Round::HpaSync,
            reported: Ok(0.0),
            active: Some(true),
            replicas: 0,
            actions,
        }
    }

    #[test]
    fn a_spare_registered_as_the_step_began_was_not_created_for_it() {
        let started = |id: &str, created_at, registered_at| Action::Started {
            id: id.into(),
            created_at,
            registered_at,
        };
        let report = DriverReport {
            samples: vec![
                sample(3.0, vec![Action::Scaled(3.0, 2, 4)]),
                // the spare: created at 3 s, registered at 24 s (recorded a round later)
                sample(
                    25.0,
                    vec![started("tm-2", 3.0, 24.0), started("tm-3", 3.0, 24.0)],
                ),
                sample(37.0, vec![Action::Scaled(37.0, 4, 5)]),
                // created for the step at 37 s, registered at 72 s
                sample(74.0, vec![started("tm-4", 37.0, 72.0)]),
            ],
        };
        assert_eq!(report.created_and_registered_within(24.0, 42.0), 0);
        assert_eq!(report.created_and_registered_within(24.0, 80.0), 1);
        assert_eq!(report.created_and_registered_within(0.0, 80.0), 3);
    }

    #[test]
    fn required_task_managers_round_up() {
        let v = FlinkView {
            vertices: vec![("a".into(), 3), ("b".into(), 1)],
            slots_per_task_manager: 2,
            ..FlinkView::default()
        };
        assert_eq!(v.max_parallelism(), 3);
        assert_eq!(v.required_task_managers(), 2);
    }
}
