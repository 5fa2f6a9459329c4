//! The pod: its sandbox, image mounts and containers, started in order and
//! stopped together (TERM, grace period, KILL). Its event log receives the
//! containers' events and every status change (the sandbox's readiness
//! here, the containers' in `container`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podvm_proto::{SandboxSpec, SandboxStatus};

use crate::cgroup::Cgroups;
use crate::console::say;
use crate::container::launch::{self, CreatedRun, Exited, LaunchContext, RunningContainer};
use crate::container::{Container, RunningInfo};
use crate::controller::{self, PodPolicy};
use crate::events::kubelet::pod_desc;
use crate::events::EventLog;
use crate::ids::{now_rfc3339, random_id};
use crate::mountinfo::unmount_tree;
use crate::rootfs::Images;
use crate::rundir::RunDir;
use crate::sandbox::{Sandbox, SandboxError};

/// How long containers get to die after SIGKILL before the agent moves on.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// See the module documentation.
pub struct Pod {
    pub spec: SandboxSpec,
    run: RunDir,
    containers_dir: std::path::PathBuf,
    images: Images,
    cgroups: Option<Cgroups>,
    sandbox: Sandbox,
    containers: Vec<Arc<Container>>,
    started_at: String,
    ready: AtomicBool,
    events: Arc<EventLog>,
    controllers: Mutex<Vec<JoinHandle<()>>>,
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
        let containers = spec
            .containers
            .iter()
            .map(|c| {
                let id = random_id().unwrap_or_else(|_| "0".repeat(64));
                Arc::new(Container::new(
                    c.clone(),
                    run.log_file(&c.name),
                    id,
                    Arc::clone(&events),
                ))
            })
            .collect();
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
            controllers: Mutex::new(Vec::new()),
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

    /// Starts the containers one after the other, as kubelet does, each
    /// after the previous one started (or failed to). Call it once the pod
    /// is where status readers find it: the ready sandbox is announced here
    /// as a status change.
    pub fn start_containers(self: &Arc<Self>) {
        self.events.status_changed();
        let policy = PodPolicy {
            restart: self.spec.restart_policy,
            pod: pod_desc(&self.spec.name, &self.spec.namespace, &self.spec.uid),
        };
        for container in &self.containers {
            let (tx, rx) = mpsc::channel();
            let pod = Arc::clone(self);
            let c = Arc::clone(container);
            let policy = policy.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ctl-{}", container.name()))
                .spawn(move || controller::run(&*pod, &policy, &c, tx));
            match spawned {
                Ok(handle) => {
                    self.controllers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(handle);
                    let _ = rx.recv();
                }
                Err(e) => {
                    say!("cannot start the controller of {}: {e}", container.name());
                    container.set_create_error(format!("agent could not start a thread: {e}"));
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
        SandboxStatus {
            sandbox_ready: self.ready.load(Ordering::SeqCst),
            started_at: Some(self.started_at.clone()),
            containers: self.containers.iter().map(|c| c.status()).collect(),
            agent_rss_kib: None,
        }
    }

    /// Stops every container (SIGTERM, `grace`, SIGKILL), then the sandbox:
    /// holder process, image mounts, /dev/shm and cgroups.
    pub fn stop(&self, grace: Duration) {
        if self.ready.swap(false, Ordering::SeqCst) {
            self.events.status_changed();
        }
        for container in &self.containers {
            if let Some(pid) = container.request_stop() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for container in &self.containers {
            container.wait_finished(deadline);
        }
        for container in &self.containers {
            if let Some(info) = container.running() {
                let _ = kill(Pid::from_raw(info.pid), Signal::SIGKILL);
            }
        }
        let deadline = Instant::now() + KILL_WAIT;
        for container in &self.containers {
            if !container.wait_finished(deadline) {
                say!("container {} did not end after SIGKILL", container.name());
            }
        }
        let controllers: Vec<_> = self
            .controllers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for handle in controllers {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
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

/// The real steps of a container's controller: launches in the sandbox.
impl controller::Runtime for Pod {
    type Created = CreatedRun;
    type Run = RunningContainer;

    fn create(&self, container: &Container) -> Result<CreatedRun, String> {
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

    fn back_off(&self, container: &Container, delay: Duration) -> bool {
        container.sleep_unless_stopped(delay)
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

    fn kill(&self) {
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
    }

    fn wait(self) -> Exited {
        RunningContainer::wait(self)
    }
}
