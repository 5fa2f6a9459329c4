//! The helper processes: fresh copies of the agent binary started with a
//! hidden subcommand (see [`crate::spawn`]) for the work that needs a
//! single-threaded process: the sandbox holder, the container launcher (it
//! runs a container's OCI spec, as runc would) and the exec helper.

mod caps;
mod container_init;
mod devices;
mod exe;
pub mod exec;
mod mount_options;
mod mounts;
mod namespaces;
mod paths;
pub mod pause;
pub mod shim;
mod supervise;

use std::io::Read;

use anyhow::Context;
use serde::de::DeserializeOwned;

use crate::spawn::{inherited_fd, HelperFd};

/// Largest configuration a helper accepts on its configuration pipe.
const MAX_CONFIG: u64 = 16 * 1024 * 1024;

/// Reads and decodes the JSON configuration the agent wrote to the
/// helper's configuration pipe.
fn read_config<T: DeserializeOwned>() -> anyhow::Result<T> {
    let file = inherited_fd(HelperFd::Config).context("no configuration descriptor")?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG)
        .read_to_end(&mut text)
        .context("reading the configuration")?;
    serde_json::from_slice(&text).context("decoding the configuration")
}
