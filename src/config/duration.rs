//! Durations in the config are humantime strings (`15s`, `5m`, `1h 30m`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserializes a humantime string into a `Duration`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!("invalid duration '{s}': {e} (use e.g. 30s, 5m, 1h)"))
    })
}

/// `Option<Duration>` variant.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Deserializes an optional humantime string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            humantime::parse_duration(&s).map_err(|e| {
                serde::de::Error::custom(format!("invalid duration '{s}': {e} (use e.g. 30s, 5m, 1h)"))
            })
        })
        .transpose()
    }
}
