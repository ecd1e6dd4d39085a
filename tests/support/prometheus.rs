//! prometheus test harness (see mod.rs).
