//! A Kubernetes container runs the OCI spec the agent builds for it:
//! containerd's capabilities (root gets them, another user none), masked
//! paths hidden, read-only paths read-only, RLIMIT_NOFILE and kubelet's
//! OOM score applied, and an exec gets the same.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{container, field, pod, TestAgent};

/// containerd's default capabilities as a kernel capability mask
/// (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP).
const CONTAINERD_CAPS: &str = "00000000a80425fb";
const NO_CAPS: &str = "0000000000000000";

/// Prints `key=value` lines about the process's security settings.
const REPORT: &str = r#"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
  echo "$c=$(grep "^$c:" /proc/self/status | cut -f2)"
done
echo "nofile=$(ulimit -n)"
echo "nofile_hard=$(ulimit -Hn)"
echo "oom=$(cat /proc/self/oom_score_adj)"
"#;

/// Prints `key=value` lines about masked and read-only paths.
const PATHS: &str = r#"
echo "keys_bytes=$(cat /proc/keys 2>/dev/null | wc -c)"
echo "timer_list_bytes=$(cat /proc/timer_list 2>/dev/null | wc -c)"
echo "kcore_bytes=$(head -c 64 /proc/kcore 2>/dev/null | wc -c)"
echo "firmware_entries=$(ls -A /sys/firmware | wc -l)"
echo "keys_masked=$(grep -c ' /proc/keys ' /proc/self/mounts)"
echo "firmware_masked=$(grep -c ' /sys/firmware ' /proc/self/mounts)"
if echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; then
  echo procsys_write=ok
else
  echo procsys_write=refused
fi
echo "procsys_opts=$(grep ' /proc/sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1)"
echo "bus_opts=$(grep ' /proc/bus ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1)"
if mount -t tmpfs none /mnt 2>/dev/null; then echo mount=ok; else echo mount=refused; fi
"#;

#[test]
fn containers_get_the_specs_capabilities_limits_and_paths() {
    require_env!();
    let agent = TestAgent::start();
    // The host's own files that the spec masks have content here, so an
    // empty read in the container is the mask's doing.
    assert!(!std::fs::read("/proc/keys").unwrap().is_empty());
    assert!(std::fs::read_dir("/sys/firmware").unwrap().next().is_some());

    let root_script = format!("{REPORT}{PATHS}echo done; exec sleep 1000");
    let mut app = container(
        "app",
        &agent.rootfs,
        &["sh", "-c", &format!("{REPORT}echo done")],
    );
    app.image_config.user = Some("app".into());
    agent.create(pod(vec![
        container("root", &agent.rootfs, &["sh", "-c", &root_script]),
        app,
    ]));

    let root = agent.wait_log("root", "done");
    for (key, want) in [
        ("CapInh", NO_CAPS),
        ("CapPrm", CONTAINERD_CAPS),
        ("CapEff", CONTAINERD_CAPS),
        ("CapBnd", CONTAINERD_CAPS),
        ("CapAmb", NO_CAPS),
        ("nofile", "1024"),
        ("nofile_hard", "1024"),
        ("oom", "1000"),
        // Masked: /dev/null over files, an empty tmpfs over directories.
        ("keys_bytes", "0"),
        ("timer_list_bytes", "0"),
        // (Absent where the kernel has no /proc/kcore, as here.)
        ("kcore_bytes", "0"),
        ("firmware_entries", "0"),
        ("keys_masked", "1"),
        ("firmware_masked", "1"),
        // Read-only paths.
        ("procsys_write", "refused"),
        ("procsys_opts", "ro"),
        ("bus_opts", "ro"),
        // No CAP_SYS_ADMIN.
        ("mount", "refused"),
    ] {
        assert_eq!(field(&root, key), Some(want), "{key} in:\n{root}");
    }

    // Another user: the bounding set is the same, and the kernel gives a
    // non-root process no capabilities at exec (no file capabilities).
    let app = agent.wait_log("app", "done");
    for (key, want) in [
        ("CapEff", NO_CAPS),
        ("CapPrm", NO_CAPS),
        ("CapBnd", CONTAINERD_CAPS),
        ("nofile", "1024"),
    ] {
        assert_eq!(field(&app, key), Some(want), "{key} in:\n{app}");
    }

    // An exec runs the container's process with another argv: the same
    // capabilities, limits and OOM score.
    let (out, err, code) = agent.exec("root", &["sh", "-c", REPORT], b"");
    assert_eq!(code, 0, "{err}");
    for (key, want) in [
        ("CapEff", CONTAINERD_CAPS),
        ("CapBnd", CONTAINERD_CAPS),
        ("nofile", "1024"),
        ("oom", "1000"),
    ] {
        assert_eq!(field(&out, key), Some(want), "{key} in exec:\n{out}");
    }
}
