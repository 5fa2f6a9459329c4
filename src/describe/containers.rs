//! The Init Containers and Containers sections of `kubectl describe pod`
//! (kubectl's `describeContainers`): identity, ports, command, state, last
//! state, readiness, restarts, resources, probes in kubectl's one-line
//! form, environment and mounts.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Pod, Probe, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Clock, Writer};
use crate::manifest::field_path::FieldPath;

/// One section: `label:` (` <none>` when empty), then each container.
pub fn describe(
    w: &mut Writer,
    label: &str,
    containers: &[Container],
    statuses: &[ContainerStatus],
    pod: &Pod,
    clock: &Clock,
) {
    if containers.is_empty() {
        w.line(0, &format!("{label}: <none>"));
    } else {
        w.line(0, &format!("{label}:"));
    }
    let by_name: HashMap<&str, &ContainerStatus> =
        statuses.iter().map(|s| (s.name.as_str(), s)).collect();
    for c in containers {
        let status = by_name.get(c.name.as_str()).copied();
        basic_info(w, c, status);
        command(w, c);
        if let Some(s) = status {
            state(w, "State", s.state.as_ref(), clock);
            if let Some(last) = s.last_state.as_ref().filter(|l| l.terminated.is_some()) {
                state(w, "Last State", Some(last), clock);
            }
            w.line(
                2,
                &format!("Ready:\t{}", if s.ready { "True" } else { "False" }),
            );
            w.line(2, &format!("Restart Count:\t{}", s.restart_count));
        }
        if let Some(r) = &c.resources {
            resources(w, r);
        }
        for (title, probe) in [
            ("Liveness", &c.liveness_probe),
            ("Readiness", &c.readiness_probe),
            ("Startup", &c.startup_probe),
        ] {
            if let Some(p) = probe {
                w.line(2, &format!("{title}:\t{}", describe_probe(p)));
            }
        }
        environment(w, c, pod);
        mounts(w, c);
    }
}

fn basic_info(w: &mut Writer, c: &Container, status: Option<&ContainerStatus>) {
    w.line(1, &format!("{}:", c.name));
    if let Some(s) = status {
        w.line(
            2,
            &format!(
                "Container ID:\t{}",
                s.container_id.as_deref().unwrap_or_default()
            ),
        );
    }
    w.line(
        2,
        &format!("Image:\t{}", c.image.as_deref().unwrap_or_default()),
    );
    if let Some(s) = status {
        w.line(2, &format!("Image ID:\t{}", s.image_id));
    }
    let ports = c.ports.clone().unwrap_or_default();
    let protocol = |p: &Option<String>| p.clone().unwrap_or_else(|| "TCP".into());
    let container_ports: Vec<String> = ports
        .iter()
        .map(|p| format!("{}/{}", p.container_port, protocol(&p.protocol)))
        .collect();
    let host_ports: Vec<String> = ports
        .iter()
        .map(|p| format!("{}/{}", p.host_port.unwrap_or(0), protocol(&p.protocol)))
        .collect();
    for (one, many, list) in [
        ("Port", "Ports", container_ports),
        ("Host Port", "Host Ports", host_ports),
    ] {
        match list.len() {
            0 => w.line(2, &format!("{one}:\t<none>")),
            1 => w.line(2, &format!("{one}:\t{}", list[0])),
            _ => w.line(2, &format!("{many}:\t{}", list.join(", "))),
        }
    }
}

fn command(w: &mut Writer, c: &Container) {
    for (title, words) in [("Command", &c.command), ("Args", &c.args)] {
        let words = words.clone().unwrap_or_default();
        if words.is_empty() {
            continue;
        }
        w.line(2, &format!("{title}:"));
        for word in &words {
            for part in word.split('\n') {
                w.line(3, part);
            }
        }
    }
}

/// `describeStatus`.
fn state(w: &mut Writer, title: &str, s: Option<&ContainerState>, clock: &Clock) {
    let s = s.cloned().unwrap_or_default();
    let time = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.map(|t| clock.rfc1123z(t.0))
            .unwrap_or_else(|| "Mon, 01 Jan 0001 00:00:00 +0000".into())
    };
    if let Some(r) = &s.running {
        w.line(2, &format!("{title}:\tRunning"));
        w.line(3, &format!("Started:\t{}", time(r.started_at.as_ref())));
    } else if let Some(wt) = &s.waiting {
        w.line(2, &format!("{title}:\tWaiting"));
        if let Some(reason) = wt.reason.as_deref().filter(|r| !r.is_empty()) {
            w.line(3, &format!("Reason:\t{reason}"));
        }
    } else if let Some(t) = &s.terminated {
        w.line(2, &format!("{title}:\tTerminated"));
        if let Some(reason) = t.reason.as_deref().filter(|r| !r.is_empty()) {
            w.line(3, &format!("Reason:\t{reason}"));
        }
        if let Some(message) = t.message.as_deref().filter(|m| !m.is_empty()) {
            w.line(3, &format!("Message:\t{message}"));
        }
        w.line(3, &format!("Exit Code:\t{}", t.exit_code));
        if let Some(sig) = t.signal.filter(|s| *s > 0) {
            w.line(3, &format!("Signal:\t{sig}"));
        }
        w.line(3, &format!("Started:\t{}", time(t.started_at.as_ref())));
        w.line(3, &format!("Finished:\t{}", time(t.finished_at.as_ref())));
    } else {
        w.line(2, &format!("{title}:\tWaiting"));
    }
}

fn resources(w: &mut Writer, r: &ResourceRequirements) {
    for (title, list) in [("Limits", &r.limits), ("Requests", &r.requests)] {
        let list = list.clone().unwrap_or_default();
        if list.is_empty() {
            continue;
        }
        w.line(2, &format!("{title}:"));
        for (name, q) in &list {
            w.line(3, &format!("{name}:\t{}", q.0));
        }
    }
}

fn port(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// kubectl's `DescribeProbe`, with the API server's defaults applied.
pub fn describe_probe(p: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(1),
        p.period_seconds.unwrap_or(10),
        p.success_threshold.unwrap_or(1),
        p.failure_threshold.unwrap_or(3),
    );
    if let Some(exec) = &p.exec {
        let command = exec.command.clone().unwrap_or_default().join(" ");
        return format!("exec [{command}] {attrs}");
    }
    if let Some(h) = &p.http_get {
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let host = h.host.clone().unwrap_or_default();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let path = h
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        return format!("http-get {scheme}://{host}:{}{path} {attrs}", port(&h.port));
    }
    if let Some(t) = &p.tcp_socket {
        return format!(
            "tcp-socket {}:{} {attrs}",
            t.host.as_deref().unwrap_or_default(),
            port(&t.port)
        );
    }
    if let Some(g) = &p.grpc {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            g.port,
            g.service.as_deref().unwrap_or_default()
        );
    }
    format!("unknown {attrs}")
}

/// The value of a `fieldRef` kubectl resolves against the pod (empty for
/// what it cannot resolve).
fn field_value(pod: &Pod, path: &str) -> String {
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    FieldPath::parse(path)
        .map(|p| p.resolve(pod, &node))
        .unwrap_or_default()
}

fn environment(w: &mut Writer, c: &Container, pod: &Pod) {
    let env_from = c.env_from.clone().unwrap_or_default();
    if !env_from.is_empty() {
        w.line(2, "Environment Variables from:");
        for e in &env_from {
            let (name, from, optional) = match (&e.config_map_ref, &e.secret_ref) {
                (Some(m), _) => (m.name.clone(), "ConfigMap", m.optional.unwrap_or(false)),
                (None, Some(s)) => (s.name.clone(), "Secret", s.optional.unwrap_or(false)),
                (None, None) => (String::new(), "", false),
            };
            match e.prefix.as_deref().filter(|p| !p.is_empty()) {
                None => w.line(3, &format!("{name}\t{from}\tOptional: {optional}")),
                Some(prefix) => w.line(
                    3,
                    &format!("{name}\t{from} with prefix '{prefix}'\tOptional: {optional}"),
                ),
            }
        }
    }
    let env = c.env.clone().unwrap_or_default();
    if env.is_empty() {
        w.line(2, "Environment:\t<none>");
        return;
    }
    w.line(2, "Environment:");
    for e in &env {
        env_var(w, e, pod);
    }
}

fn env_var(w: &mut Writer, e: &EnvVar, pod: &Pod) {
    let Some(from) = &e.value_from else {
        for (i, part) in e
            .value
            .as_deref()
            .unwrap_or_default()
            .split('\n')
            .enumerate()
        {
            if i == 0 {
                w.line(3, &format!("{}:\t{part}", e.name));
            } else {
                w.line(3, &format!("\t{part}"));
            }
        }
        return;
    };
    if let Some(f) = &from.field_ref {
        let version = f.api_version.as_deref().unwrap_or("v1");
        w.line(
            3,
            &format!(
                "{}:\t{} ({version}:{})",
                e.name,
                field_value(pod, &f.field_path),
                f.field_path
            ),
        );
    } else if let Some(r) = &from.resource_field_ref {
        w.line(3, &format!("{}:\t ({})", e.name, r.resource));
    } else if let Some(s) = &from.secret_key_ref {
        w.line(
            3,
            &format!(
                "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {}",
                e.name,
                s.key,
                s.name,
                s.optional.unwrap_or(false)
            ),
        );
    } else if let Some(m) = &from.config_map_key_ref {
        w.line(
            3,
            &format!(
                "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {}",
                e.name,
                m.key,
                m.name,
                m.optional.unwrap_or(false)
            ),
        );
    }
}

/// `describeContainerVolumes`: sorted by mount path.
fn mounts(w: &mut Writer, c: &Container) {
    let mut list = c.volume_mounts.clone().unwrap_or_default();
    if list.is_empty() {
        w.line(2, "Mounts:\t<none>");
        return;
    }
    w.line(2, "Mounts:");
    list.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
    for m in &list {
        let mut flags = vec![if m.read_only == Some(true) {
            "ro"
        } else {
            "rw"
        }
        .to_string()];
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            flags.push(format!("path={sub:?}"));
        }
        w.line(
            3,
            &format!("{} from {} ({})", m.mount_path, m.name, flags.join(",")),
        );
    }
}
