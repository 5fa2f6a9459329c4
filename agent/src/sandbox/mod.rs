//! The pod sandbox: the holder process owning the shared IPC, UTS and
//! network namespaces, the files bind-mounted into every container, the
//! pod-wide `/dev/shm` tmpfs and the pod's volumes.

mod files;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podvm_proto::SandboxSpec;

use crate::reaper::Exit;
use crate::rundir::RunDir;
use crate::spawn::{helper_command, spawn_helper, PAUSE};
use crate::volume::{Eviction, VolumeError, VolumeRefs, Volumes};

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting the pod's /dev/shm: {0}")]
    Shm(#[source] nix::Error),
    #[error("starting the sandbox holder: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the sandbox holder failed: {0}")]
    Holder(String),
    #[error("setting up the pod's volumes: {0}")]
    Volume(#[from] VolumeError),
}

/// A running sandbox.
pub struct Sandbox {
    holder_pid: i32,
    holder_exit: Arc<Exit>,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    pub shm: PathBuf,
    volumes: Volumes,
    /// `<run>/containers`, where termination-message files are made.
    containers: PathBuf,
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, SandboxError> {
    fs::write(&path, text).map_err(|source| SandboxError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

impl Sandbox {
    /// Writes the pod files, mounts `/dev/shm`, sets up the volumes and
    /// starts the holder.
    pub fn create(run: &RunDir, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let dir = run.sandbox();
        let hosts = write(
            dir.join("hosts"),
            &files::hosts_file(&spec.hostname, &spec.host_aliases),
        )?;
        let hostname = write(dir.join("hostname"), &files::hostname_file(&spec.hostname))?;
        let resolv_conf = write(dir.join("resolv.conf"), &files::resolv_conf())?;
        let shm = dir.join("shm");
        fs::create_dir_all(&shm).map_err(|source| SandboxError::Io {
            path: shm.clone(),
            source,
        })?;
        mount(
            Some("shm"),
            &shm,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        )
        .map_err(SandboxError::Shm)?;
        let volumes = Volumes::setup(&dir, &spec.volumes)?;

        let mut cmd = helper_command(PAUSE);
        cmd.arg(&spec.hostname)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut helper = match spawn_helper(cmd, b"", false) {
            Ok(helper) => helper,
            Err(e) => {
                volumes.teardown();
                return Err(SandboxError::Spawn(e));
            }
        };
        let holder_pid = helper.child.id() as i32;
        let mut line = String::new();
        if let Some(out) = helper.child.stdout.take() {
            let _ = BufReader::new(out.take(4096)).read_line(&mut line);
        }
        let sandbox = Sandbox {
            holder_pid,
            holder_exit: helper.exit,
            hosts,
            hostname,
            resolv_conf,
            shm,
            volumes,
            containers: run.containers(),
        };
        if line.trim() != "ready" {
            sandbox.stop_holder();
            let why = line.trim().trim_start_matches("error: ").to_string();
            return Err(SandboxError::Holder(if why.is_empty() {
                "it exited during setup".into()
            } else {
                why
            }));
        }
        Ok(sandbox)
    }

    /// The process whose namespaces containers join.
    pub fn holder_pid(&self) -> i32 {
        self.holder_pid
    }

    /// What containers mount from the pod's volumes.
    pub fn volume_refs(&self) -> VolumeRefs {
        self.volumes.refs(&self.containers)
    }

    /// The first volume over its `sizeLimit` (kubelet then evicts the pod,
    /// see [`Eviction::message`]); measures the volumes' trees, so call it
    /// from a periodic check, not a status read.
    pub fn over_limit(&self) -> Option<Eviction> {
        self.volumes.over_limit()
    }

    /// kubelet's eviction message for the first volume over its
    /// `sizeLimit`, if any (see [`Sandbox::over_limit`]).
    pub fn volume_over_limit(&self) -> Option<String> {
        self.over_limit().map(|e| e.message())
    }

    /// Kills the holder and waits for it (the namespaces go with it once
    /// the last container is gone), then unmounts and removes the pod's
    /// volumes. The shm and run-dir mounts are unmounted with the run
    /// directory.
    pub fn stop_holder(&self) {
        if self.holder_exit.wait_timeout(Duration::ZERO).is_none() {
            let _ = kill(Pid::from_raw(self.holder_pid), Signal::SIGKILL);
            let _ = self.holder_exit.wait_timeout(Duration::from_secs(5));
        }
        self.volumes.teardown();
    }
}
