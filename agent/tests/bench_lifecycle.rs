//! Benchmarks of the pod lifecycle (issue 8) through a real agent in host
//! mode (real namespaces, busybox containers). They print tables and assert
//! nothing, so they are `#[ignore]`d; `scripts/bench-lifecycle.sh` runs them
//! with
//! `cargo test --release -p podvm-agent --test bench_lifecycle -- --ignored --nocapture --test-threads 1`.
//!
//! - `bench_probe_cpu`: the agent's CPU for 100 probes per second of each
//!   kind (50 containers, each with a liveness and a readiness probe at
//!   periodSeconds 1), minus the same pod without probes; beside it the
//!   same checks run the naive way, by a shell loop in a container.
//! - `bench_listening_to_ready`: from a process starting to listen to its
//!   container being Ready, with an httpGet readiness probe at
//!   periodSeconds 1 and 10; beside it a connect poll every 10 ms.
//! - `bench_agent_rss`: the agent's VmRSS with an idle pod and with the
//!   10-container probe mix of `bench/pod-probes.yaml`.
//!
//! Knobs (environment): `PODVM_BENCH_WINDOW_S` (agent CPU window, default
//! 20), `PODVM_BENCH_PEER_WINDOW_S` (shell loop window, default 10),
//! `PODVM_BENCH_KINDS` (probe kinds measured, e.g. `exec,tcp`; default
//! all of exec, http, tcp, grpc), `PODVM_BENCH_READY_N` (samples per
//! period, default 20).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::{container, health_server_in, pod, processes_with, TestAgent};
use podvm_proto::{
    ContainerSpec, EnvVar, HookAction, HttpGet, HttpScheme, Probe, ProbeAction, RestartPolicy,
    SandboxSpec,
};

/// Containers probed in the CPU benchmark: two probes each at one per
/// second make 100 probes per second.
const PROBED: usize = 50;
/// Where busybox httpd listens in the CPU benchmark's pod.
const HTTP_PORT: u16 = 18080;
/// Where the benchmark's gRPC health server listens.
const GRPC_PORT: u16 = 18083;
/// The service the health server reports as SERVING.
const GRPC_SERVICE: &str = "podvm.Bench";
/// First port of the readiness benchmark's containers (one each).
const READY_PORT: u16 = 18100;
/// Time the pod gets after it is up and before a CPU window opens.
const WARM_UP: Duration = Duration::from_secs(3);
/// Last-resort limit for a pod to come up.
const LONG: Duration = Duration::from_secs(180);

/// A probe kind, with its action against the pod's servers and the same
/// check as a busybox shell command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    HttpGet,
    TcpSocket,
    Grpc,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Exec, Kind::HttpGet, Kind::TcpSocket, Kind::Grpc];

    /// The short name `PODVM_BENCH_KINDS` lists.
    fn key(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::HttpGet => "http",
            Kind::TcpSocket => "tcp",
            Kind::Grpc => "grpc",
        }
    }

    /// The kinds `PODVM_BENCH_KINDS` (e.g. `exec,tcp`) names, all by default.
    fn chosen() -> Vec<Kind> {
        match std::env::var("PODVM_BENCH_KINDS") {
            Ok(list) => Kind::ALL
                .into_iter()
                .filter(|k| list.split(',').any(|w| w.trim() == k.key()))
                .collect(),
            Err(_) => Kind::ALL.to_vec(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec (true)",
            Kind::HttpGet => "httpGet (busybox httpd)",
            Kind::TcpSocket => "tcpSocket (busybox httpd)",
            Kind::Grpc => "grpc (tonic-health)",
        }
    }

    fn action(self) -> ProbeAction {
        match self {
            Kind::Exec => exec(&["true"]),
            Kind::HttpGet => http_get(HTTP_PORT),
            Kind::TcpSocket => ProbeAction::TcpSocket {
                host: None,
                port: HTTP_PORT,
            },
            Kind::Grpc => ProbeAction::Grpc {
                port: GRPC_PORT,
                service: Some(GRPC_SERVICE.into()),
            },
        }
    }

    /// The same check from a shell in the pod; busybox speaks no gRPC.
    fn shell_check(self) -> Option<String> {
        match self {
            Kind::Exec => Some("/bin/true".into()),
            Kind::HttpGet => Some(format!(
                "wget -q -O /dev/null http://127.0.0.1:{HTTP_PORT}/healthz"
            )),
            Kind::TcpSocket => Some(format!("nc 127.0.0.1 {HTTP_PORT} </dev/null")),
            Kind::Grpc => None,
        }
    }
}

fn exec(command: &[&str]) -> ProbeAction {
    ProbeAction::Exec {
        command: command.iter().map(|s| s.to_string()).collect(),
    }
}

fn http_get(port: u16) -> ProbeAction {
    ProbeAction::HttpGet(HttpGet {
        host: None,
        port,
        path: "/healthz".into(),
        scheme: HttpScheme::Http,
        headers: vec![],
    })
}

fn every_second(action: ProbeAction) -> Probe {
    Probe {
        period_seconds: 1,
        ..Probe::with_defaults(action)
    }
}

/// A fresh `NAME=value` environment entry that marks one pod's processes.
fn marker() -> (EnvVar, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let value = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let entry = format!("PODVM_BENCH={value}");
    (
        EnvVar {
            name: "PODVM_BENCH".into(),
            value,
        },
        entry,
    )
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// busybox httpd serving `/healthz` on `port`, after the shell commands
/// `before` (e.g. `sleep 1.5;`).
fn httpd(name: &str, agent: &TestAgent, port: u16, before: &str) -> ContainerSpec {
    container(
        name,
        &agent.rootfs,
        &[
            "sh",
            "-c",
            &format!(
                "mkdir -p /www; echo ok > /www/healthz; {before} exec httpd -f -p {port} -h /www"
            ),
        ],
    )
}

// ---------------------------------------------------------------- CPU

/// Clock ticks per second of `/proc/PID/stat`'s times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(tck > 0, "sysconf(_SC_CLK_TCK) = {tck}");
    tck as f64
}

/// CPU time in clock ticks of `pid` from `/proc/PID/stat`: its threads'
/// (utime + stime, fields 14–15) and its reaped children's (cutime +
/// cstime, fields 16–17).
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name come the fields from 3 (state) on.
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields[n - 3].parse::<u64>().unwrap();
    (field(14) + field(15), field(16) + field(17))
}

/// The parent PID of `pid`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// CPU milliseconds per second of wall time.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    /// The process's own threads.
    own: f64,
    /// Its children, reaped in the window.
    children: f64,
}

impl Cpu {
    fn total(self) -> f64 {
        self.own + self.children
    }
}

/// The CPU that `pid` used over `window`.
fn cpu_over(pid: u32, window: Duration) -> Cpu {
    let before = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(window);
    let after = cpu_ticks(pid);
    let per_second = 1000.0 / ticks_per_second() / start.elapsed().as_secs_f64();
    Cpu {
        own: (after.0 - before.0) as f64 * per_second,
        children: (after.1 - before.1) as f64 * per_second,
    }
}

/// Polls the sandbox status until every app container passes `pred`
/// (ready, running).
fn wait_all(agent: &TestAgent, what: &str, pred: impl Fn(&podvm_proto::ContainerStatus) -> bool) {
    let deadline = Instant::now() + LONG;
    loop {
        let status = agent.status();
        if status.containers.iter().all(&pred) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The process among `pids` whose parent is not among them: the root of
/// a container's process tree.
fn root_of(pids: &[i32]) -> i32 {
    *pids
        .iter()
        .find(|p| parent_of(**p).is_none_or(|parent| !pids.contains(&parent)))
        .expect("a root process")
}

/// What the agent did over one window.
struct AgentRun {
    cpu: Cpu,
    /// Probe failures reported in the window (should be none).
    unhealthy: u64,
    /// The most frequent failure message in the window.
    unhealthy_message: Option<String>,
    restarts: u32,
}

/// Probe failures so far by message: the counts of the agent's
/// `Unhealthy` events (repeats of one message are one event with a count,
/// as kubelet's).
fn unhealthy_counts(agent: &TestAgent) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for e in agent.conn().events(0, 0).unwrap().events {
        if e.reason == "Unhealthy" {
            *counts.entry(e.message).or_insert(0) += u64::from(e.count);
        }
    }
    counts
}

/// The agent's CPU with a pod of an httpd container and [`PROBED`]
/// sleeping containers, each with a liveness and a readiness probe of
/// `kind` at periodSeconds 1 (none if `kind` is `None`).
fn agent_run(kind: Option<Kind>, window: Duration) -> AgentRun {
    let agent = TestAgent::start();
    let (env, entry) = marker();
    let mut web = httpd("web", &agent, HTTP_PORT, "");
    web.env = vec![env];
    let mut containers = vec![web];
    for i in 0..PROBED {
        let mut c = container(&format!("c{i}"), &agent.rootfs, &["sleep", "1000"]);
        if let Some(kind) = kind {
            // A high failure threshold: the gRPC server starts only once
            // the pod's network exists; the cost of a probe is the same.
            c.liveness_probe = Some(Probe {
                failure_threshold: 100,
                ..every_second(kind.action())
            });
            c.readiness_probe = Some(every_second(kind.action()));
        }
        containers.push(c);
    }
    let mut spec = pod(containers);
    spec.restart_policy = RestartPolicy::Always;
    spec.termination_grace_period_seconds = 1;
    agent.create(spec);
    agent.wait_running("web");
    if kind == Some(Kind::Grpc) {
        let pid = *processes_with(&entry).first().expect("the web container");
        health_server_in(pid, GRPC_PORT, GRPC_SERVICE);
    }
    if kind.is_some() {
        wait_all(&agent, "every container ready", |c| c.ready);
    } else {
        wait_all(&agent, "every container running", |c| {
            matches!(c.state, podvm_proto::ContainerState::Running { .. })
        });
    }
    std::thread::sleep(WARM_UP);
    let before = unhealthy_counts(&agent);
    let cpu = cpu_over(agent.child.id(), window);
    let mut in_window: Vec<(u64, String)> = unhealthy_counts(&agent)
        .into_iter()
        .map(|(message, n)| (n - before.get(&message).copied().unwrap_or(0), message))
        .filter(|(n, _)| *n > 0)
        .collect();
    in_window.sort();
    let unhealthy = in_window.iter().map(|(n, _)| n).sum();
    let unhealthy_message = in_window.pop().map(|(_, message)| message);
    let restarts = agent
        .status()
        .containers
        .iter()
        .map(|c| c.restart_count)
        .sum();
    AgentRun {
        cpu,
        unhealthy,
        unhealthy_message,
        restarts,
    }
}

/// A shell loop doing `check` 100 times a second: ten checks, then a wait
/// until the next tenth of a second is due (`/proc/uptime` read and
/// `read -t` on a FIFO: shell built-ins, no process of their own), the
/// count of checks done kept in /tmp/count.
fn check_loop(check: &str) -> String {
    format!(
        "mkfifo /tmp/pace; read up _ </proc/uptime; start=${{up%.*}}${{up#*.}}; n=0; \
         while :; do \
           i=0; while [ $i -lt 10 ]; do {check}; i=$((i+1)); done; \
           n=$((n+10)); echo $n >/tmp/count; \
           read up _ </proc/uptime; now=${{up%.*}}${{up#*.}}; ahead=$((start + n - now)); \
           if [ $ahead -gt 0 ]; then \
             if [ $ahead -ge 10 ]; then t=0.1; else t=0.0$ahead; fi; \
             read -t $t x <>/tmp/pace; \
           fi; \
         done"
    )
}

/// What a shell loop did over one window.
struct PeerRun {
    cpu_ms_per_s: f64,
    checks_per_s: f64,
}

/// The CPU of [`check_loop`]`(check)` running in a container beside an
/// httpd container, measured on the loop's shell (its children are its
/// own: reaped by it, counted in its cutime/cstime).
fn peer_run(check: &str, window: Duration) -> PeerRun {
    let agent = TestAgent::start();
    let (env, entry) = marker();
    let mut looping = container("loop", &agent.rootfs, &["sh", "-c", &check_loop(check)]);
    looping.env = vec![env];
    let mut spec = pod(vec![httpd("web", &agent, HTTP_PORT, ""), looping]);
    spec.termination_grace_period_seconds = 1;
    agent.create(spec);
    agent.wait_running("loop");
    std::thread::sleep(WARM_UP);
    let shell = root_of(&processes_with(&entry)) as u32;
    let count = || -> u64 {
        let (out, _, _) = agent.exec("loop", &["cat", "/tmp/count"], b"");
        out.trim().parse().unwrap()
    };
    let first = count();
    let start = Instant::now();
    let cpu_ms_per_s = cpu_over(shell, window).total();
    let last = count();
    PeerRun {
        cpu_ms_per_s,
        checks_per_s: (last - first) as f64 / start.elapsed().as_secs_f64(),
    }
}

#[test]
#[ignore = "a benchmark: prints figures; run by scripts/bench-lifecycle.sh"]
fn bench_probe_cpu() {
    require_env!();
    let window = Duration::from_secs(env_u64("PODVM_BENCH_WINDOW_S", 20));
    let peer_window = Duration::from_secs(env_u64("PODVM_BENCH_PEER_WINDOW_S", 10));
    let tick_ms = 1000.0 / ticks_per_second();
    println!(
        "\n== (a) CPU of 100 probes/s: {PROBED} containers x (liveness + readiness) at \
         periodSeconds 1; agent window {}s, shell loop window {}s",
        window.as_secs(),
        peer_window.as_secs()
    );
    let idle = agent_run(None, window);
    println!(
        "agent, the same pod without probes (baseline, subtracted): {:.1} ms CPU/s",
        idle.cpu.total()
    );
    let pacing = peer_run(":", peer_window);
    println!(
        "shell loop pacing only (check `:`, subtracted): {:.1} ms CPU/s at {:.0} loops/s",
        pacing.cpu_ms_per_s, pacing.checks_per_s
    );
    println!(
        "resolution: {tick_ms:.0} ms ticks, about ±{:.1} ms/s per figure over the agent window",
        2.0 * tick_ms / window.as_secs_f64()
    );
    println!(
        "{:<26} {:>10} {:>8} {:>8} {:>9} {:>9}  | {:>10} {:>9} {:>8}",
        "kind",
        "agent ms/s",
        "(own",
        "reaped)",
        "µs/probe",
        "failures",
        "shell ms/s",
        "µs/check",
        "checks/s"
    );
    let mut notes = Vec::new();
    for kind in Kind::chosen() {
        let run = agent_run(Some(kind), window);
        let agent_ms = run.cpu.total() - idle.cpu.total();
        let own = run.cpu.own - idle.cpu.own;
        let reaped = run.cpu.children - idle.cpu.children;
        // 100 probes a second: µs per probe = ms per second × 10.
        let agent_us = agent_ms * 10.0;
        let failures = format!("{}/{}", run.unhealthy, run.restarts);
        if let Some(message) = &run.unhealthy_message {
            notes.push(format!("{}: most frequent failure: {message}", kind.key()));
        }
        let (shell_ms, shell_us, rate) = match kind.shell_check() {
            Some(check) => {
                let peer = peer_run(&check, peer_window);
                let net = peer.cpu_ms_per_s - pacing.cpu_ms_per_s;
                (
                    format!("{net:.1}"),
                    format!("{:.0}", net * 1000.0 / peer.checks_per_s),
                    format!("{:.0}", peer.checks_per_s),
                )
            }
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "{:<26} {:>10.1} {:>8.1} {:>8.1} {:>9.0} {:>9}  | {:>10} {:>9} {:>8}",
            kind.name(),
            agent_ms,
            own,
            reaped,
            agent_us,
            failures,
            shell_ms,
            shell_us,
            rate
        );
    }
    println!(
        "(own: the agent's threads; reaped: its children that ended in the window \
         (exec helpers and the commands they ran); failures: failed probes (of {}) / \
         restarts in the window; shell: per check at the rate reached, busybox has no \
         gRPC client)",
        100 * window.as_secs()
    );
    for note in notes {
        println!("{note}");
    }
}

// ------------------------------------------------------ listening → Ready

/// One container's moments, all CLOCK_REALTIME.
struct Moments {
    /// Printed by the container right before `exec httpd`.
    listening: SystemTime,
    /// The first connect of the 10 ms poll that went through.
    connected: SystemTime,
    /// The first status that showed it ready.
    ready: SystemTime,
}

/// The time the container printed (busybox `adjtimex`: `time.tv_sec:` and
/// `time.tv_usec:` lines).
fn printed_time(log: &str) -> Option<SystemTime> {
    let value = |key: &str| -> Option<u64> {
        log.lines()
            .find_map(|l| l.trim().strip_prefix(key))?
            .trim()
            .parse()
            .ok()
    };
    let sec = value("time.tv_sec:")?;
    let usec = value("time.tv_usec:")?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(sec) + Duration::from_micros(usec))
}

/// Connects to each of `ports` every 10 ms from the network namespace of
/// `pid` until each has answered once; the moment each first did.
fn poll_connects(pid: i32, ports: Vec<u16>) -> mpsc::Receiver<Vec<Option<SystemTime>>> {
    let ns = File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut seen: Vec<Option<SystemTime>> = vec![None; ports.len()];
        let deadline = Instant::now() + LONG;
        while seen.iter().any(Option::is_none) && Instant::now() < deadline {
            for (i, port) in ports.iter().enumerate() {
                if seen[i].is_none() && TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                    seen[i] = Some(SystemTime::now());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = tx.send(seen);
    });
    rx
}

/// `n` containers that sleep, print the time and start listening, with an
/// httpGet readiness probe at `period`; their sleeps are spread evenly over
/// one period, so the listen moments fall evenly between probe attempts.
fn listening_to_ready(period: u32, n: usize) -> Vec<Moments> {
    let agent = TestAgent::start();
    let (env, entry) = marker();
    let containers = (0..n)
        .map(|i| {
            let port = READY_PORT + i as u16;
            let delay = 1.0 + f64::from(period) * (i as f64 + 0.5) / n as f64;
            let mut c = httpd(
                &format!("w{i}"),
                &agent,
                port,
                &format!("sleep {delay:.3}; adjtimex | grep tv_;"),
            );
            c.env = vec![env.clone()];
            c.readiness_probe = Some(Probe {
                period_seconds: period,
                ..Probe::with_defaults(http_get(port))
            });
            c
        })
        .collect();
    let mut spec = pod(containers);
    spec.restart_policy = RestartPolicy::Always;
    spec.termination_grace_period_seconds = 1;
    agent.create(spec);
    agent.wait_running("w0");
    let pid = *processes_with(&entry).first().expect("a container process");
    let connects = poll_connects(pid, (0..n).map(|i| READY_PORT + i as u16).collect());
    let mut ready: Vec<Option<SystemTime>> = vec![None; n];
    let deadline = Instant::now() + LONG;
    while ready.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "not every container got ready");
        let status = agent.status();
        let now = SystemTime::now();
        for c in &status.containers {
            let i: usize = c.name[1..].parse().unwrap();
            if c.ready && ready[i].is_none() {
                ready[i] = Some(now);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let connected = connects.recv().unwrap();
    (0..n)
        .map(|i| Moments {
            listening: printed_time(&agent.log_text(&format!("w{i}")))
                .unwrap_or_else(|| panic!("w{i} printed no time")),
            connected: connected[i].unwrap_or_else(|| panic!("w{i} never accepted")),
            ready: ready[i].unwrap(),
        })
        .collect()
}

/// Median, p90 (nearest rank), max and min of milliseconds, and how many.
fn distribution(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "median {:>7.1} ms   p90 {:>7.1} ms   max {:>7.1} ms   min {:>6.1} ms   n={}",
        at(0.5),
        at(0.9),
        ms[ms.len() - 1],
        ms[0],
        ms.len()
    )
}

fn millis_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

#[test]
#[ignore = "a benchmark: prints figures; run by scripts/bench-lifecycle.sh"]
fn bench_listening_to_ready() {
    require_env!();
    let n = env_u64("PODVM_BENCH_READY_N", 20) as usize;
    println!(
        "\n== (b) process listening → container Ready, httpGet readiness probe \
         ({n} containers per period, listen moments spread over one period)"
    );
    for period in [1, 10] {
        let moments = listening_to_ready(period, n);
        let ready = moments
            .iter()
            .map(|m| millis_between(m.listening, m.ready))
            .collect();
        let polled = moments
            .iter()
            .map(|m| millis_between(m.listening, m.connected))
            .collect();
        println!("periodSeconds {period:>2}: {}", distribution(ready));
        println!("  connect poll every 10 ms: {}", distribution(polled));
    }
}

// -------------------------------------------------------------- memory

/// VmRSS, RssAnon and RssFile of `pid` in KiB.
fn rss_kib(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (kib("VmRSS:"), kib("RssAnon:"), kib("RssFile:"))
}

/// The pod of `bench/pod-probes.yaml`, kept in step with it: an httpd
/// container and nine sleepers, probes of every kind at Kubernetes'
/// defaults (periodSeconds 10); nothing serves gRPC, so those readiness
/// probes fail (the containers stay not ready; no restarts). The last
/// container, `hold`, has no probes and a 15 s postStart hook: it is
/// waiting until the others have been probed for that long.
fn probe_mix(agent: &TestAgent) -> SandboxSpec {
    let sleeper = |name: &str| container(name, &agent.rootfs, &["sleep", "3600"]);
    let tcp = ProbeAction::TcpSocket {
        host: None,
        port: 8080,
    };
    let grpc = ProbeAction::Grpc {
        port: 9090,
        service: None,
    };
    let mut web = httpd("web", agent, 8080, "");
    web.readiness_probe = Some(Probe::with_defaults(http_get(8080)));
    web.liveness_probe = Some(Probe::with_defaults(tcp.clone()));
    let mut containers = vec![web];
    for i in 1..=9 {
        let mut c = sleeper(&format!("c{i}"));
        match i {
            1..=3 => {
                c.startup_probe = Some(Probe::with_defaults(exec(&["true"])));
                c.liveness_probe = Some(Probe::with_defaults(exec(&["true"])));
                c.readiness_probe = Some(Probe::with_defaults(http_get(8080)));
            }
            4..=6 => {
                c.liveness_probe = Some(Probe::with_defaults(tcp.clone()));
                c.readiness_probe = Some(Probe::with_defaults(exec(&["true"])));
            }
            _ => {
                c.liveness_probe = Some(Probe::with_defaults(http_get(8080)));
                c.readiness_probe = Some(Probe::with_defaults(grpc.clone()));
            }
        }
        containers.push(c);
    }
    let mut hold = sleeper("hold");
    hold.lifecycle.post_start = Some(HookAction::Exec {
        command: vec!["sleep".into(), "15".into()],
    });
    containers.push(hold);
    let mut spec = pod(containers);
    spec.restart_policy = RestartPolicy::Always;
    spec.termination_grace_period_seconds = 1;
    spec
}

fn print_rss(what: &str, pid: u32) {
    let (rss, anon, file) = rss_kib(pid);
    println!("{what:<58} {rss:>6} KiB (anon {anon}, file {file})");
}

#[test]
#[ignore = "a benchmark: prints figures; run by scripts/bench-lifecycle.sh"]
fn bench_agent_rss() {
    require_env!();
    println!("\n== (c) agent VmRSS in host mode (/proc/PID/status)");
    let agent = TestAgent::start();
    let mut spec = pod(vec![container("main", &agent.rootfs, &["sleep", "3600"])]);
    spec.termination_grace_period_seconds = 1;
    agent.create(spec);
    agent.wait_running("main");
    std::thread::sleep(Duration::from_secs(2));
    print_rss("one container, no probes", agent.child.id());
    drop(agent);

    let agent = TestAgent::start();
    agent.create(probe_mix(&agent));
    wait_all(&agent, "every container running", |c| {
        matches!(c.state, podvm_proto::ContainerState::Running { .. })
    });
    print_rss(
        "bench/pod-probes.yaml: all started (15 s of probes)",
        agent.child.id(),
    );
    std::thread::sleep(Duration::from_secs(20));
    print_rss("bench/pod-probes.yaml: 20 s later", agent.child.id());
}
