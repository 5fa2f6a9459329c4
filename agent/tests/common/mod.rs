//! Test harness: a busybox root filesystem, an agent in host mode in its own
//! temporary directory, and helpers that call it through the typed client
//! (`podvm_proto::AgentConn`, one fresh connection per helper call).
#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podvm_proto::client::QUICK_CALL;
use podvm_proto::limits::MAX_WRITE_CHUNK;
use podvm_proto::{
    AgentConn, ClientError, ContainerSpec, ContainerState, ContainerStatus, ImageConfig,
    OutputStream, RestartPolicy, RootfsSource, SandboxSpec, SandboxStatus,
};

/// What the tests call themselves in the version exchange.
pub const CLIENT: &str = "podvm-agent tests";
/// Deadline of a sandbox creation or stop.
pub const LIFECYCLE_CALL: Duration = Duration::from_secs(120);

/// Why these tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.trim_end().ends_with("overlay")) {
        return Some("no overlayfs in /proc/filesystems".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no /bin/busybox (install busybox-static)".into());
    }
    None
}

/// Returns from the test with a loud SKIP line when it cannot run here.
#[macro_export]
macro_rules! require_env {
    () => {
        if let Some(why) = common::skip_reason() {
            podvm_testsupport::skip("podvm-agent integration test", &why);
            return;
        }
    };
}

/// Builds a busybox root filesystem under `dir`.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "home/app", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
    )
    .unwrap();
    root
}

/// A container running `command` in the busybox image.
pub fn container(name: &str, rootfs: &Path, command: &[&str]) -> ContainerSpec {
    let image_config = ImageConfig {
        cmd: vec!["sh".into()],
        env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
        ..ImageConfig::default()
    };
    let rootfs = RootfsSource::Directory {
        path: rootfs.to_path_buf(),
    };
    ContainerSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        ..ContainerSpec::new(
            name,
            "busybox:test",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            image_config,
            rootfs,
        )
    }
}

/// A pod with these containers and restart policy Never.
pub fn pod(containers: Vec<ContainerSpec>) -> SandboxSpec {
    SandboxSpec {
        name: "testpod".into(),
        namespace: "default".into(),
        uid: "0000-1111".into(),
        hostname: "testpod-host".into(),
        host_aliases: vec![],
        restart_policy: RestartPolicy::Never,
        termination_grace_period_seconds: 2,
        init_containers: vec![],
        containers,
        active_deadline_seconds: None,
        volumes: vec![],
    }
}

/// An agent in host mode with its own temporary directory.
pub struct TestAgent {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub run_dir: PathBuf,
    pub rootfs: PathBuf,
    pub child: Child,
}

impl TestAgent {
    /// Starts the agent; `env` is added to its environment.
    pub fn start_with_env(env: &[(&str, &str)]) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = busybox_rootfs(dir.path());
        let socket = dir.path().join("agent.sock");
        let run_dir = dir.path().join("run");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podvm-agent"));
        cmd.arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--run-dir")
            .arg(&run_dir)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let agent = TestAgent {
            dir,
            socket,
            run_dir,
            rootfs,
            child,
        };
        // The socket appears once the agent listens (bound and listening in
        // one step); waiting for the file, not connecting, leaves no probe
        // connection behind to count against the agent's limits.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !agent.socket.exists() {
            assert!(Instant::now() < deadline, "agent did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub fn start() -> TestAgent {
        Self::start_with_env(&[])
    }

    /// An agent whose pod has one container `name` running `sleep 1000`,
    /// returned once that container runs.
    pub fn with_sleeper(name: &str) -> TestAgent {
        let agent = Self::start();
        agent.create(pod(vec![container(
            name,
            &agent.rootfs,
            &["sleep", "1000"],
        )]));
        agent.wait_running(name);
        agent
    }

    /// A raw connection (nothing said yet).
    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }

    /// A client connection after the version exchange.
    pub fn conn(&self) -> AgentConn {
        let (conn, version) =
            AgentConn::handshake(UnixStream::connect(&self.socket).unwrap(), CLIENT).unwrap();
        assert_eq!(version.protocol_major, podvm_proto::PROTOCOL_MAJOR);
        conn
    }

    pub fn try_create(&self, spec: &SandboxSpec) -> Result<(), ClientError> {
        self.conn().create_sandbox(spec, LIFECYCLE_CALL)
    }

    pub fn create(&self, spec: SandboxSpec) {
        self.try_create(&spec).unwrap();
    }

    pub fn stop(&self, grace: Duration) {
        self.conn().stop_sandbox(grace, LIFECYCLE_CALL).unwrap();
    }

    pub fn status(&self) -> SandboxStatus {
        self.conn().status(QUICK_CALL).unwrap()
    }

    /// The status of the (init or app) container `name`.
    pub fn container_status(&self, name: &str) -> ContainerStatus {
        let status = self.status();
        status
            .init_containers
            .into_iter()
            .chain(status.containers)
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// Polls until `pred` holds for the container's status.
    pub fn wait_for(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&ContainerStatus) -> bool,
    ) -> ContainerStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.container_status(name);
            if pred(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: timed out waiting for {what}: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_terminated(&self, name: &str) -> ContainerStatus {
        self.wait_for(name, "termination", |s| {
            matches!(s.state, ContainerState::Terminated { .. })
        })
    }

    pub fn wait_running(&self, name: &str) -> ContainerStatus {
        self.wait_for(name, "running", |s| {
            matches!(s.state, ContainerState::Running { .. })
        })
    }

    /// The container's CRI log bytes, read in chunks from the start (or
    /// the last `tail` lines) until the agent says `end`.
    pub fn try_log_bytes(
        &self,
        name: &str,
        tail: Option<u64>,
        follow: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let conn = self.conn();
        let mut data = Vec::new();
        let mut offset = 0;
        let mut tail = tail;
        loop {
            let chunk = conn.read_log(name, offset, tail.take(), follow)?;
            data.extend_from_slice(&chunk.data);
            offset = chunk.next_offset;
            if chunk.end {
                return Ok(data);
            }
        }
    }

    /// The container's CRI log (not following).
    pub fn logs(&self, name: &str, tail: Option<u64>) -> String {
        String::from_utf8(self.try_log_bytes(name, tail, false).unwrap()).unwrap()
    }

    /// Only the text of the container's stdout/stderr log lines.
    pub fn log_text(&self, name: &str) -> String {
        self.logs(name, None)
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .map(|t| format!("{t}\n"))
            .collect()
    }

    /// Only the text of the log lines of the container's previous run.
    pub fn previous_log_text(&self, name: &str) -> String {
        let chunk = self.conn().read_previous_log(name, 0, None).unwrap();
        assert!(chunk.end, "the previous run's log is over");
        String::from_utf8(chunk.data)
            .unwrap()
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .map(|t| format!("{t}\n"))
            .collect()
    }

    /// Polls the log until it contains `needle`.
    pub fn wait_log(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.log_text(name);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {needle:?} never appeared in the log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs an exec on one connection: stdin written in chunks as the
    /// process takes it, then closed; both outputs read to their end; the
    /// exit code. Returns (stdout, stderr, exit code).
    pub fn exec_bytes(&self, name: &str, argv: &[&str], stdin: &[u8]) -> (Vec<u8>, Vec<u8>, i32) {
        let conn = self.conn();
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let id = conn.exec(name, &argv, true).unwrap();
        let readers = [OutputStream::Stdout, OutputStream::Stderr].map(|stream| {
            let conn = conn.clone();
            let id = id.clone();
            std::thread::spawn(move || read_output(&conn, &id, stream))
        });
        write_all_stdin(&conn, &id, stdin);
        conn.close_stdin(&id).unwrap();
        let [out, err] = readers.map(|r| r.join().unwrap());
        let code = conn.wait(&id).unwrap();
        (out, err, code)
    }

    /// [`TestAgent::exec_bytes`] with the outputs as (lossy) text.
    pub fn exec(&self, name: &str, argv: &[&str], stdin: &[u8]) -> (String, String, i32) {
        let (out, err, code) = self.exec_bytes(name, argv, stdin);
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
            code,
        )
    }

    /// Sends Shutdown and waits for the agent to exit; returns its code.
    pub fn shutdown(&mut self) -> i32 {
        self.conn().shutdown(QUICK_CALL).unwrap();
        self.wait_exit(Duration::from_secs(60))
            .expect("agent did not exit after Shutdown")
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Mount points at or below the test directory.
    pub fn mounts_left(&self) -> Vec<String> {
        let root = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&root))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Ok(s) = UnixStream::connect(&self.socket) {
                if let Ok(conn) = AgentConn::new(s) {
                    let _ = conn.shutdown(QUICK_CALL);
                }
            }
            if self.wait_exit(Duration::from_secs(60)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        for point in self.mounts_left().into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

/// Everything an exec writes to `stream`, until its end.
pub fn read_output(conn: &AgentConn, id: &str, stream: OutputStream) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(chunk) = conn.read_output(id, stream).unwrap() {
        data.extend_from_slice(&chunk);
    }
    data
}

/// Writes all of `data` to an exec's stdin in chunks the agent accepts.
pub fn write_all_stdin(conn: &AgentConn, id: &str, data: &[u8]) {
    let mut rest = data;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(MAX_WRITE_CHUNK)];
        let taken = conn.write_stdin(id, chunk).unwrap();
        assert!(taken <= chunk.len());
        rest = &rest[taken..];
    }
}

/// The ttrpc status code of a failed call.
pub fn code_of<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ttrpc::Code {
    match result {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("not an error answer: {e}")),
        Ok(v) => panic!("the call succeeded: {v:?}"),
    }
}

/// The exit code, reason and message of a terminated state.
pub fn terminated(status: &ContainerStatus) -> (i32, String, Option<String>) {
    match &status.state {
        ContainerState::Terminated {
            exit_code,
            reason,
            message,
            ..
        } => (*exit_code, reason.clone(), message.clone()),
        other => panic!("{} not terminated: {other:?}", status.name),
    }
}

/// Lines of `text` of the form `key=value`, as a lookup.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// PIDs of live processes whose environment contains `entry`.
pub fn processes_with(entry: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        });
        if !zombie && environ.split(|b| *b == 0).any(|v| v == entry.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Runs a gRPC health server, with `service` SERVING, on `port` in the
/// network namespace of process `pid` (a container's: the pod's network),
/// for the rest of the test.
pub fn health_server_in(pid: i32, port: u16, service: &str) {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let service_name = service.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (reporter, service) = tonic_health::server::health_reporter();
            reporter
                .set_service_status(&service_name, tonic_health::ServingStatus::Serving)
                .await;
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            ready_tx.send(()).unwrap();
            tonic::transport::Server::builder()
                .serve_with_incoming(
                    service,
                    tonic::transport::server::TcpIncoming::from(listener),
                )
                .await
                .unwrap();
        });
    });
    ready_rx.recv().unwrap();
}
