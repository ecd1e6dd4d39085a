//! The modes of the fault matrix: what is broken, and what every evaluating rpc must
//! answer while it is.

use tonic::Code;

use crate::support::{fake_flink::FlinkFault, fake_prometheus::PromFault, fault_port::Reach};

/// What a mode breaks.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The fake Prometheus answers wrong.
    Prom(PromFault),
    /// The fake Prometheus' port is down or hung.
    PromReach(Reach),
    /// The fake JobManager answers wrong.
    Flink(FlinkFault),
    /// The fake JobManager's port is down or hung.
    FlinkReach(Reach),
    /// One TaskManager lost: the job runs at half its requirements on one TaskManager.
    TaskManagerLost,
    /// The job RESTARTING with no TaskManager registered.
    NoTaskManager,
}

/// What the rpcs must answer while the fault lasts.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Every evaluating rpc fails with this code; its message contains one of each
    /// `|`-separated alternative.
    Fails(Code, &'static [&'static str]),
    /// Every evaluating rpc answers: never 0, never below what the job's requirements
    /// need; the scaler's log (written while the fault lasted) or its `/debug/jobs` page
    /// contains one of each `|`-separated alternative.
    Answers(&'static [&'static str]),
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Short name (the table's first column).
    pub name: &'static str,
    /// What is broken.
    pub fault: Fault,
    /// The load makes the core want a scale-up (so a PUT is attempted).
    pub high_load: bool,
    /// What the rpcs answer.
    pub expect: Expect,
}

/// A required signal is named.
const SIGNAL: &str = "busyTime|recordsIn";

const fn fails(name: &'static str, fault: Fault, names: &'static [&'static str]) -> Mode {
    Mode {
        name,
        fault,
        high_load: false,
        expect: Expect::Fails(Code::Unavailable, names),
    }
}

const fn answers(name: &'static str, fault: Fault, log: &'static [&'static str]) -> Mode {
    Mode {
        name,
        fault,
        high_load: false,
        expect: Expect::Answers(log),
    }
}

const fn put(name: &'static str, fault: FlinkFault, log: &'static [&'static str]) -> Mode {
    Mode {
        name,
        fault: Fault::Flink(fault),
        high_load: true,
        expect: Expect::Answers(log),
    }
}

/// Every mode, in the order they run.
pub const MODES: &[Mode] = &[
    fails(
        "prometheus down",
        Fault::PromReach(Reach::Down),
        &[
            "Prometheus 'default'",
            SIGNAL,
            "connect|refused|unreachable",
        ],
    ),
    fails(
        "prometheus slow past the timeout",
        Fault::PromReach(Reach::Hang),
        &["Prometheus 'default'", SIGNAL, "no answer within|timed out"],
    ),
    fails(
        "prometheus HTTP 500",
        Fault::Prom(PromFault::Status500),
        &["Prometheus 'default'", SIGNAL, "500"],
    ),
    fails(
        "prometheus malformed JSON",
        Fault::Prom(PromFault::Malformed),
        &["Prometheus 'default'", SIGNAL, "decode|parse|invalid|EOF"],
    ),
    fails(
        "prometheus execution error (422)",
        Fault::Prom(PromFault::ExecutionError),
        &["Prometheus 'default'", SIGNAL, "too many samples"],
    ),
    fails(
        "prometheus no series",
        Fault::Prom(PromFault::Empty),
        &["Prometheus 'default'", "busyTime", "no series|empty"],
    ),
    fails(
        "prometheus NaN",
        Fault::Prom(PromFault::NaN),
        &["busyTime", "NaN|non-finite"],
    ),
    fails(
        "prometheus +Inf",
        Fault::Prom(PromFault::PosInf),
        &["busyTime", "inf|non-finite"],
    ),
    fails(
        "prometheus duplicate series",
        Fault::Prom(PromFault::Duplicate),
        &["busyTime", "2 series for task_id"],
    ),
    answers(
        "prometheus huge values",
        Fault::Prom(PromFault::Huge),
        &["overutilized", "busy 1.00"],
    ),
    answers(
        "prometheus stray-series flood",
        Fault::Prom(PromFault::StrayFlood),
        &["10000 series for task_ids which are not vertices"],
    ),
    answers(
        "prometheus stray TaskManager flood",
        Fault::Prom(PromFault::StrayTaskManagers),
        &["TaskManager series of job", "beyond the 1000 kept"],
    ),
    fails(
        "flink down",
        Fault::FlinkReach(Reach::Down),
        &["Flink REST", "connect|refused|unreachable"],
    ),
    fails(
        "flink hung",
        Fault::FlinkReach(Reach::Hang),
        &["Flink REST", "timed out"],
    ),
    fails(
        "flink HTTP 500",
        Fault::Flink(FlinkFault::Status500),
        &["Flink REST", "500"],
    ),
    fails(
        "flink malformed JSON",
        Fault::Flink(FlinkFault::Malformed),
        &["Flink REST", "unexpected response"],
    ),
    Mode {
        name: "flink 404 job gone",
        fault: Fault::Flink(FlinkFault::JobGone),
        high_load: false,
        expect: Expect::Fails(Code::NotFound, &["orders-fault"]),
    },
    answers(
        "flink RESTARTING",
        Fault::Flink(FlinkFault::Restarting),
        &["RESTARTING"],
    ),
    answers(
        "flink no TaskManager",
        Fault::NoTaskManager,
        &["below its requirements"],
    ),
    answers(
        "flink one TaskManager lost",
        Fault::TaskManagerLost,
        &["below its requirements"],
    ),
    put("flink PUT 409", FlinkFault::PutConflict, &["409|conflict"]),
    put(
        "flink PUT 400",
        FlinkFault::PutBadRequest,
        &["400|did not match"],
    ),
    put(
        "flink PUT 500 non-adaptive",
        FlinkFault::PutNonAdaptive,
        &["adaptive scheduler|AdaptiveScheduler"],
    ),
    put(
        "flink requirements omit a vertex",
        FlinkFault::RequirementsOmitVertex,
        &["omit vertex ea632d67b7d595e5b851708ae9ad79d6 (Sink: out)"],
    ),
];
