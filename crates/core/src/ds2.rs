//! DS2 sizing (Kalavri et al., OSDI 2018), as the Flink operator autoscaler applies it
//! (reference §2.3): walk the vertices in topological order, estimate each vertex's true
//! processing rate from busy time, propagate target rates downstream through the
//! observed edge output ratios, and size every vertex in one step:
//!
//! ```text
//! busy       = busyTimeMsPerSecond / 1000
//! true_rate  = records_in / busy                       (busy ≈ 0 ⇒ ∞: scale to the minimum)
//! target     = source: arrival + pending / catch_up_duration
//!              arrival = arrivalRate (short window) if read, else max(records_in + lag_growth, 0)
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
    graph::Graph,
    inputs::VertexInputs,
    policy::Policy,
    topology::{Topology, VertexId},
};

/// Busy fractions below this count as idle (infinite true processing rate).
pub const IDLE_BUSY: f64 = 1e-3;

/// Tolerance when rounding a required parallelism up (3.0000000001 is 3).
const CEIL_EPS: f64 = 1e-9;
/// Back-pressure (share of time) at or above which a lagging source is held back by a
/// downstream vertex rather than by its own I/O: the IO-bound seed does not apply.
const IO_SEED_MAX_BACKPRESSURE: f64 = 0.1;
/// Seconds of input a source's backlog must hold before its growth counts as lag for the
/// IO-bound seed (seen on Flink 1.20.5 in the lab: a start-up lag of 1 record growing
/// with low CPU scaled a source up in steady state).
const MIN_LAG_S: f64 = 1.0;
/// Share of its arrival rate by which a source's backlog must shrink for it to count as
/// draining ([`draining`]): steady consumption matches arrivals, so a shrinking backlog
/// within this share is the counters' noise, not a drain (the HPA's tolerance is 10 % too).
pub const DRAIN_SHARE: f64 = 0.1;

/// A source draining a backlog: records pending, and the backlog shrinking by more than
/// [`DRAIN_SHARE`] of the arrival rate (`records_in + lag_growth`, both over the load
/// window). While a source drains, the vertices behind it process more than arrives, so
/// their busy time and rates still hold the drain for one signal window after it ends:
/// seen in the lab (Flink 1.20.5, 6 subtasks at 600 records/s after a step back from
/// 1,800), 6–8 and 8–10 s after the backlog reached 0 the keyed vertex read busy 0.54 and 0.32,
/// projected 0.28 (→ 3 subtasks), and 0.22 (→ 2) from 10–12 s on. The scale-down's
/// settle time therefore counts from the end of a drain (`downscale`).
pub fn draining(inp: &VertexInputs) -> bool {
    let pending = inp.pending.unwrap_or(0.0);
    let arrival = (inp.rate_in + inp.lag_growth).max(0.0);
    pending > 0.0 && -inp.lag_growth > DRAIN_SHARE * arrival
}

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
    /// Sources: draining a backlog ([`draining`]).
    pub draining: bool,
    /// The IO-bound seed policy sized this vertex.
    pub io_bound: bool,
    /// The vertex has no inputs.
    pub source: bool,
    /// The vertex has a HASH input (key groups).
    pub keyed: bool,
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
/// reads. Reference §2.3, with one change: an upstream with a single, non-broadcast
/// output is read from its own counters (records out per record in), else the
/// downstream's records-in if it has a single input, else the upstream's records-out if
/// it has a single output, else an even share of the downstream's records-in; 1.0 when
/// the upstream reads nothing. The upstream's own counters count the same records at the
/// same moment, while the downstream reads them later: when back-pressure starts, the
/// network buffers between the two fill (the lab's step: the source's 10 s output rate
/// 1,266 records/s against the keyed operator's 885 input), so the cross-vertex ratio
/// read 0.69, then 1.26, and sized the step 5, then 8, for a load that needs 6.
pub fn edge_output_ratio(
    topology: &Topology,
    inputs: &BTreeMap<VertexId, VertexInputs>,
    from: &VertexId,
    to: &VertexId,
) -> f64 {
    let (Some(up), Some(down)) = (inputs.get(from), inputs.get(to)) else {
        return 1.0;
    };
    let graph = Graph::new(topology);
    let (Some(u), Some(d)) = (graph.index(from), graph.index(to)) else {
        return 1.0;
    };
    let out = (graph.outputs[u], graph.broadcast_out[u]);
    ratio(up, down, graph.inputs[d].len(), out)
}

/// [`edge_output_ratio`] from the two vertices' inputs, the downstream's input count and
/// the upstream's output count and whether one of its outputs is a broadcast.
fn ratio(up: &VertexInputs, down: &VertexInputs, n_in: usize, out: (usize, bool)) -> f64 {
    let (n_out, broadcast) = out;
    let n_in = n_in.max(1);
    let edge_rate = match up.rate_out {
        Some(out) if n_out == 1 && !broadcast => out,
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
    let mut sizer = Sizer::new(topology, inputs, policy, cpu_max);
    let mut out: Vec<VertexSizing> = Vec::with_capacity(order.len());
    for id in order {
        let Some(i) = sizer.graph.index(id) else {
            continue;
        };
        let (Some(v), Some(inp)) = (topology.vertices.get(i), sizer.by_index[i]) else {
            continue;
        };
        out.push(sizer.vertex(i, id, v.parallelism.max(1), v.max_parallelism.max(1), inp));
    }
    (out, sizer.reasons)
}

/// The state of one [`size`] pass: the indexed graph, the target rates and IO-bound chain
/// parallelisms of the vertices sized so far, and the reasons fired so far.
struct Sizer<'a> {
    graph: Graph<'a>,
    /// Each vertex's inputs, by position in `topology.vertices`.
    by_index: Vec<Option<&'a VertexInputs>>,
    /// Target input rate per vertex (set once the vertex is sized).
    targets: Vec<f64>,
    /// Parallelism an IO-bound source imposes on its FORWARD chain (0 = none).
    chain: Vec<u32>,
    reasons: Vec<Reason>,
    policy: &'a Policy,
    cpu_max: Option<f64>,
    catch_up_s: f64,
    backlog_s: f64,
    /// The target utilization, in `(0, 1]`.
    util: f64,
}

/// DS2's rates for one vertex at its current parallelism.
struct Rates {
    /// Target input rate (records/s), catch-up included.
    target: f64,
    /// True processing rate of the whole vertex (may be ∞).
    tpr: f64,
    /// Utilization at the target rate.
    projected: f64,
}

impl<'a> Sizer<'a> {
    fn new(
        topology: &'a Topology,
        inputs: &'a BTreeMap<VertexId, VertexInputs>,
        policy: &'a Policy,
        cpu_max: Option<f64>,
    ) -> Self {
        let n = topology.vertices.len();
        let util = if policy.target_utilization.is_finite() && policy.target_utilization > 0.0 {
            policy.target_utilization.min(1.0)
        } else {
            1.0
        };
        Self {
            graph: Graph::new(topology),
            by_index: topology
                .vertices
                .iter()
                .map(|v| inputs.get(&v.id))
                .collect(),
            targets: vec![0.0; n],
            chain: vec![0; n],
            reasons: Vec::new(),
            policy,
            cpu_max,
            catch_up_s: policy.catch_up_duration.as_secs_f64(),
            backlog_s: policy.backlog_threshold.as_secs_f64(),
            util,
        }
    }

    /// Sizes vertex `i` (current parallelism `p`, max parallelism `max_p`): its target
    /// rate, DS2's required parallelism, the IO-bound seed policy and its FORWARD chain,
    /// the band, and the reasons.
    fn vertex(
        &mut self,
        i: usize,
        id: &VertexId,
        p: u32,
        max_p: u32,
        inp: &VertexInputs,
    ) -> VertexSizing {
        let source = self.graph.inputs[i].is_empty();
        let (target, catching_up) = if source {
            self.source_target(id, inp)
        } else {
            (self.downstream_target(i, inp), false)
        };
        let target = if target.is_finite() {
            target.max(0.0)
        } else {
            f64::MAX
        };
        self.targets[i] = target;
        let rates = rates(target, inp);
        let mut required = self.ds2_required(&rates, p, max_p, inp);
        let io_seed = self.io_seed_applies((i, source, catching_up), inp);
        let mut io_bound = false;
        if io_seed {
            if let Some(io_required) = self.io_bound_required(id, &rates, p, max_p, required, inp) {
                required = io_required;
                io_bound = true;
            }
        }
        if let Some(chained) = self.forward_chain_required(i, id, max_p, required) {
            required = chained;
            io_bound = true;
        }
        if io_seed || io_bound {
            // the chain follows whenever the seed applies, even if DS2 sized higher
            self.chain[i] = required;
        }
        // lag growing with low CPU: a vertex that must grow is over the band whether the
        // seed or DS2 sized it (else more lag could turn an IO-bound scale-up into a hold
        // once DS2's size reaches the seed's: found by `more_lag_never_fewer_task_managers`)
        let band = self.band(io_bound || (io_seed && required > p), rates.projected);
        self.clamp_reason(id, &rates, p, max_p);
        if required != p || band != Band::Within {
            self.sizing_reason(id, &rates, band, p, required, inp);
        }
        VertexSizing {
            id: id.clone(),
            current: p,
            max_parallelism: max_p,
            busy: inp.busy,
            true_rate: rates.tpr,
            target_rate: target,
            projected_utilization: rates.projected,
            band,
            required,
            catching_up,
            draining: source && draining(inp),
            io_bound,
            source,
            keyed: self.graph.keyed[i],
        }
    }

    /// A source's target rate (records in + lag growth + backlog over the catch-up
    /// duration) and whether it is catching up.
    fn source_target(&mut self, id: &VertexId, inp: &VertexInputs) -> (f64, bool) {
        let pending = inp.pending.unwrap_or(0.0);
        let catch_up = if self.catch_up_s > 0.0 {
            pending / self.catch_up_s
        } else {
            0.0
        };
        // Backlog in seconds of *arrivals* (FLINK-31318): while catching up the source
        // consumes faster than records arrive, so dividing by the consumption rate
        // would under-state the backlog. Arrivals = consumption + lag growth.
        let arrival = inp.arrival.unwrap_or(inp.rate_in + inp.lag_growth).max(0.0);
        let catching_up = pending > 0.0 && pending > arrival * self.backlog_s;
        if catch_up > 0.0 {
            self.reasons.push(
                Reason::new(Rule::CatchUp, format!("backlog adds {catch_up:.1} rec/s"))
                    .vertex(id)
                    .input("lag", pending)
                    .input("catch_up_rate", catch_up),
            );
        }
        // The target is what arrives plus the backlog's share, not what is consumed: while
        // a backlog drains the source consumes more than arrives (lag growth < 0), and
        // sizing for the consumption rate would scale up again once the drain started
        // (seen in the lab: 6 → 8 at 1,800 records/s arriving, 3,000 consumed). As the
        // operator's autoscaler does (`ScalingMetrics#computeDataRateMetrics`).
        (arrival + catch_up, catching_up)
    }

    /// A non-source vertex's target rate: its upstreams' targets through the edge output
    /// ratios.
    fn downstream_target(&self, i: usize, inp: &VertexInputs) -> f64 {
        let n_in = self.graph.inputs[i].len();
        self.graph.inputs[i]
            .iter()
            .map(|&u| match self.by_index[u] {
                Some(up) => {
                    let out = (self.graph.outputs[u], self.graph.broadcast_out[u]);
                    self.targets[u] * ratio(up, inp, n_in, out)
                }
                None => 0.0,
            })
            .sum()
    }

    /// DS2's required parallelism in `[1, max_p]`.
    fn ds2_required(&self, rates: &Rates, p: u32, max_p: u32, inp: &VertexInputs) -> u32 {
        let Rates { target, tpr, .. } = *rates;
        if target <= 0.0 || tpr.is_infinite() {
            1
        } else if tpr > 0.0 {
            ceil_parallelism(target / (tpr / f64::from(p) * self.util), max_p)
        } else {
            // busy but no records (e.g. a stalled source): size by busy time alone
            ceil_parallelism(f64::from(p) * inp.busy / self.util, max_p)
        }
    }

    /// Seed policy (a): IO-bound source — lag high or growing while CPU is low, and the
    /// source itself is what is slow. A source that lags because a consumer is the
    /// bottleneck is back-pressured, or (while the windows still fill after a step, or when
    /// the source does not report back-pressure) has a consumer busier than the target
    /// utilization: DS2 sizes that consumer from the source's target rate, and growing the
    /// source alone would be a rescale that absorbs nothing (seen in the lab: a source-only
    /// 2 → 3 a few seconds into a step, before the keyed vertex's busy time showed the
    /// step, and the rescale in flight then delayed the right-sized one).
    fn io_seed_applies(
        &self,
        (i, source, catching_up): (usize, bool, bool),
        inp: &VertexInputs,
    ) -> bool {
        let cpu_low = self
            .cpu_max
            .is_some_and(|c| c <= self.policy.io_bound_cpu_max);
        // a backlog under a second of input is noise (a start-up or a fetch batch), not lag
        let lagging = inp
            .pending
            .is_some_and(|p| p >= inp.rate_in.max(1.0) * MIN_LAG_S)
            && (inp.lag_growth > 0.0 || catching_up);
        let own_pace = inp.backpressure.unwrap_or(0.0) < IO_SEED_MAX_BACKPRESSURE
            && self.busiest_consumer(i) < self.util;
        source && cpu_low && lagging && own_pace && inp.rate_in > 0.0
    }

    /// The highest busy fraction among vertex `i`'s direct consumers (0 without any).
    fn busiest_consumer(&self, i: usize) -> f64 {
        self.graph
            .output_edges
            .get(i)
            .into_iter()
            .flatten()
            .filter_map(|j| self.by_index.get(*j).copied().flatten())
            .map(|inp| inp.busy)
            .fold(0.0, f64::max)
    }

    /// The parallelism the IO-bound seed sizes by the *observed* rate, when it is above
    /// DS2's `required` (with its reason).
    fn io_bound_required(
        &mut self,
        id: &VertexId,
        rates: &Rates,
        p: u32,
        max_p: u32,
        required: u32,
        inp: &VertexInputs,
    ) -> Option<u32> {
        let free = 1.0 - inp.backpressure.unwrap_or(0.0);
        let observed = if free > IDLE_BUSY {
            inp.rate_in / free
        } else {
            f64::INFINITY
        };
        let io_required = ceil_parallelism(rates.target / (observed / f64::from(p)), max_p);
        if io_required <= required {
            return None;
        }
        self.reasons.push(
            Reason::new(
                Rule::IoBoundSource,
                format!(
                    "lag with CPU ≤ {}: size by observed rate",
                    self.policy.io_bound_cpu_max
                ),
            )
            .vertex(id)
            .input("observed_rate", observed)
            .input("target_rate", rates.target)
            .input("lag_growth", inp.lag_growth)
            .input("cpu", self.cpu_max.unwrap_or(0.0))
            .input("required", f64::from(io_required)),
        );
        Some(io_required)
    }

    /// ... and its FORWARD chain (one-to-one edges) follows it out: the parallelism an
    /// IO-bound upstream imposes on vertex `i`, when it is above `required` (with its
    /// reason).
    fn forward_chain_required(
        &mut self,
        i: usize,
        id: &VertexId,
        max_p: u32,
        required: u32,
    ) -> Option<u32> {
        let upstream_chain = self.graph.forward_inputs[i]
            .iter()
            .map(|&u| self.chain[u])
            .max()
            .unwrap_or(0);
        if upstream_chain <= required {
            return None;
        }
        let required = upstream_chain.min(max_p);
        self.reasons.push(
            Reason::new(
                Rule::IoBoundSource,
                "FORWARD chain of an IO-bound source scales with it",
            )
            .vertex(id)
            .input("required", f64::from(required)),
        );
        Some(required)
    }

    /// The band of the projected utilization (an IO-bound vertex is over).
    fn band(&self, io_bound: bool, projected: f64) -> Band {
        if io_bound || projected > self.policy.utilization_high {
            Band::Over
        } else if projected < self.policy.utilization_low {
            Band::Under
        } else {
            Band::Within
        }
    }

    /// A [`Rule::ClampedToMaxParallelism`] reason when DS2 needs more than `max_p`.
    fn clamp_reason(&mut self, id: &VertexId, rates: &Rates, p: u32, max_p: u32) {
        let Rates { target, tpr, .. } = *rates;
        let raw = if tpr.is_finite() && tpr > 0.0 && target > 0.0 {
            target / (tpr / f64::from(p) * self.util)
        } else {
            0.0
        };
        if raw > f64::from(max_p) {
            self.reasons.push(
                Reason::new(
                    Rule::ClampedToMaxParallelism,
                    format!("needs {raw:.1}, maxParallelism {max_p}"),
                )
                .vertex(id)
                .input("required", raw)
                .input("max_parallelism", f64::from(max_p)),
            );
        }
    }

    /// The reason for a vertex that changes or sits outside the band.
    fn sizing_reason(
        &mut self,
        id: &VertexId,
        rates: &Rates,
        band: Band,
        p: u32,
        required: u32,
        inp: &VertexInputs,
    ) {
        let Rates {
            target,
            tpr,
            projected,
        } = *rates;
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
        self.reasons.push(r);
    }
}

/// True processing rate and projected utilization of a vertex at target rate `target`.
fn rates(target: f64, inp: &VertexInputs) -> Rates {
    let tpr = true_rate(inp);
    let projected = if tpr.is_infinite() {
        0.0
    } else if tpr > 0.0 {
        target / tpr
    } else {
        inp.busy
    };
    Rates {
        target,
        tpr,
        projected,
    }
}
