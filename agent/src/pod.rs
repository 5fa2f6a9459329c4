//! The pod: its sandbox, image mounts and containers, and the sync loop
//! that runs them (`controller`). The pod implements the loop's
//! [`controller::Runtime`] with real launches in the sandbox. Its event log
//! receives the containers' events and every status change (the sandbox's
//! readiness here, the containers' in `container`).

#[cfg(test)]
pub mod testing;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::kill;
use nix::unistd::Pid;
use podvm_proto::{SandboxSpec, SandboxStatus};

use crate::cgroup::Cgroups;
use crate::console::say;
use crate::container::launch::{self, CreatedRun, LaunchContext, RunningContainer};
use crate::container::state::RunExit;
use crate::container::{Container, RunningInfo};
use crate::controller::sync::KILL_WAIT;
use crate::controller::{self, PodPolicy, StopSignal, SyncLoop};
use crate::events::kubelet::pod_desc;
use crate::events::EventLog;
use crate::ids::{now_rfc3339, random_id};
use crate::mountinfo::unmount_tree;
use crate::netns::{self, NetnsError};
use crate::rootfs::Images;
use crate::rundir::RunDir;
use crate::sandbox::{Sandbox, SandboxError};

/// How long a stop waits for the sync loop beyond the grace period and
/// the wait after SIGKILL (a start under way finishes first).
const STOP_SLACK: Duration = Duration::from_secs(30);

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
    /// The sync loop, from the start of the containers to the stop.
    sync: Mutex<Option<SyncLoop>>,
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

    /// Starts the pod's sync loop, which starts the containers one after
    /// the other, as kubelet does; returns once each was started (or
    /// failed to). Call it once the pod is where status readers find it:
    /// the ready sandbox is announced here as a status change.
    pub fn start_containers(self: &Arc<Self>) {
        self.events.status_changed();
        let policy = PodPolicy {
            restart: self.spec.restart_policy,
            pod: pod_desc(&self.spec.name, &self.spec.namespace, &self.spec.uid),
        };
        match SyncLoop::start(Arc::clone(self), policy, self.containers.clone()) {
            Ok(sync) => *self.sync.lock().unwrap_or_else(PoisonError::into_inner) = Some(sync),
            Err(e) => {
                say!("cannot start the pod's sync loop: {e}");
                for container in &self.containers {
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

    /// Runs `f` in the pod's network namespace (the sandbox holder's).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "TCP and HTTP probes are its first users")
    )]
    pub fn run_in_network<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        netns::run_in(self.sandbox.holder_pid(), f)
    }

    /// Stops every container (the sync loop sends SIGTERM, waits `grace`,
    /// sends SIGKILL), then the sandbox: holder process, image mounts,
    /// /dev/shm and cgroups.
    pub fn stop(&self, grace: Duration) {
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
            if !sync.stop(grace, limit) {
                say!("the pod's sync loop did not end in time; stopping the sandbox anyway");
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

/// The real steps of the sync loop: launches in the sandbox.
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

    fn signal(&self, container: &Container, signal: StopSignal) {
        if let Some(info) = container.running() {
            let _ = kill(Pid::from_raw(info.pid), signal.signal());
        }
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
