//! `podvm bench -f POD.yaml`: start the pod N times and print how long
//! `apply` took until every container was running (or done), and the
//! agent's memory. A measurement command, not a test.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use podvm_proto::ContainerState;

use super::{connect_agent, Ctx};
use crate::cli::BenchArgs;
use crate::manifest;

pub fn run(ctx: &Ctx, args: &BenchArgs) -> Result<()> {
    let template = manifest::load(&args.file)?;
    let base = template.metadata.name.clone().unwrap_or_default();
    let mut ready_ms = Vec::new();
    let mut rss = Vec::new();
    let mut accel = String::new();
    println!(
        "{:>4}  {:>14}  {:>16}  {:>14}",
        "run", "apply (ms)", "all started (ms)", "agent RSS (KiB)"
    );
    for i in 0..args.runs {
        let mut pod = template.clone();
        pod.metadata.name = Some(format!("{base}-bench-{i}"));
        let t0 = Instant::now();
        let record = super::apply::create(ctx, pod, &args.vm)?;
        let applied = t0.elapsed();
        let conn = connect_agent(&record, Duration::from_secs(10))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let (started, agent_rss) = loop {
            let st = conn
                .status(Duration::from_secs(10))
                .context("cannot read the pod's status")?;
            let all = st
                .containers
                .iter()
                .all(|c| !matches!(c.state, ContainerState::Waiting { .. }));
            if all || Instant::now() > deadline {
                break (t0.elapsed(), st.agent_rss_kib);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        accel = record
            .vm
            .as_ref()
            .map(|v| format!("{} ({})", v.hypervisor, v.accel))
            .unwrap_or_default();
        drop(conn);
        let (ns, name) = manifest::pod_key(&record.pod)?;
        ctx.manager
            .delete(&ns, &name, Some(0))
            .context("cannot delete the benchmark pod")?;
        let rss_text = agent_rss
            .map(|r| r.to_string())
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{:>4}  {:>14.1}  {:>16.1}  {:>14}",
            i,
            ms(applied),
            ms(started),
            rss_text
        );
        ready_ms.push(ms(started));
        if let Some(r) = agent_rss {
            rss.push(r as f64);
        }
    }
    println!("hypervisor: {accel}");
    println!(
        "apply → all containers started: {}",
        stats(&mut ready_ms, "ms")
    );
    if !rss.is_empty() {
        println!("agent RSS: {}", stats(&mut rss, "KiB"));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(v: &mut [f64], unit: &str) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    let median = v[v.len() / 2];
    format!(
        "median {median:.1} {unit}, min {:.1}, max {:.1} (n={})",
        v[0],
        v[v.len() - 1],
        v.len()
    )
}
