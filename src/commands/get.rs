//! `podvm get pods`, `podvm get pod NAME -o json|yaml`: Pod objects with a
//! status read from the agent, or kubectl's table.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;

use super::{load_pod, pod_with_status, Ctx};
use crate::cli::{GetArgs, Output};
use crate::pod_status::summary;

pub fn run(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    let pods: Vec<Pod> = match &args.name {
        Some(name) => vec![pod_with_status(&load_pod(ctx, &args.namespace, name)?)],
        None => {
            let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
            ctx.state.list(ns)?.iter().map(pod_with_status).collect()
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
            if pods.is_empty() {
                eprintln!("No resources found in {} namespace.", args.namespace);
            } else {
                print!(
                    "{}",
                    table(
                        &pods,
                        args.all_namespaces,
                        args.output == Some(Output::Wide)
                    )
                );
            }
        }
    }
    Ok(())
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

fn table(pods: &[Pod], with_namespace: bool, wide: bool) -> String {
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
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's short age format: 45s, 3m12s, 5h, 2d.
fn age(p: &Pod) -> String {
    let Some(created) = &p.metadata.creation_timestamp else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - created.0.as_second()).max(0);
    short_duration(secs)
}

fn short_duration(secs: i64) -> String {
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
