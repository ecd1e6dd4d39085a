#!/usr/bin/env python3
"""Measures the LoadJob's throughput against parallelism on a real Flink session cluster.

Starts a standalone session cluster (adaptive scheduler, the lab's settings) on loopback ports
PORT_BASE..PORT_BASE+999, submits flink-job/ (built here with javac, not into the shared cache),
and for each point "P@LOAD" sets the resource requirements to parallelism P (starting
TaskManagers as needed), sets the source rate to LOAD x P x C (C from --work io:C, or --rate-per-
subtask), waits --warmup s and samples Flink's REST metrics every second for --window s. Rates
are least-squares slopes of the counters (numRecordsIn, accumulateBusyTimeMs, the job's
ioWaitMs, pendingRecords), so the metric fetcher's 1 s staleness does not skew them. CPU is
utime+stime of the TaskManager JVMs from /proc/<pid>/stat, in % of one core. Prints one row
per point and stops every process it started (only those, by pid).

  flink-job/capacity.py --flink 2.3.0 --slots 2 --max-parallelism 120 \
      --points 2@0.6,1@1.5,2@1.5,4@1.5,6@1.5,8@1.5 --window 40

Needs Flink installed by scripts/flink.sh install VERSION, a JDK and python3 (stdlib only).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[capacity {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


def adaptive_conf(version):
    """The lab's adaptive-scheduler lines (src/lab/flink_cluster.rs adaptive_conf)."""
    major, minor = (int(x) for x in version.split(".")[:2])
    if major >= 2:
        return (
            "jobmanager.scheduler: adaptive\n"
            "jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true\n"
            "execution.target: embedded\n"
            "jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout: 1s\n"
            "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout: 2s\n"
            "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling: 2s\n"
        )
    if minor >= 19:
        return (
            "jobmanager.scheduler: adaptive\n"
            "jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true\n"
            "execution.target: embedded\n"
            "jobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s\n"
            "jobmanager.adaptive-scheduler.scaling-interval.min: 2s\n"
        )
    return "jobmanager.scheduler: adaptive\njobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s\n"


def java_opts(home):
    """env.java.opts.all of the distribution's config (the --add-opens Java 17 needs)."""
    for name in ("config.yaml", "flink-conf.yaml"):
        f = home / "conf" / name
        if f.exists():
            for line in f.read_text().splitlines():
                m = re.match(r"\s*(?:env\.java\.opts\.all|all):\s*(--add.*)$", line)
                if m:
                    return m.group(1).strip()
    return ""


class Cluster:
    """JobManager + TaskManagers as start-foreground children (exec'd JVMs: pid = JVM)."""

    def __init__(self, home, version, work_dir, port_base, slots, extra_conf):
        self.home, self.version, self.dir, self.slots = home, version, work_dir, slots
        self.extra_conf = extra_conf
        self.base = port_base
        self.rest = f"http://127.0.0.1:{port_base + 81}"
        self.jm = None
        self.tms = []
        for d in ("conf", "log", "ckpt", "tmp", "upload"):
            (work_dir / d).mkdir(parents=True, exist_ok=True)
        self._write_conf()

    def _write_conf(self):
        b, r = self.base, self.dir
        conf = (
            "jobmanager.rpc.address: 127.0.0.1\n"
            f"jobmanager.rpc.port: {b + 1}\n"
            "jobmanager.bind-host: 127.0.0.1\n"
            "jobmanager.memory.process.size: 1024m\n"
            f"{adaptive_conf(self.version)}"
            "taskmanager.bind-host: 127.0.0.1\n"
            "taskmanager.host: 127.0.0.1\n"
            f"taskmanager.numberOfTaskSlots: {self.slots}\n"
            "taskmanager.memory.process.size: 1024m\n"
            f"taskmanager.rpc.port: {b + 100}-{b + 199}\n"
            f"taskmanager.data.bind-port: {b + 200}-{b + 299}\n"
            f"metrics.internal.query-service.port: {b + 300}-{b + 399}\n"
            f"blob.server.port: {b + 10}-{b + 19}\n"
            "parallelism.default: 1\n"
            "rest.address: 127.0.0.1\n"
            "rest.bind-address: 127.0.0.1\n"
            f"rest.port: {b + 81}\n"
            "heartbeat.interval: 2000\n"
            "heartbeat.timeout: 10000\n"
            "slot.idle.timeout: 5000\n"
            "metrics.fetcher.update-interval: 1000\n"
            "execution.checkpointing.interval: 2000ms\n"
            f"state.checkpoints.dir: file://{r}/ckpt\n"
            f"execution.checkpointing.dir: file://{r}/ckpt\n"
            "state.backend.type: hashmap\n"
            f"io.tmp.dirs: {r}/tmp\n"
            f"web.tmpdir: {r}/tmp\n"
            f"web.upload.dir: {r}/upload\n"
            f"env.log.dir: {r}/log\n"
            f"env.java.opts.all: {java_opts(self.home)}\n"
            # the lab's LATENCY_CONFIG (src/lab/scenario.rs)
            "taskmanager.network.memory.buffer-debloat.enabled: true\n"
            "taskmanager.network.memory.buffer-debloat.target: 1s\n"
        )
        overridden = {k for k, _ in self.extra_conf}
        conf = "".join(line + "\n" for line in conf.splitlines() if line.split(":", 1)[0] not in overridden)
        conf += "".join(f"{k}: {v}\n" for k, v in self.extra_conf)
        major, minor = (int(x) for x in self.version.split(".")[:2])
        name = "flink-conf.yaml" if (major, minor) < (1, 19) else "config.yaml"
        (self.dir / "conf" / name).write_text(conf)
        for f in (self.home / "conf").iterdir():
            if f.name.startswith(("log4j", "logback")):
                (self.dir / "conf" / f.name).write_bytes(f.read_bytes())

    def _spawn(self, script, name, args=()):
        out = open(self.dir / "log" / f"{name}.out", "wb")
        env = dict(os.environ, FLINK_CONF_DIR=str(self.dir / "conf"), FLINK_HOME=str(self.home))
        env.pop("FLINK_ENV_JAVA_OPTS", None)
        return subprocess.Popen(
            [str(self.home / "bin" / script), "start-foreground", *args],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self, task_managers):
        for port in (self.base + 1, self.base + 81):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    die(f"port {port} is in use (another cluster on --port-base {self.base}?)")
        self.jm = self._spawn("jobmanager.sh", "jm")
        wait_for("the REST API", 90, lambda: self.get("overview"))
        self.add_task_managers(task_managers)

    def add_task_managers(self, n):
        before = len(self.tms)
        for i in range(before, before + n):
            self.tms.append(self._spawn("taskmanager.sh", f"tm{i}", ["-D", f"taskmanager.resource-id=cap-tm-{i}"]))
        wait_for(f"{before + n} TaskManagers", 90,
                 lambda: (self.get("overview") or {}).get("taskmanagers", 0) >= before + n)

    def stop(self):
        procs = [p for p in self.tms + [self.jm] if p is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 20
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def get(self, path):
        try:
            with urllib.request.urlopen(f"{self.rest}/{path}", timeout=10) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def send(self, method, path, body, content_type="application/json"):
        req = urllib.request.Request(f"{self.rest}/{path}", data=body, method=method,
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            # Flink answers with a Java stack trace: its innermost cause names the problem
            text = e.read().decode(errors="replace").replace("\\n", "\n")
            causes = re.findall(r"(?:Caused by: )?([\w.$]+(?:Exception|Error): [^\n]*)", text)
            die(f"{method} /{path}: HTTP {e.code}: {(causes[-1] if causes else text)[:500]}")
        return json.loads(text) if text.strip() else {}

    def submit(self, jar, args, parallelism):
        boundary = "----fks-capacity-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"load-job.jar\"\r\n"
                "Content-Type: application/x-java-archive\r\n\r\n").encode() + jar.read_bytes() + \
            f"\r\n--{boundary}--\r\n".encode()
        up = self.send("POST", "jars/upload", body, f"multipart/form-data; boundary={boundary}")
        jar_id = up["filename"].rsplit("/", 1)[-1]
        run = self.send("POST", f"jars/{jar_id}/run", json.dumps(
            {"entryClass": "fks.LoadJob", "parallelism": parallelism, "programArgsList": args}).encode())
        return run["jobid"]

    def cpu_seconds(self):
        """utime+stime of each live TaskManager JVM."""
        out = {}
        for i, p in enumerate(self.tms):
            try:
                fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[i] = (int(fields[11]) + int(fields[12])) / TICK
            except (OSError, IndexError, ValueError):
                pass
        return out

    def listening_ports(self):
        """Loopback TCP ports our JVMs listen on (to check they stay in the range)."""
        pids = {str(p.pid) for p in self.tms + [self.jm] if p is not None}
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        ports = set()
        for line in out.splitlines():
            if any(f"pid={pid}," in line for pid in pids):
                ports.add(int(line.split()[3].rsplit(":", 1)[1]))
        return sorted(ports)


def wait_for(what, timeout, probe):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = probe()
        if v:
            return v
        time.sleep(0.25)
    die(f"timed out after {timeout} s waiting for {what}")


def build_jar(home, out_dir):
    classes = out_dir / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    sources = sorted(str(p) for p in (ROOT / "flink-job" / "src").rglob("*.java"))
    subprocess.run(["javac", "-nowarn", "--release", "11", "-d", str(classes), "-cp", f"{home}/lib/*", *sources],
                   check=True)
    jar = out_dir / "load-job.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "--main-class", "fks.LoadJob", "-C", str(classes), "."],
                   check=True)
    return jar


class Job:
    def __init__(self, cluster, job_id):
        self.c, self.id = cluster, job_id
        v = wait_for("the job graph", 60, lambda: self.c.get(f"jobs/{job_id}"))
        names = {x["name"]: x["id"] for x in v["vertices"]}
        self.source = next(i for n, i in names.items() if "topic" in n)
        self.keyed = next(i for n, i in names.items() if "count" in n)
        self.vertices = list(names.values())

    def running_at(self, p):
        v = self.c.get(f"jobs/{self.id}")
        return bool(v) and v["state"] == "RUNNING" and all(
            x["parallelism"] == p and x["tasks"].get("RUNNING", 0) == p for x in v["vertices"])

    def rescale(self, p):
        body = {vid: {"parallelism": {"lowerBound": 1, "upperBound": p}} for vid in self.vertices}
        self.c.send("PUT", f"jobs/{self.id}/resource-requirements", json.dumps(body).encode())
        wait_for(f"the job RUNNING at parallelism {p}", 120, lambda: self.running_at(p))

    def metric_ids(self, vertex, suffix):
        listed = self.c.get(f"jobs/{self.id}/vertices/{vertex}/subtasks/metrics") or []
        return [m["id"] for m in listed if m["id"] == suffix or m["id"].endswith("." + suffix)]

    def subtask(self, vertex, i, names):
        got = self.c.get(f"jobs/{self.id}/vertices/{vertex}/subtasks/{i}/metrics?get={','.join(names)}") or []
        return {m["id"]: float(m["value"]) for m in got if m.get("value") not in (None, "")}


def slope(points):
    """Least-squares slope of [(t, y)] per second (None with < 3 points)."""
    if len(points) < 3:
        return None
    n = len(points)
    tm = sum(t for t, _ in points) / n
    ym = sum(y for _, y in points) / n
    den = sum((t - tm) ** 2 for t, _ in points)
    return sum((t - tm) * (y - ym) for t, y in points) / den if den else None


def measure(c, job, p, window):
    """Samples every second for `window` s; returns the row's figures."""
    pending_id = (job.metric_ids(job.source, "pendingRecords") or [None])[0]
    wait_id = (job.metric_ids(job.keyed, "ioWaitMs") or [None])[0]
    names = {
        job.keyed: [n for n in ("numRecordsIn", "accumulateBusyTimeMs", wait_id) if n],
        job.source: [n for n in ("accumulateBackPressuredTimeMs", pending_id) if n],
    }
    # The REST handlers answer from the metric store and refresh it afterwards: the first
    # answer after a pause is as old as the pause. Prime the store before sampling.
    for _ in range(3):
        job.subtask(job.keyed, 0, names[job.keyed])
        time.sleep(1.0)
    # (vertex, subtask, metric) -> [(t, value)]; per subtask, as a sum over subtasks jumps
    # whenever one of them is missing from an answer
    series, timeline = {}, []
    cpu0, t0 = c.cpu_seconds(), time.time()
    while time.time() - t0 < window:
        t = time.time() - t0
        total = []
        for vertex, wanted in names.items():
            for i in range(p):
                got = job.subtask(vertex, i, wanted)
                for k, v in got.items():
                    series.setdefault((vertex, i, k), []).append((t, v))
                if vertex == job.keyed and "numRecordsIn" in got:
                    total.append(got["numRecordsIn"])
        if len(total) == p:
            timeline.append((round(t, 1), sum(total)))
        time.sleep(max(0.0, 1.0 - (time.time() - t0 - t)))
    cpu1, t1 = c.cpu_seconds(), time.time()

    def per_subtask(vertex, name):
        return [slope(series.get((vertex, i, name), [])) or 0.0 for i in range(p)] if name else []

    records = per_subtask(job.keyed, "numRecordsIn")
    busy = per_subtask(job.keyed, "accumulateBusyTimeMs")
    waited = per_subtask(job.keyed, wait_id)
    tm_cpu = [100.0 * (cpu1[i] - cpu0[i]) / (t1 - t0) for i in cpu1 if i in cpu0]
    return {
        "records_s": sum(records),
        "per_subtask": records,
        "busy_ms_s": sum(busy) / p,
        "busy_min_max": (min(busy), max(busy)),
        "io_wait_ms_s": sum(waited) / p if waited else None,
        "src_backpressured_ms_s": sum(per_subtask(job.source, "accumulateBackPressuredTimeMs")) / p,
        "pending_growth_s": sum(per_subtask(job.source, pending_id)) if pending_id else None,
        "pending": sum(series[(job.source, i, pending_id)][-1][1] for i in range(p)
                       if (job.source, i, pending_id) in series),
        "tm_cpu_sum": sum(tm_cpu),
        "tm_cpu_max": max(tm_cpu, default=0.0),
        "tms": len(tm_cpu),
        "loadavg": float(Path("/proc/loadavg").read_text().split()[0]),
        "timeline": timeline,
    }


def parse_points(text):
    out = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)@([0-9.]+)\s*", item)
        if not m or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
            die(f"--points item '{item[:40]}': expected P@LOAD, e.g. 4@1.5 (parallelism 4, 1.5 x 4 x C records/s)")
        out.append((int(m.group(1)), float(m.group(2))))
    return out


def per_subtask_rate(args):
    if args.rate_per_subtask:
        return args.rate_per_subtask
    m = re.fullmatch(r"io:([0-9.]+)", args.work)
    if not m:
        die("--rate-per-subtask is needed unless --work is io:<C> (the capacity of one subtask)")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flink", default="2.3.0", help="Flink version (installed by scripts/flink.sh)")
    ap.add_argument("--work", default="io:500", help="the job's --work (io:<C>, cpu:<iterations>)")
    ap.add_argument("--rate-per-subtask", type=float, help="records/s of LOAD 1 per subtask (default: C of io:C)")
    ap.add_argument("--points", default="2@0.6,1@1.5,2@1.5,4@1.5,6@1.5,8@1.5", help="P@LOAD,...")
    ap.add_argument("--slots", type=int, default=1, help="slots per TaskManager")
    ap.add_argument("--task-managers", type=int, default=2, help="TaskManagers at start")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--max-parallelism", type=int, default=128, help="the job's --max-parallelism (key groups)")
    ap.add_argument("--warmup", type=float, default=20, help="seconds after the rescale before sampling")
    ap.add_argument("--window", type=float, default=30, help="sampling seconds per point")
    ap.add_argument("--port-base", type=int, default=28000, help="ports PORT_BASE..PORT_BASE+999")
    ap.add_argument("--work-dir", default="/tmp/fks-capacity")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="a Flink config line, replacing the default one of KEY (repeatable)")
    args = ap.parse_args()
    points = parse_points(args.points)
    c_rate = per_subtask_rate(args)
    home = Path(subprocess.run(["bash", str(ROOT / "scripts" / "flink.sh"), "home", args.flink],
                               capture_output=True, text=True, check=True).stdout.strip())
    if not (home / "bin" / "jobmanager.sh").exists():
        die(f"Flink {args.flink} is not installed at {home}: run scripts/flink.sh install {args.flink}")
    work_dir = Path(args.work_dir) / args.flink
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    jar = build_jar(home, work_dir / "job")
    extra = []
    for kv in args.conf:
        if "=" not in kv:
            die(f"--conf '{kv[:60]}': expected KEY=VALUE")
        extra.append(tuple(x.strip() for x in kv.split("=", 1)))
    cluster = Cluster(home, args.flink, work_dir, args.port_base, args.slots, extra)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    try:
        log(f"Flink {args.flink}: JobManager + {args.task_managers} TaskManager(s) x {args.slots} slot(s), "
            f"ports {args.port_base}-{args.port_base + 999}")
        cluster.start(args.task_managers)
        rate_file = work_dir / "rate"
        p0, load0 = points[0]
        rate_file.write_text(f"{load0 * p0 * c_rate:.0f}")
        job = Job(cluster, cluster.submit(jar, [
            "--name", "fks-capacity", "--partitions", str(args.partitions), "--rate", rate_file.read_text(),
            "--rate-file", str(rate_file), "--work", args.work,
            "--max-parallelism", str(args.max_parallelism)], p0))
        wait_for(f"the job RUNNING at {p0}", 120, lambda: job.running_at(p0))
        ports = cluster.listening_ports()
        log(f"listening ports: {ports}")
        if any(not args.port_base <= x <= args.port_base + 999 for x in ports):
            log("warning: a port outside the range")
        for p, load in points:
            need = -(-p // args.slots)
            if len(cluster.tms) < need:
                log(f"starting {need - len(cluster.tms)} TaskManager(s)")
                cluster.add_task_managers(need - len(cluster.tms))
            rate = load * p * c_rate
            rate_file.write_text(f"{rate:.0f}")
            log(f"parallelism {p}, source rate {rate:.0f} records/s")
            job.rescale(p)
            time.sleep(args.warmup)
            m = measure(cluster, job, p, args.window)
            m.update(p=p, load=load, rate=rate)
            rows.append(m)
            log(json.dumps(m))
    finally:
        log("stopping the cluster")
        cluster.stop()
    print_table(args, c_rate, rows)


def print_table(args, c_rate, rows):
    print(f"\nFlink {args.flink}, --work {args.work}, --max-parallelism {args.max_parallelism}, "
          f"{args.partitions} partitions, {args.slots} slot(s)/TaskManager, "
          f"window {args.window:.0f} s after {args.warmup:.0f} s warm-up")
    print("| parallelism | source rate | records/s | ÷ (p×C) | busy ms/s (min–max) | ioWait ms/s "
          "| source backpressured ms/s | backlog growth/s | TaskManagers | TM CPU % (sum, max) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["busy_min_max"]
        wait = f"{r['io_wait_ms_s']:.0f}" if r["io_wait_ms_s"] is not None else "–"
        growth = f"{r['pending_growth_s']:.0f}" if r["pending_growth_s"] is not None else "–"
        print(f"| {r['p']} | {r['rate']:.0f} | {r['records_s']:.0f} | {r['records_s'] / (r['p'] * c_rate):.3f} "
              f"| {r['busy_ms_s']:.0f} ({lo:.0f}–{hi:.0f}) | {wait} | {r['src_backpressured_ms_s']:.0f} "
              f"| {growth} | {r['tms']} | {r['tm_cpu_sum']:.1f}, {r['tm_cpu_max']:.1f} | {r['loadavg']:.1f} |")


if __name__ == "__main__":
    main()
