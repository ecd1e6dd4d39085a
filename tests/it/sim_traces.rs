//! The committed `traces/*.csv` are exactly the generators' output, and the CSV format
//! round-trips. Regenerate with `SIM_WRITE_TRACES=1 cargo test --test it sim_traces::`.

use std::path::Path;

use flink_keda_scaler::sim::{load_csv, write_builtin_traces, BuiltinTrace, SimError, Trace};

fn traces_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/traces"))
}

#[test]
fn committed_traces_equal_generator_output() {
    if std::env::var_os("SIM_WRITE_TRACES").is_some() {
        write_builtin_traces(traces_dir()).expect("write traces");
    }
    for b in BuiltinTrace::ALL {
        let path = traces_dir().join(format!("{}.csv", b.name()));
        let committed = std::fs::read_to_string(&path).expect("committed trace exists");
        let generated = b.generate();
        assert_eq!(committed, generated.to_csv(), "{} differs", b.name());
        assert_eq!(load_csv(&path).expect("parses"), generated);
    }
}

#[test]
fn generators_are_deterministic_and_shaped_as_documented() {
    for b in BuiltinTrace::ALL {
        assert_eq!(b.generate(), b.generate());
    }
    let step = BuiltinTrace::Step.generate();
    assert_eq!(step.rate_at(0.0), 4_000.0);
    assert_eq!(step.rate_at(1.5 * 3600.0), 3.0 * step.rate_at(0.0));
    assert_eq!(step.rate_at(3.0 * 3600.0), step.rate_at(0.0));
    let d = BuiltinTrace::Diurnal.generate();
    assert_eq!(d.duration(), 2.0 * 86_400.0);
    // day 2 repeats day 1
    for t in [3.0 * 3600.0, 9.25 * 3600.0, 15.0 * 3600.0] {
        assert_eq!(d.rate_at(t), d.rate_at(t + 86_400.0));
    }
    // the morning surge: > +50 % within 10 min around 09:00
    assert!(d.rate_at(9.1 * 3600.0) > 1.5 * d.rate_at(8.95 * 3600.0));
    let s = BuiltinTrace::Spikes.generate();
    assert!(s.peak() >= 2.5 * 4_000.0);
    let n = BuiltinTrace::Noisy.generate();
    assert!(n
        .samples
        .iter()
        .all(|(_, r)| (4_200.0..=7_800.0).contains(r)));
}

#[test]
fn user_csv_errors_name_the_line() {
    let ok = Trace::parse_csv("u", "t_seconds,input_rate\n0,10\n# c\n\n60,20\n").expect("ok");
    assert_eq!(ok.samples, vec![(0.0, 10.0), (60.0, 20.0)]);
    for (text, line) in [
        ("0,10\n0,20\n", 2),
        ("0,10\n5,-1\n", 2),
        ("0,abc\n", 1),
        ("0,1,2\n", 1),
        ("0,NaN\n", 1),
    ] {
        match Trace::parse_csv("u", text) {
            Err(SimError::TraceFormat { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Trace::parse_csv("u", "t_seconds,input_rate\n"),
        Err(SimError::EmptyTrace(_))
    ));
}

#[test]
fn cli_trace_argument_picks_builtin_or_file() {
    use flink_keda_scaler::sim::TraceSource;
    assert_eq!(
        TraceSource::from_arg("diurnal"),
        TraceSource::Builtin(BuiltinTrace::Diurnal)
    );
    let user = traces_dir().join("step.csv");
    let arg = user.to_string_lossy().into_owned();
    assert_eq!(TraceSource::from_arg(&arg), TraceSource::File(user.clone()));
    let cfg = flink_keda_scaler::sim::SimConfig {
        trace: TraceSource::from_arg(&arg),
        ..Default::default()
    };
    let from_file = flink_keda_scaler::sim::run(&cfg).expect("runs");
    let builtin = flink_keda_scaler::sim::run(&flink_keda_scaler::sim::SimConfig {
        trace: TraceSource::Builtin(BuiltinTrace::Step),
        ..Default::default()
    })
    .expect("runs");
    assert_eq!(from_file, builtin);
    let missing = flink_keda_scaler::sim::SimConfig {
        trace: TraceSource::from_arg("/nonexistent/trace.csv"),
        ..Default::default()
    };
    assert!(matches!(
        flink_keda_scaler::sim::run(&missing),
        Err(SimError::Io { .. })
    ));
}
