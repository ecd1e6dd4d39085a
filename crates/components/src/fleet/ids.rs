//! Deterministic ids and names of the fleet: job ids and names, vertex and operator ids,
//! task attempt ids (Flink 2.x's `<graph>_<vertex>_<subtask>_<attempt>`), JobManager and
//! TaskManager hosts and resource ids. The same fleet options give the same ids in every
//! run, so a test can name a job before the fleet starts.
//!
//! Every job runs the same program, so the vertex ids are the same in every job (Flink
//! derives them from the job graph): only `job_id` tells two jobs' series apart, which is
//! what a fleet-wide query must group by.

use super::sim::{JobSim, VERTICES};

/// SplitMix64: a well-mixed 64-bit value from a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hex32(a: u64, b: u64) -> String {
    format!("{:016x}{:016x}", mix(a), mix(b))
}

/// A TaskManager of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskManagerId {
    /// Its index among its job's TaskManagers.
    pub index: u32,
    /// Host (an address, as Flink reports it).
    pub host: String,
    /// Resource id (`<host>:<port>-<hex>`, as `/taskmanagers` reports it).
    pub id: String,
    /// Pekko path.
    pub path: String,
}

/// The naming scheme of one fleet.
#[derive(Debug, Clone)]
pub struct FleetIds {
    /// JobManagers (jobs go round-robin: job `j` runs on JobManager `j % job_managers`).
    pub job_managers: usize,
    /// Slots per TaskManager.
    pub slots_per_task_manager: u32,
}

impl FleetIds {
    /// The JobManager of job `j`.
    pub fn jm_of(&self, j: usize) -> usize {
        j % self.job_managers.max(1)
    }

    /// Job id of job `j` (32 hex characters).
    pub fn job_id(&self, j: usize) -> String {
        hex32(0xf1ee_7000_0000_0000 ^ j as u64, j as u64 + 1)
    }

    /// Job name of job `j` (`fleet-job-0042`).
    pub fn job_name(&self, j: usize) -> String {
        format!("fleet-job-{j:04}")
    }

    /// Vertex id of vertex `v` (the same in every job).
    pub fn vertex_id(&self, v: usize) -> String {
        hex32(0x7e47_e800 + v as u64, 0x0b5e_7000 + v as u64)
    }

    /// Operator id of chained operator `o` of vertex `v` (the head operator's id is the
    /// vertex id, as in Flink).
    pub fn operator_id(&self, v: usize, o: usize) -> String {
        if o == 0 {
            self.vertex_id(v)
        } else {
            hex32(0x0be7_a700 + (v * VERTICES + o) as u64, 0x55 + o as u64)
        }
    }

    /// Task attempt id of subtask `s` of vertex `v` of job `j` in `attempt`.
    pub fn attempt_id(&self, j: usize, attempt: u32, v: usize, s: u32) -> String {
        let graph = hex32(
            (j as u64) << 20 | u64::from(attempt),
            0xa77e_0000 + j as u64,
        );
        format!("{graph}_{}_{s}_{attempt}", self.vertex_id(v))
    }

    /// The address of JobManager `jm`.
    pub fn jm_host(&self, jm: usize) -> String {
        format!("10.{}.{}.254", 1 + jm / 256, jm % 256)
    }

    /// TaskManagers job `sim` needs (its slots packed onto whole TaskManagers).
    pub fn task_managers(&self, sim: &JobSim) -> u32 {
        sim.slots().div_ceil(self.slots_per_task_manager.max(1))
    }

    /// TaskManager `k` of job `j`.
    pub fn task_manager(&self, j: usize, k: u32) -> TaskManagerId {
        let host = format!("172.{}.{}.{}", 16 + (j >> 16) % 16, (j >> 8) % 256, j % 256);
        let port = 6122 + k;
        let suffix = mix((j as u64) << 16 | u64::from(k)) & 0xff_ffff;
        TaskManagerId {
            index: k,
            id: format!("{host}:{port}-{suffix:06x}"),
            path: format!("pekko.tcp://flink@{host}:{port}/user/rpc/taskmanager_0"),
            host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_flink_shaped_and_distinct() {
        let ids = FleetIds {
            job_managers: 3,
            slots_per_task_manager: 2,
        };
        let a = ids.job_id(0);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, ids.job_id(1));
        assert_eq!(ids.jm_of(4), 1);
        assert_eq!(ids.vertex_id(2).len(), 32);
        assert_ne!(ids.vertex_id(0), ids.vertex_id(1));
        let attempt = ids.attempt_id(0, 1, 0, 3);
        assert!(attempt.ends_with(&format!("_{}_3_1", ids.vertex_id(0))));
        let tm = ids.task_manager(300, 1);
        assert_eq!(tm.host, "172.16.1.44");
        assert!(tm.id.starts_with("172.16.1.44:6123-"));
    }
}
