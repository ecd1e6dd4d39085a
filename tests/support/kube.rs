//! kube test harness (see mod.rs).
