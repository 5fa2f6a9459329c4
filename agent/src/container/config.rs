//! What the agent hands to its launch and exec helpers (JSON on fd 3), and
//! what they report back (JSON lines on fd 4).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::console::say;

/// Longest report line read from a helper.
const MAX_REPORT_LINE: u64 = 128 * 1024;

/// The fully resolved process of a container (or of an exec in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// argv; argv[0] is looked up in the container's PATH if it has no `/`.
    pub argv: Vec<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl ProcessConfig {
    /// The value of `PATH` in this process's environment.
    pub fn path_var(&self) -> Option<&str> {
        self.env.iter().find_map(|e| e.strip_prefix("PATH="))
    }
}

/// Everything the launcher needs to start one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchConfig {
    /// The container name, for messages.
    pub name: String,
    /// The sandbox holder; its IPC, UTS and network namespaces are joined.
    pub sandbox_pid: i32,
    /// Overlay layers and the mount point of the merged root.
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// Files bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    /// The pod-wide tmpfs bind-mounted at /dev/shm.
    pub shm: PathBuf,
    /// The container's cgroup v2 directory, where cgroups are in use.
    pub cgroup: Option<PathBuf>,
    pub process: ProcessConfig,
}

/// Everything the exec helper needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container's PID 1 as the agent sees it; its namespaces are joined.
    pub pid: i32,
    pub cgroup: Option<PathBuf>,
    pub process: ProcessConfig,
    /// Stdio is a terminal: the process makes it its controlling terminal
    /// in a session of its own.
    #[serde(default)]
    pub tty: bool,
}

/// One progress line from a helper (the exec helper sends only `Pid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum ShimReport {
    /// The container's PID 1, as the agent sees it.
    Pid { pid: i32 },
    /// The container process was executed.
    Started,
    /// The container could not be started.
    Error { message: String },
    /// The container's PID 1 ended.
    Exited { code: i32, signal: Option<i32> },
}

/// Reads the next report line of a helper; `None` at end of file or on a
/// line that does not decode (reported on the console).
pub fn next_report(reports: &mut BufReader<File>) -> Option<ShimReport> {
    let mut line = String::new();
    match reports.by_ref().take(MAX_REPORT_LINE).read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => match serde_json::from_str(line.trim_end()) {
            Ok(report) => Some(report),
            Err(e) => {
                say!("bad report from a helper: {e}");
                None
            }
        },
    }
}
