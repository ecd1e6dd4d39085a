//! Fakes for the keda gRPC tests: a scripted `Evaluator`, a recording `RpcObserver`, and
//! an in-process server on 127.0.0.1:0 that stops on Drop.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use chrono::Utc;
use flink_keda_scaler::keda::{
    pb::{external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef},
    serve_with, EvalError, Evaluation, Evaluator, ExternalScalerService, RpcObserver, ScalerTarget,
    ServeOptions, ServerError, ServiceSettings,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// What the fake answers for one ScaledObject name.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A fresh evaluation.
    Ok { task_managers: u32, active: bool },
    /// An evaluation made `age` ago.
    Stale { task_managers: u32, age: Duration },
    /// An error.
    Err(EvalError),
    /// Never answers.
    Hang,
}

/// Answers by ScaledObject name; unknown names → NOT_FOUND.
#[derive(Default)]
pub struct FakeEvaluator {
    answers: Mutex<HashMap<String, Answer>>,
    calls: AtomicUsize,
}

impl FakeEvaluator {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn set(&self, name: &str, answer: Answer) {
        self.answers
            .lock()
            .expect("answers lock")
            .insert(name.to_string(), answer);
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Evaluator for FakeEvaluator {
    async fn evaluate(&self, target: &ScalerTarget) -> Result<Evaluation, EvalError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = self
            .answers
            .lock()
            .expect("answers lock")
            .get(&target.scaled_object.name)
            .cloned();
        match answer {
            Some(Answer::Ok {
                task_managers,
                active,
            }) => Ok(Evaluation {
                task_managers,
                active,
                evaluated_at: Utc::now(),
            }),
            Some(Answer::Stale { task_managers, age }) => Ok(Evaluation {
                task_managers,
                active: true,
                evaluated_at: Utc::now() - chrono::Duration::from_std(age).expect("age"),
            }),
            Some(Answer::Err(e)) => Err(e),
            Some(Answer::Hang) => std::future::pending().await,
            None => Err(EvalError::not_found(format!(
                "no Flink job for {}",
                target.scaled_object
            ))),
        }
    }
}

/// Records every observed rpc.
#[derive(Default)]
pub struct RecordingObserver {
    pub seen: Mutex<Vec<(&'static str, tonic::Code)>>,
}

impl RpcObserver for RecordingObserver {
    fn observe(&self, method: &'static str, code: tonic::Code, _elapsed: Duration) {
        self.seen.lock().expect("seen lock").push((method, code));
    }
}

impl RecordingObserver {
    pub fn seen(&self) -> Vec<(&'static str, tonic::Code)> {
        self.seen.lock().expect("seen lock").clone()
    }
}

/// Fast settings for tests.
pub fn test_settings() -> ServiceSettings {
    ServiceSettings {
        rpc_timeout: Duration::from_millis(300),
        stream_interval: Duration::from_millis(50),
        max_evaluation_age: Some(Duration::from_secs(60)),
    }
}

/// An in-process server; shuts down on Drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub evaluator: Arc<FakeEvaluator>,
    pub observer: Arc<RecordingObserver>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    pub async fn start(settings: ServiceSettings) -> Self {
        Self::start_with(settings, ServeOptions::default()).await
    }

    pub async fn start_with(settings: ServiceSettings, options: ServeOptions) -> Self {
        let evaluator = FakeEvaluator::new();
        let observer = Arc::new(RecordingObserver::default());
        let service = ExternalScalerService::new(Arc::clone(&evaluator), settings)
            .with_observer(Arc::clone(&observer) as Arc<dyn RpcObserver>);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve_with(listener, service, options, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            evaluator,
            observer,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        for _ in 0..50 {
            if let Ok(ch) = Channel::from_shared(self.url())
                .expect("url")
                .connect_timeout(Duration::from_secs(2))
                .connect()
                .await
            {
                return ch;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("test server at {} did not accept connections", self.addr);
    }

    pub async fn client(&self) -> ExternalScalerClient<Channel> {
        ExternalScalerClient::new(self.channel().await)
    }

    /// Triggers shutdown and waits for `serve` to return (bounded).
    pub async fn stop(mut self, within: Duration) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().expect("handle");
        tokio::time::timeout(within, handle)
            .await
            .expect("server did not stop in time")
            .expect("server task panicked")
    }

    /// Triggers shutdown without waiting.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// A ScaledObjectRef with metadata pairs.
pub fn so_ref(namespace: &str, name: &str, metadata: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: name.to_string(),
        namespace: namespace.to_string(),
        scaler_metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    }
}

/// A valid metadata map.
pub fn valid_metadata() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("flinkRestUrl", "http://orders-rest.flink:8081"),
        ("jobName", "orders"),
        ("minTaskManagers", "1"),
        ("maxTaskManagers", "10"),
        ("scalerAddress", "flink-keda-scaler.keda:9090"),
    ])
}

/// A GetMetrics request.
pub fn metrics_request(r: ScaledObjectRef, metric_name: &str) -> GetMetricsRequest {
    GetMetricsRequest {
        scaled_object_ref: Some(r),
        metric_name: metric_name.to_string(),
    }
}
