//! `podvm get pods [-w]`, `podvm get pod NAME -o json|yaml`: Pod objects
//! with the status their owners recorded (no agent is asked), or kubectl's
//! table; with `-w` a line more each time a pod changes.

use std::io::Write;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;

use super::{load_pod, Ctx};
use crate::cli::{GetArgs, GetResource, Output};
use crate::pod_status::{human_duration, pod_view, summary};
use crate::pod_watch::{RowChanges, StateWatch};
use crate::state::{PodRecord, StateDir};

pub fn run(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    if args.resource == GetResource::Events {
        return super::events::run(ctx, args);
    }
    if args.watch && !matches!(args.output, None | Some(Output::Wide)) {
        anyhow::bail!("--watch prints kubectl's table: use it without -o, or with -o wide");
    }
    let pods: Vec<Pod> = match &args.name {
        Some(name) => views(&ctx.state, &[load_pod(ctx, &args.namespace, name)?])?,
        None => {
            let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
            views(&ctx.state, &ctx.manager.list(ns)?)?
        }
    };
    match args.output {
        Some(Output::Json) => println!("{}", render_json(&pods, args.name.is_some())?),
        Some(Output::Yaml) => print!("{}", render_yaml(&pods, args.name.is_some())?),
        Some(Output::Name) => {
            for p in &pods {
                println!("pod/{}", p.metadata.name.as_deref().unwrap_or_default());
            }
        }
        Some(Output::Wide) | None => {
            let wide = args.output == Some(Output::Wide);
            if pods.is_empty() {
                eprintln!("No resources found in {} namespace.", args.namespace);
            } else {
                print!("{}", render(&rows(&pods, args.all_namespaces, wide)));
            }
            if args.watch {
                return watch(ctx, args, &pods, wide);
            }
        }
    }
    Ok(())
}

/// Prints a row each time a watched pod's row (AGE aside) changes, until
/// interrupted. The owners write every change into the records; the watch
/// wakes on the state directory's notifications.
fn watch(ctx: &Ctx, args: &GetArgs, pods: &[Pod], wide: bool) -> Result<()> {
    let with_ns = args.all_namespaces;
    let age_column = if with_ns { 5 } else { 4 };
    let mut changes = RowChanges::ignoring(age_column);
    let table = rows(pods, with_ns, wide);
    let mut widths = widths(&table);
    changed_rows(&mut changes, keyed(pods, with_ns, wide), with_ns);
    // With no pod at first the header comes with the first row.
    let mut header = pods.is_empty().then(|| table[0].clone());
    let mut notifications = StateWatch::new(ctx.state.root())?;
    let stdout = std::io::stdout();
    loop {
        notifications.wait()?;
        let records: Vec<PodRecord> = match &args.name {
            Some(name) => ctx
                .state
                .load(&args.namespace, name)
                .ok()
                .into_iter()
                .collect(),
            None => {
                let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
                match ctx.state.list(ns) {
                    Ok(records) => records,
                    Err(e) => {
                        // The next change reads the state again, as
                        // kubectl's watch reconnects.
                        eprintln!("warning: cannot list the pods: {e:#}");
                        continue;
                    }
                }
            }
        };
        // A pod removed meanwhile has no view: it is simply not listed.
        let now: Vec<Pod> = records
            .iter()
            .filter_map(|r| pod_view(&ctx.state, r).ok())
            .collect();
        let mut out = stdout.lock();
        for row in changed_rows(&mut changes, keyed(&now, with_ns, wide), with_ns) {
            if let Some(h) = header.take() {
                writeln!(out, "{}", line(&h, &widths)).context("cannot write to stdout")?;
            }
            for (w, cell) in widths.iter_mut().zip(&row) {
                *w = (*w).max(cell.len());
            }
            writeln!(out, "{}", line(&row, &widths)).context("cannot write to stdout")?;
        }
        out.flush().context("cannot write to stdout")?;
    }
}

/// The pods as shown, each joined with what the host keeps beside it.
fn views(state: &StateDir, records: &[PodRecord]) -> Result<Vec<Pod>> {
    records.iter().map(|r| pod_view(state, r)).collect()
}

/// The rows that changed. The age of the last restart in RESTARTS
/// (`3 (5m ago)`) moves by itself like AGE: rows are compared without it.
fn changed_rows(
    changes: &mut RowChanges,
    rows: Vec<(crate::pod_watch::Key, Vec<String>)>,
    with_ns: bool,
) -> Vec<Vec<String>> {
    let restarts = if with_ns { 4 } else { 3 };
    let full: std::collections::HashMap<crate::pod_watch::Key, Vec<String>> =
        rows.iter().cloned().collect();
    let compared = rows
        .into_iter()
        .map(|(key, mut row)| {
            if let Some(cell) = row.get_mut(restarts) {
                if let Some(i) = cell.find(" (") {
                    cell.truncate(i);
                }
            }
            (key, row)
        })
        .collect();
    changes
        .changed(compared)
        .into_iter()
        .filter_map(|row| {
            let ns = if with_ns {
                row[0].clone()
            } else {
                String::new()
            };
            let name = row[usize::from(with_ns)].clone();
            full.iter()
                .find(|((k_ns, k_name), _)| k_name == &name && (!with_ns || k_ns == &ns))
                .map(|(_, r)| r.clone())
        })
        .collect()
}

/// Each pod's table row with its key.
fn keyed(pods: &[Pod], with_ns: bool, wide: bool) -> Vec<(crate::pod_watch::Key, Vec<String>)> {
    let rows = rows(pods, with_ns, wide);
    pods.iter()
        .zip(rows.into_iter().skip(1))
        .map(|(p, row)| {
            let key = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            );
            (key, row)
        })
        .collect()
}

/// One object, or a `v1 List` of them (what kubectl prints).
fn as_value(pods: &[Pod], single: bool) -> Result<serde_json::Value> {
    if single {
        if let Some(p) = pods.first() {
            return serde_json::to_value(p).context("cannot encode pod");
        }
    }
    let items = pods
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .context("cannot encode pods")?;
    Ok(
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}),
    )
}

fn render_json(pods: &[Pod], single: bool) -> Result<String> {
    serde_json::to_string_pretty(&as_value(pods, single)?).context("cannot encode pods")
}

fn render_yaml(pods: &[Pod], single: bool) -> Result<String> {
    serde_norway::to_string(&as_value(pods, single)?).context("cannot encode pods")
}

/// kubectl's table: the header, then a row per pod.
fn rows(pods: &[Pod], with_namespace: bool, wide: bool) -> Vec<Vec<String>> {
    let mut rows = vec![{
        let mut h = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
        if with_namespace {
            h.insert(0, "NAMESPACE");
        }
        if wide {
            h.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
        }
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    let now = jiff::Timestamp::now();
    for p in pods {
        let cells = summary(p, now);
        let mut row = vec![
            p.metadata.name.clone().unwrap_or_default(),
            cells.ready,
            cells.status,
            cells.restarts,
            age(p),
        ];
        if with_namespace {
            row.insert(0, p.metadata.namespace.clone().unwrap_or_default());
        }
        if wide {
            let status = p.status.clone().unwrap_or_default();
            let none = || "<none>".to_string();
            row.push(status.pod_ip.clone().unwrap_or_else(none));
            row.push(
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_else(none),
            );
            row.push(status.nominated_node_name.clone().unwrap_or_else(none));
            row.push(readiness_gates(p));
        }
        rows.push(row);
    }
    rows
}

/// READINESS GATES: how many of the pod's gates have a True condition,
/// of how many (kubectl's `-o wide`).
fn readiness_gates(p: &Pod) -> String {
    let gates: Vec<&str> = p
        .spec
        .iter()
        .flat_map(|s| s.readiness_gates.iter().flatten())
        .map(|g| g.condition_type.as_str())
        .collect();
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let ready = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .any(|c| c.type_ == **g && c.status == "True")
        })
        .count();
    format!("{ready}/{}", gates.len())
}

fn widths(rows: &[Vec<String>]) -> Vec<usize> {
    (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect()
}

fn line(row: &[String], widths: &[usize]) -> String {
    let cells: Vec<String> = row
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    cells.join("   ").trim_end().to_string()
}

pub fn render(rows: &[Vec<String>]) -> String {
    let widths = widths(rows);
    rows.iter().map(|r| line(r, &widths) + "\n").collect()
}

/// The pod's age, as kubectl prints it: 45s, 3m12s, 5h, 2d.
fn age(p: &Pod) -> String {
    let Some(created) = &p.metadata.creation_timestamp else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - created.0.as_second()).max(0);
    short_duration(secs)
}

/// kubectl's ages (apimachinery's `HumanDuration`).
pub fn short_duration(secs: i64) -> String {
    human_duration(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_look_like_kubectl() {
        assert_eq!(short_duration(5), "5s");
        assert_eq!(short_duration(200), "3m20s");
        assert_eq!(short_duration(4000), "66m");
        assert_eq!(short_duration(4 * 3600), "4h");
        assert_eq!(short_duration(3 * 86400), "3d");
        assert_eq!(short_duration(600), "10m");
        assert_eq!(short_duration(5 * 3600 + 120), "5h2m");
        assert_eq!(short_duration(3 * 86400 + 7200), "3d2h");
        assert_eq!(short_duration(400 * 86400), "400d");
        assert_eq!(short_duration(3 * 365 * 86400 + 86400), "3y1d");
        assert_eq!(short_duration(-5), "<invalid>");
    }

    #[test]
    fn a_watch_ignores_the_age_of_the_last_restart() {
        let mut changes = RowChanges::ignoring(4);
        let row = |restarts: &str, age: &str| {
            (
                ("default".to_string(), "web".to_string()),
                ["web", "1/1", "Running", restarts, age]
                    .map(String::from)
                    .to_vec(),
            )
        };
        assert_eq!(
            changed_rows(&mut changes, vec![row("1 (5s ago)", "9s")], false).len(),
            1
        );
        assert!(changed_rows(&mut changes, vec![row("1 (7s ago)", "11s")], false).is_empty());
        let again = changed_rows(&mut changes, vec![row("2 (1s ago)", "12s")], false);
        assert_eq!(
            again,
            vec![["web", "1/1", "Running", "2 (1s ago)", "12s"]
                .map(String::from)
                .to_vec()]
        );
    }
}
