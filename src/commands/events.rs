//! `podvm get events [POD] [-n NS | -A]`: the events the pods' owners
//! recorded (the agent's kubelet events, folded with counts), oldest first,
//! in kubectl's columns.

use anyhow::{bail, Result};
use podvm_proto::Event;

use super::{load_pod, Ctx};
use crate::cli::{GetArgs, Output};
use crate::state::PodRecord;

pub fn run(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    if args.watch || !matches!(args.output, None | Some(Output::Wide)) {
        bail!("get events prints kubectl's table: use it without -o and -w");
    }
    let records: Vec<PodRecord> = match &args.name {
        Some(name) => vec![load_pod(ctx, &args.namespace, name)?],
        None => {
            let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
            ctx.manager.list(ns)?
        }
    };
    let rows = rows(&records, args.all_namespaces, jiff::Timestamp::now());
    if rows.len() == 1 {
        eprintln!("No events found in {} namespace.", args.namespace);
        return Ok(());
    }
    print!("{}", super::get::render(&rows));
    Ok(())
}

/// The header and a row per event, oldest last-seen first.
fn rows(records: &[PodRecord], with_ns: bool, now: jiff::Timestamp) -> Vec<Vec<String>> {
    let mut events: Vec<(&PodRecord, &Event)> = records
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| (r, e)))
        .collect();
    events.sort_by(|a, b| a.1.last_timestamp.cmp(&b.1.last_timestamp));
    let mut header = vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
    if with_ns {
        header.insert(0, "NAMESPACE");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for (record, e) in events {
        let seen = e
            .last_timestamp
            .parse::<jiff::Timestamp>()
            .map(|t| super::get::short_duration((now.as_second() - t.as_second()).max(0)))
            .unwrap_or_else(|_| "<unknown>".into());
        let seen = if e.count > 1 {
            let first = e
                .first_timestamp
                .parse::<jiff::Timestamp>()
                .map(|t| super::get::short_duration((now.as_second() - t.as_second()).max(0)))
                .unwrap_or_default();
            format!("{seen} (x{} over {first})", e.count)
        } else {
            seen
        };
        let mut row = vec![
            seen,
            e.event_type.as_str().to_string(),
            e.reason.clone(),
            format!(
                "pod/{}",
                record.pod.metadata.name.as_deref().unwrap_or_default()
            ),
            e.message.clone(),
        ];
        if with_ns {
            row.insert(0, record.pod.metadata.namespace.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::Lifecycle;
    use podvm_proto::EventType;

    #[test]
    fn events_are_listed_oldest_first_with_their_counts() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}
        }))
        .unwrap();
        let event = |seq, reason: &str, first: &str, last: &str, count| Event {
            seq,
            event_type: EventType::Normal,
            reason: reason.into(),
            message: format!("{reason} container app"),
            container: Some("app".into()),
            first_timestamp: first.into(),
            last_timestamp: last.into(),
            count,
        };
        let record = PodRecord {
            pod,
            vm: None,
            last_status: None,
            lifecycle: Lifecycle::Running,
            events: vec![
                event(
                    3,
                    "BackOff",
                    "2026-12-01T00:00:10Z",
                    "2026-12-01T00:01:40Z",
                    4,
                ),
                event(
                    1,
                    "Created",
                    "2026-12-01T00:00:01Z",
                    "2026-12-01T00:00:01Z",
                    1,
                ),
            ],
            watch: Default::default(),
        };
        let now: jiff::Timestamp = "2026-12-01T00:02:00Z".parse().unwrap();
        let rows = rows(&[record], false, now);
        assert_eq!(
            rows[0],
            ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        );
        assert_eq!(rows[1][..4], ["119s", "Normal", "Created", "pod/web"]);
        assert_eq!(rows[2][0], "20s (x4 over 110s)");
    }
}
