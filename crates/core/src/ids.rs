//! The identities every layer shares: a Flink [`JobId`] (parsed once), which job a
//! ScaledObject scales ([`JobSelector`]), and the ScaledObject itself
//! ([`ScaledObjectRef`]). Adapters and the runtime use these instead of strings, so the
//! "32 hexadecimal characters" rule lives here only.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a Flink job id in hex characters (a 16-byte `JobID`).
pub const JOB_ID_LEN: usize = 32;

/// A Flink job id: 32 hexadecimal characters, held lowercase (Flink's `JobID.toString`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

/// Why a string is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Flink job id is {JOB_ID_LEN} hexadecimal characters, got {got:?}")]
pub struct InvalidJobId {
    /// The refused input (at most 80 characters).
    pub got: String,
}

impl JobId {
    /// The id as text (lowercase hex).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == JOB_ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(InvalidJobId {
                got: s.chars().take(80).collect(),
            })
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which Flink job of a cluster is meant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobSelector {
    /// Neither a name nor an id: the only non-terminal job of the cluster.
    OnlyRunning,
    /// The non-terminal job with exactly this name.
    Name(String),
    /// The job with this id.
    Id(JobId),
}

impl JobSelector {
    /// From a command-line `--job` value: a job id when it parses as one, else a name;
    /// `None` selects the only running job.
    pub fn from_arg(arg: Option<&str>) -> Self {
        match arg {
            None => JobSelector::OnlyRunning,
            Some(a) => a
                .parse()
                .map_or_else(|_| JobSelector::Name(a.to_string()), JobSelector::Id),
        }
    }
}

impl fmt::Display for JobSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobSelector::Id(id) => write!(f, "job id \"{id}\""),
            JobSelector::Name(n) => write!(f, "job name {n:?}"),
            JobSelector::OnlyRunning => f.write_str("the only running job"),
        }
    }
}

/// A KEDA ScaledObject: namespace and name. Displayed `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScaledObjectRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ScaledObjectRef {
    /// A reference.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ScaledObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_32_hex_characters_held_lowercase() {
        let id: JobId = "0123456789ABCDEF0123456789abcdef".parse().expect("valid");
        assert_eq!(id.as_str(), "0123456789abcdef0123456789abcdef");
        assert_eq!(id.to_string(), id.as_str());
        for bad in [
            "",
            "../overview",
            "0123456789abcdef0123456789abcde",
            "g123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0",
        ] {
            let e = bad.parse::<JobId>().expect_err(bad);
            assert!(e.to_string().contains("32 hexadecimal characters"), "{e}");
        }
        let long = "x".repeat(500).parse::<JobId>().expect_err("long");
        assert!(long.to_string().len() < 200, "{long}");
    }

    #[test]
    fn job_ids_serialize_as_strings_and_are_checked_when_read() {
        let id: JobId = "0123456789abcdef0123456789abcdef".parse().expect("valid");
        let json = serde_json::to_string(&id).expect("ser");
        assert_eq!(json, "\"0123456789abcdef0123456789abcdef\"");
        assert_eq!(serde_json::from_str::<JobId>(&json).expect("de"), id);
        assert!(serde_json::from_str::<JobId>("\"nope\"").is_err());
    }

    #[test]
    fn a_job_argument_is_an_id_when_it_parses_as_one() {
        assert_eq!(JobSelector::from_arg(None), JobSelector::OnlyRunning);
        assert_eq!(
            JobSelector::from_arg(Some("orders")),
            JobSelector::Name("orders".into())
        );
        let id = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            JobSelector::from_arg(Some(id)),
            JobSelector::Id(id.parse().expect("valid"))
        );
    }

    #[test]
    fn scaled_objects_display_as_namespace_slash_name() {
        assert_eq!(
            ScaledObjectRef::new("prod", "orders").to_string(),
            "prod/orders"
        );
    }
}
