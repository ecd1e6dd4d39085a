//! The scenario's profile: its phases' timings, the load and the job's sizes, KEDA's and
//! the HPA's periods, and the scaler config it runs with (the policy; the product's default
//! signal queries, which react within a few scrape intervals); the `full` profile for the demo and the benchmarks, the
//! `short` one for CI. Two workloads: the I/O-bound one (the default: each keyed subtask
//! waits for a simulated external call, so capacity is `parallelism × C` on any machine)
//! and the CPU-bound one (capacity is this machine's cores; kept as a labelled second
//! scenario).

use std::time::Duration;

use fks_components::flink_cluster::TaskManagerJvm;

/// Job name in Flink (and `jobName` in the trigger metadata).
pub const JOB_NAME: &str = "fks-demo-job";

/// What the keyed operator spends per record (`--work` of the load job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// I/O-bound: each subtask processes at most this many records/s, waiting (parked, no
    /// CPU) for a simulated external call; Flink counts the wait as busy time.
    Io {
        /// Records/s per subtask.
        per_subtask: u32,
    },
    /// CPU-bound: this many loop iterations per record (~0.7 ms at 400,000 here).
    Cpu {
        /// Iterations per record.
        iterations: u32,
    },
}

impl Workload {
    /// The load job's `--work` argument.
    pub fn arg(&self) -> String {
        match self {
            Self::Io { per_subtask } => format!("io:{per_subtask}"),
            Self::Cpu { iterations } => format!("cpu:{iterations}"),
        }
    }

    /// How the TaskManager JVMs start: with the class-data-sharing archive, and C1 only
    /// when the capacity is not the CPU (the I/O-bound operator waits: slower compiled
    /// code changes nothing it measures, and a starting pod costs ~40 % less CPU on the
    /// shared cores; the CPU-bound scenario keeps C2, its capacity is compiled code).
    pub fn task_manager_jvm(&self) -> TaskManagerJvm {
        TaskManagerJvm {
            c1_only: matches!(self, Self::Io { .. }),
            ..TaskManagerJvm::default()
        }
    }

    /// The scenario's label (`io`, `cpu`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Cpu { .. } => "cpu",
        }
    }

    /// Records/s one subtask can process: the I/O-bound cap, or the CPU-bound work's
    /// nominal ~0.7 ms per record on a free core (on this machine's 2 shared cores the
    /// real capacity is lower: the oracle's figure is then a lower bound of what is needed).
    pub fn per_subtask_capacity(&self) -> f64 {
        match self {
            Self::Io { per_subtask } => f64::from(*per_subtask),
            Self::Cpu { .. } => 1000.0 / 0.7,
        }
    }

    /// One sentence for the reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Io { per_subtask } => format!(
                "I/O-bound: each keyed subtask processes at most {per_subtask} records/s, waiting (parked, no CPU) for a simulated external call (`--work io:{per_subtask}`), so capacity is parallelism × {per_subtask} records/s on any machine"
            ),
            Self::Cpu { iterations } => format!(
                "CPU-bound: ~0.7 ms of CPU per record in the keyed operator ({iterations} iterations), so capacity is this machine's 2 cores, not the parallelism"
            ),
        }
    }
}

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
    /// What the keyed operator spends per record.
    pub work: Workload,
    /// The job's max parallelism (key groups).
    pub max_parallelism: u32,
    /// The policy's `targetUtilization`.
    pub target_utilization: f64,
    /// The policy's `catchUpDuration`.
    pub catch_up: Duration,
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
    /// The policy's `spareTaskManagers` (0: none; see [`Profile::with_spare`]).
    pub spare: u32,
}

impl Profile {
    /// The demo and benchmark run: KEDA's and the HPA's timings as in a cluster
    /// (HPA sync 15 s = Kubernetes' default, pollingInterval 5 s, no scale-down
    /// stabilization and the whole scale-up in one sync, as the example ScaledObjects ship
    /// them), one minute steady, at least two minutes at 3×.
    pub fn full() -> Self {
        Self {
            name: "full",
            steady: Duration::from_secs(60),
            step_min: Duration::from_secs(120),
            step_max: Duration::from_secs(240),
            back_max: Duration::from_secs(300),
            settle: Duration::from_secs(20),
            ..Self::short()
        }
        .with_keda(
            Duration::from_secs(5),
            Duration::from_secs(15),
            Duration::ZERO,
        )
    }

    /// The CI profile: the same scenario, shorter phases and 2 s KEDA/HPA periods; the
    /// step ends as soon as the job scaled up.
    ///
    /// The I/O-bound workload at 500 records/s per subtask, one slot per TaskManager (every
    /// parallelism step is a TaskManager), 120 key groups (1–6 and 8 subtasks split them
    /// evenly): 600 records/s need 2 TaskManagers at a 0.7 target utilization
    /// (350 records/s each), the 3× step to 1,800 needs 6, at most 8.
    pub fn short() -> Self {
        Self {
            name: "short",
            steady: Duration::from_secs(20),
            step_min: Duration::ZERO,
            step_max: Duration::from_secs(180),
            back_max: Duration::from_secs(180),
            settle: Duration::from_secs(4),
            low_rate: 600,
            factor: 3,
            work: Workload::Io { per_subtask: 500 },
            max_parallelism: 120,
            target_utilization: 0.7,
            // The product default: a backlog is drained over 5 minutes, so a decision a few
            // seconds after the step sizes for the arrival rate (6), not for 7–8.
            catch_up: Duration::from_secs(300),
            partitions: 8,
            slots: 1,
            min_task_managers: 2,
            max_task_managers: 8,
            polling_interval: Duration::from_secs(2),
            hpa_sync_period: Duration::from_secs(2),
            // as the example ScaledObjects ship: the core settles scale-downs itself
            hpa_stabilization: Duration::ZERO,
            // every scrape (1 s): a tick between two scrapes reads what the last one read
            evaluation_interval: Duration::from_secs(1),
            // 600 records/s on 6 TaskManagers is busy 0.2: under the band, so the job scales
            // back down; on 2 it is 0.6: inside the band, so it stays.
            utilization_low: 0.4,
            sample_every: Duration::from_secs(1),
            spare: 0,
        }
    }

    /// The same run with a warm spare that covers the step: `spareTaskManagers` = the
    /// step's extra TaskManagers (those the high rate needs over the low rate's), and
    /// `maxTaskManagers` raised so the spare is whole again on top of the high rate's
    /// TaskManagers (I/O-bound: 2 → 6 TaskManagers, spare 4, at most 10).
    pub fn with_spare(self) -> Self {
        let low = self.needed_task_managers(f64::from(self.low_rate));
        let high = self.needed_task_managers(f64::from(self.high_rate()));
        let spare = high.saturating_sub(low);
        Self {
            spare,
            max_task_managers: self.max_task_managers.max(high + spare),
            ..self
        }
    }

    /// TaskManagers the scaler's target utilization needs for `rate` records/s (at least
    /// `minTaskManagers`).
    pub fn needed_task_managers(&self, rate: f64) -> u32 {
        self.task_managers_at(rate, self.target_utilization)
    }

    /// The oracle that knows the schedule: the fewest TaskManagers that can process `rate`
    /// records/s at all (every subtask at its capacity; at least `minTaskManagers`).
    pub fn oracle_task_managers(&self, rate: f64) -> u32 {
        self.task_managers_at(rate, 1.0)
    }

    fn task_managers_at(&self, rate: f64, utilization: f64) -> u32 {
        let per_slot = self.work.per_subtask_capacity() * utilization;
        let subtasks = (rate / per_slot).ceil().max(1.0) as u32;
        subtasks
            .div_ceil(self.slots.max(1))
            .max(self.min_task_managers)
    }

    /// TaskManagers the job should have registered with `required` in use: the spare on
    /// top, bounded by `maxTaskManagers` (as the scaler reports).
    pub fn with_spare_on(&self, required: u32) -> u32 {
        required
            .max(self.min_task_managers)
            .saturating_add(self.spare)
            .min(self.max_task_managers.max(required))
    }

    /// The same run with the CPU-bound workload (the second, labelled scenario): ~0.7 ms of
    /// CPU per record, 650 records/s keep one keyed subtask ~45 % busy, 3× saturates it and
    /// needs 2–3 subtasks, within a 2-core machine's reach; 1 to 4 TaskManagers. On a
    /// contended 2-core runner busy time also counts time waiting for a CPU, so this
    /// scenario measures the machine as much as the scaler.
    pub fn cpu(self) -> Self {
        Self {
            low_rate: 650,
            work: Workload::Cpu {
                iterations: 400_000,
            },
            max_parallelism: 128,
            target_utilization: 0.5,
            catch_up: Duration::from_secs(60),
            min_task_managers: 1,
            max_task_managers: 4,
            utilization_low: if self.name == "full" { 0.2 } else { 0.4 },
            ..self
        }
    }

    /// The scenario's label: the workload's (`io`, `cpu`).
    pub fn scenario(&self) -> &'static str {
        self.work.label()
    }

    fn with_keda(mut self, polling: Duration, sync: Duration, stabilization: Duration) -> Self {
        self.polling_interval = polling;
        self.hpa_sync_period = sync;
        self.hpa_stabilization = stabilization;
        self
    }

    /// The scaler's `scaleUpDelay` in [`Self::scaler_config`]: the product default (0).
    /// The first decision after a step is sized right without it: the runtime hands the
    /// core the learned signal window (10 s of counters plus a 1 s scrape here) and a
    /// scale-up waits, at most that long, while its target rates still grow.
    pub fn scale_up_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// The parallelism the job is submitted at: every slot of the first TaskManagers.
    pub fn initial_parallelism(&self) -> u32 {
        self.min_task_managers.max(1) * self.slots
    }

    /// The high rate.
    pub fn high_rate(&self) -> u32 {
        self.low_rate * self.factor
    }

    /// The scaler's config for this profile: the policy below and the product's default
    /// queries (counters over a window derived from the learned 1 s scrape interval).
    pub fn scaler_config(&self, prom_url: &str) -> String {
        format!(
            "grpc:\n  listenAddress: \"127.0.0.1:50051\"\n  rpcTimeout: 5s\n  streamInterval: 2s\n\
             http:\n  listenAddress: \"127.0.0.1:8080\"\n\
             evaluation:\n  interval: {eval}s\n  idleTimeout: 10m\n\
             prometheus:\n  default:\n    url: \"{prom_url}\"\n    timeout: 3s\n\
             flink:\n  timeout: 3s\n  rescaleTimeout: 90s\n\
             kubernetes:\n  enabled: false\n\
             policies:\n  default:\n\
             \x20   targetUtilization: {target}\n    utilizationLow: {low}\n    utilizationHigh: 0.9\n\
             \x20   catchUpDuration: {catch_up}s\n    stabilization: 15s\n    scaleUpDelay: {up}s\n    scaleDownDelay: 20s\n\
             \x20   maxScaleDownFactor: 0.75\n    cooldown: 20s\n    maxRescalesPerHour: 30\n\
             \x20   minTaskManagers: {min}\n    maxTaskManagers: {max}\n\
             \x20   slotsPerTaskManager: {slots}\n    spareTaskManagers: {spare}\n",
            eval = self.evaluation_interval.as_secs().max(1),
            up = self.scale_up_delay().as_secs(),
            low = self.utilization_low,
            target = self.target_utilization,
            catch_up = self.catch_up.as_secs(),
            min = self.min_task_managers,
            max = self.max_task_managers,
            slots = self.slots,
            spare = self.spare,
        )
    }
}

/// Flink settings of a latency-critical job: buffer debloating keeps about one second of
/// records in flight between tasks, so a backlog shows in the source's `pendingRecords`
/// (where the scaler sees it) instead of hiding in network buffers — with Flink's default
/// 32 KiB buffers tens of thousands of small records fit in flight, ~20 s of this job's
/// excess load after a step.
///
/// 4 KiB network buffers (`taskmanager.memory.segment-size`): Flink 1.20.5 otherwise keeps
/// tens of thousands of these small records in flight after each rescale, and the source's
/// `pendingRecords` reads ~0 for ~40 s while the backlog is real (throughput unchanged).
pub const LATENCY_CONFIG: &str = "taskmanager.network.memory.buffer-debloat.enabled: true\n\
     taskmanager.network.memory.buffer-debloat.target: 1s\n\
     taskmanager.memory.segment-size: 4kb\n";

#[cfg(test)]
mod tests {
    use super::*;
    use flink_keda_scaler::config::Config;

    #[test]
    fn every_profile_gives_a_valid_scaler_config_on_the_default_queries() {
        for p in [
            Profile::full(),
            Profile::short(),
            Profile::full().cpu(),
            Profile::short().cpu(),
        ] {
            let text = p.scaler_config("http://127.0.0.1:9090");
            let config = Config::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.name));
            let policy = config.policies.get("default").expect("default policy");
            assert!(policy.queries.is_empty(), "{}: no query overrides", p.name);
            assert_eq!(policy.target_utilization, Some(p.target_utilization));
            assert_eq!(policy.min_task_managers, Some(p.min_task_managers));
        }
    }

    /// The spare covers the step: 600 → 1,800 records/s at 350 per subtask (0.7 × 500)
    /// needs 2 → 6 TaskManagers, so spare 4 and at most 10; the oracle needs 2 and 4.
    #[test]
    fn the_spare_covers_the_step_and_the_oracle_runs_at_capacity() {
        let p = Profile::short().with_spare();
        assert_eq!((p.spare, p.max_task_managers), (4, 10));
        assert_eq!(p.with_spare_on(2), 6);
        assert_eq!(p.with_spare_on(6), 10);
        assert_eq!(p.oracle_task_managers(600.0), 2);
        assert_eq!(p.oracle_task_managers(1800.0), 4);
        assert_eq!(Profile::short().with_spare_on(6), 6, "no spare");
        let text = p.scaler_config("http://127.0.0.1:9090");
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let policy = config.policies.get("default").expect("default policy");
        assert_eq!(policy.spare_task_managers, Some(4));
        assert_eq!(policy.max_task_managers, Some(10));
    }

    #[test]
    fn the_full_profile_uses_cluster_timings() {
        let p = Profile::full();
        assert_eq!(p.hpa_sync_period, Duration::from_secs(15));
        assert_eq!(p.high_rate(), 3 * p.low_rate);
        assert!(p.step_min >= Duration::from_secs(60));
    }
}
