//! The pod manager with owners run on threads against the fake hypervisor
//! and agent: start, failed start, VM death, take-over, delete.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::hypervisor::{Hypervisor, TrackedProcess, VmConfig, VmRecord};
use crate::owner::fakes::{wait_until, FailAt, FakeAgent, FakeDialer, FakeHypervisor};
use crate::owner::{LaunchPlan, Lifecycle, OwnerDeps};

/// A fake hypervisor that remembers every VM process it started.
struct Counting {
    inner: FakeHypervisor,
    started: Arc<Mutex<Vec<TrackedProcess>>>,
}

impl Hypervisor for Counting {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn start(&self, config: &VmConfig) -> anyhow::Result<VmRecord> {
        let vm = self.inner.start(config)?;
        self.started.lock().unwrap().extend(vm.processes.clone());
        Ok(vm)
    }
}

/// Runs owners on threads.
struct ThreadLauncher {
    state: StateDir,
    deps: Arc<OwnerDeps>,
    launched: Arc<AtomicUsize>,
}

impl OwnerLauncher for ThreadLauncher {
    fn launch(&self, namespace: &str, name: &str, _dir: &Path) -> anyhow::Result<()> {
        self.launched.fetch_add(1, Ordering::SeqCst);
        let (state, deps) = (self.state.clone(), Arc::clone(&self.deps));
        let (ns, name) = (namespace.to_string(), name.to_string());
        std::thread::spawn(move || {
            if let Err(e) = crate::owner::run(&state, &ns, &name, &deps) {
                eprintln!("owner thread: {e:#}");
            }
        });
        Ok(())
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    manager: PodManager,
    agent: Arc<FakeAgent>,
    started: Arc<Mutex<Vec<TrackedProcess>>>,
    launched: Arc<AtomicUsize>,
}

fn setup(fail: FailAt) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    let agent = Arc::new(FakeAgent {
        fail,
        ..Default::default()
    });
    let dialer = Arc::new(FakeDialer {
        agent: Arc::clone(&agent),
    });
    let started = Arc::new(Mutex::new(Vec::new()));
    let hv_started = Arc::clone(&started);
    let deps = Arc::new(OwnerDeps {
        hypervisor: Box::new(move |_kind| {
            Ok(Box::new(Counting {
                inner: FakeHypervisor { fail },
                started: Arc::clone(&hv_started),
            }) as Box<dyn Hypervisor>)
        }),
        dialer: dialer.clone(),
        stop_on_signals: false,
    });
    let launched = Arc::new(AtomicUsize::new(0));
    let launcher = ThreadLauncher {
        state: state.clone(),
        deps,
        launched: Arc::clone(&launched),
    };
    Setup {
        _dir: dir,
        manager: PodManager::new(state, Box::new(launcher), dialer),
        agent,
        started,
        launched,
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            termination_grace_period_seconds: Some(1),
            ..Default::default()
        }),
        status: None,
    }
}

fn plan() -> LaunchPlan {
    // The manager moves the VM's folder into the pod's.
    crate::owner::fakes::plan(std::path::Path::new("/overwritten/by/create"))
}

fn lifecycle(s: &Setup, name: &str) -> Option<Lifecycle> {
    s.manager
        .state
        .load("default", name)
        .ok()
        .map(|r| r.lifecycle)
}

#[test]
fn a_pod_runs_and_its_vm_dying_is_recorded_with_the_console() {
    let s = setup(FailAt::Nowhere);
    let record = s.manager.create(pod("web"), plan()).unwrap();
    assert_eq!(record.lifecycle, Lifecycle::Running);
    let vm = record.vm.expect("the VM is recorded");
    assert!(vm.is_running());
    vm.processes[0].signal(nix::sys::signal::Signal::SIGKILL);
    wait_until("the VM's death to be recorded", || {
        matches!(lifecycle(&s, "web"), Some(Lifecycle::Failed { .. }))
    });
    let Some(Lifecycle::Failed { reason, message }) = lifecycle(&s, "web") else {
        unreachable!()
    };
    assert_eq!(reason, FailureReason::VmExited);
    assert!(message.contains("was killed by SIGKILL"), "{message}");
    assert!(message.contains("fake kernel line 2"), "{message}");
    // A failed pod is still listed until it is deleted; delete needs no owner.
    s.manager.delete("default", "web", Some(0)).unwrap();
    assert!(!s.manager.state.pod_dir("default", "web").exists());
}

#[test]
fn a_failed_start_keeps_nothing() {
    for fail in [FailAt::Start, FailAt::Dial, FailAt::Create, FailAt::Status] {
        let s = setup(fail);
        match s.manager.create(pod("web"), plan()) {
            Err(ManagerError::StartFailed { .. }) => {}
            other => panic!("{fail:?}: {:?}", other.map(|r| r.lifecycle)),
        }
        assert!(
            !s.manager.state.pod_dir("default", "web").exists(),
            "{fail:?}"
        );
        let started = s.started.lock().unwrap();
        assert!(
            started.iter().all(|p| !p.is_alive()),
            "{fail:?}: a VM was left"
        );
    }
}

#[test]
fn the_same_name_twice_is_refused_and_debris_is_reclaimed() {
    let s = setup(FailAt::Nowhere);
    // An `apply` killed after claiming the name but before the record.
    std::fs::create_dir_all(s.manager.state.pod_dir("default", "web")).unwrap();
    let record = s.manager.create(pod("web"), plan()).unwrap();
    match s.manager.create(pod("web"), plan()) {
        Err(ManagerError::AlreadyExists { name, .. }) => assert_eq!(name, "web"),
        other => panic!("{:?}", other.map(|r| r.lifecycle)),
    }
    record.vm.unwrap().processes[0].signal(nix::sys::signal::Signal::SIGKILL);
}

/// What a killed owner leaves: the pod's folder with its plan, a running
/// fake VM and a `Running` record, and no owner.
fn orphaned_pod(
    s: &Setup,
    name: &str,
) -> (std::path::PathBuf, LaunchPlan, crate::state::PodRecord) {
    let dir = s.manager.state.create_pod_dir("default", name).unwrap();
    let mut p = plan();
    p.vm.run_dir = dir.join("vm");
    std::fs::create_dir_all(&p.vm.run_dir).unwrap();
    p.save(&dir).unwrap();
    let vm = FakeHypervisor {
        fail: FailAt::Nowhere,
    }
    .start(&p.vm)
    .unwrap();
    let record = crate::state::PodRecord {
        pod: pod(name),
        vm: Some(vm),
        last_status: None,
        lifecycle: Lifecycle::Running,
        events: vec![],
        watch: Default::default(),
    };
    s.manager.state.save(&record).unwrap();
    (dir, p, record)
}

#[test]
fn a_pod_without_an_owner_is_taken_over_not_booted_again() {
    let s = setup(FailAt::Nowhere);
    let (dir, mut p, mut record) = orphaned_pod(&s, "web");
    let vm = record.vm.clone().unwrap();
    s.manager.get("default", "web").unwrap();
    wait_until("the new owner", || crate::owner::locks::owner_alive(&dir));
    assert_eq!(s.launched.load(Ordering::SeqCst), 1);
    s.manager.get("default", "web").unwrap();
    assert_eq!(s.launched.load(Ordering::SeqCst), 1, "one owner at a time");
    assert!(
        s.started.lock().unwrap().is_empty(),
        "no second VM was booted"
    );
    vm.processes[0].signal(nix::sys::signal::Signal::SIGKILL);
    wait_until("the VM's death to be recorded", || {
        matches!(lifecycle(&s, "web"), Some(Lifecycle::Failed { .. }))
    });

    // An `apply` killed after writing its record: the next command's owner
    // boots the pod.
    record.vm = None;
    record.lifecycle = Lifecycle::Creating;
    record.pod = pod("api");
    let dir = s.manager.state.create_pod_dir("default", "api").unwrap();
    p.vm.run_dir = dir.join("vm");
    p.save(&dir).unwrap();
    s.manager.state.save(&record).unwrap();
    s.manager.get("default", "api").unwrap();
    wait_until("the interrupted apply's pod to run", || {
        lifecycle(&s, "api") == Some(Lifecycle::Running)
    });
    assert_eq!(s.started.lock().unwrap().len(), 1);
    let vm = s.manager.state.load("default", "api").unwrap().vm.unwrap();
    vm.processes[0].signal(nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn delete_without_an_owner_stops_the_pod_and_removes_everything() {
    let s = setup(FailAt::Nowhere);
    let (dir, _, record) = orphaned_pod(&s, "web");
    let vm = record.vm.unwrap();
    s.manager.delete("default", "web", Some(0)).unwrap();
    assert!(!dir.exists());
    assert!(!vm.processes[0].is_alive());
    assert_eq!(s.agent.stops.load(Ordering::SeqCst), 1);
    assert_eq!(s.agent.shutdowns.load(Ordering::SeqCst), 1);
    match s.manager.delete("default", "web", None) {
        Err(ManagerError::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}
