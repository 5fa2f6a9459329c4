//! A static `grpc.health.v1.Health` server, the workload of podvm's
//! end-to-end `grpc` probe test (tests/images/build-grpc.sh puts it in an
//! image).
//!
//! ```text
//! grpc_health_server [--port N] [--serving NAME]... [--not-serving NAME]...
//!                    [--not-serving-after SECS]
//! ```
//!
//! Listens on 0.0.0.0:N (default 9090) and prints `listening on :N`. The
//! server itself (service `""`) is SERVING unless named otherwise;
//! `--not-serving-after` turns it NOT_SERVING that many seconds after the
//! start. SIGTERM ends it with status 0.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;

/// What the command line asks for.
struct Config {
    port: u16,
    statuses: Vec<(String, ServingStatus)>,
    not_serving_after: Option<Duration>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Config> {
    let mut config = Config {
        port: 9090,
        statuses: Vec::new(),
        not_serving_after: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => config.port = value()?.parse().context("--port")?,
            "--serving" => config.statuses.push((value()?, ServingStatus::Serving)),
            "--not-serving" => config.statuses.push((value()?, ServingStatus::NotServing)),
            "--not-serving-after" => {
                let secs = value()?.parse().context("--not-serving-after")?;
                config.not_serving_after = Some(Duration::from_secs(secs));
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(config)
}

fn main() -> Result<()> {
    let config = parse(std::env::args().skip(1))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(config))
}

async fn serve(config: Config) -> Result<()> {
    // The reporter starts with `""` SERVING.
    let (reporter, service) = tonic_health::server::health_reporter();
    for (name, status) in &config.statuses {
        reporter.set_service_status(name, *status).await;
    }
    if let Some(after) = config.not_serving_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            println!("server is NOT_SERVING now");
        });
    }
    let listener = TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("bind :{}", config.port))?;
    println!("listening on :{}", config.port);
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        served = Server::builder().serve_with_incoming(service, TcpIncoming::from(listener)) => {
            served.context("serve")
        }
        _ = term.recv() => {
            println!("got SIGTERM");
            Ok(())
        }
    }
}
