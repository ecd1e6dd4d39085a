//! Code generated from `proto/externalscaler.proto` (tonic + prost, via protox).
#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("externalscaler");

/// Encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/externalscaler_descriptor.bin"));
