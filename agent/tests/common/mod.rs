//! Test harness: a busybox root filesystem, an agent in host mode in its own
//! temporary directory, and request helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podvm_proto::{
    read_message, write_message, ContainerSpec, ContainerState, ContainerStatus, ImageConfig,
    Request, Response, RestartPolicy, RootfsSource, SandboxSpec, SandboxStatus, StdStream,
};

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
    ContainerSpec {
        name: name.into(),
        image: "busybox:test".into(),
        image_id: "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        image_config: ImageConfig {
            entrypoint: vec![],
            cmd: vec!["sh".into()],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: None,
            user: None,
        },
        rootfs: RootfsSource::Directory {
            path: rootfs.to_path_buf(),
        },
        command: command.iter().map(|s| s.to_string()).collect(),
        args: vec![],
        env: vec![],
        working_dir: None,
        run_as_user: None,
        run_as_group: None,
        supplemental_groups: vec![],
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
        containers,
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
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&agent.socket).is_err() {
            assert!(Instant::now() < deadline, "agent did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub fn start() -> TestAgent {
        Self::start_with_env(&[])
    }

    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }

    /// Sends raw bytes and returns every reply until the agent closes.
    pub fn raw(&self, bytes: &[u8]) -> Vec<Response> {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        read_all(&mut s)
    }

    /// Sends one request and returns every reply until the agent closes.
    pub fn request(&self, req: &Request) -> Vec<Response> {
        let mut s = self.connect();
        write_message(&mut s, req).unwrap();
        read_all(&mut s)
    }

    /// A request with exactly one reply.
    pub fn call(&self, req: &Request) -> Response {
        let mut replies = self.request(req);
        assert_eq!(replies.len(), 1, "{replies:?}");
        replies.remove(0)
    }

    pub fn create(&self, spec: SandboxSpec) {
        let reply = self.call(&Request::CreateSandbox {
            sandbox: Box::new(spec),
        });
        assert_eq!(reply, Response::Ok);
    }

    pub fn status(&self) -> SandboxStatus {
        match self.call(&Request::Status) {
            Response::Status { status } => *status,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn container_status(&self, name: &str) -> ContainerStatus {
        self.status()
            .containers
            .into_iter()
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
        let deadline = Instant::now() + Duration::from_secs(30);
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

    /// The container's CRI log (non-follow).
    pub fn logs(&self, name: &str, tail: Option<u64>) -> String {
        let replies = self.request(&Request::Logs {
            container: name.into(),
            follow: false,
            tail_lines: tail,
        });
        collect_logs(replies)
    }

    /// Only the text of the container's stdout/stderr log lines.
    pub fn log_text(&self, name: &str) -> String {
        self.logs(name, None)
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .map(|t| format!("{t}\n"))
            .collect()
    }

    /// Polls the log until it contains `needle`.
    pub fn wait_log(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
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

    /// Runs an exec; returns (stdout, stderr, exit code).
    pub fn exec(&self, name: &str, argv: &[&str], stdin: &[u8]) -> (String, String, i32) {
        let replies = self.request(&Request::Exec {
            container: name.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            stdin: stdin.to_vec(),
        });
        let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), None);
        for r in replies {
            match r {
                Response::Output {
                    stream: StdStream::Stdout,
                    data,
                } => out.extend(data),
                Response::Output {
                    stream: StdStream::Stderr,
                    data,
                } => err.extend(data),
                Response::ExecExit { exit_code } => code = Some(exit_code),
                other => panic!("unexpected exec reply {other:?}"),
            }
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
            code.expect("no ExecExit"),
        )
    }

    /// Sends Shutdown and waits for the agent to exit; returns its code.
    pub fn shutdown(&mut self) -> i32 {
        assert_eq!(self.call(&Request::Shutdown), Response::Ok);
        self.wait_exit(Duration::from_secs(30))
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
            if let Ok(mut s) = UnixStream::connect(&self.socket) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = write_message(&mut s, &Request::Shutdown);
                let _ = read_message::<Response, _>(&mut s);
            }
            if self.wait_exit(Duration::from_secs(30)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        for point in self.mounts_left().into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

/// Every reply on `s` until the agent closes the connection.
pub fn read_all(s: &mut UnixStream) -> Vec<Response> {
    let mut replies = Vec::new();
    while let Some(r) = read_message::<Response, _>(s).unwrap() {
        replies.push(r);
    }
    replies
}

/// Concatenates `Log` replies; the last reply must be `End`.
pub fn collect_logs(replies: Vec<Response>) -> String {
    let mut text = String::new();
    let mut ended = false;
    for r in replies {
        match r {
            Response::Log { lines } => text.push_str(&lines),
            Response::End => ended = true,
            other => panic!("unexpected logs reply {other:?}"),
        }
    }
    assert!(ended, "log stream without End");
    text
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
