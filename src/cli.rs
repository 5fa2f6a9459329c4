//! Command-line interface: kubectl-like verbs for pods, podman-like ones
//! for images.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hypervisor::HypervisorKind;

#[derive(Debug, Parser)]
#[command(
    name = "podvm",
    version,
    about = "Run Kubernetes pods in their own microVMs"
)]
pub struct Cli {
    /// Where pod state lives.
    #[arg(
        long,
        env = "PODVM_STATE_DIR",
        default_value = "/run/podvm",
        global = true
    )]
    pub state_dir: PathBuf,
    /// Where the image store lives.
    #[arg(
        long,
        env = "PODVM_IMAGE_DIR",
        default_value = "/var/lib/podvm",
        global = true
    )]
    pub image_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a pod from a Kubernetes v1 Pod manifest (YAML or JSON) and
    /// start it in its own microVM.
    Apply(ApplyArgs),
    /// Show pods.
    Get(GetArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Show a pod in detail: containers, conditions, volumes, events.
    Describe(DescribeArgs),
    /// Set conditions of a pod's readiness gates (`--subresource=status`).
    Patch(PatchArgs),
    /// Delete a pod: stop its containers and its VM, remove its state.
    Delete(DeleteArgs),
    /// Manage the local image store.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Measure pod start-up: apply → all containers running, and agent memory.
    Bench(BenchArgs),
    /// Say which hypervisor and acceleration this host supports.
    HostCheck,
    /// The owner of one pod (started by `apply`; not for people).
    #[command(name = "__owner", hide = true)]
    Owner(OwnerArgs),
}

#[derive(Debug, Args)]
pub struct OwnerArgs {
    #[arg(long)]
    pub namespace: String,
    #[arg(long)]
    pub name: String,
}

/// Options that decide how a pod VM is booted.
#[derive(Debug, Clone, Args)]
pub struct VmArgs {
    /// Hypervisor backend.
    #[arg(long, env = "PODVM_HYPERVISOR", value_enum, default_value = "auto")]
    pub hypervisor: HypervisorKind,
    /// Folder with the guest `vmlinux` and `initramfs.cpio.gz`.
    #[arg(long, env = "PODVM_GUEST_DIR")]
    pub guest_dir: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(64..=65536))]
    pub memory: u32,
    /// Guest vCPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub cpus: u8,
    /// Seconds to wait for the guest agent to answer.
    #[arg(long, default_value_t = 120)]
    pub boot_timeout: u64,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The manifest file (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    #[command(flatten)]
    pub vm: VmArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    #[value(alias = "pod", alias = "po")]
    Pods,
}

/// What `get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetResource {
    #[value(alias = "pod", alias = "po")]
    Pods,
    /// The pods' events (kubelet's: Pulled, Created, Started, BackOff, ...).
    #[value(alias = "event", alias = "ev")]
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
    Wide,
    Name,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    pub resource: GetResource,
    /// A pod name (all pods when omitted; for events: that pod's only).
    pub name: Option<String>,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// After listing, print a line each time a pod changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub name: String,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output (until the container's current run ends).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The output of the container's previous run (before its last
    /// restart).
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<u64>,
    /// Prefix each line with its RFC 3339 timestamp.
    #[arg(long)]
    pub timestamps: bool,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub name: String,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Run the command on a terminal (with -i: an interactive shell).
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub resource: Resource,
    pub name: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Seconds containers get between SIGTERM and SIGKILL; negative: the
    /// pod's terminationGracePeriodSeconds. 0 only with --force (else it
    /// is taken as 1).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// With --grace-period=0 (or none): kill the containers at once,
    /// without their preStop hooks, and do not wait for them.
    #[arg(long)]
    pub force: bool,
    /// Stop at once: the same as --grace-period=1.
    #[arg(long)]
    pub now: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    pub resource: Resource,
    pub name: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

/// `patch --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch: lists are replaced.
    Merge,
    /// Kubernetes' strategic merge patch: conditions merge by type.
    Strategic,
    /// RFC 6902 JSON patch (not supported).
    Json,
}

/// The subresource `patch` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Subresource {
    Status,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    pub resource: Resource,
    pub name: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Only `status`: the conditions of readiness gates.
    #[arg(long, value_enum)]
    pub subresource: Option<Subresource>,
    #[arg(long = "type", value_enum, default_value = "strategic")]
    pub patch_type: PatchType,
    /// The patch (JSON or YAML), e.g.
    /// '{"status":{"conditions":[{"type":"example.com/gate","status":"True"}]}}'.
    #[arg(short = 'p', long = "patch")]
    pub patch: String,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI archive or docker-archive tar.
    Load {
        #[arg(short = 'i', long = "input")]
        input: PathBuf,
    },
    /// List images.
    #[command(alias = "list")]
    Ls,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The pod manifest to start and delete repeatedly.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// How many times.
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    #[command(flatten)]
    pub vm: VmArgs,
}
