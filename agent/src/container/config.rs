//! What the agent hands to its launch and exec helpers besides the OCI
//! spec (JSON on fd 3), and what they report back (JSON lines on fd 4).
//!
//! The launcher reads the container's spec from its bundle
//! (`config.json`); [`LaunchRequest`] is only podvm's plumbing around it:
//! where the bundle is, the overlay that makes its root, and the cgroup.
//! The container's output goes to the launcher's stdout and stderr, which
//! are the agent's log pipes.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupDir;
use crate::console::say;

/// Longest report line read from a helper.
const MAX_REPORT_LINE: u64 = 128 * 1024;

/// The process of a container (or of an exec in it): the OCI spec's.
pub type ProcessConfig = oci_spec::runtime::Process;

/// The overlay mounted as the container's root (at the spec's root path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// What the launcher needs besides the spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchRequest {
    /// The container's name or id, for messages.
    pub name: String,
    /// The bundle directory: `config.json` and the root.
    pub bundle: PathBuf,
    /// Mounted at the spec's root before anything else.
    pub overlay: Option<Overlay>,
    /// The cgroup the agent made for the container (its path relative to
    /// the hierarchy is the spec's `linux.cgroupsPath`).
    pub cgroup: Option<CgroupDir>,
}

/// Everything the exec helper needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container's PID 1 as the agent sees it; its namespaces are joined.
    pub pid: i32,
    pub cgroup: Option<CgroupDir>,
    /// The container's process with the exec's argv.
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
