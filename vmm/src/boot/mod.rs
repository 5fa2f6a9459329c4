//! Kernel boot: loads the kernel, initrd and command line into guest memory
//! and writes what the boot protocol hands over: `hvm_start_info` for a
//! vmlinux with a PVH entry note, else the zero page and boot tables of the
//! Linux 64-bit boot protocol.

pub mod initrd;
pub mod kernel;
pub mod pvh;
pub mod zero_page;

use std::fs::File;
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::arch;
use crate::arch::layout::CMDLINE_ADDR;
pub use kernel::{KernelFormat, LoadedKernel};

/// Errors while loading the guest's boot payload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel or initrd file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The open(2) error.
        source: std::io::Error,
    },
    /// The kernel image could not be read.
    #[error("cannot read the kernel image: {0}")]
    ReadKernel(#[source] std::io::Error),
    /// linux-loader refused the kernel image.
    #[error("cannot load the kernel image: {0}")]
    LoadKernel(#[source] linux_loader::loader::Error),
    /// The kernel image loads but cannot be booted by this VMM.
    #[error("kernel image not bootable: {0}")]
    NotBootable(String),
    /// The initrd could not be read.
    #[error("cannot read the initrd: {0}")]
    ReadInitrd(#[source] std::io::Error),
    /// The initrd could not be copied into guest memory.
    #[error("cannot copy the initrd into guest memory: {0}")]
    WriteInitrd(#[source] vm_memory::GuestMemoryError),
    /// The initrd does not fit between the kernel and the end of low memory.
    #[error("an initrd of {0} bytes does not fit in guest memory above the kernel")]
    InitrdTooLarge(u64),
    /// The initrd lies where a 32-bit zero-page field cannot point.
    #[error("the initrd lies above 4 GiB")]
    InitrdPlacement,
    /// The command line could not be written.
    #[error("cannot write the kernel command line: {0}")]
    Cmdline(#[source] linux_loader::loader::Error),
    /// More e820 entries than the zero page holds.
    #[error("{0} e820 entries do not fit in the zero page")]
    E820TooLarge(usize),
    /// The zero page could not be written.
    #[error("cannot write the zero page: {0}")]
    WriteZeroPage(#[source] vm_memory::GuestMemoryError),
    /// The PVH start info could not be written.
    #[error("cannot write the PVH start info: {0}")]
    WriteStartInfo(#[source] vm_memory::GuestMemoryError),
    /// The GDT, IDT or page tables could not be written.
    #[error(transparent)]
    BootTables(#[from] arch::Error),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// How the boot vCPU enters the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootProtocol {
    /// Long mode at the 64-bit entry, `rsi` = zero page.
    Linux64 {
        /// The 64-bit entry point.
        entry: u64,
    },
    /// 32-bit protected mode, paging off, at the PVH entry, `ebx` =
    /// `hvm_start_info`.
    Pvh {
        /// The 32-bit PVH entry point.
        entry: u64,
    },
}

impl BootProtocol {
    /// The protocol for `kernel`: PVH when its ELF has the entry note.
    pub fn for_kernel(kernel: &LoadedKernel) -> Self {
        match kernel.pvh_entry {
            Some(entry) => Self::Pvh { entry },
            None => Self::Linux64 {
                entry: kernel.entry,
            },
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Linux64 { .. } => "linux-64bit",
            Self::Pvh { .. } => "pvh",
        }
    }
}

/// What was loaded where.
#[derive(Debug, Clone, Copy)]
pub struct BootSetup {
    /// The kernel.
    pub kernel: LoadedKernel,
    /// How the boot vCPU enters it.
    pub protocol: BootProtocol,
    /// Guest-physical address and size of the initrd.
    pub initrd: Option<(u64, u64)>,
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads `kernel`, the optional `initrd` and `cmdline` into `memory`
/// (`mem_size` bytes of RAM) and writes the boot protocol's structures
/// (the PVH start info, or the zero page and boot tables) and the MP
/// table for `vcpus`.
pub fn load(
    memory: &GuestMemoryMmap,
    mem_size: u64,
    vcpus: u8,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &Cmdline,
) -> Result<BootSetup> {
    let loaded = kernel::load_kernel(memory, &mut open(kernel)?)?;
    let initrd = match initrd {
        None => None,
        Some(path) => {
            let mut file = open(path)?;
            let size = file.metadata().map_err(Error::ReadInitrd)?.len();
            let addr_max = loaded
                .setup_header
                .map(|h| u64::from(h.initrd_addr_max))
                .filter(|max| *max != 0);
            let addr = initrd::initrd_address(mem_size, loaded.end, addr_max, size)?;
            initrd::load_initrd(memory, &mut file, addr, size)?;
            Some((addr, size))
        }
    };
    linux_loader::loader::load_cmdline(memory, GuestAddress(CMDLINE_ADDR), cmdline)
        .map_err(Error::Cmdline)?;
    let cmdline_len = cmdline
        .as_cstring()
        .map(|c| c.as_bytes().len())
        .map_err(|_| Error::Cmdline(linux_loader::loader::Error::InvalidCommandLine))?;
    let protocol = BootProtocol::for_kernel(&loaded);
    match protocol {
        BootProtocol::Pvh { .. } => {
            let start = pvh::build_start_info(&pvh::StartInfoSpec { initrd, mem_size })?;
            pvh::write_start_info(memory, &start)?;
        }
        BootProtocol::Linux64 { .. } => {
            let params = zero_page::build_boot_params(&zero_page::ZeroPageSpec {
                setup_header: loaded.setup_header,
                cmdline_len,
                initrd,
                mem_size,
            })?;
            zero_page::write_boot_params(memory, &params)?;
        }
    }
    arch::regs::write_boot_tables(memory, protocol)?;
    arch::mptable::write(memory, vcpus).map_err(arch::Error::from)?;
    Ok(BootSetup {
        kernel: loaded,
        protocol,
        initrd,
    })
}
