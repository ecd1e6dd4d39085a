//! flink test harness (see mod.rs).
