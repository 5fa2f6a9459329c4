//! `podvm`: run Kubernetes pods in their own microVMs.
//!
//! The CLI validates a Pod manifest, turns its images into read-only disks,
//! boots one VM per pod through a [`hypervisor`] backend, and hands the
//! sandbox to the agent inside, which runs the containers and reports back.

mod agent_client;
mod cli;
mod commands;
mod describe;
mod exec_session;
mod guest;
mod hypervisor;
mod manager;
mod manifest;
mod owner;
mod pod_status;
mod pod_watch;
mod sandbox;
mod scratch;
mod state;
mod terminal;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use cli::{Cli, Command};
use commands::Ctx;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let state = state::StateDir::new(&cli.state_dir);
    let manager = manager::PodManager::new(
        state.clone(),
        Box::new(manager::ProcessLauncher {
            state_root: cli.state_dir.clone(),
        }),
        Arc::new(owner::VsockDialer),
    );
    let ctx = Ctx {
        state,
        image_dir: cli.image_dir.clone(),
        manager,
    };
    let result = match &cli.command {
        Command::Apply(a) => commands::apply::run(&ctx, a).map(|_| 0),
        Command::Get(a) => commands::get::run(&ctx, a).map(|_| 0),
        Command::Logs(a) => commands::logs::run(&ctx, a).map(|_| 0),
        Command::Exec(a) => commands::exec::run(&ctx, a),
        Command::Describe(a) => commands::describe::run(&ctx, a).map(|_| 0),
        Command::Patch(a) => commands::patch::run(&ctx, a).map(|_| 0),
        Command::Delete(a) => commands::delete::run(&ctx, a).map(|_| 0),
        Command::Image(c) => commands::image::run(&ctx, c).map(|_| 0),
        Command::Bench(a) => commands::bench::run(&ctx, a).map(|_| 0),
        Command::HostCheck => host_check().map(|_| 0),
        Command::Owner(a) => own(&ctx, a).map(|_| 0),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `podvm __owner`: owns one pod until it fails or is deleted.
fn own(ctx: &Ctx, args: &cli::OwnerArgs) -> anyhow::Result<()> {
    let deps = owner::OwnerDeps {
        hypervisor: Box::new(hypervisor::select),
        dialer: Arc::new(owner::VsockDialer),
        stop_on_signals: true,
    };
    owner::run(&ctx.state, &args.namespace, &args.name, &deps)
}

fn host_check() -> anyhow::Result<()> {
    let v = hypervisor::host_kvm_verdict();
    println!("kvm can run a Linux guest: {}", v.linux_capable);
    println!("detail: {}", v.detail);
    println!(
        "--hypervisor auto uses: {}",
        hypervisor::AutoChoice::for_host(&v).describe()
    );
    Ok(())
}
