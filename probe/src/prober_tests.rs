//! The prober's workers with seconds shortened to a few milliseconds, a
//! scripted exec runner, and reports collected for inspection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use podvm_proto::lifecycle::{Probe, ProbeAction};

use crate::timing::Timing;
use crate::{
    ExecOutcome, ExecRunner, ProbeKind, ProbeReport, ProbeResult, Prober, RunKey, RunProbes,
};

/// The length of a probe "second" in these tests.
const TICK: Duration = Duration::from_millis(20);
/// The last-resort limit on waiting for progress.
const PATIENCE: Duration = Duration::from_secs(30);
const RUN: RunKey = RunKey {
    container: 0,
    run: 1,
};

/// Outcomes per command name: scripted ones first, then the last forever.
#[derive(Default)]
struct Script {
    outcomes: Mutex<HashMap<String, Vec<ExecOutcome>>>,
    calls: Mutex<Vec<(String, Instant, Duration)>>,
}

impl Script {
    fn new(entries: &[(&str, Vec<ExecOutcome>)]) -> Arc<Script> {
        let script = Script::default();
        for (name, outcomes) in entries {
            script
                .outcomes
                .lock()
                .unwrap()
                .insert((*name).to_owned(), outcomes.clone());
        }
        Arc::new(script)
    }

    fn calls_of(&self, name: &str) -> Vec<Instant> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|(_, at, _)| *at)
            .collect()
    }
}

impl ExecRunner for Script {
    fn exec(&self, command: &[String], timeout: Duration) -> ExecOutcome {
        let name = command[0].clone();
        self.calls
            .lock()
            .unwrap()
            .push((name.clone(), Instant::now(), timeout));
        let mut outcomes = self.outcomes.lock().unwrap();
        let list = outcomes.get_mut(&name).expect("scripted command");
        if list.len() > 1 {
            list.remove(0)
        } else {
            list[0].clone()
        }
    }
}

fn ok() -> ExecOutcome {
    ExecOutcome::Exited {
        code: 0,
        output: Vec::new(),
    }
}

fn bad(output: &str) -> ExecOutcome {
    ExecOutcome::Exited {
        code: 1,
        output: output.as_bytes().to_vec(),
    }
}

fn probe(name: &str, period: u32, success: u32, failure: u32) -> Probe {
    Probe {
        action: ProbeAction::Exec {
            command: vec![name.to_owned()],
        },
        initial_delay_seconds: 0,
        period_seconds: period,
        timeout_seconds: 1,
        success_threshold: success,
        failure_threshold: failure,
        termination_grace_period_seconds: None,
    }
}

/// Reports as they come, with a way to wait for them.
#[derive(Default)]
struct Reports {
    list: Mutex<Vec<ProbeReport>>,
    changed: Condvar,
}

impl Reports {
    fn sink(self: &Arc<Self>) -> crate::ReportFn {
        let reports = self.clone();
        Arc::new(move |run, report| {
            assert_eq!(run, RUN);
            reports.list.lock().unwrap().push(report);
            reports.changed.notify_all();
        })
    }

    /// Waits until `done` holds for the reports so far; returns them.
    fn wait_for(&self, done: impl Fn(&[ProbeReport]) -> bool) -> Vec<ProbeReport> {
        let deadline = Instant::now() + PATIENCE;
        let mut list = self.list.lock().unwrap();
        while !done(&list) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "gave up waiting; reports so far: {list:?}");
            list = self.changed.wait_timeout(list, left).unwrap().0;
        }
        list.clone()
    }

    fn snapshot(&self) -> Vec<ProbeReport> {
        self.list.lock().unwrap().clone()
    }
}

fn result(kind: ProbeKind, result: ProbeResult) -> ProbeReport {
    ProbeReport::Result { kind, result }
}

fn failed(kind: ProbeKind, message: &str) -> ProbeReport {
    ProbeReport::Failed {
        kind,
        message: message.to_owned(),
    }
}

fn count(reports: &[ProbeReport], wanted: &ProbeReport) -> usize {
    reports.iter().filter(|report| *report == wanted).count()
}

fn prober() -> Prober {
    Prober::start_with("probe-test", || Ok(()), Timing::scaled(TICK)).unwrap()
}

/// Waits several periods: long enough for a worker that was not stopped to
/// show itself.
fn idle() {
    thread::sleep(TICK * 10);
}

#[test]
fn liveness_fails_at_threshold_and_stops() {
    let script = Script::new(&[("live", vec![ok(), bad("boom"), bad("boom"), bad("boom")])]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let probes = RunProbes {
        liveness: Some(probe("live", 1, 1, 3)),
        ..RunProbes::default()
    };
    prober.watch(RUN, probes, script.clone(), reports.sink());
    let live_failed = result(ProbeKind::Liveness, ProbeResult::Failure);
    let seen = reports.wait_for(|list| list.contains(&live_failed));
    assert_eq!(
        seen,
        [
            result(ProbeKind::Liveness, ProbeResult::Success),
            failed(ProbeKind::Liveness, "boom"),
            failed(ProbeKind::Liveness, "boom"),
            failed(ProbeKind::Liveness, "boom"),
            live_failed,
        ]
    );
    idle();
    assert_eq!(reports.snapshot().len(), 5);
    assert_eq!(script.calls_of("live").len(), 4);
}

#[test]
fn readiness_reports_changes_only() {
    let outcomes = vec![bad("no"), bad("no"), ok(), ok(), bad("gone")];
    let script = Script::new(&[("ready", outcomes)]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let probes = RunProbes {
        readiness: Some(probe("ready", 1, 1, 1)),
        ..RunProbes::default()
    };
    prober.watch(RUN, probes, script.clone(), reports.sink());
    let unready = result(ProbeKind::Readiness, ProbeResult::Failure);
    let seen = reports.wait_for(|list| list.contains(&unready));
    assert_eq!(
        seen,
        [
            failed(ProbeKind::Readiness, "no"),
            failed(ProbeKind::Readiness, "no"),
            result(ProbeKind::Readiness, ProbeResult::Success),
            failed(ProbeKind::Readiness, "gone"),
            unready.clone(),
        ]
    );
    // Readiness goes on probing after a failure; no new result without change.
    let gone = failed(ProbeKind::Readiness, "gone");
    let later = reports.wait_for(|list| count(list, &gone) >= 3);
    assert_eq!(count(&later, &unready), 1);
}

#[test]
fn startup_gates_the_other_probes() {
    let script = Script::new(&[
        ("start", vec![bad("booting"), bad("booting"), ok()]),
        ("live", vec![ok()]),
        ("ready", vec![ok()]),
    ]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let probes = RunProbes {
        startup: Some(probe("start", 1, 1, 10)),
        liveness: Some(probe("live", 1, 1, 3)),
        readiness: Some(probe("ready", 1, 1, 3)),
    };
    prober.watch(RUN, probes, script.clone(), reports.sink());
    let live = result(ProbeKind::Liveness, ProbeResult::Success);
    let ready = result(ProbeKind::Readiness, ProbeResult::Success);
    let seen = reports.wait_for(|list| list.contains(&live) && list.contains(&ready));
    let started = result(ProbeKind::Startup, ProbeResult::Success);
    let position = |wanted: &ProbeReport| seen.iter().position(|report| report == wanted).unwrap();
    assert!(position(&started) < position(&live) && position(&started) < position(&ready));
    assert_eq!(count(&seen, &failed(ProbeKind::Startup, "booting")), 2);
    let last_start = *script.calls_of("start").last().unwrap();
    assert!(script
        .calls_of("live")
        .iter()
        .chain(&script.calls_of("ready"))
        .all(|at| *at > last_start));
    idle();
    assert_eq!(
        script.calls_of("start").len(),
        3,
        "startup stops probing once started"
    );
    assert!(
        script.calls_of("ready").len() > 1,
        "readiness keeps probing"
    );
}

#[test]
fn startup_failure_stops_the_run() {
    let script = Script::new(&[("start", vec![bad("never")]), ("live", vec![ok()])]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let probes = RunProbes {
        startup: Some(probe("start", 1, 1, 2)),
        liveness: Some(probe("live", 1, 1, 3)),
        readiness: None,
    };
    prober.watch(RUN, probes, script.clone(), reports.sink());
    let gave_up = result(ProbeKind::Startup, ProbeResult::Failure);
    reports.wait_for(|list| list.contains(&gave_up));
    idle();
    assert_eq!(script.calls_of("start").len(), 2);
    assert!(script.calls_of("live").is_empty());
}

#[test]
fn initial_delay_period_and_timeout_are_kept() {
    let script = Script::new(&[("live", vec![ok()])]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let mut live = probe("live", 2, 1, 3);
    live.initial_delay_seconds = 5;
    live.timeout_seconds = 3;
    let watched = Instant::now();
    prober.watch(
        RUN,
        RunProbes {
            liveness: Some(live),
            ..RunProbes::default()
        },
        script.clone(),
        reports.sink(),
    );
    let deadline = Instant::now() + PATIENCE;
    while script.calls_of("live").len() < 5 {
        assert!(Instant::now() < deadline, "too few probes");
        thread::sleep(TICK);
    }
    let calls = script.calls_of("live");
    assert!(
        calls[0] >= watched + TICK * 5,
        "probed before the initial delay"
    );
    // Four periods between the first and the fifth, one of them lost at most to a slow start.
    assert!(
        calls[4] - calls[0] >= TICK * 2 * 3,
        "probed more often than the period"
    );
    let timeouts: Vec<Duration> = script
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(.., t)| *t)
        .collect();
    assert!(timeouts.iter().all(|timeout| *timeout == TICK * 3));
}

#[test]
fn errored_attempts_are_reported_but_not_counted() {
    let script = Script::new(&[(
        "live",
        vec![ExecOutcome::CouldNotRun("no such process".to_owned())],
    )]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let probes = RunProbes {
        liveness: Some(probe("live", 1, 1, 1)),
        ..RunProbes::default()
    };
    prober.watch(RUN, probes, script.clone(), reports.sink());
    let errored = ProbeReport::Errored {
        kind: ProbeKind::Liveness,
        message: "no such process".to_owned(),
    };
    let seen = reports.wait_for(|list| count(list, &errored) >= 2);
    assert!(seen.iter().all(|report| *report == errored), "{seen:?}");
    prober.forget(RUN);
    assert_eq!(
        script.calls_of("live").len() % 3,
        0,
        "three tries per attempt"
    );
}

#[test]
fn forget_stops_reports() {
    let script = Script::new(&[("live", vec![bad("sick")])]);
    let reports = Arc::new(Reports::default());
    let prober = prober();
    let probes = RunProbes {
        liveness: Some(probe("live", 1, 1, 1000)),
        ..RunProbes::default()
    };
    prober.watch(RUN, probes, script.clone(), reports.sink());
    reports.wait_for(|list| list.len() >= 2);
    prober.forget(RUN);
    let after = reports.snapshot().len();
    let calls = script.calls_of("live").len();
    idle();
    assert_eq!(reports.snapshot().len(), after);
    assert!(
        script.calls_of("live").len() <= calls + 1,
        "at most one attempt was under way"
    );
}

#[test]
fn forget_from_inside_a_report_returns() {
    let script = Script::new(&[("live", vec![bad("sick")])]);
    let prober = Arc::new(prober());
    let weak: Weak<Prober> = Arc::downgrade(&prober);
    let reports = Arc::new(Reports::default());
    let sink = reports.sink();
    let report: crate::ReportFn = Arc::new(move |run, report| {
        sink(run, report);
        if let Some(prober) = weak.upgrade() {
            prober.forget(run);
        }
    });
    let probes = RunProbes {
        liveness: Some(probe("live", 1, 1, 1000)),
        ..RunProbes::default()
    };
    prober.watch(RUN, probes, script, report);
    reports.wait_for(|list| !list.is_empty());
    idle();
    assert_eq!(reports.snapshot().len(), 1);
}

#[test]
fn enter_runs_on_the_probing_thread_before_any_probe() {
    let entered_on = Arc::new(Mutex::new(None));
    let entered = Arc::new(AtomicBool::new(false));
    let (on, flag) = (entered_on.clone(), entered.clone());
    let prober = Prober::start_with(
        "probe-enter",
        move || {
            *on.lock().unwrap() = Some((
                thread::current().id(),
                thread::current().name().map(str::to_owned),
            ));
            flag.store(true, Ordering::SeqCst);
            Ok(())
        },
        Timing::scaled(TICK),
    )
    .unwrap();
    let (id, name) = entered_on.lock().unwrap().clone().unwrap();
    assert_eq!(id, prober.thread_id());
    assert_eq!(name.as_deref(), Some("probe-enter"));
    assert_eq!(
        prober.run_on_runtime(async { thread::current().id() }),
        Some(id)
    );
    struct SeesEntered(Arc<AtomicBool>);
    impl ExecRunner for SeesEntered {
        fn exec(&self, _: &[String], _: Duration) -> ExecOutcome {
            assert!(self.0.load(Ordering::SeqCst));
            ExecOutcome::Exited {
                code: 0,
                output: Vec::new(),
            }
        }
    }
    let action = ProbeAction::Exec {
        command: vec!["true".to_owned()],
    };
    let outcome = prober.probe_once(&action, TICK, Arc::new(SeesEntered(entered)));
    assert_eq!(outcome, crate::Outcome::Success);
}

#[test]
fn enter_error_fails_start() {
    let started = Prober::start("probe-denied", || {
        Err(std::io::Error::other("setns: operation not permitted"))
    });
    match started {
        Err(err) => assert_eq!(err.to_string(), "setns: operation not permitted"),
        Ok(_) => panic!("start succeeded"),
    }
}

#[test]
fn drop_stops_workers_and_releases_them() {
    let script = Script::new(&[("ready", vec![ok()])]);
    let reports = Arc::new(Reports::default());
    let report = reports.sink();
    let prober = prober();
    let probes = RunProbes {
        readiness: Some(probe("ready", 1, 1, 1)),
        ..RunProbes::default()
    };
    prober.watch(RUN, probes, script.clone(), report.clone());
    reports.wait_for(|list| !list.is_empty());
    drop(prober);
    assert_eq!(Arc::strong_count(&report), 1, "the workers are gone");
    let calls = script.calls_of("ready").len();
    idle();
    assert!(script.calls_of("ready").len() <= calls + 1);
}
