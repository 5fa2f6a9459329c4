//! Containers: namespaces, sandbox sharing, /etc/hosts, env, working
//! directory, user, command/args, exit codes.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{container, field, pod, terminated, TestAgent};
use podvm_proto::{EnvVar, HostAlias};

fn own_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

const REPORT_NS: &str =
    "echo self=$$$$; for n in pid mnt ipc uts net; do echo $n=$(readlink /proc/self/ns/$n); done; \
                         echo hostname=$(hostname)";

#[test]
fn namespaces_hostname_hosts_and_shm() {
    require_env!();
    let agent = TestAgent::start();
    let a_script =
        format!("{REPORT_NS}; echo shared > /dev/shm/from-a; echo done; exec sleep 1000");
    let b_script = format!(
        "{REPORT_NS}; while [ ! -f /dev/shm/from-a ]; do sleep 0.05; done; echo shm=$(cat /dev/shm/from-a); \
         cat /etc/hosts; echo etc-hostname=$(cat /etc/hostname); echo done; exec sleep 1000"
    );
    let mut spec = pod(vec![
        container("a", &agent.rootfs, &["sh", "-c", &a_script]),
        container("b", &agent.rootfs, &["sh", "-c", &b_script]),
    ]);
    spec.host_aliases = vec![HostAlias {
        ip: "10.9.8.7".into(),
        hostnames: vec!["alias-one".into(), "alias-two".into()],
    }];
    agent.create(spec);
    let a = agent.wait_log("a", "done");
    let b = agent.wait_log("b", "done");

    assert_eq!(field(&a, "self"), Some("1"), "{a}");
    assert_eq!(field(&b, "self"), Some("1"), "{b}");
    for kind in ["pid", "mnt"] {
        assert_ne!(
            field(&a, kind),
            Some(own_ns(kind).as_str()),
            "{kind} shared with the host"
        );
        assert_ne!(
            field(&a, kind),
            field(&b, kind),
            "{kind} shared between containers"
        );
    }
    for kind in ["ipc", "uts", "net"] {
        assert_eq!(
            field(&a, kind),
            field(&b, kind),
            "{kind} not shared in the pod"
        );
        assert_ne!(
            field(&a, kind),
            Some(own_ns(kind).as_str()),
            "{kind} shared with the host"
        );
    }
    assert_eq!(field(&a, "hostname"), Some("testpod-host"));
    assert_eq!(field(&b, "hostname"), Some("testpod-host"));
    assert_eq!(field(&b, "etc-hostname"), Some("testpod-host"));
    assert_eq!(
        field(&b, "shm"),
        Some("shared"),
        "/dev/shm is not pod-wide:\n{b}"
    );
    assert!(
        b.contains("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{b}"
    );
    assert!(b.contains("127.0.1.1\ttestpod-host\n"), "{b}");
    assert!(
        b.contains("# Entries added by HostAliases.\n10.9.8.7\talias-one\talias-two\n"),
        "{b}"
    );
    // The host's hostname is untouched.
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "testpod-host"
    );
}

#[test]
fn env_working_dir_and_user() {
    require_env!();
    let agent = TestAgent::start();
    let script = "echo IMG=$IMG; echo OVER=$OVER; echo DERIVED=$DERIVED; echo HOSTNAME=$HOSTNAME; \
                  echo PATH=$PATH; echo cwd=$(pwd); echo id=$(id)";
    let mut by_name = container("by-name", &agent.rootfs, &["sh", "-c", script]);
    by_name.image_config.env = vec!["IMG=image".into(), "OVER=image".into()];
    by_name.env = vec![
        EnvVar {
            name: "OVER".into(),
            value: "pod".into(),
        },
        EnvVar {
            name: "DERIVED".into(),
            value: "$(OVER)-x-$$(OVER)-$(UNSET)".into(),
        },
    ];
    by_name.image_config.user = Some("app".into());
    by_name.image_config.working_dir = Some("/home/app".into());

    let mut by_context = container("by-context", &agent.rootfs, &["sh", "-c", script]);
    by_context.image_config.user = Some("app".into());
    by_context.run_as_user = Some(1000);
    by_context.run_as_group = Some(2000);
    by_context.supplemental_groups = vec![3000];
    by_context.image_config.working_dir = Some("/home/app".into());
    by_context.working_dir = Some("/data/new".into());

    let root = container("root", &agent.rootfs, &["sh", "-c", script]);

    agent.create(pod(vec![by_name, by_context, root]));
    for name in ["by-name", "by-context", "root"] {
        let (code, reason, _) = terminated(&agent.wait_terminated(name));
        assert_eq!(
            (code, reason.as_str()),
            (0, "Completed"),
            "{name}: {}",
            agent.log_text(name)
        );
    }

    let t = agent.log_text("by-name");
    assert_eq!(field(&t, "IMG"), Some("image"), "{t}");
    assert_eq!(field(&t, "OVER"), Some("pod"));
    assert_eq!(field(&t, "DERIVED"), Some("pod-x-$(OVER)-$(UNSET)"));
    assert_eq!(field(&t, "HOSTNAME"), Some("testpod-host"));
    // The image env set no PATH: containerd's default applies.
    assert_eq!(
        field(&t, "PATH"),
        Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    );
    assert_eq!(field(&t, "cwd"), Some("/home/app"));
    assert_eq!(
        field(&t, "id"),
        Some("uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)")
    );

    let t = agent.log_text("by-context");
    assert_eq!(field(&t, "cwd"), Some("/data/new"), "{t}");
    assert_eq!(
        field(&t, "id"),
        Some("uid=1000(app) gid=2000(extra) groups=2000(extra),3000")
    );
    assert_eq!(field(&t, "IMG"), Some(""));

    let t = agent.log_text("root");
    assert_eq!(field(&t, "cwd"), Some("/"), "{t}");
    assert_eq!(field(&t, "PATH"), Some("/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_eq!(
        field(&t, "id"),
        Some("uid=0(root) gid=0(root) groups=0(root)")
    );
}

#[test]
fn command_args_entrypoint_cmd() {
    require_env!();
    let agent = TestAgent::start();
    let with = |name: &str, command: &[&str], args: &[&str]| {
        let mut c = container(name, &agent.rootfs, command);
        c.image_config.entrypoint = vec!["/bin/echo".into(), "entrypoint".into()];
        c.image_config.cmd = vec!["cmd".into()];
        c.args = args.iter().map(|s| s.to_string()).collect();
        c.env = vec![EnvVar {
            name: "WHO".into(),
            value: "world".into(),
        }];
        c
    };
    agent.create(pod(vec![
        with("neither", &[], &[]),
        with("command-only", &["echo", "command", "$(WHO)"], &[]),
        with("args-only", &[], &["arg", "$(WHO)", "$$(WHO)"]),
        with("both", &["echo", "command"], &["arg", "$(NOPE)"]),
    ]));
    for (name, want) in [
        ("neither", "entrypoint cmd\n"),
        ("command-only", "command world\n"),
        ("args-only", "entrypoint arg world $(WHO)\n"),
        ("both", "command arg $(NOPE)\n"),
    ] {
        let (code, ..) = terminated(&agent.wait_terminated(name));
        assert_eq!(code, 0);
        assert_eq!(agent.log_text(name), want, "{name}");
    }
}

#[test]
fn exit_codes_and_start_errors() {
    require_env!();
    let agent = TestAgent::start();
    agent.create(pod(vec![
        container("ok", &agent.rootfs, &["true"]),
        container("three", &agent.rootfs, &["sh", "-c", "exit 3"]),
        container("missing", &agent.rootfs, &["no-such-binary", "x"]),
        container("bad-user", &agent.rootfs, &["true"]).with_user("nobody-here"),
    ]));
    let ok = agent.wait_terminated("ok");
    assert_eq!(terminated(&ok), (0, "Completed".into(), None));
    assert_eq!(ok.container_id.len(), 64);
    assert_eq!(
        terminated(&agent.wait_terminated("three")),
        (3, "Error".into(), None)
    );
    let (code, reason, message) = terminated(&agent.wait_terminated("missing"));
    assert_eq!((code, reason.as_str()), (128, "StartError"));
    let message = message.unwrap();
    assert!(
        message.contains("\"no-such-binary\": executable file not found in $PATH"),
        "{message}"
    );
    let bad = agent.wait_for("bad-user", "CreateContainerError", |s| {
        matches!(&s.state, podvm_proto::ContainerState::Waiting { reason, .. } if reason == "CreateContainerError")
    });
    assert!(format!("{:?}", bad.state).contains("nobody-here"));
    let status = agent.status();
    assert!(status.sandbox_ready);
    assert!(status.started_at.is_some());
}

trait WithUser {
    fn with_user(self, user: &str) -> Self;
}

impl WithUser for podvm_proto::ContainerSpec {
    fn with_user(mut self, user: &str) -> Self {
        self.image_config.user = Some(user.into());
        self
    }
}
