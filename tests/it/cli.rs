//! The built binary's command line: `--help` of every subcommand, `check-config`,
//! `rescale --dry-run` against a fake Flink JobManager (prints the plan, sends no PUT),
//! and `explain` against the fake JobManager + a real Prometheus scraping a synthetic
//! exporter (prints the decision JSON with its reasons and the DS2 target).
//!
//! Run: `cargo test --test it cli:: -- --nocapture` (`explain` needs `/usr/bin/prometheus`;
//! SKIPPED without it, fails in CI).

use crate::support;

use std::{process::Output, time::Duration};

use serde_json::Value;
use support::{
    fake_flink::{FakeFlink, SLOTS_PER_TM},
    scaler::{config_yaml, ds2_expected, e2e_job, e2e_policy, Load},
    stack::Stack,
};

const P: u32 = 4;

async fn run(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(support::scaler_bin());
    cmd.args(args)
        .env_remove("FKS_CONFIG")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not finish within 30 s"))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON document printed on stdout (the first `{` to the end).
fn json_of(out: &Output) -> Value {
    let s = text(&out.stdout);
    let start = s
        .find('{')
        .unwrap_or_else(|| panic!("no JSON on stdout: {s}\nstderr: {}", text(&out.stderr)));
    serde_json::from_str(&s[start..]).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[tokio::test]
async fn help_works_for_every_subcommand() {
    let top = run(&["--help"]).await;
    assert!(top.status.success(), "{top:?}");
    let t = text(&top.stdout);
    for sub in ["serve", "check-config", "explain", "rescale"] {
        assert!(t.contains(sub), "top-level help lists {sub}: {t}");
    }
    let cases: &[(&str, &[&str])] = &[
        ("serve", &["--config", "--grpc-addr", "--http-addr"]),
        ("check-config", &["--config"]),
        (
            "explain",
            &["--config", "--flink", "--job", "--policy", "--prometheus"],
        ),
        (
            "rescale",
            &[
                "--flink",
                "--job",
                "--parallelism",
                "--vertex",
                "--timeout",
                "--dry-run",
            ],
        ),
    ];
    for (sub, flags) in cases {
        for argv in [vec![*sub, "--help"], vec!["help", *sub]] {
            let out = run(&argv).await;
            assert!(out.status.success(), "{argv:?}: {out:?}");
            let h = text(&out.stdout);
            assert!(h.contains("Usage:"), "{argv:?}: {h}");
            for f in *flags {
                assert!(h.contains(f), "{argv:?} documents {f}: {h}");
            }
        }
    }
    // An unknown subcommand is a usage error (exit 2), not a crash.
    let out = run(&["frobnicate"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test]
async fn check_config_accepts_the_test_config_and_rejects_a_typo() {
    let dir = support::tempdir("fks-cli-");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        config_yaml("http://127.0.0.1:9090", &e2e_policy(true, 1, 10)),
    )
    .expect("write");
    let out = run(&["check-config", "--config", good.to_str().expect("utf8")]).await;
    assert!(out.status.success(), "{out:?}");
    let s = text(&out.stdout);
    assert!(s.contains("OK"), "{s}");
    assert!(s.contains("targetUtilization=0.5"), "{s}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        config_yaml("http://127.0.0.1:9090", &e2e_policy(true, 1, 10))
            .replace("targetUtilization", "targetUtilisation"),
    )
    .expect("write");
    let out = run(&["check-config", "--config", bad.to_str().expect("utf8")]).await;
    assert!(!out.status.success(), "{out:?}");
    let e = text(&out.stderr);
    assert!(e.contains("targetUtilisation"), "names the field: {e}");
}

/// `check-config` opens every file the config names (a missing token file fails, naming
/// it), warns on `insecureSkipVerify`, and reports a YAML syntax error with its line and
/// column.
#[tokio::test]
async fn check_config_checks_referenced_files_and_warns() {
    let dir = support::tempdir("fks-cli-files-");
    let base = config_yaml("http://127.0.0.1:9090", &e2e_policy(true, 1, 10));
    let missing = dir.path().join("missing.yaml");
    std::fs::write(
        &missing,
        format!("{base}admin:\n  auth:\n    bearerTokenFile: /nonexistent/fks/admin-token\n"),
    )
    .expect("write");
    let out = run(&["check-config", "--config", missing.to_str().expect("utf8")]).await;
    assert!(!out.status.success(), "{out:?}");
    let e = text(&out.stderr);
    assert!(
        e.contains("/nonexistent/fks/admin-token"),
        "names the file: {e}"
    );

    let insecure = dir.path().join("insecure.yaml");
    std::fs::write(
        &insecure,
        base.replace(
            "flink:\n  timeout: 2s\n",
            "flink:\n  timeout: 2s\n  tls:\n    insecureSkipVerify: true\n",
        ),
    )
    .expect("write");
    let out = run(&["check-config", "--config", insecure.to_str().expect("utf8")]).await;
    assert!(out.status.success(), "{out:?}");
    let s = text(&out.stdout);
    assert!(
        s.contains("warning: flink.tls.insecureSkipVerify is on"),
        "{s}"
    );

    let syntax = dir.path().join("syntax.yaml");
    std::fs::write(&syntax, "grpc:\n  listenAddress: [unclosed\n").expect("write");
    let out = run(&["check-config", "--config", syntax.to_str().expect("utf8")]).await;
    assert!(!out.status.success(), "{out:?}");
    let e = text(&out.stderr);
    assert!(
        e.contains("line ") && e.contains("column "),
        "line and column: {e}"
    );
}

/// `simulate --svg FILE` writes the chart in a build with the `svg` feature (the workspace
/// build) and otherwise fails before simulating, naming the feature.
#[tokio::test]
async fn simulate_svg_needs_the_svg_feature() {
    let dir = support::tempdir("fks-cli-svg-");
    let svg = dir.path().join("sim.svg");
    let out = run(&[
        "simulate",
        "--trace",
        "step",
        "--svg",
        svg.to_str().expect("utf8"),
    ])
    .await;
    if flink_keda_scaler::svg::AVAILABLE {
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        let written = std::fs::read_to_string(&svg).expect("svg written");
        assert!(written.starts_with("<svg") && written.contains(">ours</text>"));
    } else {
        assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("`svg` cargo feature"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "nothing simulated: {}",
            text(&out.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_dry_run_prints_the_plan_and_sends_no_put() {
    let job = e2e_job(P);
    let flink = FakeFlink::start(&job, true).await;
    let url = flink.url();

    // Every vertex to 6.
    let target = 6u32;
    let out = run(&[
        "rescale",
        "--flink",
        &url,
        "--job",
        &job.job_name,
        "--parallelism",
        &target.to_string(),
        "--dry-run",
    ])
    .await;
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(r["dry_run"], true, "{r:#}");
    assert_eq!(r["job_id"], job.job_id, "{r:#}");
    assert_eq!(r["job_name"], job.job_name, "{r:#}");
    for v in &job.vertices {
        assert_eq!(r["from"][&v.id], v.parallelism, "{r:#}");
        assert_eq!(r["to"][&v.id], target, "{r:#}");
    }
    assert_eq!(r["task_managers"], target.div_ceil(SLOTS_PER_TM), "{r:#}");
    assert!(r["put_to_running_seconds"].is_null(), "{r:#}");

    // One vertex only (the keyed operator): the others keep their parallelism.
    let keyed = &job.vertices[1].id;
    let out = run(&[
        "rescale",
        "--flink",
        &url,
        "--vertex",
        &format!("{keyed}=8"),
        "--dry-run",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = json_of(&out);
    for v in &job.vertices {
        let want = if &v.id == keyed { 8 } else { v.parallelism };
        assert_eq!(r["to"][&v.id], want, "{r:#}");
    }
    assert_eq!(r["task_managers"], 8u32.div_ceil(SLOTS_PER_TM), "{r:#}");

    // An unknown vertex is refused, naming it.
    let out = run(&[
        "rescale",
        "--flink",
        &url,
        "--vertex",
        "ffffffffffffffffffffffffffffffff=3",
        "--dry-run",
    ])
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        text(&out.stderr).contains("ffffffffffffffffffffffffffffffff"),
        "{}",
        text(&out.stderr)
    );

    // Nothing was sent.
    let jid = &job.job_id;
    assert_eq!(
        flink
            .requests("PUT", &format!("/jobs/{jid}/resource-requirements"))
            .await,
        0
    );
    assert!(flink.puts().is_empty());
    assert_eq!(
        flink.snapshot().vertices[1].parallelism,
        P,
        "fake untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_prints_the_decision_with_reasons() {
    // A load 3× over a steady in-band load: DS2 scales up.
    let load = Load {
        rate: 500.0,
        busy: [0.3, 0.3, 0.25],
    }
    .step(3.0);
    // `_exporter`, not `..`: fields a pattern leaves out are dropped at the end of the
    // `let`, and an exporter gone makes Prometheus mark every series stale at its next scrape
    let Some(Stack {
        job,
        prom,
        flink,
        exporter: _exporter,
    }) = Stack::start(e2e_job(P), &load, true).await
    else {
        return;
    };
    let dir = support::tempdir("fks-cli-");
    let config = dir.path().join("scaler.yaml");
    std::fs::write(&config, config_yaml(&prom.url(), &e2e_policy(false, 1, 10))).expect("write");

    let explain = || async {
        let out = run(&[
            "explain",
            "--config",
            config.to_str().expect("utf8"),
            "--flink",
            &flink.url(),
            "--job",
            &job.job_name,
        ])
        .await;
        assert!(
            out.status.success(),
            "stdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        json_of(&out)
    };
    let r = explain().await;
    let (parallelism, tms) = ds2_expected(&load, P, SLOTS_PER_TM, 1, 10).expect("out of band");
    assert_eq!(r["job"]["id"], job.job_id, "{r:#}");
    assert_eq!(r["job"]["name"], job.job_name, "{r:#}");
    let d = &r["decision"];
    assert_eq!(d["direction"], "up", "{r:#}");
    assert_eq!(d["target"]["task_managers"], tms, "{r:#}");
    for (i, v) in job.vertices.iter().enumerate() {
        assert_eq!(d["target"]["parallelism"][&v.id], parallelism[i], "{r:#}");
    }
    let reasons = d["reasons"].as_array().expect("reasons");
    assert!(
        reasons.iter().any(|x| x["rule"] == "ds2_size"),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .all(|x| x["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{reasons:#?}"
    );
    assert!(
        r["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "{r:#}"
    );
    // The observation carries the signals read from Prometheus.
    for v in &job.vertices {
        let s = &r["observation"]["vertices"][&v.id];
        assert!(s.is_object(), "signals of {}: {r:#}", v.id);
    }
    let busy_query = r["queries"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["signal"] == "busyTime"))
        .unwrap_or_else(|| panic!("busyTime query: {r:#}"));
    assert_eq!(busy_query["outcome"], "ok", "{r:#}");
    assert_eq!(busy_query["series"], job.vertices.len(), "{r:#}");
    // The synthetic exporter has no TaskManager series to learn the scrape interval from:
    // on the 1m fallback the core gets no signal window (it would be a guess).
    assert_eq!(r["scrapeIntervals"][0]["source"], "fallback", "{r:#}");
    assert!(r["observation"]["signal_window"].is_null(), "{r:#}");
    // With the interval known (configured here; learned on real Flink, see the lab), the
    // default queries' window plus one scrape is handed to the core as their settle time.
    let with_interval = config_yaml(&prom.url(), &e2e_policy(false, 1, 10)).replace(
        "    timeout: 1s\n",
        "    timeout: 1s\n    scrapeInterval: 2s\n",
    );
    std::fs::write(&config, with_interval).expect("write");
    let r = explain().await;
    assert_eq!(r["signals"]["interval"], "2s", "{r:#}");
    assert_eq!(r["signals"]["window"], "10s", "max(4 × 2 s, 10 s): {r:#}");
    let handed = &r["observation"]["signal_window"];
    assert_eq!(
        (&handed["secs"], &handed["nanos"]),
        (&serde_json::json!(12), &serde_json::json!(0)),
        "{r:#}"
    );
    // explain never rescales.
    assert!(flink.puts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_applies_in_place_and_reports_completion() {
    let job = e2e_job(P);
    let flink = FakeFlink::start(&job, true).await;
    let target = 6u32;
    let out = run(&[
        "rescale",
        "--flink",
        &flink.url(),
        "--job",
        &job.job_id,
        "--parallelism",
        &target.to_string(),
        "--timeout",
        "20s",
    ])
    .await;
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(r["dry_run"], false, "{r:#}");
    assert_eq!(r["phase"], "completed", "{r:#}");
    assert!(
        r["put_to_running_seconds"]
            .as_f64()
            .is_some_and(|s| (0.0..20.0).contains(&s)),
        "{r:#}"
    );
    assert_eq!(r["failovers"], 0, "{r:#}");
    assert_eq!(r["task_managers"], target.div_ceil(SLOTS_PER_TM), "{r:#}");
    // Exactly one PUT: every vertex, upperBound = target, lowerBound not raised.
    let puts = flink.puts();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    let body = puts[0].as_object().expect("object");
    assert_eq!(body.len(), job.vertices.len(), "{body:#?}");
    for v in &job.vertices {
        assert_eq!(
            body[&v.id]["parallelism"]["upperBound"], target,
            "{body:#?}"
        );
        assert_eq!(body[&v.id]["parallelism"]["lowerBound"], 1, "{body:#?}");
    }
    let snap = flink.snapshot();
    assert!(snap.vertices.iter().all(|v| v.parallelism == target));
}

/// A job in reactive mode: `rescale` refuses at once, naming reactive mode, and sends no
/// PUT (Flink would refuse it and run every vertex at the slot count anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_refuses_a_reactive_job_before_any_put() {
    let job = e2e_job(P);
    let flink = FakeFlink::start(&job, true).await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/jobmanager/config"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!([
                {"key": "jobmanager.scheduler", "value": "adaptive"},
                {"key": "scheduler-mode", "value": "REACTIVE"}
            ])),
        )
        .with_priority(1)
        .mount(&flink.server)
        .await;
    let out = run(&[
        "rescale",
        "--flink",
        &flink.url(),
        "--job",
        &job.job_name,
        "--parallelism",
        "6",
    ])
    .await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "stdout: {}", text(&out.stdout));
    assert!(
        stderr.contains("reactive mode") && stderr.contains(&job.job_id),
        "{stderr}"
    );
    let put_path = format!("/jobs/{}/resource-requirements", job.job_id);
    assert_eq!(flink.requests("PUT", &put_path).await, 0, "{stderr}");
    assert!(flink.puts().is_empty());
}
