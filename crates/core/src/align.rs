//! Parallelism alignment, BALANCED mode (FLIP-586 semantics, fixing FLINK-39299).
//!
//! Keyed vertices (a HASH input) split `maxParallelism` key groups over their subtasks;
//! sources with a known partition count split partitions. An uneven split leaves the
//! busiest subtask with `ceil(N / p)` units, so a divisor of `N` wastes nothing. But
//! alignment only *adjusts* a scale, it never vetoes one:
//!
//! * it moves in the direction of the scale only (never returns `current`, never inverts);
//! * it snaps to the nearest divisor of `N` at or above `required` when that divisor lies
//!   within reach (`required × ALIGN_REACH`) and on the same side of `current`;
//! * otherwise, scaling up, it takes the first value at or above `required` that lowers
//!   the busiest subtask's load below today's (never beyond `min(N, maxParallelism)`);
//!   scaling down, it keeps `required`.
//!
//! Sources with more required subtasks than partitions are capped at `N` (extra subtasks
//! would idle) when that is still a scale-up.

use super::topology::{Topology, VertexId};

/// How far above `required` a divisor may lie and still be snapped to.
pub const ALIGN_REACH: f64 = 1.5;

/// Units (key groups / partitions) on the busiest subtask at parallelism `p`.
pub fn max_units_per_subtask(n: u32, p: u32) -> u32 {
    n.div_ceil(p.max(1))
}

/// Aligns `required` (already in `[1, max_parallelism]`) against `n` units, given the
/// `current` parallelism. The result lies in `[1, max_parallelism]`, differs from
/// `current` whenever `required` does, and moves in the same direction.
pub fn align(current: u32, required: u32, n: u32, max_parallelism: u32) -> u32 {
    let max_p = max_parallelism.max(1);
    let required = required.clamp(1, max_p);
    if n == 0 || required == current {
        return required;
    }
    let reach = (f64::from(required) * ALIGN_REACH).floor();
    let limit = n.min(max_p);
    let up = required > current;
    // smallest divisor of n in [required, limit]
    let divisor = (required..=limit).find(|d| n % d == 0);
    if let Some(d) = divisor {
        let in_direction = if up { d > current } else { d < current };
        if f64::from(d) <= reach && in_direction {
            return d;
        }
    }
    if !up {
        return required;
    }
    if required > n {
        // more subtasks than units: cap at n if that still scales up
        return if n > current && n <= max_p {
            n
        } else {
            required
        };
    }
    let now_load = max_units_per_subtask(n, current);
    if max_units_per_subtask(n, required) < now_load || now_load <= 1 {
        return required;
    }
    // first p ≥ required whose busiest subtask carries fewer units than today
    let bumped = n.div_ceil(now_load - 1);
    if bumped <= limit {
        bumped.max(required)
    } else {
        required
    }
}

/// The units a vertex's parallelism should divide, if alignment applies to it: a source's
/// partition count when known, else the key groups (maxParallelism) of a keyed vertex.
pub fn alignment_units(topology: &Topology, id: &VertexId, partitions: Option<u32>) -> Option<u32> {
    let v = topology.vertex(id)?;
    if topology.is_source(id) {
        partitions.filter(|p| *p > 0)
    } else if topology.is_keyed(id) {
        Some(v.max_parallelism).filter(|p| *p > 0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table: (current, required, n, maxP) → expected, covering primes and 128/720.
    #[test]
    fn aligns_without_cancelling_or_inverting() {
        let cases: &[(u32, u32, u32, u32, u32)] = &[
            // keyed, maxParallelism 128: divisors 1 2 4 8 16 32 64 128
            (4, 6, 128, 128, 8),
            (4, 40, 128, 128, 40), // 64 is beyond reach (60): keep 40 (load 4 < 32)
            (16, 12, 128, 128, 12), // down: 16 is current, not a down move → keep 12
            (16, 7, 128, 128, 8),
            // keyed, maxParallelism 720: rich in divisors
            (10, 13, 720, 720, 15),
            (24, 50, 720, 720, 60),
            (60, 44, 720, 720, 45),
            // partitions 3, 5, 7, 11, 13
            (1, 2, 3, 128, 3),
            (2, 1, 3, 128, 1),
            (3, 2, 3, 128, 2), // no divisor in [2, 3) → keep 2 (never cancels)
            (2, 3, 5, 128, 3), // 5 beyond reach; 3 already lowers the load (3 → 2)
            (4, 3, 5, 128, 3),
            (3, 4, 7, 128, 4),
            (4, 5, 7, 128, 7),
            (7, 5, 7, 128, 5),
            (2, 5, 11, 128, 5),  // 11 beyond reach; 5 lowers the load (6 → 3)
            (6, 7, 11, 128, 11), // 7 keeps the busiest at 2 partitions: first p below is 11
            (5, 6, 11, 128, 6),
            (6, 9, 13, 128, 13),
            (4, 20, 13, 128, 13), // more subtasks than partitions: cap at 13
            (13, 20, 13, 128, 20),
        ];
        for &(current, required, n, max_p, expected) in cases {
            let got = align(current, required, n, max_p);
            assert_eq!(
                got, expected,
                "align(current={current}, required={required}, n={n}, maxP={max_p})"
            );
            assert_eq!(
                got.cmp(&current),
                required.cmp(&current),
                "direction kept for {current}→{required} over {n}"
            );
        }
    }
}
