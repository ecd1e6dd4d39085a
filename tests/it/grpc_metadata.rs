//! scalerMetadata parsing (pure): every key parsed into `ScalerTarget`, the derived metric
//! name and cache key, and a property test: arbitrary metadata maps (random keys/values
//! and mutations of a valid map) never panic and always yield one spec or
//! INVALID_ARGUMENT naming a key.

use std::{collections::HashMap, time::Duration};

use flink_keda_scaler::{
    core::{JobSelector, Signal},
    keda::{
        metadata::{known_keys, query_key, KEDA_KEYS, KEYS},
        pb::ScaledObjectRef,
        service::metric_spec_response,
        ScalerTarget,
    },
};
use proptest::prelude::*;

fn md(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> Result<ScalerTarget, flink_keda_scaler::keda::MetadataError> {
    ScalerTarget::parse("prod", "orders-so", &md(pairs))
}

#[test]
fn every_key_is_parsed_into_the_target() {
    let t = parse(&[
        ("flinkRestUrl", "https://orders-rest.flink.svc:8081/"),
        ("jobId", " 0123456789ABCDEF0123456789abcdef "),
        ("minTaskManagers", "2"),
        ("maxTaskManagers", "12"),
        ("slotsPerTaskManager", "4"),
        ("targetUtilization", "0.7"),
        ("catchUpDuration", "5m"),
        ("policy", "fast"),
        ("prometheusServer", "main"),
        ("dryRun", "TRUE"),
        ("busyTimeQuery", "max(flink_busy)"),
        ("pendingRecordsQuery", "sum(lag)"),
        ("scalerAddress", "scaler.keda:9090"),
        ("enableTLS", "true"),
        ("unsafeSsl", "false"),
        ("caCert", "-----BEGIN CERTIFICATE-----"),
    ])
    .expect("valid metadata");
    assert_eq!(t.scaled_object.namespace, "prod");
    assert_eq!(t.scaled_object.name, "orders-so");
    assert_eq!(
        t.flink_rest_url.as_ref().map(|u| u.as_str()),
        Some("https://orders-rest.flink.svc:8081/")
    );
    assert_eq!(
        t.job,
        JobSelector::Id(
            "0123456789abcdef0123456789abcdef"
                .parse()
                .expect("a job id")
        )
    );
    assert_eq!(t.min_task_managers, Some(2));
    assert_eq!(t.max_task_managers, Some(12));
    assert_eq!(t.slots_per_task_manager, Some(4));
    assert_eq!(t.target_utilization, Some(0.7));
    assert_eq!(t.catch_up_duration, Some(Duration::from_secs(300)));
    assert_eq!(t.policy.as_deref(), Some("fast"));
    assert_eq!(t.prometheus_server.as_deref(), Some("main"));
    assert_eq!(t.dry_run, Some(true));
    assert_eq!(t.query_overrides.len(), 2);
    assert_eq!(
        t.query_overrides.get(&Signal::BusyTime).map(String::as_str),
        Some("max(flink_busy)")
    );
    assert_eq!(
        t.query_overrides
            .get(&Signal::PendingRecords)
            .map(String::as_str),
        Some("sum(lag)")
    );
    assert_eq!(
        t.metric_name(),
        "flink-taskmanagers-0123456789abcdef0123456789abcdef"
    );
}

#[test]
fn unset_keys_stay_unset() {
    let t = parse(&[]).expect("empty metadata is valid");
    assert_eq!(t.job, JobSelector::OnlyRunning);
    assert!(t.flink_rest_url.is_none());
    assert!(t.min_task_managers.is_none() && t.max_task_managers.is_none());
    assert!(t.slots_per_task_manager.is_none() && t.target_utilization.is_none());
    assert!(t.catch_up_duration.is_none() && t.dry_run.is_none());
    assert!(t.policy.is_none() && t.prometheus_server.is_none());
    assert!(t.query_overrides.is_empty());
    assert_eq!(t.metric_name(), "flink-taskmanagers");
}

#[test]
fn every_signal_has_an_override_key() {
    for signal in Signal::ALL {
        let key = query_key(signal);
        let t = parse(&[(key.as_str(), "vector(1)")]).expect(&key);
        assert_eq!(
            t.query_overrides.get(&signal).map(String::as_str),
            Some("vector(1)")
        );
    }
}

#[test]
fn unknown_keys_are_named_with_a_suggestion_when_close() {
    let err = parse(&[("minTaskManager", "2")]).expect_err("typo");
    assert_eq!(err.key, "minTaskManager");
    assert_eq!(
        err.to_string(),
        "invalid scalerMetadata key 'minTaskManager': unknown scalerMetadata key; did you \
         mean 'minTaskManagers'?"
    );
    let err = parse(&[("busytimequery", "x")]).expect_err("case");
    assert!(
        err.to_string().contains("did you mean 'busyTimeQuery'"),
        "{err}"
    );
    let err = parse(&[("somethingElseEntirely", "x")]).expect_err("far");
    assert!(
        err.to_string().contains("known keys: flinkRestUrl"),
        "{err}"
    );
}

#[test]
fn cache_key_is_stable_and_changes_with_any_metadata_change() {
    let a = parse(&[("jobName", "orders"), ("maxTaskManagers", "5")]).expect("a");
    let b = parse(&[("maxTaskManagers", "5"), ("jobName", "orders")]).expect("b");
    let c = parse(&[("jobName", "orders"), ("maxTaskManagers", "6")]).expect("c");
    assert_eq!(
        a.cache_key(),
        b.cache_key(),
        "order of keys must not matter"
    );
    assert_ne!(a.cache_key(), c.cache_key());
    let other_so =
        ScalerTarget::parse("prod", "other", &md(&[("jobName", "orders")])).expect("other");
    assert_ne!(
        parse(&[("jobName", "orders")]).expect("x").cache_key(),
        other_so.cache_key()
    );
    assert_eq!(a.cache_key().scaled_object.namespace, "prod");
    assert_eq!(a.cache_key().scaled_object.name, "orders-so");
}

fn arbitrary_key() -> impl Strategy<Value = String> {
    let known: Vec<String> = known_keys().collect();
    prop_oneof![
        proptest::sample::select(known.clone()),
        // near misses of known keys: one char dropped or case flipped
        (
            proptest::sample::select(known),
            any::<prop::sample::Index>()
        )
            .prop_map(|(k, i)| {
                let mut chars: Vec<char> = k.chars().collect();
                let idx = i.index(chars.len());
                if idx % 2 == 0 {
                    chars.remove(idx);
                } else {
                    chars[idx] = if chars[idx].is_uppercase() {
                        chars[idx].to_ascii_lowercase()
                    } else {
                        chars[idx].to_ascii_uppercase()
                    };
                }
                chars.into_iter().collect()
            }),
        ".{0,20}",
    ]
}

fn arbitrary_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_string()),
        Just("1".to_string()),
        Just("4294967296".to_string()),
        Just("-3".to_string()),
        Just("0.5".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("true".to_string()),
        Just("5m".to_string()),
        Just("http://jm:8081".to_string()),
        Just("0123456789abcdef0123456789abcdef".to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        ".{0,40}",
    ]
}

fn check_one(namespace: &str, name: &str, metadata: HashMap<String, String>) {
    let r = ScaledObjectRef {
        name: name.to_string(),
        namespace: namespace.to_string(),
        scaler_metadata: metadata.clone(),
    };
    match metric_spec_response(&r) {
        Ok(spec) => {
            assert_eq!(spec.metric_specs.len(), 1);
            let s = &spec.metric_specs[0];
            assert_eq!(s.target_size_float, 1.0);
            assert!(s.metric_name.len() <= 63, "{}", s.metric_name);
            assert!(s.metric_name.starts_with("flink-taskmanagers"));
            assert!(s
                .metric_name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert!(!s.metric_name.ends_with('-'));
        }
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            let message = status.message();
            let names_a_key = metadata.keys().any(|k| message.contains(&format!("'{k}'")))
                || message.contains("'name'")
                || message.contains("'namespace'");
            assert!(
                names_a_key,
                "message names no key: {message} for {metadata:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_metadata_yields_a_spec_or_invalid_argument(
        namespace in prop_oneof![Just("prod".to_string()), ".{0,5}"],
        name in prop_oneof![Just("so".to_string()), ".{0,5}"],
        pairs in proptest::collection::vec((arbitrary_key(), arbitrary_value()), 0..8),
    ) {
        check_one(&namespace, &name, pairs.into_iter().collect());
    }

    #[test]
    fn mutations_of_a_valid_map_yield_a_spec_or_invalid_argument(
        drop in proptest::collection::vec(any::<bool>(), 6),
        key in arbitrary_key(),
        value in arbitrary_value(),
        replace in any::<prop::sample::Index>(),
    ) {
        let mut m = md(&[
            ("flinkRestUrl", "http://jm:8081"),
            ("jobName", "orders"),
            ("minTaskManagers", "1"),
            ("maxTaskManagers", "10"),
            ("targetUtilization", "0.8"),
            ("catchUpDuration", "10m"),
        ]);
        let keys: Vec<String> = {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        };
        for (k, d) in keys.iter().zip(drop) {
            if d { m.remove(k); }
        }
        // set a random value on a known key, then add a random pair
        let target = &keys[replace.index(keys.len())];
        m.insert(target.clone(), value.clone());
        m.insert(key, value);
        check_one("prod", "so", m);
    }
}

#[test]
fn keda_keys_and_our_keys_are_disjoint_and_known() {
    let known: Vec<String> = known_keys().collect();
    for k in KEYS.iter().chain(KEDA_KEYS.iter()) {
        assert!(known.iter().any(|x| x == k), "{k}");
    }
    assert!(KEYS.iter().all(|k| !KEDA_KEYS.contains(k)));
    assert_eq!(
        known.len(),
        KEYS.len() + KEDA_KEYS.len() + Signal::ALL.len()
    );
}
