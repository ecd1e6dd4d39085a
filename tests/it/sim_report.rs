//! Report renderings: every policy appears in the table, CSV and SVG of every built-in
//! trace (run with `--nocapture` to see the tables).

use flink_keda_scaler::{
    sim::{self, BuiltinTrace, SimConfig, TraceSource},
    svg::{SvgError, AVAILABLE as SVG},
};

#[test]
fn every_builtin_trace_renders_every_policy() {
    for b in BuiltinTrace::ALL {
        let cfg = SimConfig {
            trace: TraceSource::Builtin(b),
            ..SimConfig::default()
        };
        let report = sim::run(&cfg).expect("simulation runs");
        let table = report.to_table();
        println!("{table}");
        let csv = report.to_csv();
        assert!(report.policies.len() >= 7, "{}", b.name());
        for p in &report.policies {
            assert!(table.contains(&p.name));
            assert!(csv.contains(&format!(",{},", p.name)));
        }
        if SVG {
            let svg = report.to_svg().expect("svg");
            for p in &report.policies {
                assert!(svg.contains(&format!(">{}</text>", p.name)));
            }
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        } else {
            assert!(matches!(report.to_svg(), Err(SvgError::NotCompiled)));
        }
        let rows = csv.lines().count() - 1;
        let expected: usize = report.policies.iter().map(|p| p.series.len()).sum();
        assert_eq!(rows, expected);
    }
}
