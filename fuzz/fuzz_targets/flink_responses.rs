//! libFuzzer target: `flink_keda_scaler::fuzzing::flink_responses` must neither panic nor produce an
//! unbounded error message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = flink_keda_scaler::fuzzing::flink_responses(data) {
        panic!("{broken}");
    }
});
