//! python test harness (see mod.rs).
