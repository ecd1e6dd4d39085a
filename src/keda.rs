//! KEDA external-scaler gRPC adapter.
//!
//! ```text
//!  KEDA ── GetMetricSpec ──► metadata::parse ─► metric_spec (pure: never evaluates)
//!       ── GetMetrics ─────► metadata::parse ─► Evaluator::evaluate (timeout) ─► 1 MetricValue
//!       ── IsActive ───────► metadata::parse ─► Evaluator::evaluate (timeout) ─► active
//!       ── StreamIsActive ─► evaluate every stream_interval, send on change, end on shutdown
//!       ── StreamMetricSpec► spec once, hold until shutdown
//! ```
//!
//! The adapter depends on `core` only. The runtime implements [`Evaluator`] (cached
//! decisions per [`CacheKey`]) and [`RpcObserver`] (metrics); [`serve`] runs the service
//! with health, reflection and optional (m)TLS.

mod call;
pub mod evaluator;
pub mod metadata;
pub mod pb;
pub mod server;
pub mod service;
mod streams;
mod suggest;
pub mod target;

pub use evaluator::{EvalError, Evaluation, Evaluator, NoopObserver, RpcObserver};
pub use metadata::{MetadataError, Scope};
pub use server::{load_tls, prepare, serve, serve_with, Prepared, ServeOptions, ServerError};
pub use service::{ExternalScalerService, ServiceSettings};
pub use target::{CacheKey, ScalerTarget};
