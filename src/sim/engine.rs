//! The simulation loop: one independent job per policy, the same trace, step by step.

use super::{
    aws::AwsCpu,
    fixed::FixedPeak,
    hpa::HpaConfig,
    job::{JobModel, JobView, Target},
    keda_lag::KedaLag,
    operator::OperatorAutoscaler,
    ours::Ours,
    policy::SimPolicy,
    report::{Point, PolicyResult, Report, Request},
    rng::SplitMix64,
    trace::Trace,
    SimConfig,
};

/// Target utilization of the common initial allocation (operator default 0.7).
const INITIAL_UTILIZATION: f64 = 0.7;

/// Builds the compared policies for `trace` under `config`, in report order.
pub fn policies(trace: &Trace, config: &SimConfig) -> Vec<Box<dyn SimPolicy>> {
    let spec = &config.job;
    let n = spec.vertices.len();
    let slots = spec.slots_per_tm;
    let max_tms = config.max_task_managers;
    let (p0, tms0) = initial(trace, config);
    let mut ours_policy = config.ours.clone();
    ours_policy.max_task_managers = max_tms;
    ours_policy.min_task_managers = ours_policy.min_task_managers.clamp(1, max_tms);
    ours_policy.slots_per_task_manager = Some(slots);
    let ours_hpa = HpaConfig {
        min: ours_policy.min_task_managers,
        max: max_tms,
        ..config.ours_hpa.clone()
    };
    let mut out: Vec<Box<dyn SimPolicy>> = vec![
        Box::new(FixedPeak {
            peak_rate: trace.peak(),
        }),
        Box::new(KedaLag::new(
            config.keda_lag_threshold,
            false,
            tms0,
            tms0,
            max_tms,
            slots,
            n,
        )),
        Box::new(KedaLag::new(
            config.keda_lag_threshold,
            true,
            tms0,
            tms0,
            max_tms,
            slots,
            n,
        )),
        Box::new(OperatorAutoscaler::new(spec.clone(), false, max_tms)),
        Box::new(OperatorAutoscaler::new(spec.clone(), true, max_tms)),
        Box::new(AwsCpu::new(p0, max_tms * slots, slots, n)),
        Box::new(Ours::new(
            ours_policy.clone(),
            ours_hpa.clone(),
            spec.clone(),
            tms0,
            None,
        )),
    ];
    if let Some(p) = &config.predictive {
        if trace.duration() > p.period_s {
            out.push(Box::new(Ours::new(
                ours_policy,
                ours_hpa,
                spec.clone(),
                tms0,
                Some((p.clone(), trace.clone())),
            )));
        }
    }
    out
}

/// The common initial allocation: uniform parallelism for the trace's first rate at 70 %
/// busy, and the TaskManagers it needs.
pub fn initial(trace: &Trace, config: &SimConfig) -> (u32, u32) {
    let spec = &config.job;
    let p = spec
        .uniform_parallelism_for(trace.rate_at(0.0), INITIAL_UTILIZATION)
        .min(config.max_task_managers * spec.slots_per_tm);
    let tms = spec.task_managers_for(&[p]);
    (p, tms)
}

/// Runs every policy on `trace`. Pure and deterministic.
pub fn simulate(trace: &Trace, config: &SimConfig) -> Report {
    let results = policies(trace, config)
        .into_iter()
        .map(|p| {
            let salt = noise_salt(&p.name());
            run_one(trace, config, p, salt)
        })
        .collect();
    Report {
        trace: trace.name.clone(),
        duration_s: trace.duration(),
        lag_slo_s: config.lag_slo_s,
        sample_every_s: config.sample_every_s,
        policies: results,
    }
}

/// Seed salt of a policy's measurement-noise stream: FNV-1a of its name without the
/// `-predictive` suffix, so ours with and without pre-scaling see identical noise and their
/// difference is the floor alone.
fn noise_salt(name: &str) -> u64 {
    name.trim_end_matches("-predictive")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn noisy(view: &JobView, rng: &mut SplitMix64, sigma: f64) -> JobView {
    if sigma == 0.0 {
        return view.clone();
    }
    let mut f = || 1.0 + (rng.next_normal() * sigma).clamp(-3.0 * sigma, 3.0 * sigma);
    let mut v = view.clone();
    v.processed_rate *= f();
    v.busy
        .iter_mut()
        .for_each(|b| *b = (*b * f()).clamp(0.0, 1.0));
    v.cpu = (v.cpu * f()).clamp(0.0, 1.0);
    v
}

/// What one run tallies besides the job model's own counters.
#[derive(Default)]
struct Tally {
    series: Vec<Point>,
    next_sample: f64,
    seconds_above_slo: f64,
    peak_lag_s: f64,
    peak_lag_records: f64,
    max_task_managers: u32,
    max_parallelism: u32,
    requests: Vec<Request>,
    last_requested: Option<Vec<u32>>,
}

impl Tally {
    /// One step's state: time above the SLO, peaks, and a sample every `sample_every_s`.
    fn observe(&mut self, t: f64, input: f64, view: &JobView, config: &SimConfig) {
        if view.lag_records > config.lag_slo_s * input.max(1.0) {
            self.seconds_above_slo += config.step_s;
        }
        self.peak_lag_s = self.peak_lag_s.max(view.lag_seconds());
        self.peak_lag_records = self.peak_lag_records.max(view.lag_records);
        self.max_task_managers = self.max_task_managers.max(view.tms_requested);
        let p = view.parallelism.iter().copied().max().unwrap_or(0);
        self.max_parallelism = self.max_parallelism.max(p);
        if t >= self.next_sample {
            self.next_sample += config.sample_every_s;
            self.series.push(Point {
                t,
                input_rate: input,
                lag_records: view.lag_records,
                lag_s: view.lag_seconds(),
                parallelism: p,
                task_managers: view.tms_requested,
                task_managers_ready: view.tms_ready,
                restarting: view.restarting,
            });
        }
    }

    /// A target the policy asked for: recorded when it is new and differs from what runs.
    fn requested(&mut self, t: f64, view: &JobView, target: &Target) {
        let changed = self.last_requested.as_ref() != Some(&target.parallelism);
        if changed && target.parallelism != view.parallelism {
            self.requests.push(Request {
                t,
                lag_s: view.lag_seconds(),
                from: view.parallelism.clone(),
                to: target.parallelism.clone(),
            });
        }
        self.last_requested = Some(target.parallelism.clone());
    }
}

fn run_one(
    trace: &Trace,
    config: &SimConfig,
    mut policy: Box<dyn SimPolicy>,
    salt: u64,
) -> PolicyResult {
    let spec = config.job.clone();
    let n = spec.vertices.len();
    let (p0, tms0) = initial(trace, config);
    let start = policy.initial(&spec).unwrap_or(Target {
        parallelism: vec![p0; n],
        task_managers: tms0,
    });
    let mut job = JobModel::new(
        spec,
        policy.actuation(),
        start.parallelism.clone(),
        start.task_managers,
    );
    let mut rng = SplitMix64::new(config.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let dt = config.step_s;
    let steps = (trace.duration() / dt).ceil() as u64;
    let mut tally = Tally::default();
    for i in 0..steps {
        let t = i as f64 * dt;
        let input = trace.rate_at(t);
        let view = job.advance(t, input, dt);
        tally.observe(t, input, &view, config);
        let seen = noisy(&view, &mut rng, config.signal_noise);
        if let Some(target) = policy.step(&seen, t) {
            tally.requested(t, &view, &target);
            job.apply(t, &target);
        }
    }
    PolicyResult {
        name: policy.name(),
        seconds_above_slo: tally.seconds_above_slo,
        peak_lag_s: tally.peak_lag_s,
        peak_lag_records: tally.peak_lag_records,
        tm_hours: job.counters.tm_seconds / 3600.0,
        rescales: job.counters.rescales,
        restarts: job.counters.restarts,
        downtime_s: job.counters.downtime_s,
        max_task_managers: tally.max_task_managers,
        max_parallelism: tally.max_parallelism,
        series: tally.series,
        events: job.events.clone(),
        requests: tally.requests,
    }
}
