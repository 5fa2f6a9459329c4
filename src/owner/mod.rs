//! The pod's owner on the host: one long-lived process per pod (the
//! conmon / containerd-shim model, see docs/decisions.md) that boots the
//! pod's VM and is its parent, holds the agent connection and the event
//! watch, writes status and events durably, notices a VM that died, and
//! removes everything on delete. The CLI commands are clients of it
//! (`crate::manager`); a killed owner is replaced by the next command.

mod boot;
mod daemon;
#[cfg(test)]
pub mod fakes;
mod keeper;
mod lifecycle;
mod link;
pub mod locks;
mod plan;
mod spawn;
mod teardown;
mod vm_exit;
mod watch;

pub use daemon::{run, OwnerDeps, OWNER_FILE};
pub use keeper::Keeper;
pub use lifecycle::{FailureReason, Lifecycle};
pub use link::{AgentDialer, VsockDialer};
pub use plan::LaunchPlan;
pub use spawn::{start_owner, OWNER_LOG};
pub use teardown::{default_grace, tear_down, DeleteRequest, DELETE_FILE};
