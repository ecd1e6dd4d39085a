//! The named signals the scaler reads from Prometheus. The names are stable: they key
//! query overrides in the config (`policies.<p>.queries.<signal>`) and in scalerMetadata
//! (`<signal>Query`), and they name the signal in errors ("signal pendingRecords: empty result").

use serde::{Deserialize, Serialize};

/// A Prometheus signal about a Flink job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Signal {
    /// Per vertex: busyTimeMsPerSecond, max over subtasks.
    BusyTime,
    /// Per vertex: backPressuredTimeMsPerSecond, max over subtasks.
    BackPressuredTime,
    /// Per vertex: records in per second (sources: the source operator's output rate).
    RecordsIn,
    /// Per vertex: records out per second.
    RecordsOut,
    /// Per source vertex: FLIP-33 pendingRecords (lag), summed over subtasks.
    PendingRecords,
    /// Per source vertex: growth rate of pendingRecords (records/s).
    LagGrowth,
    /// Per source vertex: records arriving per second (consumed + the backlog's growth),
    /// read over a window shorter than the load signals' so a step shows within seconds.
    ArrivalRate,
    /// Per source vertex: number of partitions (from Kafka per-partition offset series).
    SourcePartitions,
    /// Per TaskManager: JVM CPU load.
    CpuLoad,
    /// Per TaskManager: heap used bytes.
    HeapUsed,
    /// Per TaskManager: heap max bytes.
    HeapMax,
    /// Per TaskManager: GC time ms per second.
    GcTime,
    /// Per job: numRestarts.
    NumRestarts,
    /// Per job: numRescales (Flink versions that export it).
    NumRescales,
    /// Cluster: total task slots.
    SlotsTotal,
    /// Cluster: available task slots.
    SlotsAvailable,
}

impl Signal {
    /// Every signal, in a fixed order.
    pub const ALL: [Signal; 16] = [
        Signal::BusyTime,
        Signal::BackPressuredTime,
        Signal::RecordsIn,
        Signal::RecordsOut,
        Signal::PendingRecords,
        Signal::LagGrowth,
        Signal::ArrivalRate,
        Signal::SourcePartitions,
        Signal::CpuLoad,
        Signal::HeapUsed,
        Signal::HeapMax,
        Signal::GcTime,
        Signal::NumRestarts,
        Signal::NumRescales,
        Signal::SlotsTotal,
        Signal::SlotsAvailable,
    ];

    /// camelCase name (`busyTime`, `pendingRecords`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Signal::BusyTime => "busyTime",
            Signal::BackPressuredTime => "backPressuredTime",
            Signal::RecordsIn => "recordsIn",
            Signal::RecordsOut => "recordsOut",
            Signal::PendingRecords => "pendingRecords",
            Signal::LagGrowth => "lagGrowth",
            Signal::ArrivalRate => "arrivalRate",
            Signal::SourcePartitions => "sourcePartitions",
            Signal::CpuLoad => "cpuLoad",
            Signal::HeapUsed => "heapUsed",
            Signal::HeapMax => "heapMax",
            Signal::GcTime => "gcTime",
            Signal::NumRestarts => "numRestarts",
            Signal::NumRescales => "numRescales",
            Signal::SlotsTotal => "slotsTotal",
            Signal::SlotsAvailable => "slotsAvailable",
        }
    }

    /// Parses a camelCase signal name.
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Required signals: without them no decision is possible (→ UNAVAILABLE).
    pub fn is_required(self) -> bool {
        matches!(self, Signal::BusyTime | Signal::RecordsIn)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
