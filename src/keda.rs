//! KEDA external-scaler gRPC adapter.

pub mod pb;
