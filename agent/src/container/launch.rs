//! Starting one run of a container: resolve its process, prepare fresh
//! overlay layers, start the launcher helper with the container's output
//! going to the log readers, and follow the launcher's reports.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use podvm_proto::StdStream;

use super::config::{LaunchConfig, ProcessConfig, ShimReport};
use super::spec::resolve_process;
use super::Container;
use crate::cgroup::Cgroups;
use crate::console::say;
use crate::ids::now_rfc3339;
use crate::logs::{spawn_reader, LogSink};
use crate::reaper::Exit;
use crate::rootfs::{Images, RunLayers};
use crate::sandbox::Sandbox;
use crate::spawn::{helper_command, spawn_helper, LAUNCH};

/// What a launch needs from the pod.
pub struct LaunchContext<'a> {
    pub containers_dir: &'a Path,
    pub images: &'a Images,
    pub cgroups: Option<&'a Cgroups>,
    pub sandbox: &'a Sandbox,
    pub hostname: &'a str,
}

/// The result of one launch attempt.
pub enum LaunchOutcome {
    /// The container process was executed.
    Started(Box<RunningContainer>),
    /// The container could not be started (containerd's StartError).
    StartFailed(String),
    /// The container could not even be set up (CreateContainerError).
    CreateFailed(String),
}

/// A run whose process was executed.
pub struct RunningContainer {
    pub pid: i32,
    pub started_at: String,
    pub process: ProcessConfig,
    pub cgroup: Option<std::path::PathBuf>,
    reports: BufReader<File>,
    exit: Arc<Exit>,
    readers: Vec<JoinHandle<()>>,
    layers: RunLayers,
}

/// How a run ended.
pub struct Exited {
    pub code: i32,
    pub signal: Option<i32>,
    pub finished_at: String,
}

fn next_report(reports: &mut BufReader<File>) -> Option<ShimReport> {
    let mut line = String::new();
    match reports.by_ref().take(128 * 1024).read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => match serde_json::from_str(line.trim_end()) {
            Ok(report) => Some(report),
            Err(e) => {
                say!("bad report from a launcher: {e}");
                None
            }
        },
    }
}

impl RunningContainer {
    /// Waits for the run to end and its output to be logged, then removes
    /// its layers.
    pub fn wait(mut self) -> Exited {
        let mut result = None;
        while let Some(report) = next_report(&mut self.reports) {
            if let ShimReport::Exited { code, signal } = report {
                result = Some((code, signal));
            }
        }
        let status = self.exit.wait();
        for reader in self.readers {
            let _ = reader.join();
        }
        self.layers.remove();
        let (code, signal) = result.unwrap_or((status.code(), None));
        Exited {
            code,
            signal,
            finished_at: now_rfc3339(),
        }
    }
}

/// Starts run number `run` of `container`.
pub fn launch(ctx: &LaunchContext<'_>, container: &Container, run: u32) -> LaunchOutcome {
    let spec = &container.spec;
    let lower = match ctx.images.lower_dir(&spec.rootfs) {
        Ok(dir) => dir,
        Err(e) => return LaunchOutcome::CreateFailed(e.to_string()),
    };
    let process = match resolve_process(spec, ctx.hostname, &lower) {
        Ok(p) => p,
        Err(e) => return LaunchOutcome::CreateFailed(e.to_string()),
    };
    let layers = match RunLayers::create(ctx.containers_dir, &spec.name, run) {
        Ok(l) => l,
        Err(e) => return LaunchOutcome::StartFailed(e.to_string()),
    };
    let cgroup = match ctx.cgroups.map(|c| c.create(&spec.name)).transpose() {
        Ok(c) => c,
        Err(e) => {
            layers.remove();
            return LaunchOutcome::StartFailed(format!("creating the container's cgroup: {e}"));
        }
    };
    let config = LaunchConfig {
        name: spec.name.clone(),
        sandbox_pid: ctx.sandbox.holder_pid(),
        lower,
        upper: layers.upper.clone(),
        work: layers.work.clone(),
        merged: layers.merged.clone(),
        hosts: ctx.sandbox.hosts.clone(),
        hostname: ctx.sandbox.hostname.clone(),
        resolv_conf: ctx.sandbox.resolv_conf.clone(),
        shm: ctx.sandbox.shm.clone(),
        cgroup: cgroup.clone(),
        process: process.clone(),
    };
    match start(container, &config, layers.clone()) {
        Ok(outcome) => outcome,
        Err(e) => {
            layers.remove();
            LaunchOutcome::StartFailed(format!("starting the container launcher: {e}"))
        }
    }
}

fn start(
    container: &Container,
    config: &LaunchConfig,
    layers: RunLayers,
) -> std::io::Result<LaunchOutcome> {
    let config_json = serde_json::to_vec(config).map_err(std::io::Error::other)?;
    let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC)?;
    let sink = Arc::new(LogSink::open(
        &container.log_path,
        Arc::clone(&container.wake),
    )?);

    let mut cmd = helper_command(LAUNCH);
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write));
    let helper = spawn_helper(cmd, &config_json, true)?;
    let readers = vec![
        spawn_reader(File::from(out_read), StdStream::Stdout, Arc::clone(&sink))?,
        spawn_reader(File::from(err_read), StdStream::Stderr, sink)?,
    ];
    let status = helper
        .status
        .ok_or_else(|| std::io::Error::other("launcher has no status pipe"))?;
    let mut reports = BufReader::new(status);

    let mut pid = None;
    let failure = loop {
        match next_report(&mut reports) {
            Some(ShimReport::Pid { pid: p }) => pid = Some(p),
            Some(ShimReport::Started) => break None,
            Some(ShimReport::Error { message }) => break Some(message),
            Some(ShimReport::Exited { .. }) | None => {
                break Some("the container launcher exited before the container started".into())
            }
        }
    };
    let started_at = now_rfc3339();
    match (failure, pid) {
        (None, Some(pid)) => Ok(LaunchOutcome::Started(Box::new(RunningContainer {
            pid,
            started_at,
            process: config.process.clone(),
            cgroup: config.cgroup.clone(),
            reports,
            exit: helper.exit,
            readers,
            layers,
        }))),
        (failure, _) => {
            let message =
                failure.unwrap_or_else(|| "the container launcher reported no PID".into());
            // Drain the reports so the launcher never blocks, then collect it.
            while next_report(&mut reports).is_some() {}
            helper.exit.wait();
            for reader in readers {
                let _ = reader.join();
            }
            layers.remove();
            Ok(LaunchOutcome::StartFailed(message))
        }
    }
}
