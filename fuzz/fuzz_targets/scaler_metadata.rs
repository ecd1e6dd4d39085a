//! libFuzzer target: `flink_keda_scaler::fuzzing::scaler_metadata` must neither panic nor produce an
//! unbounded error message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = flink_keda_scaler::fuzzing::scaler_metadata(data) {
        panic!("{broken}");
    }
});
