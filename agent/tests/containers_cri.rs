//! The container-level API (protocol 2.2) against a host-mode agent, as a
//! CRI-style client drives it: an empty sandbox, a container created from
//! an OCI spec, started, exec'd in, its log read, its stats and limits,
//! its exit code waited for, removed; and the error answers.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use common::{code_of, field, pod, read_output, TestAgent};
use oci_spec::runtime::{
    Capability, LinuxNamespace, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    PosixRlimitBuilder, PosixRlimitType, Spec,
};
use podvm_proto::{AgentConn, ContainerLog, CreateContainer, OutputStream, RootfsSource};
use ttrpc::Code;

/// runc's default capabilities (`runc spec`): AUDIT_WRITE, KILL,
/// NET_BIND_SERVICE, in every set including the ambient one.
const RUNC_CAPS: &str = "0000000020000420";

/// A runc-style spec (`oci-spec`'s default, which is `runc spec`'s: a
/// read-only root, its own /dev/shm, a cgroup namespace) that runs
/// `script`, with RLIMIT_NOFILE 512 and a pids limit of 100.
fn spec(script: &str) -> Spec {
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap();
    process
        .set_args(Some(vec!["sh".into(), "-c".into(), script.into()]))
        .set_env(Some(vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()]))
        .set_rlimits(Some(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(512u64)
            .hard(512u64)
            .build()
            .unwrap()]));
    spec.set_process(Some(process));
    // The pod's hostname stays (the UTS namespace is the sandbox's).
    spec.set_hostname(None);
    // The client's own path: the agent binds the sandbox's file instead.
    let mut hosts = Mount::default();
    hosts
        .set_destination("/etc/hosts".into())
        .set_typ(Some("bind".into()))
        .set_source(Some("/client/side/hosts".into()))
        .set_options(Some(vec!["rbind".into(), "ro".into()]));
    spec.mounts_mut().as_mut().unwrap().push(hosts);
    let mut linux = spec.linux().clone().unwrap();
    linux.set_resources(Some(
        LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(100i64).build().unwrap())
            .build()
            .unwrap(),
    ));
    spec.set_linux(Some(linux));
    spec
}

fn json(spec: &Spec) -> Vec<u8> {
    serde_json::to_vec(spec).unwrap()
}

fn request(agent: &TestAgent, id: &str, oci_spec: Vec<u8>) -> CreateContainer {
    CreateContainer {
        container_id: id.into(),
        oci_spec,
        rootfs: RootfsSource::Directory {
            path: agent.rootfs.clone(),
        },
        log: ContainerLog::Agent,
    }
}

/// The text of a container's agent-kept log (the CRI prefixes removed).
fn log_text(conn: &AgentConn, id: &str) -> String {
    let mut data = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = conn.read_container_log(id, offset, false).unwrap();
        data.extend_from_slice(&chunk.data);
        offset = chunk.next_offset;
        if chunk.end {
            break;
        }
    }
    String::from_utf8_lossy(&data)
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .map(|t| format!("{t}\n"))
        .collect()
}

/// Polls the log until it contains `needle`.
fn wait_log(conn: &AgentConn, id: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = log_text(conn, id);
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: {needle:?} never appeared in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `argv` in container `id` to its end: (stdout, stderr, exit code).
fn exec(conn: &AgentConn, id: &str, argv: &[&str]) -> (String, String, i32) {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let exec_id = conn.exec_in_container(id, &argv, false).unwrap();
    let out = read_output(conn, &exec_id, OutputStream::Stdout);
    let err = read_output(conn, &exec_id, OutputStream::Stderr);
    let code = conn.wait(&exec_id).unwrap();
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        code,
    )
}

/// The directory of the container's pids cgroup, as its process sees its
/// cgroups (no cgroup namespace) — `None` without a pids controller.
fn pids_cgroup(self_cgroup: &str) -> Option<std::path::PathBuf> {
    self_cgroup.lines().find_map(|line| {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            Some(std::path::Path::new("/sys/fs/cgroup/pids").join(path))
        } else if controllers.is_empty() {
            let v2 = std::path::Path::new("/sys/fs/cgroup").join(path);
            v2.join("pids.max").exists().then_some(v2)
        } else {
            None
        }
    })
}

#[test]
fn a_container_from_an_oci_spec_through_its_life() {
    require_env!();
    let agent = TestAgent::start();
    let conn = agent.conn();
    let script = "echo started; \
                  for c in CapEff CapBnd CapAmb; do echo \"$c=$(grep \"^$c:\" /proc/self/status | cut -f2)\"; done; \
                  echo nofile=$(ulimit -n); echo hostname=$(hostname); \
                  grep -q 'Kubernetes-managed hosts file' /etc/hosts && echo hosts=sandbox; \
                  touch /written 2>/dev/null || echo root=read-only; \
                  echo to-stderr >&2; echo ready; \
                  while [ ! -f /dev/shm/done ]; do sleep 0.05; done; echo bye; exit 7";
    // Without a cgroup namespace, so the container's cgroup shows in
    // /proc/self/cgroup (the other tests keep runc's).
    let mut web = spec(script);
    let mut linux = web.linux().clone().unwrap();
    linux
        .namespaces_mut()
        .as_mut()
        .unwrap()
        .retain(|ns| ns.typ() != LinuxNamespaceType::Cgroup);
    web.set_linux(Some(linux));

    // Before the sandbox there is nowhere to put a container.
    assert_eq!(
        code_of(conn.create_container(&request(&agent, "web", json(&web)))),
        Code::FAILED_PRECONDITION
    );
    // A sandbox without containers.
    agent.create(pod(vec![]));
    assert!(agent.status().sandbox_ready);

    conn.create_container(&request(&agent, "web", json(&web)))
        .unwrap();
    assert_eq!(
        code_of(conn.create_container(&request(&agent, "web", json(&web)))),
        Code::ALREADY_EXISTS
    );
    // Created, not started: nothing to signal or exec in yet, and no exit.
    assert_eq!(code_of(conn.signal("web", 15)), Code::FAILED_PRECONDITION);
    let argv = vec!["true".to_string()];
    assert_eq!(
        code_of(conn.exec_in_container("web", &argv, false)),
        Code::FAILED_PRECONDITION
    );

    conn.start_container("web").unwrap();
    assert_eq!(
        code_of(conn.start_container("web")),
        Code::FAILED_PRECONDITION
    );
    wait_log(&conn, "web", "to-stderr");
    let log = wait_log(&conn, "web", "ready");
    assert_eq!(field(&log, "CapEff"), Some(RUNC_CAPS), "{log}");
    assert_eq!(field(&log, "CapBnd"), Some(RUNC_CAPS), "{log}");
    assert_eq!(field(&log, "CapAmb"), Some(RUNC_CAPS), "{log}");
    assert_eq!(field(&log, "nofile"), Some("512"), "{log}");
    assert_eq!(field(&log, "hostname"), Some("testpod-host"), "{log}");
    assert_eq!(field(&log, "hosts"), Some("sandbox"), "{log}");
    assert_eq!(field(&log, "root"), Some("read-only"), "{log}");

    // An exec gets the container's process (user, limits, capabilities).
    let (out, err, code) = exec(
        &conn,
        "web",
        &[
            "sh",
            "-c",
            "id -u; ulimit -n; grep ^CapEff: /proc/self/status | cut -f2; cat /proc/self/cgroup",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(lines.next(), Some("512"));
    assert_eq!(lines.next(), Some(RUNC_CAPS));
    let self_cgroup: String = lines.map(|l| format!("{l}\n")).collect();
    assert!(
        self_cgroup.contains("/cri_web"),
        "not in the container's cgroup:\n{self_cgroup}"
    );

    // Usage from the cgroup: this host has cpuacct, memory and pids.
    let stats = conn.container_stats("web").unwrap();
    assert!(stats.pids >= Some(1), "{stats:?}");
    assert!(stats.cpu_usage_ns > Some(0), "{stats:?}");
    assert!(stats.memory_usage_bytes > Some(0), "{stats:?}");

    // Limits: the spec's pids limit was applied at creation; an update
    // changes it, or names the controller the cgroup lacks.
    let pids_dir = pids_cgroup(&self_cgroup);
    if let Some(dir) = &pids_dir {
        let max = std::fs::read_to_string(dir.join("pids.max")).unwrap();
        assert_eq!(max.trim(), "100");
    }
    match conn.update_container("web", br#"{"pids":{"limit":50}}"#) {
        Ok(()) => {
            let dir = pids_dir.expect("the update worked, so there is a pids cgroup");
            let max = std::fs::read_to_string(dir.join("pids.max")).unwrap();
            assert_eq!(max.trim(), "50");
        }
        Err(e) => {
            assert_eq!(e.code(), Some(Code::FAILED_PRECONDITION), "{e}");
            assert!(e.to_string().contains("pids"), "{e}");
            assert!(pids_dir.is_none());
        }
    }
    assert_eq!(
        code_of(conn.update_container("web", br#"{"cpu":{"shares":1}}"#)),
        Code::INVALID_ARGUMENT
    );
    assert_eq!(
        code_of(conn.update_container("web", b"not json")),
        Code::INVALID_ARGUMENT
    );

    // Running: it cannot be removed.
    assert_eq!(
        code_of(conn.remove_container("web")),
        Code::FAILED_PRECONDITION
    );

    // Let it end; its exit code, as often as asked.
    let (_, err, code) = exec(&conn, "web", &["touch", "/dev/shm/done"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(conn.wait("web").unwrap(), 7);
    assert_eq!(conn.wait("web").unwrap(), 7);
    let log = log_text(&conn, "web");
    assert!(log.ends_with("bye\n"), "{log}");
    // A stopped container ignores signals, and still has stats.
    conn.signal("web", 9).unwrap();
    conn.container_stats("web").unwrap();

    conn.remove_container("web").unwrap();
    for code in [
        code_of(conn.remove_container("web")),
        code_of(conn.start_container("web")),
        code_of(conn.container_stats("web")),
        code_of(conn.read_container_log("web", 0, false)),
    ] {
        assert_eq!(code, Code::NOT_FOUND);
    }
    // The id is free again.
    conn.create_container(&request(&agent, "web", json(&spec("true"))))
        .unwrap();
    conn.remove_container("web").unwrap();
}

#[test]
fn signals_log_files_and_start_errors() {
    require_env!();
    let agent = TestAgent::start();
    let conn = agent.conn();
    agent.create(pod(vec![]));

    // A log file of the client's choosing.
    let log_path = agent.dir.path().join("sleeper.log");
    let mut req = request(&agent, "sleeper", json(&spec("echo up; exec sleep 1000")));
    req.log = ContainerLog::File(log_path.clone());
    conn.create_container(&req).unwrap();
    conn.start_container("sleeper").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains(" stdout F up\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no output in {}",
            log_path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    conn.signal("sleeper", 9).unwrap();
    assert_eq!(conn.wait("sleeper").unwrap(), 137);
    assert_eq!(code_of(conn.signal("sleeper", 0)), Code::INVALID_ARGUMENT);

    // A process that cannot be executed: StartContainer says why, and the
    // container is stopped with containerd's StartError code.
    conn.create_container(&request(&agent, "broken", json(&spec("true"))))
        .unwrap();
    let mut missing = spec("");
    let mut process = missing.process().clone().unwrap();
    process.set_args(Some(vec!["no-such-binary".into()]));
    missing.set_process(Some(process));
    conn.create_container(&request(&agent, "missing", json(&missing)))
        .unwrap();
    let e = conn.start_container("missing").unwrap_err();
    assert!(
        e.to_string().contains("executable file not found in $PATH"),
        "{e}"
    );
    assert_eq!(conn.wait("missing").unwrap(), 128);
    conn.remove_container("missing").unwrap();

    // Stopping the sandbox stops its containers too, and no new ones come.
    conn.create_container(&request(&agent, "last", json(&spec("exec sleep 1000"))))
        .unwrap();
    conn.start_container("last").unwrap();
    agent.stop(Duration::from_millis(200));
    assert_eq!(conn.wait("last").unwrap(), 137);
    assert_eq!(
        code_of(conn.start_container("broken")),
        Code::FAILED_PRECONDITION
    );
    assert_eq!(
        code_of(conn.create_container(&request(&agent, "late", json(&spec("true"))))),
        Code::FAILED_PRECONDITION
    );
}

#[test]
fn specs_and_requests_that_are_refused() {
    require_env!();
    let agent = TestAgent::start();
    let conn = agent.conn();
    agent.create(pod(vec![]));
    let refused = |req: &CreateContainer| match conn.create_container(req) {
        Err(e) => (e.code(), e.to_string()),
        Ok(()) => panic!("{} was created", req.container_id),
    };

    let (code, message) = refused(&request(&agent, "a", b"{not json".to_vec()));
    assert_eq!(code, Some(Code::INVALID_ARGUMENT));
    assert!(
        message.contains("not a valid OCI runtime spec"),
        "{message}"
    );

    let (code, message) = refused(&request(
        &agent,
        "a",
        br#"{"ociVersion":"1.1.0","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_NO_SUCH_THING"]}}}"#
            .to_vec(),
    ));
    assert_eq!(code, Some(Code::INVALID_ARGUMENT));
    assert!(
        message.contains("process.capabilities.bounding"),
        "{message}"
    );

    let mut userns = spec("true");
    let mut linux = userns.linux().clone().unwrap();
    let mut ns = LinuxNamespace::default();
    ns.set_typ(LinuxNamespaceType::User);
    linux.namespaces_mut().as_mut().unwrap().push(ns);
    userns.set_linux(Some(linux));
    let (code, message) = refused(&request(&agent, "a", json(&userns)));
    assert_eq!(code, Some(Code::INVALID_ARGUMENT));
    assert!(message.contains("linux.namespaces["), "{message}");
    assert!(
        message.contains("user namespaces are not supported"),
        "{message}"
    );

    let mut no_process = spec("true");
    no_process.set_process(None);
    let (code, message) = refused(&request(&agent, "a", json(&no_process)));
    assert_eq!(code, Some(Code::INVALID_ARGUMENT));
    assert!(message.contains("process: Required value"), "{message}");

    let mut too_many_caps = spec("true");
    let mut process = too_many_caps.process().clone().unwrap();
    let mut caps = process.capabilities().clone().unwrap();
    caps.set_effective(Some([Capability::SysAdmin].into_iter().collect()));
    process.set_capabilities(Some(caps));
    too_many_caps.set_process(Some(process));
    let (code, message) = refused(&request(&agent, "a", json(&too_many_caps)));
    assert_eq!(code, Some(Code::INVALID_ARGUMENT));
    assert!(
        message.contains("process.capabilities.effective"),
        "{message}"
    );

    for bad_id in ["", "../escape", "a/b", "-x", &"x".repeat(77)] {
        let (code, _) = refused(&request(&agent, bad_id, json(&spec("true"))));
        assert_eq!(code, Some(Code::INVALID_ARGUMENT), "{bad_id:?}");
    }

    let mut no_rootfs = request(&agent, "a", json(&spec("true")));
    no_rootfs.rootfs = RootfsSource::Directory {
        path: "/nonexistent/rootfs".into(),
    };
    assert_eq!(refused(&no_rootfs).0, Some(Code::INVALID_ARGUMENT));

    let mut relative_log = request(&agent, "a", json(&spec("true")));
    relative_log.log = ContainerLog::File("relative.log".into());
    assert_eq!(refused(&relative_log).0, Some(Code::INVALID_ARGUMENT));

    // Nothing of the refused ones is left: the id is still free.
    conn.create_container(&request(&agent, "a", json(&spec("true"))))
        .unwrap();
    for unknown in [
        code_of(conn.start_container("nope")),
        code_of(conn.remove_container("nope")),
        code_of(conn.container_stats("nope")),
        code_of(conn.update_container("nope", b"{}")),
        code_of(conn.exec_in_container("nope", &["true".to_string()], false)),
    ] {
        assert_eq!(unknown, Code::NOT_FOUND);
    }
}
