//! Model constants of the simulator, each with its source. `docs/simulator.md` lists
//! them in one table. Times are in seconds.

/// Simulation step (s). Fine enough to resolve a 5 s in-place pause.
pub const STEP_S: f64 = 5.0;

/// TaskManager start-up: pod scheduling + image pull (cached) + JVM start + registration
/// with the ResourceManager. Assumption in the 30–60 s range given in the simulator brief;
/// the Flink reactive-mode blog (2021-05-06) reports TaskManager pods joining in well under
/// a minute.
pub const TM_STARTUP_S: f64 = 45.0;

/// Pause of an in-place rescale once triggered: tasks are cancelled, redeployed and
/// restored from the latest completed checkpoint while the processes stay up (Flink 1.18
/// release blog: "not based on a Savepoint, but on an ordinary, periodic checkpoint";
/// `elastic_scaling.md` "Scaling events trigger job and task restarts"). A few seconds for
/// small state; assumption.
pub const IN_PLACE_PAUSE_S: f64 = 5.0;

/// Checkpoint interval of the modelled job (`execution.checkpointing.interval`).
/// Flink 2.x (FLIP-461, FLINK-35549) waits for the next completed checkpoint before an
/// in-place rescale, bounded by `rescale-trigger.max-delay` = interval × (2 + 1).
/// 60 s is a common production interval; assumption.
pub const CHECKPOINT_INTERVAL_S: f64 = 60.0;

/// From the slots being usable to the checkpoint our scaler triggers having completed
/// (`runtime::apply::CheckpointNudger`: the job read every 0.5 s, then one checkpoint of
/// small state, 0.05–0.6 s measured on 2.3.0 and 1.20.5 in `flink::checkpoint`).
pub const NUDGED_CHECKPOINT_S: f64 = 1.5;

/// Adaptive scheduler `executing.resource-stabilization-timeout` default 60 s (Flink 2.0,
/// FLINK-36014): with only "sufficient" (not "desired") slots it rescales to what it has
/// after this delay.
pub const RESOURCE_STABILIZATION_TIMEOUT_S: f64 = 60.0;

/// Full-restart downtime of a restart-based rescale (savepoint/last-state stop, resubmit,
/// checkpoint recovery, Kafka consumer-group rebalance): "Checkpoint recovery and Kafka
/// consumer group reorganization took 2-3+ minutes before actual processing resumed"
/// (nanta-data.dev, "Flink in-place scaling"). Midpoint 150 s; it covers the new
/// TaskManager pods' start-up, which happens during the redeploy.
pub const FULL_RESTART_S: f64 = 150.0;

/// Extra delay after a restart of any kind before the Kafka source consumes at full speed
/// (consumer-group rebalance / split re-assignment). Part of the 2–3 min above for full
/// restarts; applied alone to reactive-mode restarts. Assumption.
pub const KAFKA_REBALANCE_S: f64 = 10.0;

/// `heartbeat.timeout` default 50 s: a TaskManager removed while it still runs tasks is
/// only detected after this stall (Flink configuration docs; reactive-mode blog: scale-down
/// "waits out heartbeat.timeout").
pub const HEARTBEAT_TIMEOUT_S: f64 = 50.0;

/// KEDA `pollingInterval` default 30 s (KEDA ScaledObject spec).
pub const KEDA_POLLING_INTERVAL_S: f64 = 30.0;

/// HPA `--horizontal-pod-autoscaler-sync-period` default 15 s (Kubernetes docs).
pub const HPA_SYNC_PERIOD_S: f64 = 15.0;

/// HPA tolerance default 0.1: no change while |1 − usage/(target × replicas)| ≤ 0.1
/// (Kubernetes replica calculator, `--horizontal-pod-autoscaler-tolerance`).
pub const HPA_TOLERANCE: f64 = 0.1;

/// HPA default `behavior.scaleDown.stabilizationWindowSeconds` 300 s: the highest
/// recommendation of the last 5 min is used for scale-down (Kubernetes docs).
pub const HPA_SCALE_DOWN_STABILIZATION_S: f64 = 300.0;

/// HPA default `behavior.scaleUp.policies`: `Percent 100` and `Pods 4` per 15 s, the larger
/// (Kubernetes docs, "Default Policies").
pub const HPA_SCALE_UP_PERCENT: f64 = 100.0;

/// See [`HPA_SCALE_UP_PERCENT`].
pub const HPA_SCALE_UP_PODS: u32 = 4;

/// Window over which the simulated Prometheus `rate()`/`avg_over_time()` signals of our
/// scaler are averaged (a `[1m]` range). Assumption matching the scaler's default queries.
pub const OBS_WINDOW_S: f64 = 60.0;

/// Flink operator `kubernetes.operator.reconcile.interval` default 60 s: the autoscaler
/// runs once per reconcile (Flink operator docs).
pub const OPERATOR_LOOP_S: f64 = 60.0;
/// `job.autoscaler.metrics.window` default 15 min (Flink operator docs, ≥ 1.8).
pub const OPERATOR_METRICS_WINDOW_S: f64 = 900.0;
/// `job.autoscaler.stabilization.interval` default 5 min (Flink operator docs).
pub const OPERATOR_STABILIZATION_S: f64 = 300.0;
/// `job.autoscaler.scale-down.interval` default 1 h (FLINK-36018).
pub const OPERATOR_SCALE_DOWN_INTERVAL_S: f64 = 3600.0;
/// `job.autoscaler.utilization.target` default 0.7 (Flink operator docs).
pub const OPERATOR_TARGET_UTILIZATION: f64 = 0.7;
/// `job.autoscaler.target.utilization.boundary` default 0.3: bounds are target ± 0.3.
pub const OPERATOR_UTILIZATION_BOUNDARY: f64 = 0.3;
/// `job.autoscaler.catch-up.duration` default 30 min.
pub const OPERATOR_CATCH_UP_S: f64 = 1800.0;
/// `job.autoscaler.restart.time` default 5 min.
pub const OPERATOR_RESTART_TIME_S: f64 = 300.0;
/// `job.autoscaler.scale-down.max-factor` default 0.6: new ≥ 40 % of current.
pub const OPERATOR_SCALE_DOWN_MAX_FACTOR: f64 = 0.6;
/// `job.autoscaler.backlog-processing.lag-threshold` default 5 min: no scale-down while
/// any source's lag exceeds this many seconds of input (FLINK-31318).
pub const OPERATOR_BACKLOG_THRESHOLD_S: f64 = 300.0;

/// AWS Managed Service for Apache Flink: scale up when CPU ≥ 75 % (AWS docs,
/// "how-scaling-auto").
pub const AWS_SCALE_UP_CPU: f64 = 0.75;
/// ... for 15 consecutive 1-minute datapoints.
pub const AWS_SCALE_UP_MINUTES: u32 = 15;
/// Scale down when CPU < 10 % ...
pub const AWS_SCALE_DOWN_CPU: f64 = 0.10;
/// ... for 6 hours (360 datapoints).
pub const AWS_SCALE_DOWN_MINUTES: u32 = 360;

/// Fixed-peak baseline: busy fraction of the bottleneck vertex at the trace's peak.
/// Assumption (sized like the operator's target utilisation plus some margin).
pub const FIXED_PEAK_UTILIZATION: f64 = 0.8;

/// Baseline CPU load of an idle TaskManager (JVM, network threads, metrics). Assumption.
pub const CPU_IDLE: f64 = 0.05;

/// Tick of our scaler's runtime: one decision per HPA sync (15 s), the cadence at which
/// KEDA asks for the metric. Assumption matching the runtime's default.
pub const OURS_TICK_S: f64 = 15.0;

/// `resourcemanager.taskmanager-timeout` default 30 s: Flink's native resource manager
/// releases a TaskManager once it has been idle this long (Flink configuration docs). Used
/// for the operator's in-place mode, where Flink, not KEDA, owns the TaskManager pods.
pub const TM_IDLE_TIMEOUT_S: f64 = 30.0;
