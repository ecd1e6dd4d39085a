//! Predictive pre-scaling, shared with the scaler: see [`crate::core::predictive`].

pub use crate::core::predictive::{predictive_floor, PredictiveConfig};
