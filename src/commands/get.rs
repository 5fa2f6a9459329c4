//! `podvm get pods [-w]`, `podvm get pod NAME -o json|yaml`: Pod objects
//! with the status their owners recorded (no agent is asked), or kubectl's
//! table; with `-w` a line more each time a pod changes.

use std::io::Write;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;

use super::{load_pod, Ctx};
use crate::cli::{GetArgs, GetResource, Output};
use crate::pod_status::{pod_of_record, summary};
use crate::pod_watch::{RowChanges, StateWatch};

pub fn run(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    if args.resource == GetResource::Events {
        return super::events::run(ctx, args);
    }
    if args.watch && !matches!(args.output, None | Some(Output::Wide)) {
        anyhow::bail!("--watch prints kubectl's table: use it without -o, or with -o wide");
    }
    let pods: Vec<Pod> = match &args.name {
        Some(name) => vec![pod_of_record(&load_pod(ctx, &args.namespace, name)?)],
        None => {
            let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
            ctx.manager.list(ns)?.iter().map(pod_of_record).collect()
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
    changes.changed(keyed(pods, with_ns, wide));
    // With no pod at first the header comes with the first row.
    let mut header = pods.is_empty().then(|| table[0].clone());
    let mut notifications = StateWatch::new(ctx.state.root())?;
    let stdout = std::io::stdout();
    loop {
        notifications.wait()?;
        let now: Vec<Pod> = match &args.name {
            Some(name) => ctx
                .state
                .load(&args.namespace, name)
                .ok()
                .iter()
                .map(pod_of_record)
                .collect(),
            None => {
                let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
                ctx.state.list(ns)?.iter().map(pod_of_record).collect()
            }
        };
        let mut out = stdout.lock();
        for row in changes.changed(keyed(&now, with_ns, wide)) {
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
            h.push("NODE");
        }
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    for p in pods {
        let (ready, status, restarts) = summary(p);
        let mut row = vec![
            p.metadata.name.clone().unwrap_or_default(),
            ready,
            status,
            restarts.to_string(),
            age(p),
        ];
        if with_namespace {
            row.insert(0, p.metadata.namespace.clone().unwrap_or_default());
        }
        if wide {
            row.push(crate::sandbox::node_name());
        }
        rows.push(row);
    }
    rows
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

/// kubectl's short age format: 45s, 3m12s, 5h, 2d.
fn age(p: &Pod) -> String {
    let Some(created) = &p.metadata.creation_timestamp else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - created.0.as_second()).max(0);
    short_duration(secs)
}

pub fn short_duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
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
    }
}
