//! x86_64 specifics: guest memory layout, boot CPU state, CPUID, MSRs,
//! the local APIC and the MP table.

pub mod cpuid;
pub mod lapic;
pub mod layout;
pub mod mptable;
pub mod msr;
pub mod regs;

/// Errors while preparing x86_64 boot state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GDT, IDT or page tables could not be written.
    #[error("cannot write boot tables at {0:#x}: {1}")]
    WriteBootTables(u64, #[source] vm_memory::GuestMemoryError),
    /// The MP table could not be built or written.
    #[error(transparent)]
    MpTable(#[from] mptable::Error),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;
