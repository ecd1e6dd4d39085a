//! Entry points of the parsers that read untrusted input, shared by the `cargo fuzz`
//! targets in `fuzz/` and by the corpus replay test (`tests/it/fuzz_corpus.rs`), so both
//! drive exactly the same code. Each returns `Err` with the broken property (a panic is a
//! crash by itself): scalerMetadata parsing, the Prometheus API response decoder, and the
//! Flink REST response decoders (job details, plan, resource requirements, taskmanagers,
//! error bodies). Not part of the scaler's API.

use std::collections::BTreeMap;

use crate::{
    flink::{
        model::{parse_plan, JobDetails, ResourceRequirements, TaskManagers},
        response::{decode, map_status},
    },
    keda::ScalerTarget,
};

/// Longest error message any parser may produce for any input (they quote at most capped
/// pieces of it).
pub const MAX_MESSAGE: usize = 4096;

fn bounded(what: &str, message: String) -> Result<(), String> {
    if message.len() > MAX_MESSAGE {
        return Err(format!(
            "{what}: a {} byte error message for a fuzz input",
            message.len()
        ));
    }
    Ok(())
}

/// `key=value` lines as scalerMetadata, parsed as the gRPC service does.
pub fn scaler_metadata(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let metadata: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match ScalerTarget::parse("so", "ns", &metadata) {
        Ok(_) => Ok(()),
        Err(e) => bounded("scalerMetadata", e.to_string()),
    }
}

/// A Prometheus `/api/v1/query` answer, as a 200 and as a 500.
pub fn prometheus_response(data: &[u8]) -> Result<(), String> {
    for status in [200, 500] {
        if let Err(e) = crate::promql::response::decode(status, data, "http://prometheus") {
            bounded("prometheus response", e.to_string())?;
        }
    }
    Ok(())
}

/// The Flink REST answers the scaler decodes, and an error answer's body.
pub fn flink_responses(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let errors = [
        decode::<JobDetails>("job details", &text).err(),
        decode::<ResourceRequirements>("resource requirements", &text).err(),
        decode::<TaskManagers>("taskmanagers", &text).err(),
        Some(map_status(
            "job details",
            Some("0123456789abcdef0123456789abcdef"),
            reqwest::StatusCode::INTERNAL_SERVER_ERROR,
            &text,
        )),
    ];
    for e in errors.into_iter().flatten() {
        bounded("flink response", e.to_string())?;
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Err(e) = parse_plan(&value) {
            bounded("flink plan", e.to_string())?;
        }
    }
    Ok(())
}
