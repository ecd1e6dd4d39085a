//! One worker per ScaledObject (namespace/name), started on KEDA's first call and stopped
//! after `evaluation.idleTimeout` without calls. When the ScaledObject's metadata changes
//! (a new metadata hash), the old worker is stopped before the new one starts, so two
//! workers never act on one job.
//! This is the [`Evaluator`] the gRPC layer calls: every GetMetrics, IsActive and HPA
//! call between two ticks is answered from the same published evaluation (KEDA fans one
//! poll out into three rpcs and the HPA polls again every 15 s).

use super::sync::lock;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use tokio::sync::watch;

use super::{
    context::Context,
    progress::Progress,
    shutdown::ShutdownSignal,
    worker::{Carry, Published, StoredReport, Worker},
};
use crate::{
    core::ScaledObjectRef,
    keda::{CacheKey, EvalError, Evaluation, Evaluator, ScalerTarget},
};

struct Handle {
    key: CacheKey,
    /// When the worker started (its age counts as lag until its first tick).
    since: chrono::DateTime<chrono::Utc>,
    rx: watch::Receiver<Option<Published>>,
    touched: Arc<Mutex<Instant>>,
    stop: watch::Sender<bool>,
    /// Held by the running worker of this ScaledObject; the next one waits for it and
    /// takes over its state (cooldown, scale-down window, in-flight rescale).
    turn: Turn,
    /// The step the worker's tick waits on.
    progress: Progress,
}

/// A worker generation's lock, carrying its state to the next generation.
type Turn = Arc<tokio::sync::Mutex<Option<Carry>>>;

/// The per-ScaledObject workers.
pub struct Workers {
    ctx: Arc<Context>,
    jobs: Mutex<HashMap<ScaledObjectRef, Handle>>,
    shutdown: ShutdownSignal,
}

impl Workers {
    /// No worker yet.
    pub fn new(ctx: Arc<Context>, shutdown: ShutdownSignal) -> Self {
        Self {
            ctx,
            jobs: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// The latest report of every job (for `/debug/jobs`).
    pub fn reports(&self) -> Vec<Arc<StoredReport>> {
        let jobs = lock(&self.jobs);
        let mut out: Vec<Arc<StoredReport>> = jobs
            .values()
            .filter_map(|h| h.rx.borrow().as_ref().map(|p| p.report.clone()))
            .collect();
        out.sort_by(|a, b| a.scaled_object.cmp(&b.scaled_object));
        out
    }

    /// Age of the oldest evaluation: now minus the last tick of the job evaluated longest
    /// ago (a worker without a tick yet counts from its start). Zero without workers.
    pub fn evaluation_lag(&self) -> std::time::Duration {
        let now = chrono::Utc::now();
        let jobs = lock(&self.jobs);
        let oldest = jobs
            .values()
            .map(|h| {
                h.rx.borrow()
                    .as_ref()
                    .map_or(h.since, |p| p.report.evaluated_at)
            })
            .min();
        oldest
            .and_then(|t| (now - t).to_std().ok())
            .unwrap_or_default()
    }

    /// Keeps `flink_keda_scaler_evaluation_lag_seconds` current (every second) until
    /// shutdown.
    pub fn spawn_lag_gauge(self: &Arc<Self>) {
        let workers = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let shutdown = workers.shutdown.clone();
                workers
                    .ctx
                    .metrics
                    .set_evaluation_lag(workers.evaluation_lag().as_secs_f64());
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    () = shutdown.wait() => break,
                }
            }
        });
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        lock(&self.jobs).len()
    }

    /// True when no worker runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn handle(self: &Arc<Self>, target: &ScalerTarget) -> watch::Receiver<Option<Published>> {
        let key = target.cache_key();
        let object = target.scaled_object.clone();
        let mut jobs = lock(&self.jobs);
        let mut turn: Turn = Arc::new(tokio::sync::Mutex::new(None));
        if let Some(h) = jobs.get(&object) {
            if h.key == key {
                *lock(&h.touched) = Instant::now();
                return h.rx.clone();
            }
            tracing::info!(scaled_object = %target, "ScaledObject metadata changed; restarting its evaluation");
            let _ = h.stop.send(true);
            turn = h.turn.clone();
        }
        let (tx, rx) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let touched = Arc::new(Mutex::new(Instant::now()));
        // Boxed: the task's future then holds a pointer, not the worker (once in the
        // closure and again in `run`'s state: about 7 kB per idle worker at 1,000).
        let mut worker = Box::new(Worker::new(self.ctx.clone(), target.clone()));
        jobs.insert(
            object.clone(),
            Handle {
                key: key.clone(),
                since: chrono::Utc::now(),
                rx: rx.clone(),
                touched: touched.clone(),
                stop,
                turn: turn.clone(),
                progress: worker.progress(),
            },
        );
        let workers = Arc::clone(self);
        tracing::info!(scaled_object = %target, "evaluating a new ScaledObject");
        tokio::spawn(async move {
            // Wait until the previous worker of this ScaledObject (if any) has stopped,
            // then continue from its state.
            let mut turn = turn.lock_owned().await;
            if let Some(carry) = turn.take() {
                worker.resume(carry);
            }
            let carry = workers.run(object, key, worker, tx, touched, stop_rx).await;
            *turn = Some(carry);
        });
        rx
    }

    async fn run(
        self: Arc<Self>,
        object: ScaledObjectRef,
        key: CacheKey,
        mut worker: Box<Worker>,
        tx: watch::Sender<Option<Published>>,
        touched: Arc<Mutex<Instant>>,
        mut stop: watch::Receiver<bool>,
    ) -> Carry {
        let idle = self.ctx.config.evaluation.idle_timeout;
        loop {
            // Boxed: a tick's future (Flink, Prometheus and Kubernetes calls) is large and
            // lives only while the tick runs, instead of inside every idle worker's task.
            let published = Box::pin(worker.tick()).await;
            tx.send_replace(Some(published));
            let delay = worker.next_delay();
            let shutdown = self.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.wait() => break,
                _ = stop.wait_for(|s| *s) => break,
            }
            if lock(&touched).elapsed() > idle {
                tracing::info!(scaled_object = %object, "no calls from KEDA for {idle:?}; stopping its evaluation");
                break;
            }
        }
        worker.forget();
        let mut jobs = lock(&self.jobs);
        if jobs.get(&object).is_some_and(|h| h.key == key) {
            jobs.remove(&object);
        }
        worker.carry()
    }

    /// The freshest evaluation for `target`, waiting for the first tick of a new worker.
    /// The gRPC layer bounds the wait with its rpc timeout.
    pub async fn latest(self: &Arc<Self>, target: &ScalerTarget) -> Result<Evaluation, EvalError> {
        let mut rx = self.handle(target);
        let max_age = self.ctx.config.evaluation.interval * 2 + std::time::Duration::from_secs(5);
        loop {
            if let Some(p) = rx.borrow_and_update().as_ref() {
                let fresh = match &p.result {
                    Ok(e) => (chrono::Utc::now() - e.evaluated_at)
                        .to_std()
                        .map(|age| age <= max_age)
                        .unwrap_or(true),
                    Err(_) => true,
                };
                if fresh {
                    return p.result.clone();
                }
            }
            if rx.changed().await.is_err() {
                return Err(EvalError::unavailable(format!(
                    "evaluation of {target} stopped (scaler shutting down)"
                )));
            }
        }
    }
}

impl Workers {
    /// What the evaluation of `target` waits on: the step its worker's tick is in, named
    /// for the first evaluation or a fresh one (see [`Evaluator::waiting_on`]).
    pub fn waiting_on(&self, target: &ScalerTarget) -> Option<String> {
        let jobs = lock(&self.jobs);
        let h = jobs.get(&target.scaled_object)?;
        let step = h.progress.get()?;
        let which = if h.rx.borrow().is_none() {
            "the first evaluation"
        } else {
            "a fresh evaluation"
        };
        Some(format!("waiting for {which}: {step}"))
    }
}

/// The gRPC layer's view of the workers.
#[derive(Clone)]
pub struct WorkersEvaluator(pub Arc<Workers>);

impl Evaluator for WorkersEvaluator {
    async fn evaluate(&self, target: &ScalerTarget) -> Result<Evaluation, EvalError> {
        self.0.latest(target).await
    }

    fn waiting_on(&self, target: &ScalerTarget) -> Option<String> {
        self.0.waiting_on(target)
    }
}
