//! Checks of the boot protocol state the VMM handed over: zero page,
//! command line, e820 map, initrd, GDT, page tables and CPUID (the PVH
//! entry's own checks are in `pvh.rs`), then the virtio-mmio devices.

use core::arch::asm;
use core::fmt::Write;

use crate::cmdline::{c_str, number, param};
use crate::io::Serial;

/// Where the VMM puts the zero page (and passes it in rsi).
pub const ZERO_PAGE: u64 = 0x7000;

/// Reads a `T` at guest-physical `addr` (identity-mapped).
pub fn peek<T: Copy>(addr: u64) -> T {
    // SAFETY: the checks only read the zero page, the command line, the
    // page tables and the initrd, all inside the identity-mapped first GiB
    // of RAM the VMM described.
    unsafe { (addr as *const T).read_unaligned() }
}

/// Counts checks and prints each result.
pub struct Report {
    pub failed: u32,
}

impl Report {
    pub fn check(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments<'_>) {
        if ok {
            let _ = writeln!(Serial, "ok {name}");
        } else {
            self.failed += 1;
            let _ = writeln!(Serial, "FAIL {name}: {detail}");
        }
    }
}

/// Runs every check of the Linux 64-bit boot protocol against the zero
/// page at `zero_page`; returns the command line.
pub fn run_linux64(zero_page: u64, report: &mut Report) -> &'static [u8] {
    report.check(
        "rsi",
        zero_page == ZERO_PAGE,
        format_args!("rsi={zero_page:#x}"),
    );
    let boot_flag: u16 = peek(ZERO_PAGE + 0x1fe);
    let header: u32 = peek(ZERO_PAGE + 0x202);
    let loader: u8 = peek(ZERO_PAGE + 0x210);
    report.check(
        "zero-page",
        boot_flag == 0xaa55 && header == 0x5372_6448 && loader == 0xff,
        format_args!("boot_flag={boot_flag:#x} header={header:#x} loader={loader:#x}"),
    );
    let cmdline = check_cmdline(report);
    if let Some(expected) = param(cmdline, "testguest.zero_page_version").and_then(hex) {
        // A bzImage's setup header, copied into the zero page.
        let version: u16 = peek(ZERO_PAGE + 0x206);
        report.check(
            "setup-header",
            u64::from(version) == expected,
            format_args!("version={version:#x} expected={expected:#x}"),
        );
    }
    let count: u8 = peek(ZERO_PAGE + 0x1e8);
    let entries = (0..u64::from(count.min(128))).map(|i| {
        let entry = ZERO_PAGE + 0x2d0 + i * 20;
        (peek(entry), peek(entry + 8), peek(entry + 16))
    });
    check_memory_map("e820", cmdline, entries, report);
    if let Some(magic) = param(cmdline, "testguest.initrd") {
        let image: u32 = peek(ZERO_PAGE + 0x218);
        let size: u32 = peek(ZERO_PAGE + 0x21c);
        check_initrd(magic, u64::from(image), u64::from(size), report);
    }
    check_cpu_state(report);
    check_page_tables(report);
    run_devices(cmdline, report);
    cmdline
}

/// The checks that do not depend on the boot protocol: CPUID and the
/// virtio-mmio devices named on the command line.
pub fn run_devices(cmdline: &'static [u8], report: &mut Report) {
    check_cpuid(cmdline, report);
    check_mptable(cmdline, report);
    crate::smp::check(cmdline, report);
    check_virtio_mmio(cmdline, report);
    crate::virtio_blk::check(cmdline, report);
    crate::virtio_vsock::check(cmdline, report);
}

/// The VMM's identity map covers the first GiB only: map the 2 MiB page
/// holding `addr` (below 4 GiB), uncached, with a page directory at 0xc000.
pub fn map_above_1gib(addr: u64) {
    const PD: u64 = 0xc000;
    let gib = (addr >> 30) & 3;
    let slot = (addr >> 21) & 511;
    // SAFETY: 0xc000 is unused low RAM; PDPTE entry `gib` (1..=3) is unused
    // by the VMM's map, so no live mapping changes; cr3 reload flushes the TLB.
    unsafe {
        ((PD + slot * 8) as *mut u64).write_volatile((addr & !0x1f_ffff) | 0x93);
        ((0xa000 + gib * 8) as *mut u64).write_volatile(PD | 0x3);
        asm!("mov rax, cr3", "mov cr3, rax", out("rax") _, options(nostack));
    }
}

/// Parses `0x...` hexadecimal.
pub fn hex(text: &[u8]) -> Option<u64> {
    let digits = text.strip_prefix(b"0x")?;
    digits.iter().try_fold(0u64, |acc, b| {
        let digit = (*b as char).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(u64::from(digit))
    })
}

/// The bases of the `virtio_mmio.device=SIZE@BASE:IRQ` windows on the
/// command line, in order.
pub fn virtio_mmio_bases(cmdline: &[u8]) -> impl Iterator<Item = u64> + '_ {
    cmdline
        .split(|b| *b == b' ')
        .filter_map(|word| word.strip_prefix(b"virtio_mmio.device="))
        .filter_map(|spec| {
            let at = spec.iter().position(|b| *b == b'@')?;
            let rest = &spec[at + 1..];
            let colon = rest.iter().position(|b| *b == b':')?;
            hex(&rest[..colon])
        })
}

/// Reads the 32-bit register at `offset` of the (mapped) window at `base`.
fn mmio_read(base: u64, offset: u64) -> u32 {
    // SAFETY: the VMM declared an MMIO window at `base`, mapped by
    // `map_above_1gib`; reads exit to the VMM.
    unsafe { ((base + offset) as *const u32).read_volatile() }
}

/// The base of the first window whose device ID is `device_id`, mapped.
pub fn find_virtio_device(cmdline: &[u8], device_id: u32) -> Option<u64> {
    virtio_mmio_bases(cmdline).find(|base| {
        map_above_1gib(*base);
        mmio_read(*base, 8) == device_id
    })
}

/// Reads the identification registers (magic, version, device ID) of the
/// first window on the command line.
fn check_virtio_mmio(cmdline: &[u8], report: &mut Report) {
    let Some(expected) = param(cmdline, "testguest.virtio").and_then(number) else {
        return;
    };
    let Some(base) = virtio_mmio_bases(cmdline).next() else {
        report.check(
            "virtio-mmio",
            false,
            format_args!("no virtio_mmio.device= on the command line"),
        );
        return;
    };
    map_above_1gib(base);
    let (magic, version, device) = (mmio_read(base, 0), mmio_read(base, 4), mmio_read(base, 8));
    report.check(
        "virtio-mmio",
        magic == 0x7472_6976 && version == 2 && u64::from(device) == expected,
        format_args!("base={base:#x} magic={magic:#x} version={version} device={device}"),
    );
}

fn check_cmdline(report: &mut Report) -> &'static [u8] {
    let ptr: u32 = peek(ZERO_PAGE + 0x228);
    let size: u32 = peek(ZERO_PAGE + 0x238);
    // SAFETY: 0x20000..0x20800 lies in low RAM.
    let cmdline = unsafe { c_str(u64::from(ptr), 2048) };
    report.check(
        "cmdline",
        ptr == 0x20000
            && cmdline.len() == size as usize
            && param(cmdline, "testguest.mem_mib").is_some(),
        format_args!("ptr={ptr:#x} size={size} len={}", cmdline.len()),
    );
    let _ = writeln!(
        Serial,
        "cmdline: {}",
        core::str::from_utf8(cmdline).unwrap_or("<not utf-8>")
    );
    cmdline
}

/// Checks a memory map of `(addr, size, type)` entries (e820 or PVH's)
/// against the `testguest.mem_mib` the test booted the VM with.
pub fn check_memory_map(
    name: &str,
    cmdline: &[u8],
    entries: impl Iterator<Item = (u64, u64, u32)>,
    report: &mut Report,
) {
    let mut count = 0;
    let mut total = 0u64;
    let mut covers_self = false;
    let mut first_at_zero = false;
    for (i, (addr, size, kind)) in entries.enumerate() {
        count += 1;
        let _ = writeln!(Serial, "{name}: {addr:#x}+{size:#x} type {kind}");
        if kind == 1 {
            total += size;
            covers_self |= addr <= 0x20_0000 && 0x20_0000 < addr + size;
            first_at_zero |= i == 0 && addr == 0;
        }
    }
    let mem = param(cmdline, "testguest.mem_mib")
        .and_then(number)
        .unwrap_or(0)
        << 20;
    // RAM below 640 KiB minus the EBDA, plus everything from 1 MiB up.
    let expected = 0x9_fc00 + mem.saturating_sub(0x10_0000);
    report.check(
        name,
        count >= 2 && first_at_zero && covers_self && total == expected,
        format_args!("count={count} total={total:#x} expected={expected:#x}"),
    );
}

/// Checks that the initrd at `image` (`size` bytes) starts with `magic`.
pub fn check_initrd(magic: &[u8], image: u64, size: u64, report: &mut Report) {
    let mut matches =
        size >= magic.len() as u64 && image.is_multiple_of(4096) && image >= 0x20_0000;
    if matches {
        if (1 << 30..1 << 32).contains(&image) {
            // The VMM places the initrd at the top of low RAM.
            map_above_1gib(image);
        }
        for (i, b) in magic.iter().enumerate() {
            matches &= peek::<u8>(image + i as u64) == *b;
        }
    }
    report.check(
        "initrd",
        matches,
        format_args!("image={image:#x} size={size}"),
    );
}

fn check_cpu_state(report: &mut Report) {
    let mut gdtr = [0u8; 10];
    let (cr0, cr3, cr4, cs): (u64, u64, u64, u16);
    // SAFETY: reads descriptor-table and control registers only.
    unsafe {
        asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr(), options(nostack));
        asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack));
        asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        asm!("mov {:x}, cs", out(reg) cs, options(nomem, nostack));
    }
    let gdt_base = u64::from_le_bytes([
        gdtr[2], gdtr[3], gdtr[4], gdtr[5], gdtr[6], gdtr[7], gdtr[8], gdtr[9],
    ]);
    let code: u64 = peek(gdt_base + 8);
    report.check(
        "gdt",
        gdt_base == 0x500 && cs == 0x08 && code == 0x00af_9b00_0000_ffff,
        format_args!("base={gdt_base:#x} cs={cs:#x} code={code:#x}"),
    );
    report.check(
        "control-registers",
        cr0 & 0x8000_0001 == 0x8000_0001 && cr4 & 0x20 != 0 && cr3 == 0x9000,
        format_args!("cr0={cr0:#x} cr3={cr3:#x} cr4={cr4:#x}"),
    );
}

fn check_page_tables(report: &mut Report) {
    let pml4: u64 = peek(0x9000);
    let pdpte: u64 = peek(0xa000);
    let mut bad = None;
    for i in 0..512u64 {
        // The CPU may have set the accessed (0x20) and dirty (0x40) bits.
        let pde: u64 = peek::<u64>(0xb000 + i * 8) & !0x60;
        if pde != (i << 21) | 0x83 {
            bad = Some((i, pde));
            break;
        }
    }
    report.check(
        "page-tables",
        pml4 & !0xfff == 0xa000 && pdpte & !0xfff == 0xb000 && bad.is_none(),
        format_args!("pml4={pml4:#x} pdpte={pdpte:#x} bad pde={bad:x?}"),
    );
}

fn check_cpuid(cmdline: &[u8], report: &mut Report) {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    let logical = (leaf1.ebx >> 16) & 0xff;
    let apic_id = leaf1.ebx >> 24;
    let hypervisor = leaf1.ecx & (1 << 31) != 0;
    let vcpus = param(cmdline, "testguest.vcpus")
        .and_then(number)
        .unwrap_or(1);
    report.check(
        "cpuid",
        hypervisor && apic_id == 0 && u64::from(logical) == vcpus,
        format_args!("apic_id={apic_id} logical={logical} hypervisor={hypervisor}"),
    );
}

/// Finds the MP floating pointer the way Linux does (16-byte aligned in
/// 0xF0000..0x100000), checks both checksums and counts the processor
/// entries against `testguest.vcpus`, the first being the BSP.
fn check_mptable(cmdline: &[u8], report: &mut Report) {
    let sum = |at: u64, len: u64| (0..len).fold(0u8, |s, i| s.wrapping_add(peek::<u8>(at + i)));
    let pointer = (0xf_0000u64..0x10_0000)
        .step_by(16)
        .find(|at| peek::<[u8; 4]>(*at) == *b"_MP_" && sum(*at, 16) == 0);
    let Some(pointer) = pointer else {
        report.check("mptable", false, format_args!("no _MP_ floating pointer"));
        return;
    };
    let table = u64::from(peek::<u32>(pointer + 4));
    let len = u64::from(peek::<u16>(table + 4));
    let count: u16 = peek(table + 34);
    let header_ok = peek::<[u8; 4]>(table) == *b"PCMP" && sum(table, len) == 0;
    let (mut cpus, mut bsp_first, mut at) = (0u64, false, table + 44);
    for _ in 0..count {
        let (kind, flags): (u8, u8) = (peek(at), peek(at + 3));
        if kind == 0 {
            bsp_first |= cpus == 0 && flags == 3;
            cpus += 1;
        }
        // Processor entries are 20 bytes, the others 8.
        at += if kind == 0 { 20 } else { 8 };
    }
    let vcpus = param(cmdline, "testguest.vcpus")
        .and_then(number)
        .unwrap_or(1);
    report.check(
        "mptable",
        header_ok && bsp_first && cpus == vcpus && at == table + len,
        format_args!(
            "pointer={pointer:#x} table={table:#x} len={len} cpus={cpus} bsp_first={bsp_first}"
        ),
    );
}
