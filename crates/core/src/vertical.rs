//! Vertical advice: how big a TaskManager should be, from CPU load, heap and GC time.
//! Reported in [`super::decision::Decision::vertical`] and never applied: a memory or CPU
//! change is a spec change, which forces a full restart (reference §2.8).

use super::{
    decision::VerticalAdvice, inputs::max_finite, observation::TaskManagerSignals, policy::Policy,
};

/// Heap headroom over the highest heap used (operator `memory.tuning.overhead` 0.2).
pub const HEAP_HEADROOM: f64 = 1.2;
/// GC time above this (ms per second) means the heap is too small.
pub const GC_PRESSURE_MS_PER_S: f64 = 100.0;
/// Heap growth recommended under GC pressure, relative to the current heap max.
pub const GC_HEAP_GROWTH: f64 = 1.25;

/// Recommends TaskManager CPU and heap. CPU cores need `policy.task_manager_cpu_cores`
/// (the current size): `cores × max load / target_utilization`. Heap: the highest heap
/// used × [`HEAP_HEADROOM`], raised to heap max × [`GC_HEAP_GROWTH`] when GC time exceeds
/// [`GC_PRESSURE_MS_PER_S`]. `None` when no TaskManager reports anything usable.
pub fn advise(tms: &[TaskManagerSignals], policy: &Policy) -> Option<VerticalAdvice> {
    let cpu_load = max_finite(tms.iter().map(|t| t.cpu_load)).map(|c| c.clamp(0.0, 1.0));
    let util = if policy.target_utilization > 0.0 && policy.target_utilization.is_finite() {
        policy.target_utilization
    } else {
        1.0
    };
    let cpu_cores = match (policy.task_manager_cpu_cores, cpu_load) {
        (Some(cores), Some(load)) if cores.is_finite() && cores > 0.0 => Some(cores * load / util),
        _ => None,
    };
    let used = max_finite(tms.iter().map(|t| t.heap_used_bytes)).filter(|u| *u > 0.0);
    let heap_max = max_finite(tms.iter().map(|t| t.heap_max_bytes)).filter(|m| *m > 0.0);
    let gc = max_finite(tms.iter().map(|t| t.gc_ms_per_s));
    let mut heap = used.map(|u| u * HEAP_HEADROOM);
    if gc.is_some_and(|g| g > GC_PRESSURE_MS_PER_S) {
        if let Some(m) = heap_max {
            heap = Some(heap.map_or(m * GC_HEAP_GROWTH, |h| h.max(m * GC_HEAP_GROWTH)));
        }
    }
    (cpu_cores.is_some() || heap.is_some()).then_some(VerticalAdvice {
        cpu_cores,
        heap_bytes: heap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(
        cpu: Option<f64>,
        used: Option<f64>,
        max: Option<f64>,
        gc: Option<f64>,
    ) -> TaskManagerSignals {
        TaskManagerSignals {
            tm_id: "tm".into(),
            cpu_load: cpu,
            heap_used_bytes: used,
            heap_max_bytes: max,
            gc_ms_per_s: gc,
        }
    }

    const GB: f64 = 1e9;

    #[test]
    fn advice_from_cpu_heap_and_gc() {
        let two_cores = Policy {
            task_manager_cpu_cores: Some(2.0),
            ..Policy::default()
        };
        let cases = [
            // heap: highest used × 1.2; CPU: 2 cores × 0.35 / 0.7
            (
                vec![
                    tm(Some(0.35), Some(1.0 * GB), Some(4.0 * GB), Some(20.0)),
                    tm(Some(0.1), Some(2.0 * GB), Some(4.0 * GB), Some(10.0)),
                ],
                two_cores.clone(),
                Some((Some(2.0 * 0.35 / 0.7), Some(2.0 * GB * HEAP_HEADROOM))),
            ),
            // GC pressure: at least heap max × 1.25
            (
                vec![tm(None, Some(3.9 * GB), Some(4.0 * GB), Some(150.0))],
                two_cores.clone(),
                Some((None, Some(4.0 * GB * GC_HEAP_GROWTH))),
            ),
            // CPU cores unknown: heap only
            (
                vec![tm(Some(0.9), Some(GB), Some(2.0 * GB), None)],
                Policy::default(),
                Some((None, Some(GB * HEAP_HEADROOM))),
            ),
            // nothing usable (NaN, no TaskManagers)
            (
                vec![tm(Some(f64::NAN), None, None, Some(f64::INFINITY))],
                Policy::default(),
                None,
            ),
            (Vec::new(), two_cores, None),
        ];
        for (tms, policy, want) in cases {
            let got = advise(&tms, &policy).map(|a| (a.cpu_cores, a.heap_bytes));
            assert_eq!(got, want, "{tms:?}");
        }
    }
}
