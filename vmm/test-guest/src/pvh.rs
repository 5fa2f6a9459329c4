//! The PVH entry (built with the `pvh` feature): a `XEN_ELFNOTE_PHYS32_ENTRY`
//! ELF note names `pvh_start32`, where a PVH-capable VMM enters in 32-bit
//! protected mode with paging off and `ebx` = `hvm_start_info`. The entry
//! code records that state, builds the same 1 GiB identity map the VMM
//! builds for the 64-bit protocol (PML4 0x9000, PDPT 0xa000, PD 0xb000, so
//! the drivers' MMIO mapping helper works either way), enters long mode and
//! calls `guest_main_pvh`, whose checks here verify what was handed over.

use core::fmt::Write;

use crate::checks::{check_initrd, check_memory_map, peek, run_devices, Report};
use crate::cmdline::{c_str, param};
use crate::io::Serial;

core::arch::global_asm!(
    // The note: namesz 4, descsz 4, type 18 (XEN_ELFNOTE_PHYS32_ENTRY).
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4",
    ".long 4",
    ".long 18",
    ".asciz \"Xen\"",
    ".balign 4",
    ".long pvh_start32",
    ".balign 4",
    ".popsection",
    // What the VMM handed over, as `EntryState` reads it.
    ".pushsection .data.pvh_entry, \"aw\"",
    ".balign 8",
    ".global pvh_entry_state",
    "pvh_entry_state:",
    "pvh_entry_ebx: .long 0",
    "pvh_entry_cr0: .long 0",
    "pvh_entry_cr4: .long 0",
    "pvh_entry_efer: .long 0",
    "pvh_entry_cs: .word 0",
    "pvh_entry_gdtr: .space 6",
    ".popsection",
    // A 64-bit GDT of our own: null, code, data.
    ".pushsection .rodata.pvh_gdt, \"a\"",
    ".balign 8",
    "pvh_gdt:",
    ".quad 0",
    ".quad 0x00af9b000000ffff",
    ".quad 0x00cf93000000ffff",
    "pvh_gdt_ptr:",
    ".word 23",
    ".long pvh_gdt",
    ".popsection",
    ".pushsection .text.pvh, \"ax\"",
    ".code32",
    ".global pvh_start32",
    "pvh_start32:",
    // A newline on COM1 first thing: benchmarks time the VMM's start to
    // this byte, before the guest's own set-up (which this project's
    // software hypervisor emulates instruction by instruction).
    "    movw $0x3f8, %dx",
    "    movb $0x0a, %al",
    "    outb %al, %dx",
    "    movl %ebx, pvh_entry_ebx",
    "    movl %cr0, %eax",
    "    movl %eax, pvh_entry_cr0",
    "    movl %cr4, %eax",
    "    movl %eax, pvh_entry_cr4",
    "    movl $0xc0000080, %ecx",
    "    rdmsr",
    "    movl %eax, pvh_entry_efer",
    "    movw %cs, %ax",
    "    movw %ax, pvh_entry_cs",
    "    sgdtl pvh_entry_gdtr",
    // Identity map of the first GiB in 2 MiB pages.
    "    cld",
    "    movl $0x9000, %edi",
    "    xorl %eax, %eax",
    "    movl $3072, %ecx",
    "    rep stosl",
    "    movl $0xa003, 0x9000",
    "    movl $0xb003, 0xa000",
    "    movl $0xb000, %edi",
    "    movl $0x83, %eax",
    "    movl $512, %ecx",
    "1:  movl %eax, (%edi)",
    "    addl $0x200000, %eax",
    "    addl $8, %edi",
    "    loop 1b",
    // PAE, CR3, EFER.LME, then paging: long mode.
    "    movl %cr4, %eax",
    "    orl $0x20, %eax",
    "    movl %eax, %cr4",
    "    movl $0x9000, %eax",
    "    movl %eax, %cr3",
    "    movl $0xc0000080, %ecx",
    "    rdmsr",
    "    orl $0x100, %eax",
    "    wrmsr",
    "    movl %cr0, %eax",
    "    orl $0x80000001, %eax",
    "    movl %eax, %cr0",
    "    lgdtl pvh_gdt_ptr",
    "    ljmpl $0x08, $pvh_start64",
    ".code64",
    "pvh_start64:",
    "    movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    "    movw %ax, %fs",
    "    movw %ax, %gs",
    "    leaq __stack_top(%rip), %rsp",
    "    movl pvh_entry_ebx(%rip), %edi",
    "    call guest_main_pvh",
    "2:  cli",
    "    hlt",
    "    jmp 2b",
    ".popsection",
    options(att_syntax)
);

/// The CPU state at `pvh_start32`, as the entry code stored it.
#[repr(C)]
struct EntryState {
    ebx: u32,
    cr0: u32,
    cr4: u32,
    efer: u32,
    cs: u16,
    gdt_limit: u16,
    gdt_base: u32,
}

extern "C" {
    static pvh_entry_state: EntryState;
}

/// Where this VMM puts `hvm_start_info` (Firecracker's address).
const START_INFO: u64 = 0x6000;
/// `XEN_HVM_START_MAGIC_VALUE`.
const START_MAGIC: u32 = 0x336e_c578;

/// The command line `hvm_start_info` at `start_info` points at.
pub fn cmdline(start_info: u64) -> &'static [u8] {
    let paddr: u64 = peek(start_info + 24);
    // SAFETY: the VMM put the command line in low RAM, identity-mapped.
    unsafe { c_str(paddr, 2048) }
}

/// Runs the PVH checks against the start info at `start_info`; returns
/// the command line.
pub fn run(start_info: u64, report: &mut Report) -> &'static [u8] {
    // SAFETY: written once by the entry code before any Rust code ran.
    let entry = unsafe { &*core::ptr::addr_of!(pvh_entry_state) };
    report.check(
        "pvh-entry",
        u64::from(entry.ebx) == START_INFO
            && entry.cr0 & 0x8000_0001 == 1
            && entry.efer & 0x500 == 0
            && entry.cr4 & 0x20 == 0
            && entry.cs == 0x08,
        format_args!(
            "ebx={:#x} cr0={:#x} cr4={:#x} efer={:#x} cs={:#x}",
            entry.ebx, entry.cr0, entry.cr4, entry.efer, entry.cs
        ),
    );
    let code: u64 = peek(u64::from(entry.gdt_base) + 8);
    report.check(
        "pvh-gdt",
        entry.gdt_base == 0x500 && code == 0x00cf_9b00_0000_ffff,
        format_args!("base={:#x} code={code:#x}", entry.gdt_base),
    );
    let (magic, version): (u32, u32) = (peek(start_info), peek(start_info + 4));
    let nr_modules: u32 = peek(start_info + 12);
    let modlist: u64 = peek(start_info + 16);
    let cmdline_paddr: u64 = peek(start_info + 24);
    let memmap: u64 = peek(start_info + 40);
    let memmap_entries: u32 = peek(start_info + 48);
    report.check(
        "start-info",
        magic == START_MAGIC && version >= 1 && cmdline_paddr == 0x20000,
        format_args!("magic={magic:#x} version={version} cmdline={cmdline_paddr:#x}"),
    );
    let cmdline = cmdline(start_info);
    report.check(
        "cmdline",
        param(cmdline, "testguest.mem_mib").is_some(),
        format_args!("len={}", cmdline.len()),
    );
    let _ = writeln!(
        Serial,
        "cmdline: {}",
        core::str::from_utf8(cmdline).unwrap_or("<not utf-8>")
    );
    let entries = (0..u64::from(memmap_entries.min(128))).map(|i| {
        let entry = memmap + i * 24;
        (peek(entry), peek(entry + 8), peek(entry + 16))
    });
    check_memory_map("pvh-memmap", cmdline, entries, report);
    if let Some(magic) = param(cmdline, "testguest.initrd") {
        let (paddr, size) = if nr_modules >= 1 {
            (peek(modlist), peek(modlist + 8))
        } else {
            (0, 0)
        };
        check_initrd(magic, paddr, size, report);
    }
    run_devices(cmdline, report);
    cmdline
}
