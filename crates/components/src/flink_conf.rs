//! The configuration of a local Flink session cluster: the config file (ports, memory,
//! the adaptive-scheduler keys of the version, the PrometheusReporter, directories under
//! the cluster's root) written next to the distribution's logging configs.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::{
    error::{ComponentError, Result},
    flink_cluster::{major_minor, ClusterOptions, Installed},
};

/// The JVM options (`--add-opens`/`--add-exports`) the distribution's own config sets.
fn java_opts(home: &Path) -> String {
    for f in ["conf/config.yaml", "conf/flink-conf.yaml"] {
        if let Ok(text) = fs::read_to_string(home.join(f)) {
            for line in text.lines() {
                let t = line.trim_start();
                let rest = t
                    .strip_prefix("env.java.opts.all:")
                    .or_else(|| t.strip_prefix("all:"));
                if let Some(r) = rest {
                    if r.trim_start().starts_with("--add") {
                        return r.trim().to_string();
                    }
                }
            }
        }
    }
    String::new()
}

/// The adaptive-scheduler lines for `version` (keys were renamed in 2.0 and 1.19), within
/// the README's recommended values. 2.x executing stabilization: 20 s, so the TaskManagers
/// of one scale-up, which register seconds apart on these shared cores, join one restart,
/// and so do those of a scale-up raised after the HPA's sync, started one 15 s sync later
/// (a rescale whose slots all arrive goes at once: "desired resources are met"); 2 s in
/// reactive mode ([`ClusterOptions::reactive`]), where every scale-up waits it.
fn adaptive_conf(version: &str, adaptive: bool, reactive: bool) -> String {
    let (major, minor) = major_minor(version);
    // prefer-minimal-taskmanagers (1.19+): pack slots so a scale-down frees whole
    // TaskManagers. Flink (1.20 and 2.3 alike) honours it only for execution.target
    // "embedded" (application mode); a session cluster must say so explicitly, or the
    // slots stay spread and no TaskManager ever becomes idle.
    if !adaptive {
        String::new()
    } else if major >= 2 {
        let executing = if reactive { "2s" } else { "20s" };
        format!(
            "jobmanager.scheduler: adaptive\n\
             jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true\n\
             execution.target: embedded\n\
             jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout: 1s\n\
             jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout: {executing}\n\
             jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling: 2s\n"
        )
    } else if minor >= 19 {
        "jobmanager.scheduler: adaptive\n\
         jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true\n\
         execution.target: embedded\n\
         jobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s\n\
         jobmanager.adaptive-scheduler.scaling-interval.min: 2s\n"
            .to_string()
    } else {
        "jobmanager.scheduler: adaptive\n\
         jobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s\n"
            .to_string()
    }
}

/// The ports a cluster listens on (the reporters on ten from `prom_base`).
pub(crate) struct Ports {
    pub(crate) rest: u16,
    pub(crate) rpc: u16,
    pub(crate) prom_base: u16,
}

impl Ports {
    pub(crate) fn prom_end(&self) -> u16 {
        self.prom_base.saturating_add(9)
    }
}

/// The Flink configuration of a local session cluster under `root`.
pub(crate) fn flink_config(
    installed: &Installed,
    opts: &ClusterOptions,
    root: &Path,
    ports: &Ports,
) -> String {
    let r = root.display();
    format!(
        "jobmanager.rpc.address: 127.0.0.1\n\
         jobmanager.rpc.port: {rpc_port}\n\
         jobmanager.bind-host: 127.0.0.1\n\
         jobmanager.memory.process.size: 1024m\n\
         {mode}\
         {adaptive}\
         taskmanager.bind-host: 127.0.0.1\n\
         taskmanager.host: 127.0.0.1\n\
         taskmanager.numberOfTaskSlots: {slots}\n\
         taskmanager.memory.process.size: 1024m\n\
         taskmanager.data.port: 0\n\
         taskmanager.rpc.port: 0\n\
         blob.server.port: 0\n\
         parallelism.default: 1\n\
         rest.address: 127.0.0.1\n\
         rest.bind-address: 127.0.0.1\n\
         rest.port: {rest_port}\n\
         heartbeat.interval: 2000\n\
         heartbeat.timeout: 10000\n\
         slot.idle.timeout: 5000\n\
         metrics.fetcher.update-interval: 1000\n\
         execution.checkpointing.interval: {ckpt}ms\n\
         state.checkpoints.dir: file://{r}/ckpt\n\
         execution.checkpointing.dir: file://{r}/ckpt\n\
         state.backend.type: hashmap\n\
         io.tmp.dirs: {r}/tmp\n\
         web.tmpdir: {r}/tmp\n\
         web.upload.dir: {r}/upload\n\
         metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory\n\
         metrics.reporter.prom.port: {prom_base}-{prom_end}\n\
         env.pid.dir: {r}/pids\n\
         env.log.dir: {r}/log\n\
         env.java.opts.all: {javaopts}\n\
         {extra}",
        rpc_port = ports.rpc,
        rest_port = ports.rest,
        prom_base = ports.prom_base,
        prom_end = ports.prom_end(),
        mode = if opts.reactive {
            "scheduler-mode: reactive\n"
        } else {
            ""
        },
        adaptive = adaptive_conf(
            &installed.version,
            opts.adaptive,
            opts.reactive,
        ),
        slots = opts.slots_per_task_manager,
        ckpt = opts.checkpoint_interval.as_millis(),
        javaopts = java_opts(&installed.home),
        extra = opts.extra_config,
    )
}

/// Writes `conf` into `root/conf` under the file name this Flink version reads, next to
/// the distribution's logging configs; returns the directory.
pub(crate) fn write_conf_dir(installed: &Installed, conf: &str, root: &Path) -> Result<PathBuf> {
    let (major, minor) = major_minor(&installed.version);
    let conf_name = if major < 2 && minor < 19 {
        "flink-conf.yaml"
    } else {
        "config.yaml"
    };
    let conf_dir = root.join("conf");
    fs::write(conf_dir.join(conf_name), conf)
        .map_err(|e| ComponentError::io("write the Flink config", e))?;
    let home_conf = installed.home.join("conf");
    let entries = fs::read_dir(&home_conf)
        .map_err(|e| ComponentError::io(format!("read {}", home_conf.display()), e))?;
    for p in entries.flatten().map(|f| f.path()) {
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            if name.starts_with("log4j") || name.starts_with("logback") {
                fs::copy(&p, conf_dir.join(name))
                    .map_err(|e| ComponentError::io(format!("copy {}", p.display()), e))?;
            }
        }
    }
    Ok(conf_dir)
}
