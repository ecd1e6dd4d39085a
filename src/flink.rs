//! flink (work in progress)
