//! fks-lab's end-to-end suites, one binary: the closed loop on real Flink + Prometheus
//! with the built scaler and the KEDA/HPA driver (`cargo test -p fks-lab --test it
//! flink_loop::`). A missing component skips outside CI and fails in CI (`CI=true`).

mod support;

mod flink_loop;
