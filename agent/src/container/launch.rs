//! One run of a container, in CRI's two steps: [`create`] builds its OCI
//! spec from the Kubernetes container, the image and the sandbox; [`start`]
//! prepares fresh overlay layers, a cgroup and the bundle (`config.json`),
//! and [`launch`]es it: the launcher helper runs the spec with the
//! container's output going to the log readers, and its reports are
//! followed. [`launch`] serves the CRI-style containers too.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use oci_spec::runtime::Spec;

use super::config::{next_report, LaunchRequest, Overlay, ProcessConfig, ShimReport};
use super::spec::{build, BuildError};
use super::{Container, CreateFailure};
use crate::cgroup::{CgroupDir, Cgroups};
use crate::ids::now_rfc3339;
use crate::logs::{spawn_reader, LogSink, StdStream};
use crate::oci::bundle;
use crate::oci::sandbox::SandboxRefs;
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

impl LaunchContext<'_> {
    /// What a container takes from the sandbox.
    pub fn sandbox_refs(&self) -> SandboxRefs {
        SandboxRefs {
            holder_pid: self.sandbox.holder_pid(),
            hosts: self.sandbox.hosts.clone(),
            hostname: self.sandbox.hostname.clone(),
            resolv_conf: self.sandbox.resolv_conf.clone(),
            shm: self.sandbox.shm.clone(),
            volumes: self.sandbox.volume_refs(),
        }
    }
}

/// A run that was created: what starting it needs.
pub struct CreatedRun {
    /// The image's root, the overlay's lower layer.
    lower: PathBuf,
    spec: Spec,
}

/// A run whose process was executed.
pub struct RunningContainer {
    pub pid: i32,
    pub started_at: String,
    /// The spec's process (execs start from it).
    pub process: ProcessConfig,
    pub cgroup: Option<CgroupDir>,
    reports: BufReader<File>,
    exit: Arc<Exit>,
    readers: Vec<JoinHandle<()>>,
    layers: RunLayers,
    /// The cgroup's OOM kill count when the run started.
    oom_kills_at_start: Option<u64>,
}

/// How a run ended.
pub struct Exited {
    pub code: i32,
    pub signal: Option<i32>,
    /// The kernel's OOM killer ended it (SIGKILL while its cgroup counted
    /// a new OOM kill: containerd's `OOMKilled`).
    pub oom_killed: bool,
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
        let oom_kills = self.cgroup.as_ref().and_then(CgroupDir::oom_kills);
        let oom_killed = signal == Some(libc::SIGKILL)
            && oom_kills.is_some_and(|n| n > self.oom_kills_at_start.unwrap_or(0));
        Exited {
            code,
            signal,
            oom_killed,
            finished_at: now_rfc3339(),
        }
    }
}

/// Creates a run of `container`: a volume mount that cannot be made is
/// kubelet's `CreateContainerConfigError`, anything else
/// `CreateContainerError`.
pub fn create(ctx: &LaunchContext<'_>, container: &Container) -> Result<CreatedRun, CreateFailure> {
    let spec = &container.spec;
    let lower = ctx
        .images
        .lower_dir(&spec.rootfs)
        .map_err(|e| CreateFailure::Runtime(e.to_string()))?;
    let spec = build(spec, ctx.hostname, &ctx.sandbox_refs(), &lower).map_err(|e| match e {
        BuildError::Mount(e) => CreateFailure::Config(e.to_string()),
        other => CreateFailure::Runtime(other.to_string()),
    })?;
    Ok(CreatedRun { lower, spec })
}

/// Starts `created` as run number `run` of `container` (containerd's
/// StartError when it fails).
pub fn start(
    ctx: &LaunchContext<'_>,
    container: &Container,
    created: CreatedRun,
    run: u32,
) -> Result<RunningContainer, String> {
    let name = &container.spec.name;
    let layers = RunLayers::create(ctx.containers_dir, name, run).map_err(|e| e.to_string())?;
    let cgroup = match ctx.cgroups.map(|c| c.create(name)).transpose() {
        Ok(c) => c,
        Err(e) => {
            layers.remove();
            return Err(format!("creating the container's cgroup: {e}"));
        }
    };
    let mut spec = created.spec;
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(ctx.cgroups.and_then(|c| c.relative_path(name)));
    }
    let log = container.log_of(run);
    let opened = std::fs::create_dir_all(container.logs_dir())
        .and_then(|()| LogSink::open(&log, Arc::clone(&container.wake)));
    let sink = match opened {
        Ok(sink) => Arc::new(sink),
        Err(e) => {
            layers.remove();
            return Err(format!("opening the container's log: {e}"));
        }
    };
    let overlay = Overlay {
        lower: created.lower,
        upper: layers.upper.clone(),
        work: layers.work.clone(),
    };
    launch(name, &spec, layers, Some(overlay), cgroup, sink)
}

/// Writes `spec` into the bundle `layers.base` and runs it: the launcher
/// mounts `overlay` at the spec's root, joins `cgroup` and the spec's
/// namespaces and starts the process, whose output goes to `sink`. The
/// layers are removed when the run ends (or fails to start).
pub fn launch(
    name: &str,
    spec: &Spec,
    layers: RunLayers,
    overlay: Option<Overlay>,
    cgroup: Option<CgroupDir>,
    sink: Arc<LogSink>,
) -> Result<RunningContainer, String> {
    let process = spec.process().clone().unwrap_or_default();
    if let Err(e) = bundle::write(&layers.base, spec) {
        layers.remove();
        return Err(format!("writing the container's bundle: {e}"));
    }
    let request = LaunchRequest {
        name: name.to_string(),
        bundle: layers.base.clone(),
        overlay,
        cgroup,
    };
    match run_launcher(&request, process, sink, layers.clone()) {
        Ok(outcome) => outcome,
        Err(e) => {
            layers.remove();
            Err(format!("starting the container launcher: {e}"))
        }
    }
}

fn run_launcher(
    request: &LaunchRequest,
    process: ProcessConfig,
    sink: Arc<LogSink>,
    layers: RunLayers,
) -> std::io::Result<Result<RunningContainer, String>> {
    let request_json = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC)?;

    let mut cmd = helper_command(LAUNCH);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write));
    let helper = spawn_helper(cmd, &request_json, true)?;
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
            process,
            oom_kills_at_start: request.cgroup.as_ref().and_then(CgroupDir::oom_kills),
            cgroup: request.cgroup.clone(),
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
