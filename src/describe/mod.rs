//! `kubectl describe pod`'s text (kubectl's `describePod`): the pod's
//! identity, status, init containers and containers, readiness gates,
//! conditions, volumes, QoS class, node selectors, tolerations and the
//! events table, laid out by Go's tabwriter as kubectl does.

mod containers;
mod tabwriter;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Toleration, Volume};
use podvm_proto::Event;

use crate::pod_status::human_duration;

/// Annotations kubectl never shows.
const SKIPPED_ANNOTATIONS: [&str; 1] = ["kubectl.kubernetes.io/last-applied-configuration"];
/// Longer annotations are printed cut, on lines of their own.
const MAX_ANNOTATION_LEN: usize = 140;

/// Lines with kubectl's indentation (two spaces a level) and tab-separated
/// cells, aligned at the end.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn write(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
    }

    fn line(&mut self, level: usize, text: &str) {
        self.write(level, text);
        self.out.push('\n');
    }
}

/// What is shown relative to the present: the time and zone of the reader.
pub struct Clock {
    pub now: Timestamp,
    pub zone: TimeZone,
}

impl Clock {
    /// Go's `time.RFC1123Z` in the reader's zone.
    fn rfc1123z(&self, t: Timestamp) -> String {
        t.to_zoned(self.zone.clone())
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string()
    }

    fn since(&self, t: Timestamp) -> String {
        human_duration(self.now.as_second() - t.as_second())
    }
}

/// `kubectl describe pod` of `pod` (with its status) and its `events`.
pub fn describe_pod(pod: &Pod, events: &[Event], clock: &Clock) -> String {
    let mut w = Writer::default();
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    w.line(
        0,
        &format!("Name:\t{}", meta.name.as_deref().unwrap_or_default()),
    );
    w.line(
        0,
        &format!(
            "Namespace:\t{}",
            meta.namespace.as_deref().unwrap_or_default()
        ),
    );
    // The API server's Priority admission gives pods without a class 0.
    w.line(0, &format!("Priority:\t{}", spec.priority.unwrap_or(0)));
    if let Some(class) = spec
        .priority_class_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        w.line(0, &format!("Priority Class Name:\t{class}"));
    }
    if let Some(class) = spec.runtime_class_name.as_deref().filter(|c| !c.is_empty()) {
        w.line(0, &format!("Runtime Class Name:\t{class}"));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        w.line(0, &format!("Service Account:\t{sa}"));
    }
    match spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        None => w.line(0, "Node:\t<none>"),
        Some(node) => match status.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            Some(ip) => w.line(0, &format!("Node:\t{node}/{ip}")),
            None => w.line(0, &format!("Node:\t{node}")),
        },
    }
    if let Some(start) = &status.start_time {
        w.line(0, &format!("Start Time:\t{}", clock.rfc1123z(start.0)));
    }
    labels(&mut w, "Labels", meta.labels.as_ref());
    annotations(&mut w, meta.annotations.as_ref());
    let phase = status.phase.clone().unwrap_or_default();
    match &meta.deletion_timestamp {
        Some(at) if phase != "Failed" && phase != "Succeeded" => {
            w.line(
                0,
                &format!("Status:\tTerminating (lasts {})", clock.since(at.0)),
            );
            w.line(
                0,
                &format!(
                    "Termination Grace Period:\t{}s",
                    meta.deletion_grace_period_seconds.unwrap_or(0)
                ),
            );
        }
        _ => w.line(0, &format!("Status:\t{phase}")),
    }
    if let Some(reason) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        w.line(0, &format!("Reason:\t{reason}"));
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        w.line(0, &format!("Message:\t{message}"));
    }
    w.line(
        0,
        &format!("IP:\t{}", status.pod_ip.as_deref().unwrap_or_default()),
    );
    match status.pod_ips.as_deref().unwrap_or_default() {
        [] => w.line(0, "IPs:\t<none>"),
        ips => {
            w.line(0, "IPs:");
            for ip in ips {
                w.line(1, &format!("IP:\t{}", ip.ip));
            }
        }
    }
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        w.line(0, &format!("Controlled By:\t{}/{}", owner.kind, owner.name));
    }
    let inits = spec.init_containers.clone().unwrap_or_default();
    if !inits.is_empty() {
        let statuses = status.init_container_statuses.clone().unwrap_or_default();
        containers::describe(&mut w, "Init Containers", &inits, &statuses, pod, clock);
    }
    let statuses = status.container_statuses.clone().unwrap_or_default();
    containers::describe(
        &mut w,
        "Containers",
        &spec.containers,
        &statuses,
        pod,
        clock,
    );
    let conditions = status.conditions.clone().unwrap_or_default();
    let gates = spec.readiness_gates.clone().unwrap_or_default();
    if !gates.is_empty() {
        w.line(0, "Readiness Gates:");
        w.line(1, "Type\tStatus");
        for g in &gates {
            let s = conditions
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .map_or("<none>", |c| c.status.as_str());
            w.line(1, &format!("{} \t{s} ", g.condition_type));
        }
    }
    if !conditions.is_empty() {
        w.line(0, "Conditions:");
        w.line(1, "Type\tStatus");
        for c in &conditions {
            w.line(1, &format!("{} \t{} ", c.type_, c.status));
        }
    }
    volumes(&mut w, spec.volumes.as_deref().unwrap_or_default());
    w.line(
        0,
        &format!(
            "QoS Class:\t{}",
            status.qos_class.as_deref().unwrap_or("BestEffort")
        ),
    );
    labels(&mut w, "Node-Selectors", spec.node_selector.as_ref());
    tolerations(&mut w, spec.tolerations.as_deref().unwrap_or_default());
    describe_events(&mut w, events, clock);
    tabwriter::align(&w.out)
}

/// `printLabelsMultiline`: `key=value` sorted by key, one a line.
fn labels(w: &mut Writer, title: &str, labels: Option<&BTreeMap<String, String>>) {
    w.write(0, &format!("{title}:\t"));
    let labels = labels.cloned().unwrap_or_default();
    if labels.is_empty() {
        w.line(0, "<none>");
        return;
    }
    for (i, (k, v)) in labels.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        w.line(0, &format!("{k}={v}"));
    }
}

/// `printAnnotationsMultiline`: `key: value` sorted by key; a long or
/// multi-line value goes on lines of its own, each cut at 140 characters.
fn annotations(w: &mut Writer, annotations: Option<&BTreeMap<String, String>>) {
    w.write(0, "Annotations:\t");
    let shown: Vec<(&String, &String)> = annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| !SKIPPED_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    if shown.is_empty() {
        w.line(0, "<none>");
        return;
    }
    for (i, (k, v)) in shown.into_iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let value = v.strip_suffix('\n').unwrap_or(v);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.line(0, &format!("{k}:"));
            for part in value.split('\n') {
                w.line(0, &format!("\t  {}", shorten(part, MAX_ANNOTATION_LEN - 2)));
            }
        } else {
            w.line(0, &format!("{k}: {value}"));
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max).collect::<String>())
    } else {
        s.to_string()
    }
}

/// `describeVolumes` (emptyDir is the volume type pods here have).
fn volumes(w: &mut Writer, volumes: &[Volume]) {
    if volumes.is_empty() {
        w.line(0, "Volumes:\t<none>");
        return;
    }
    w.line(0, "Volumes:");
    for v in volumes {
        w.line(1, &format!("{}:", v.name));
        match &v.empty_dir {
            Some(e) => {
                let size = e
                    .size_limit
                    .as_ref()
                    .map(|q| q.0.clone())
                    .filter(|q| !q.is_empty() && q != "0")
                    .unwrap_or_else(|| "<unset>".into());
                w.line(
                    2,
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
                );
                w.line(
                    2,
                    &format!("Medium:\t{}", e.medium.as_deref().unwrap_or_default()),
                );
                w.line(2, &format!("SizeLimit:\t{size}"));
            }
            None => w.line(1, "<unknown>"),
        }
    }
}

/// `printPodTolerationsMultiline`, sorted by key.
fn tolerations(w: &mut Writer, tolerations: &[Toleration]) {
    w.write(0, "Tolerations:\t");
    if tolerations.is_empty() {
        w.line(0, "<none>");
        return;
    }
    let mut sorted = tolerations.to_vec();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for (i, t) in sorted.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let key = t.key.as_deref().unwrap_or_default();
        let value = t.value.as_deref().unwrap_or_default();
        let effect = t.effect.as_deref().unwrap_or_default();
        let mut text = key.to_string();
        if !value.is_empty() {
            text.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        if t.operator.as_deref() == Some("Exists") && value.is_empty() {
            text.push_str(if key.is_empty() && effect.is_empty() {
                "op=Exists"
            } else {
                " op=Exists"
            });
        }
        if let Some(secs) = t.toleration_seconds {
            text.push_str(&format!(" for {secs}s"));
        }
        w.line(0, &text);
    }
}

/// `DescribeEvents`: oldest last-seen first; AGE is the first time, or
/// `<last> (xN over <first>)` for a repeated event. Every event here is
/// the kubelet's (the agent's, which does kubelet's work).
fn describe_events(w: &mut Writer, events: &[Event], clock: &Clock) {
    if events.is_empty() {
        w.line(0, "Events:\t<none>");
        return;
    }
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.last_timestamp.parse::<Timestamp>().ok());
    w.line(0, "Events:");
    w.line(1, "Type\tReason\tAge\tFrom\tMessage");
    w.line(1, "----\t------\t----\t----\t-------");
    let since = |t: &str| {
        t.parse::<Timestamp>()
            .map_or_else(|_| "<unknown>".to_string(), |t| clock.since(t))
    };
    for e in sorted {
        let first = since(&e.first_timestamp);
        let age = if e.count > 1 {
            format!("{} (x{} over {first})", since(&e.last_timestamp), e.count)
        } else {
            first
        };
        w.line(
            1,
            &format!(
                "{}\t{}\t{age}\tkubelet\t{}",
                e.event_type.as_str(),
                e.reason,
                e.message.trim()
            ),
        );
    }
}
