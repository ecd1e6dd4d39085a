//! DS2 sizing (Kalavri et al., OSDI 2018), as the Flink operator autoscaler applies it
//! (reference §2.3): walk the vertices in topological order, estimate each vertex's true
//! processing rate from busy time, propagate target rates downstream through the
//! observed edge output ratios, and size every vertex in one step:
//!
//! ```text
//! busy       = busyTimeMsPerSecond / 1000
//! true_rate  = records_in / busy                       (busy ≈ 0 ⇒ ∞: scale to the minimum)
//! target     = source: records_in + max(lag_growth, 0) + pending / catch_up_duration
//!              other:  Σ inputs  target(upstream) × edge output ratio
//! required   = ceil(target / (true_rate / p × target_utilization))   ∈ [1, maxParallelism]
//! ```
//!
//! Plus the seed policy "IO-bound source": lag high or growing while CPU is low means busy
//! time under-reports the source's load, so the source is sized by its *observed* rate
//! (`records_in / (1 − backpressure)`) instead, and the vertices behind it on FORWARD
//! edges (its unchained "source chain") follow it out.

use std::collections::BTreeMap;

use super::{
    decision::{Reason, Rule},
    inputs::VertexInputs,
    policy::Policy,
    topology::{ShipStrategy, Topology, VertexId},
};

/// Busy fractions below this count as idle (infinite true processing rate).
pub const IDLE_BUSY: f64 = 1e-3;

/// Tolerance when rounding a required parallelism up (3.0000000001 is 3).
const CEIL_EPS: f64 = 1e-9;

/// Where a vertex stands against the utilization band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Projected utilization below `utilization_low`.
    Under,
    /// Within `[utilization_low, utilization_high]`.
    Within,
    /// Projected utilization above `utilization_high`.
    Over,
}

/// The DS2 result for one vertex.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexSizing {
    /// The vertex.
    pub id: VertexId,
    /// Current parallelism.
    pub current: u32,
    /// Max parallelism (key groups).
    pub max_parallelism: u32,
    /// Busy fraction.
    pub busy: f64,
    /// True processing rate of the whole vertex at current parallelism (may be ∞).
    pub true_rate: f64,
    /// Target input rate (records/s), catch-up included.
    pub target_rate: f64,
    /// Utilization the vertex would have at its target rate and current parallelism.
    pub projected_utilization: f64,
    /// Band of the projected utilization.
    pub band: Band,
    /// Required parallelism in `[1, maxParallelism]`.
    pub required: u32,
    /// Sources: backlog over `backlog_threshold` (FLINK-31318: no scale-down).
    pub catching_up: bool,
    /// The IO-bound seed policy sized this vertex.
    pub io_bound: bool,
    /// The vertex has no inputs.
    pub source: bool,
    /// The vertex has a HASH input (key groups).
    pub keyed: bool,
}

/// Index of a topology for O(1) neighbour lookups (vertex ids are 32-character strings;
/// scanning edges per vertex dominated the decision time).
#[derive(Debug, Clone)]
pub struct Graph<'a> {
    index: BTreeMap<&'a VertexId, usize>,
    /// Upstream vertex indices per vertex (valid edges only).
    pub inputs: Vec<Vec<usize>>,
    /// Number of output edges per vertex.
    pub outputs: Vec<usize>,
    /// Whether a vertex has a HASH input.
    pub keyed: Vec<bool>,
    /// Upstream vertex indices reached through FORWARD edges.
    pub forward_inputs: Vec<Vec<usize>>,
    /// Downstream vertex indices per vertex, in edge order (one entry per edge).
    pub output_edges: Vec<Vec<usize>>,
    /// Some edge names a vertex that is not in the topology.
    pub dangling: bool,
}

impl<'a> Graph<'a> {
    /// Indexes `topology` (edges naming unknown vertices are ignored).
    pub fn new(topology: &'a Topology) -> Self {
        let n = topology.vertices.len();
        let index: BTreeMap<&VertexId, usize> = topology
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| (&v.id, i))
            .collect();
        let mut inputs = vec![Vec::new(); n];
        let mut outputs = vec![0; n];
        let mut keyed = vec![false; n];
        let mut forward_inputs = vec![Vec::new(); n];
        let mut output_edges = vec![Vec::new(); n];
        let mut dangling = false;
        for e in &topology.edges {
            let (Some(&f), Some(&t)) = (index.get(&e.from), index.get(&e.to)) else {
                dangling = true;
                continue;
            };
            output_edges[f].push(t);
            inputs[t].push(f);
            outputs[f] += 1;
            keyed[t] |= e.ship_strategy == ShipStrategy::Hash;
            if e.ship_strategy == ShipStrategy::Forward {
                forward_inputs[t].push(f);
            }
        }
        Self {
            index,
            inputs,
            outputs,
            keyed,
            forward_inputs,
            output_edges,
            dangling,
        }
    }

    /// Vertex indices in topological order, with exactly the tie-breaking of
    /// [`Topology::topological_order`] (Kahn; Flink's vertex order among ready vertices)
    /// in O(V + E) instead of a string comparison per edge and vertex. `None` on a cycle,
    /// a dangling edge, or duplicate vertex ids.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.inputs.len();
        if self.dangling || self.index.len() != n {
            return None;
        }
        let mut indegree: Vec<usize> = self.inputs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).rev().collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            let mut next = Vec::new();
            for &t in &self.output_edges[i] {
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    next.push(t);
                }
            }
            next.sort_unstable();
            ready.extend(next.into_iter().rev());
        }
        (order.len() == n).then_some(order)
    }

    /// Position of a vertex in `topology.vertices`.
    pub fn index(&self, id: &VertexId) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// Ceiling of a non-negative ratio as a parallelism in `[1, max]` (NaN ⇒ `max`).
pub fn ceil_parallelism(x: f64, max: u32) -> u32 {
    let max = max.max(1);
    if x.is_nan() || x >= f64::from(max) {
        return max;
    }
    let c = (x - CEIL_EPS).ceil();
    if c < 1.0 {
        1
    } else {
        // c < max ≤ u32::MAX, so the cast is exact.
        c as u32
    }
}

/// True processing rate of a vertex: records/s it could handle at 100 % busy.
pub fn true_rate(inp: &VertexInputs) -> f64 {
    if inp.busy < IDLE_BUSY {
        f64::INFINITY
    } else {
        inp.rate_in / inp.busy
    }
}

/// Output ratio of the edge `from → to`: records the edge carries per record `from`
/// reads. Reference §2.3: the downstream's records-in if it has a single input, else the
/// upstream's records-out if it has a single output, else an even share of the
/// downstream's records-in; 1.0 when the upstream reads nothing.
pub fn edge_output_ratio(
    topology: &Topology,
    inputs: &BTreeMap<VertexId, VertexInputs>,
    from: &VertexId,
    to: &VertexId,
) -> f64 {
    let (Some(up), Some(down)) = (inputs.get(from), inputs.get(to)) else {
        return 1.0;
    };
    let n_in = topology.inputs(to).count();
    let n_out = topology.outputs(from).count();
    ratio(up, down, n_in, n_out)
}

/// [`edge_output_ratio`] from the two vertices' inputs and edge counts.
fn ratio(up: &VertexInputs, down: &VertexInputs, n_in: usize, n_out: usize) -> f64 {
    let n_in = n_in.max(1);
    let edge_rate = match up.rate_out {
        _ if n_in == 1 => down.rate_in,
        Some(out) if n_out == 1 => out,
        _ => down.rate_in / n_in as f64,
    };
    if up.rate_in > 0.0 {
        let r = edge_rate / up.rate_in;
        if r.is_finite() {
            r
        } else {
            1.0
        }
    } else {
        1.0
    }
}

/// Sizes every vertex in `order` (a topological order of `topology`). `cpu_max` is the
/// highest TaskManager CPU load, used by the IO-bound seed policy. Returns the sizing per
/// vertex (in `order`) and the reasons, in firing order.
pub fn size(
    topology: &Topology,
    order: &[VertexId],
    inputs: &BTreeMap<VertexId, VertexInputs>,
    policy: &Policy,
    cpu_max: Option<f64>,
) -> (Vec<VertexSizing>, Vec<Reason>) {
    let mut out: Vec<VertexSizing> = Vec::with_capacity(order.len());
    let graph = Graph::new(topology);
    let n = topology.vertices.len();
    let by_index: Vec<Option<&VertexInputs>> = topology
        .vertices
        .iter()
        .map(|v| inputs.get(&v.id))
        .collect();
    let mut targets: Vec<f64> = vec![0.0; n];
    // parallelism an IO-bound source imposes on its FORWARD chain (0 = none)
    let mut chain: Vec<u32> = vec![0; n];
    let mut reasons = Vec::new();
    let catch_up_s = policy.catch_up_duration.as_secs_f64();
    let backlog_s = policy.backlog_threshold.as_secs_f64();
    let util = if policy.target_utilization.is_finite() && policy.target_utilization > 0.0 {
        policy.target_utilization.min(1.0)
    } else {
        1.0
    };
    for id in order {
        let Some(i) = graph.index(id) else {
            continue;
        };
        let (Some(v), Some(inp)) = (topology.vertices.get(i), by_index[i]) else {
            continue;
        };
        let p = v.parallelism.max(1);
        let max_p = v.max_parallelism.max(1);
        let source = graph.inputs[i].is_empty();
        let keyed = graph.keyed[i];
        let mut catching_up = false;
        let target = if source {
            let pending = inp.pending.unwrap_or(0.0);
            let catch_up = if catch_up_s > 0.0 {
                pending / catch_up_s
            } else {
                0.0
            };
            // Backlog in seconds of *arrivals* (FLINK-31318): while catching up the source
            // consumes faster than records arrive, so dividing by the consumption rate
            // would under-state the backlog. Arrivals = consumption + lag growth.
            let arrival = (inp.rate_in + inp.lag_growth).max(0.0);
            catching_up = pending > 0.0 && pending > arrival * backlog_s;
            if catch_up > 0.0 {
                reasons.push(
                    Reason::new(Rule::CatchUp, format!("backlog adds {catch_up:.1} rec/s"))
                        .vertex(id)
                        .input("lag", pending)
                        .input("catch_up_rate", catch_up),
                );
            }
            inp.rate_in + inp.lag_growth.max(0.0) + catch_up
        } else {
            let n_in = graph.inputs[i].len();
            graph.inputs[i]
                .iter()
                .map(|&u| match by_index[u] {
                    Some(up) => targets[u] * ratio(up, inp, n_in, graph.outputs[u]),
                    None => 0.0,
                })
                .sum()
        };
        let target = if target.is_finite() {
            target.max(0.0)
        } else {
            f64::MAX
        };
        targets[i] = target;

        let tpr = true_rate(inp);
        let projected = if tpr.is_infinite() {
            0.0
        } else if tpr > 0.0 {
            target / tpr
        } else {
            inp.busy
        };
        let mut required = if target <= 0.0 || tpr.is_infinite() {
            1
        } else if tpr > 0.0 {
            ceil_parallelism(target / (tpr / f64::from(p) * util), max_p)
        } else {
            // busy but no records (e.g. a stalled source): size by busy time alone
            ceil_parallelism(f64::from(p) * inp.busy / util, max_p)
        };

        // Seed policy (a): IO-bound source — lag high or growing while CPU is low.
        let mut io_bound = false;
        let cpu_low = cpu_max.is_some_and(|c| c <= policy.io_bound_cpu_max);
        let lagging = inp.pending.is_some() && (inp.lag_growth > 0.0 || catching_up);
        let io_seed = source && cpu_low && lagging && inp.rate_in > 0.0;
        if io_seed {
            let free = 1.0 - inp.backpressure.unwrap_or(0.0);
            let observed = if free > IDLE_BUSY {
                inp.rate_in / free
            } else {
                f64::INFINITY
            };
            let io_required = ceil_parallelism(target / (observed / f64::from(p)), max_p);
            if io_required > required {
                required = io_required;
                io_bound = true;
                reasons.push(
                    Reason::new(
                        Rule::IoBoundSource,
                        format!(
                            "lag with CPU ≤ {}: size by observed rate",
                            policy.io_bound_cpu_max
                        ),
                    )
                    .vertex(id)
                    .input("observed_rate", observed)
                    .input("target_rate", target)
                    .input("lag_growth", inp.lag_growth)
                    .input("cpu", cpu_max.unwrap_or(0.0))
                    .input("required", f64::from(required)),
                );
            }
        }
        // ... and its FORWARD chain (one-to-one edges) follows it out.
        let upstream_chain = graph.forward_inputs[i]
            .iter()
            .map(|&u| chain[u])
            .max()
            .unwrap_or(0);
        if upstream_chain > required {
            required = upstream_chain.min(max_p);
            io_bound = true;
            reasons.push(
                Reason::new(
                    Rule::IoBoundSource,
                    "FORWARD chain of an IO-bound source scales with it",
                )
                .vertex(id)
                .input("required", f64::from(required)),
            );
        }
        if io_seed || io_bound {
            // the chain follows whenever the seed applies, even if DS2 sized higher
            chain[i] = required;
        }

        let band = if io_bound || projected > policy.utilization_high {
            Band::Over
        } else if projected < policy.utilization_low {
            Band::Under
        } else {
            Band::Within
        };
        let raw = if tpr.is_finite() && tpr > 0.0 && target > 0.0 {
            target / (tpr / f64::from(p) * util)
        } else {
            0.0
        };
        if raw > f64::from(max_p) {
            reasons.push(
                Reason::new(
                    Rule::ClampedToMaxParallelism,
                    format!("needs {raw:.1}, maxParallelism {max_p}"),
                )
                .vertex(id)
                .input("required", raw)
                .input("max_parallelism", f64::from(max_p)),
            );
        }
        if required != p || band != Band::Within {
            let rule = match band {
                Band::Over => Rule::Overutilized,
                Band::Under => Rule::Underutilized,
                Band::Within => Rule::Ds2Size,
            };
            let mut r = Reason::new(
                rule,
                format!(
                    "busy {:.2} projected {projected:.2}: {p} → {required}",
                    inp.busy
                ),
            )
            .vertex(id)
            .input("busy", inp.busy)
            .input("target_rate", target)
            .input("projected", projected)
            .input("current", f64::from(p))
            .input("required", f64::from(required));
            if tpr.is_finite() {
                r = r.input("true_rate", tpr);
            }
            reasons.push(r);
        }
        out.push(VertexSizing {
            id: id.clone(),
            current: p,
            max_parallelism: max_p,
            busy: inp.busy,
            true_rate: tpr,
            target_rate: target,
            projected_utilization: projected,
            band,
            required,
            catching_up,
            io_bound,
            source,
            keyed,
        });
    }
    (out, reasons)
}
