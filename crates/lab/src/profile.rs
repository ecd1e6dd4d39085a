//! The scenario's profile: its phases' timings, the load and the job's sizes, KEDA's and
//! the HPA's periods, and the scaler config it runs with (the policy and the fast signal
//! queries of [`FAST_QUERIES`]); the `full` profile for the demo and the benchmarks, the
//! `short` one for CI.

use std::time::Duration;

/// Job name in Flink (and `jobName` in the trigger metadata).
pub const JOB_NAME: &str = "fks-demo-job";

/// Timings, load and sizes of one run.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Name (`full`, `short`).
    pub name: &'static str,
    /// Steady phase before the step.
    pub steady: Duration,
    /// Least time at the high rate.
    pub step_min: Duration,
    /// Most time at the high rate before giving up on the scale-up.
    pub step_max: Duration,
    /// Most time at the low rate before giving up on the scale-down.
    pub back_max: Duration,
    /// Extra seconds after the scale-down (to show the settled state).
    pub settle: Duration,
    /// Records/s when steady.
    pub low_rate: u32,
    /// The step factor.
    pub factor: u32,
    /// CPU iterations per record in the keyed operator.
    pub work: u32,
    /// Topic partitions.
    pub partitions: u32,
    /// Slots per TaskManager.
    pub slots: u32,
    /// `minReplicaCount` / `minTaskManagers`.
    pub min_task_managers: u32,
    /// `maxReplicaCount` / `maxTaskManagers`.
    pub max_task_managers: u32,
    /// KEDA `pollingInterval`.
    pub polling_interval: Duration,
    /// HPA sync period.
    pub hpa_sync_period: Duration,
    /// HPA scale-down stabilization window.
    pub hpa_stabilization: Duration,
    /// The scaler's `evaluation.interval`.
    pub evaluation_interval: Duration,
    /// The policy's `utilizationLow` (the band's lower edge).
    pub utilization_low: f64,
    /// Sample period of the observer.
    pub sample_every: Duration,
}

impl Profile {
    /// The demo and benchmark run: KEDA's and the HPA's timings as in a cluster
    /// (HPA sync 15 s = Kubernetes' default, pollingInterval 5 s, scale-down
    /// stabilization 30 s), one minute steady, at least two minutes at 3×.
    pub fn full() -> Self {
        Self {
            name: "full",
            steady: Duration::from_secs(60),
            step_min: Duration::from_secs(120),
            step_max: Duration::from_secs(240),
            back_max: Duration::from_secs(300),
            settle: Duration::from_secs(20),
            utilization_low: 0.2,
            ..Self::short()
        }
        .with_keda(
            Duration::from_secs(5),
            Duration::from_secs(15),
            Duration::from_secs(30),
        )
    }

    /// The CI profile: the same scenario, shorter phases and 2 s KEDA/HPA periods; the
    /// step ends as soon as the job scaled up.
    pub fn short() -> Self {
        Self {
            name: "short",
            steady: Duration::from_secs(20),
            step_min: Duration::ZERO,
            step_max: Duration::from_secs(180),
            back_max: Duration::from_secs(180),
            settle: Duration::from_secs(4),
            // ~0.7 ms of CPU per record: 650 records/s keep one keyed subtask ~45 % busy,
            // 3× saturates it and needs 2–3 subtasks, still within a 2-core machine's
            // reach. One slot per TaskManager: every parallelism step is a TaskManager.
            low_rate: 650,
            factor: 3,
            work: 400_000,
            partitions: 8,
            slots: 1,
            min_task_managers: 1,
            max_task_managers: 4,
            polling_interval: Duration::from_secs(2),
            hpa_sync_period: Duration::from_secs(2),
            hpa_stabilization: Duration::from_secs(20),
            evaluation_interval: Duration::from_secs(2),
            // The product default. On a contended 2-core CI runner four TaskManagers show
            // busy ≈ 0.36 at the low rate (busy time counts time waiting for a CPU): inside a
            // 0.2 band, where the anti-flap rightly holds and the test would see no
            // scale-down.
            utilization_low: 0.4,
            sample_every: Duration::from_secs(1),
        }
    }

    fn with_keda(mut self, polling: Duration, sync: Duration, stabilization: Duration) -> Self {
        self.polling_interval = polling;
        self.hpa_sync_period = sync;
        self.hpa_stabilization = stabilization;
        self
    }

    /// The scaler's `scaleUpDelay` in [`Self::scaler_config`].
    pub fn scale_up_delay(&self) -> Duration {
        Duration::from_secs(8)
    }

    /// The high rate.
    pub fn high_rate(&self) -> u32 {
        self.low_rate * self.factor
    }

    /// The scaler's config for this profile: the policy below and the fast signal queries
    /// of [`FAST_QUERIES`].
    pub fn scaler_config(&self, prom_url: &str) -> String {
        format!(
            "grpc:\n  listenAddress: \"127.0.0.1:50051\"\n  rpcTimeout: 5s\n  streamInterval: 2s\n\
             http:\n  listenAddress: \"127.0.0.1:8080\"\n\
             evaluation:\n  interval: {eval}s\n  idleTimeout: 10m\n\
             prometheus:\n  default:\n    url: \"{prom_url}\"\n    timeout: 3s\n\
             flink:\n  timeout: 3s\n  rescaleTimeout: 90s\n\
             kubernetes:\n  enabled: false\n\
             policies:\n  default:\n\
             \x20   targetUtilization: 0.5\n    utilizationLow: {low}\n    utilizationHigh: 0.9\n\
             \x20   catchUpDuration: 1m\n    stabilization: 15s\n    scaleUpDelay: {up}s\n    scaleDownDelay: 20s\n\
             \x20   maxScaleDownFactor: 0.75\n    cooldown: 20s\n    maxRescalesPerHour: 30\n\
             \x20   minTaskManagers: {min}\n    maxTaskManagers: {max}\n\
             \x20   slotsPerTaskManager: {slots}\n    queries:\n{queries}",
            eval = self.evaluation_interval.as_secs().max(1),
            up = self.scale_up_delay().as_secs(),
            low = self.utilization_low,
            min = self.min_task_managers,
            max = self.max_task_managers,
            slots = self.slots,
            queries = FAST_QUERIES
                .iter()
                .map(|(k, v)| format!("      {k}: '{v}'\n"))
                .collect::<String>(),
        )
    }
}

/// Signal queries that react within seconds. Flink's own per-second metrics
/// (`busyTimeMsPerSecond`, `numRecordsInPerSecond`, ...) are 60 s moving averages updated
/// every 5 s (`TimerGauge` and `MeterView` windows), so a load step takes a minute to show
/// in full. These use the counters behind them (`accumulateBusyTimeMs`, `numRecordsIn`,
/// `numRecordsOut`) over a 10 s window instead; the window must cover at least two
/// scrapes (here: Prometheus scrapes every second).
pub const FAST_QUERIES: [(&str, &str); 4] = [
    (
        "busyTime",
        r#"max by (task_id) (rate(flink_taskmanager_job_task_accumulateBusyTimeMs{ {{matchers}}job_id="{{job_id}}"}[10s]))"#,
    ),
    (
        "recordsIn",
        r#"sum by (task_id) (rate(flink_taskmanager_job_task_operator_numRecordsOut{ {{matchers}}job_id="{{job_id}}",operator_name=~"Source.*"}[10s])) or sum by (task_id) (rate(flink_taskmanager_job_task_numRecordsIn{ {{matchers}}job_id="{{job_id}}"}[10s]))"#,
    ),
    (
        "recordsOut",
        r#"sum by (task_id) (rate(flink_taskmanager_job_task_numRecordsOut{ {{matchers}}job_id="{{job_id}}"}[10s]))"#,
    ),
    (
        "lagGrowth",
        r#"sum by (task_id) (deriv(flink_taskmanager_job_task_operator_pendingRecords{ {{matchers}}job_id="{{job_id}}"}[5s]))"#,
    ),
];

/// Flink settings of a latency-critical job: buffer debloating keeps about one second of
/// records in flight between tasks, so a backlog shows in the source's `pendingRecords`
/// (where the scaler sees it) instead of hiding in network buffers — with Flink's default
/// 32 KiB buffers tens of thousands of small records fit in flight, ~20 s of this job's
/// excess load after a step.
pub const LATENCY_CONFIG: &str = "taskmanager.network.memory.buffer-debloat.enabled: true\n\
     taskmanager.network.memory.buffer-debloat.target: 1s\n";

#[cfg(test)]
mod tests {
    use super::*;
    use flink_keda_scaler::config::Config;

    #[test]
    fn both_profiles_give_a_valid_scaler_config_with_the_fast_queries() {
        for p in [Profile::full(), Profile::short()] {
            let text = p.scaler_config("http://127.0.0.1:9090");
            let config = Config::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.name));
            let policy = config.policies.get("default").expect("default policy");
            assert_eq!(policy.queries.len(), FAST_QUERIES.len(), "{}", p.name);
            for (signal, query) in FAST_QUERIES {
                assert_eq!(policy.queries.get(signal).map(String::as_str), Some(query));
            }
        }
    }

    #[test]
    fn the_full_profile_uses_cluster_timings() {
        let p = Profile::full();
        assert_eq!(p.hpa_sync_period, Duration::from_secs(15));
        assert_eq!(p.high_rate(), 3 * p.low_rate);
        assert!(p.step_min >= Duration::from_secs(60));
    }
}
