//! One run of a container, in CRI's two steps: [`create`] resolves its
//! image and process; [`start`] prepares fresh overlay layers and a cgroup,
//! starts the launcher helper with the container's output going to the log
//! readers, and follows the launcher's reports.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use super::config::{next_report, LaunchConfig, ProcessConfig, ShimReport};
use super::spec::resolve_process;
use super::Container;
use crate::cgroup::Cgroups;
use crate::ids::now_rfc3339;
use crate::logs::{spawn_reader, LogSink, StdStream};
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

/// A run that was created: what starting it needs.
pub struct CreatedRun {
    /// The image's root, the overlay's lower layer.
    lower: PathBuf,
    process: ProcessConfig,
}

/// A run whose process was executed.
pub struct RunningContainer {
    pub pid: i32,
    pub started_at: String,
    pub process: ProcessConfig,
    pub cgroup: Option<PathBuf>,
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

/// Creates a run of `container` (CreateContainerError when it fails).
pub fn create(ctx: &LaunchContext<'_>, container: &Container) -> Result<CreatedRun, String> {
    let spec = &container.spec;
    let lower = ctx
        .images
        .lower_dir(&spec.rootfs)
        .map_err(|e| e.to_string())?;
    let process = resolve_process(spec, ctx.hostname, &lower).map_err(|e| e.to_string())?;
    Ok(CreatedRun { lower, process })
}

/// Starts `created` as run number `run` of `container` (containerd's
/// StartError when it fails).
pub fn start(
    ctx: &LaunchContext<'_>,
    container: &Container,
    created: CreatedRun,
    run: u32,
) -> Result<RunningContainer, String> {
    let spec = &container.spec;
    let layers =
        RunLayers::create(ctx.containers_dir, &spec.name, run).map_err(|e| e.to_string())?;
    let cgroup = match ctx.cgroups.map(|c| c.create(&spec.name)).transpose() {
        Ok(c) => c,
        Err(e) => {
            layers.remove();
            return Err(format!("creating the container's cgroup: {e}"));
        }
    };
    let config = LaunchConfig {
        name: spec.name.clone(),
        sandbox_pid: ctx.sandbox.holder_pid(),
        lower: created.lower,
        upper: layers.upper.clone(),
        work: layers.work.clone(),
        merged: layers.merged.clone(),
        hosts: ctx.sandbox.hosts.clone(),
        hostname: ctx.sandbox.hostname.clone(),
        resolv_conf: ctx.sandbox.resolv_conf.clone(),
        shm: ctx.sandbox.shm.clone(),
        cgroup,
        process: created.process,
    };
    match run_launcher(container, &config, layers.clone()) {
        Ok(outcome) => outcome,
        Err(e) => {
            layers.remove();
            Err(format!("starting the container launcher: {e}"))
        }
    }
}

fn run_launcher(
    container: &Container,
    config: &LaunchConfig,
    layers: RunLayers,
) -> std::io::Result<Result<RunningContainer, String>> {
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
        (None, Some(pid)) => Ok(Ok(RunningContainer {
            pid,
            started_at,
            process: config.process.clone(),
            cgroup: config.cgroup.clone(),
            reports,
            exit: helper.exit,
            readers,
            layers,
        })),
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
            Ok(Err(message))
        }
    }
}
