//! The pod: its sandbox, image mounts and containers (init containers,
//! then app containers), and the sync loop that runs them
//! (`controller`). The pod implements the loop's [`controller::Runtime`]
//! with real launches in the sandbox, hooks ([`hooks`]) and probes
//! ([`probes`]). Its event log receives the containers' events and every
//! status change (the sandbox's readiness here, the containers' in
//! `container`).

pub mod hooks;
pub mod probes;
pub mod status;
#[cfg(test)]
pub mod testing;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podvm_proto::{
    ContainerSpec, HookAction, PodConditionType, PodPhase, SandboxSpec, SandboxStatus,
};

use crate::cgroup::Cgroups;
use crate::console::say;
use crate::container::launch::{self, CreatedRun, LaunchContext, RunningContainer};
use crate::container::state::{RunExit, WaitingReason};
use crate::container::{Container, CreateFailure, RunningInfo};
use crate::controller::phase::{pod_phase, InitStatus};
use crate::controller::state::Role;
use crate::controller::sync::{Shared, KILL_WAIT};
use crate::controller::{self, Input, PodPolicy, SharedOutcome, StopSignal, SyncLoop};
use crate::events::kubelet::pod_desc;
use crate::events::EventLog;
use crate::ids::{now_rfc3339, random_id};
use crate::mountinfo::unmount_tree;
#[cfg(test)]
use crate::netns::{self, NetnsError};
use crate::rootfs::Images;
use crate::rundir::RunDir;
use crate::sandbox::{Sandbox, SandboxError};
use probes::PodProbes;
use status::{containers_ready, failure, initialized, ConditionTracker, ConditionValue};

/// How long a stop waits for the sync loop beyond the grace period and
/// the wait after SIGKILL (a start under way finishes first).
const STOP_SLACK: Duration = Duration::from_secs(30);

/// How often the emptyDir volumes are compared with their size limits
/// (kubelet's eviction manager checks every 10 s).
const VOLUME_CHECK: Duration = Duration::from_secs(10);

/// See the module documentation.
pub struct Pod {
    pub spec: SandboxSpec,
    run: RunDir,
    containers_dir: std::path::PathBuf,
    images: Images,
    cgroups: Option<Cgroups>,
    sandbox: Sandbox,
    /// Init containers, then app containers, in spec order.
    containers: Vec<Arc<Container>>,
    started_at: String,
    ready: AtomicBool,
    events: Arc<EventLog>,
    outcome: Arc<SharedOutcome>,
    conditions: ConditionTracker,
    probes: PodProbes,
    /// The sync loop, from the start of the containers to the stop.
    sync: Mutex<Option<SyncLoop>>,
}

/// The role of each container of `spec`, init containers first.
fn roles(spec: &SandboxSpec) -> impl Iterator<Item = (&ContainerSpec, Role)> {
    let init = spec.init_containers.iter().map(|c| {
        let role = if c.is_sidecar() {
            Role::Sidecar
        } else {
            Role::Init
        };
        (c, role)
    });
    init.chain(spec.containers.iter().map(|c| (c, Role::App)))
}

impl Pod {
    /// Sets up the sandbox; containers are created but not started. Events
    /// and status changes go to `events`.
    pub fn create(
        run: RunDir,
        cgroups: Option<Cgroups>,
        spec: SandboxSpec,
        events: Arc<EventLog>,
    ) -> Result<Arc<Pod>, SandboxError> {
        let sandbox = Sandbox::create(&run, &spec)?;
        let has_init = !spec.init_containers.is_empty();
        let containers = roles(&spec)
            .map(|(c, role)| {
                let id = random_id().unwrap_or_else(|_| "0".repeat(64));
                let waiting = if role == Role::App && has_init {
                    WaitingReason::PodInitializing
                } else {
                    WaitingReason::ContainerCreating
                };
                Arc::new(Container::new(
                    c.clone(),
                    run.container_logs(&c.name),
                    id,
                    Arc::clone(&events),
                    waiting,
                ))
            })
            .collect();
        let holder = sandbox.holder_pid();
        let probes = PodProbes::start(&spec.name, holder, Arc::clone(&events))
            .map_err(SandboxError::Spawn)?;
        Ok(Arc::new(Pod {
            images: Images::new(run.images()),
            containers_dir: run.containers(),
            run,
            cgroups,
            sandbox,
            containers,
            spec,
            started_at: now_rfc3339(),
            ready: AtomicBool::new(true),
            events,
            outcome: Arc::new(SharedOutcome::default()),
            conditions: ConditionTracker::default(),
            probes,
            sync: Mutex::new(None),
        }))
    }

    /// What a container launch needs.
    pub fn launch_context(&self) -> LaunchContext<'_> {
        LaunchContext {
            containers_dir: &self.containers_dir,
            images: &self.images,
            cgroups: self.cgroups.as_ref(),
            sandbox: &self.sandbox,
            hostname: &self.spec.hostname,
        }
    }

    /// kubelet's description of the pod (`NAME_NAMESPACE(UID)`).
    pub fn desc(&self) -> String {
        pod_desc(&self.spec.name, &self.spec.namespace, &self.spec.uid)
    }

    /// Starts the pod's sync loop, which starts the containers in
    /// kubelet's order; returns once the loop's first sync is done. Call
    /// it once the pod is where status readers find it: the ready sandbox
    /// is announced here as a status change.
    pub fn start_containers(self: &Arc<Self>) {
        self.events.status_changed();
        let policy = PodPolicy {
            restart: self.spec.restart_policy,
            pod: self.desc(),
            grace: Duration::from_secs(self.spec.termination_grace_period_seconds),
            active_deadline: self.spec.active_deadline_seconds.map(Duration::from_secs),
            volume_check: self
                .spec
                .volumes
                .iter()
                .any(|v| v.size_limit.is_some())
                .then_some(VOLUME_CHECK),
        };
        let containers = roles(&self.spec)
            .map(|(_, role)| role)
            .zip(&self.containers)
            .map(|(role, c)| (Arc::clone(c), role))
            .collect();
        let shared = Shared {
            outcome: Arc::clone(&self.outcome),
            events: Arc::clone(&self.events),
        };
        match SyncLoop::start(Arc::clone(self), policy, containers, shared) {
            Ok(sync) => *self.sync.lock().unwrap_or_else(PoisonError::into_inner) = Some(sync),
            Err(e) => {
                say!("cannot start the pod's sync loop: {e}");
                for container in &self.containers {
                    container.set_create_error(CreateFailure::Runtime(format!(
                        "agent could not start a thread: {e}"
                    )));
                }
            }
        }
    }

    /// The container of that name.
    pub fn container(&self, name: &str) -> Option<&Arc<Container>> {
        self.containers.iter().find(|c| c.name() == name)
    }

    /// The status of the sandbox and its containers.
    pub fn status(&self) -> SandboxStatus {
        let init_count = self.spec.init_containers.len();
        let statuses: Vec<_> = self.containers.iter().map(|c| c.status()).collect();
        let (init, apps) = statuses.split_at(init_count.min(statuses.len()));
        let sidecar: Vec<bool> = self
            .spec
            .init_containers
            .iter()
            .map(|c| c.is_sidecar())
            .collect();
        let init_views: Vec<InitStatus<'_>> = init
            .iter()
            .zip(&sidecar)
            .map(|(status, sidecar)| InitStatus {
                sidecar: *sidecar,
                status,
            })
            .collect();
        let app_refs: Vec<_> = apps.iter().collect();
        let outcome = self.outcome.get();
        let failed = failure(outcome.stop, outcome.message.clone());
        let phase = if failed.is_some() {
            PodPhase::Failed
        } else {
            pod_phase(
                self.spec.restart_policy,
                &init_views,
                &app_refs,
                outcome.over,
            )
        };
        let sidecars: Vec<_> = init
            .iter()
            .zip(&sidecar)
            .filter(|(_, s)| **s)
            .map(|(status, _)| status)
            .collect();
        let init_pairs: Vec<(bool, &podvm_proto::ContainerStatus)> =
            sidecar.iter().copied().zip(init.iter()).collect();
        let sandbox_ready = self.ready.load(Ordering::SeqCst);
        let conditions = self.conditions.update(&[
            (
                PodConditionType::PodReadyToStartContainers,
                ConditionValue {
                    status: sandbox_ready,
                    reason: None,
                    message: None,
                },
            ),
            (
                PodConditionType::Initialized,
                initialized(&init_pairs, phase),
            ),
            (
                PodConditionType::ContainersReady,
                containers_ready(&sidecars, &app_refs, phase),
            ),
        ]);
        let (reason, message) = failed.unzip();
        SandboxStatus {
            sandbox_ready,
            started_at: Some(self.started_at.clone()),
            phase,
            reason,
            message,
            conditions,
            init_containers: init.to_vec(),
            containers: apps.to_vec(),
            agent_rss_kib: None,
        }
    }

    /// Runs `f` in the pod's network namespace (the sandbox holder's).
    #[cfg(test)]
    pub fn run_in_network<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        netns::run_in(self.sandbox.holder_pid(), f)
    }

    /// Stops every container (the sync loop runs preStop, sends the stop
    /// signal, waits `grace`, sends SIGKILL; `force`: SIGKILL at once),
    /// then the sandbox: probes, holder process, image mounts, /dev/shm
    /// and cgroups.
    pub fn stop(&self, grace: Duration, force: bool) {
        if self.ready.swap(false, Ordering::SeqCst) {
            self.events.status_changed();
        }
        let sync = self
            .sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sync) = sync {
            let limit = grace.saturating_add(KILL_WAIT).saturating_add(STOP_SLACK);
            if !sync.stop(grace, force, limit) {
                say!("the pod's sync loop did not end in time; stopping the sandbox anyway");
            }
        }
        self.probes.shutdown();
        self.sandbox.stop_holder();
        self.images.unmount_all();
        unmount_tree(&self.run.sandbox());
        if let Some(cgroups) = &self.cgroups {
            for container in &self.containers {
                cgroups.remove(container.name());
            }
        }
    }
}

/// A container's stop signal: the image's `STOPSIGNAL`, else SIGTERM.
fn stop_signal(container: &Container) -> Signal {
    container
        .spec
        .image_config
        .stop_signal
        .as_deref()
        .and_then(parse_signal)
        .unwrap_or(Signal::SIGTERM)
}

/// A signal as an image config names it: `SIGQUIT`, `QUIT` or `3`.
fn parse_signal(text: &str) -> Option<Signal> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().ok()
}

/// The real steps of the sync loop: launches in the sandbox.
impl controller::Runtime for Pod {
    type Created = CreatedRun;
    type Run = RunningContainer;

    fn create(&self, container: &Container) -> Result<CreatedRun, CreateFailure> {
        launch::create(&self.launch_context(), container)
    }

    fn start(
        &self,
        container: &Container,
        created: CreatedRun,
        run: u32,
    ) -> Result<RunningContainer, String> {
        launch::start(&self.launch_context(), container, created, run)
    }

    fn signal(&self, container: &Container, signal: StopSignal) {
        if let Some(info) = container.running() {
            let _ = kill(
                Pid::from_raw(info.pid),
                signal.signal(stop_signal(container)),
            );
        }
    }

    fn run_hook(
        &self,
        container: &Container,
        action: &HookAction,
        limit: Option<Duration>,
    ) -> Result<(), String> {
        hooks::run(container, action, limit, &self.desc(), &self.probes)
    }

    fn watch_probes(
        &self,
        index: usize,
        container: &Arc<Container>,
        run: u32,
        inputs: Sender<Input>,
    ) {
        self.probes.watch(index, container, run, inputs);
    }

    fn forget_probes(&self, index: usize, run: u32) {
        self.probes.forget(index, run);
    }

    fn termination_message(&self, container: &Container, exit: &RunExit) -> Option<String> {
        let file = self.run.termination_log(container.name());
        crate::container::termination::message(
            &file,
            container.spec.termination_message_policy,
            &container.current_log(),
            exit.code,
        )
    }

    fn volume_over_limit(&self) -> Option<String> {
        self.sandbox.volume_over_limit()
    }
}

impl controller::Run for RunningContainer {
    fn info(&self) -> RunningInfo {
        RunningInfo {
            pid: self.pid,
            cgroup: self.cgroup.clone(),
            process: self.process.clone(),
        }
    }

    fn started_at(&self) -> String {
        self.started_at.clone()
    }

    fn wait(self) -> RunExit {
        let exited = RunningContainer::wait(self);
        RunExit {
            code: exited.code,
            signal: exited.signal,
            oom_killed: exited.oom_killed,
            finished_at: exited.finished_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    use super::testing::{TestPod, LONG};

    #[test]
    fn code_runs_in_the_pods_network_namespace() {
        // A port free here; the pod has a network of its own.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = port.to_string();
        let Some(pod) = TestPod::start(
            "Pod::run_in_network",
            &[("server", &["nc", "-l", "-p", &listen])],
        ) else {
            return;
        };
        pod.wait_running("server");
        // The listener is up once nc got that far.
        let deadline = Instant::now() + LONG;
        let mut stream = loop {
            let connected = pod
                .pod
                .run_in_network(|| TcpStream::connect(("127.0.0.1", port)))
                .unwrap();
            match connected {
                Ok(stream) => break stream,
                Err(e) => {
                    assert!(Instant::now() < deadline, "nothing listens in the pod: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        };
        // Not from the agent's own namespace.
        let refused = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        // The stream made in the pod's namespace works from this thread.
        stream.write_all(b"hello from the agent\n").unwrap();
        drop(stream);
        pod.wait_log("server", "hello from the agent");
    }
}
