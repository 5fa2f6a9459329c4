//! `podvm-vmm`: the builtin VMM's command line. For now: `probe`, which
//! prints the KVM capability verdict as JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use podvm_vmm::probe::{probe_kvm_with_deadline, DEFAULT_KVM_DEVICE};

#[derive(Debug, Parser)]
#[command(name = "podvm-vmm", about = "podvm's builtin VMM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check whether KVM can run a Linux guest (a ring-3 syscall must reach
    /// ring 0 in a tiny test guest) and print the verdict as JSON.
    Probe {
        /// The KVM device.
        #[arg(long, default_value = DEFAULT_KVM_DEVICE)]
        dev: PathBuf,
        /// How long the test guest may run, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        deadline_ms: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Probe { dev, deadline_ms } => {
            let probe = probe_kvm_with_deadline(&dev, Duration::from_millis(deadline_ms))
                .with_context(|| format!("probing {}", dev.display()))?;
            println!("{}", serde_json::to_string_pretty(&probe)?);
        }
    }
    Ok(())
}
