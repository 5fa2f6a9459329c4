//! podvm-agent: PID 1 of the pod microVM.
//!
//! It mounts the guest's filesystems, reaps orphans, and serves the podvm
//! API (ttrpc, see `rpc/`) on AF_VSOCK port 1024: the host hands over the
//! pod spec and the agent creates the sandbox, runs the containers, captures
//! their logs, restarts them per the restart policy and reports their
//! status and events. In host
//! (test) mode (`--listen unix:PATH --run-dir DIR`) the same code runs as an
//! ordinary root process. The same binary is also its own helper for
//! namespace work (hidden subcommands, see `spawn`).

mod agent;
mod backoff;
mod cgroup;
mod cli;
mod console;
mod container;
mod controller;
mod cri;
mod events;
mod exec;
mod helper;
mod ids;
mod init;
mod log_read;
mod logs;
mod mountinfo;
// Probes enter the pod's network namespace themselves; tests run code there.
#[cfg(test)]
mod netns;
mod oci;
mod pod;
mod reaper;
mod rootfs;
mod rpc;
mod rundir;
mod sandbox;
mod spawn;
mod validate;
mod volume;
mod wake;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::agent::Agent;
use crate::cgroup::Cgroups;
use crate::cli::Listen;
use crate::console::say;
use crate::rpc::{Listener, OnShutdown};
use crate::rundir::RunDir;

/// How long the agent waits for its answer to `Shutdown` to be written
/// before it ends anyway (a client that stopped reading must not keep the
/// VM up).
const SHUTDOWN_REPLY_WAIT: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let helper = matches!(
        args.get(1).map(String::as_str),
        Some(spawn::PAUSE | spawn::LAUNCH | spawn::EXEC)
    );
    if helper {
        // Helpers are started where the agent is; they work from `/` (and
        // hold no reference to the agent's working directory).
        let _ = std::env::set_current_dir("/");
    }
    let code = match args.get(1).map(String::as_str) {
        Some(spawn::PAUSE) => helper::pause::main(&args[2..]),
        Some(spawn::LAUNCH) => helper::shim::main(),
        Some(spawn::EXEC) => helper::exec::main(),
        _ => agent_main(args.get(1..).unwrap_or_default()),
    };
    std::process::exit(code);
}

fn agent_main(args: &[String]) -> i32 {
    let pid1 = std::process::id() == 1;
    if pid1 {
        init::ensure_stdio();
        init::leave_initramfs();
        init::mount_system();
        init::ensure_stdio();
    }
    if let Err(e) = run(args, pid1) {
        say!("fatal: {e:#}");
        if pid1 {
            init::power_off();
        }
    }
    1
}

fn run(args: &[String], pid1: bool) -> anyhow::Result<()> {
    let opts = cli::parse(args)?;
    let stop_signals = {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set
    };
    if !pid1 {
        init::become_subreaper();
        // Blocked in every thread; one thread waits for them (see below).
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop_signals), None)
            .context("blocking SIGTERM/SIGINT")?;
    }
    reaper::start().context("starting the reaper thread")?;
    let run_dir = RunDir::setup(&opts.run_dir)
        .with_context(|| format!("setting up the run directory {}", opts.run_dir.display()))?;
    let listener = match &opts.listen {
        Listen::Unix(path) => {
            Listener::unix(path).with_context(|| format!("listening on {}", path.display()))
        }
        Listen::Vsock(port) => {
            Listener::vsock(*port).with_context(|| format!("listening on vsock port {port}"))
        }
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            run_dir.teardown();
            return Err(e);
        }
    };
    let cgroups = Cgroups::detect(Path::new(init::CGROUP_ROOT));
    let agent = Arc::new(Agent::new(run_dir, cgroups));
    let socket_path = match &opts.listen {
        Listen::Unix(path) => Some(path.clone()),
        Listen::Vsock(_) => None,
    };
    say!(
        "listening on {:?}, state in {}",
        opts.listen,
        opts.run_dir.display()
    );

    let shutting_down = Arc::new(AtomicBool::new(false));
    let shutdown_agent = Arc::clone(&agent);
    let shutdown: OnShutdown = Arc::new(move |requested_on| {
        if shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        say!("shutting down");
        shutdown_agent.shut_down();
        if let Some(connection) = requested_on {
            if !connection.wait_closed(SHUTDOWN_REPLY_WAIT) {
                say!("the answer to Shutdown was not taken in time");
            }
        }
        if let Some(path) = &socket_path {
            let _ = std::fs::remove_file(path);
        }
        if pid1 {
            init::power_off();
        }
        std::process::exit(0);
    });
    if !pid1 {
        let on_signal = Arc::clone(&shutdown);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                if stop_signals.wait().is_ok() {
                    on_signal(None);
                }
            })
            .context("starting the signal thread")?;
    }
    rpc::serve(listener, agent, shutdown)
}
