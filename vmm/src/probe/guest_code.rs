//! Hand-encoded x86-64 machine code of the probe guest, with the assembly
//! each byte sequence stands for.
//!
//! The guest signals success with an `out` to [`MARKER_PORT`] from the
//! `syscall` handler. With RFLAGS.IOPL = 0 and no I/O permission bitmap in
//! the TSS, `out` is only allowed at CPL 0, so the marker exit means "the
//! handler ran in ring 0". Every failure path faults, and with no IDT a
//! fault becomes a triple fault (`KVM_EXIT_SHUTDOWN`).

use super::layout::{SYSCALL_HANDLER_ADDR, USER_CODE_ADDR, USER_CS, USER_DS, USER_STACK_TOP};

/// Port the ring-0 code writes to when it runs (the success marker).
pub const MARKER_PORT: u16 = 0x510;
/// Port ring-3 code writes to if `syscall` returned to the next user
/// instruction instead of entering the handler (faults at CPL 3 on a
/// correct CPU, so seeing it as an exit is itself a failure).
pub const USER_PORT: u16 = 0x511;

/// Which guest to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestProgram {
    /// The probe: ring 0 `iretq`s to ring 3, ring 3 executes `syscall`, the
    /// handler at LSTAR does the marker `out`.
    SyscallFromRing3,
    /// Positive control: the ring-0 start code is the handler itself, so the
    /// marker `out` runs at CPL 0 without any ring transition. Proves the
    /// page tables, GDT, long-mode setup and exit handling are right.
    Ring0Marker,
    /// Negative control: ring 0 `iretq`s to ring 3 and ring 3 does the
    /// `out` itself, which must fault (no marker exit).
    Ring3Out,
    /// Ring 0 spins forever (`jmp $`) without exiting: exercises the
    /// deadline and the vCPU kick.
    Spin,
}

/// The code pages of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestImage {
    /// Written at `RING0_CODE_ADDR`; the vCPU starts here in ring 0.
    pub ring0: Vec<u8>,
    /// Written at `USER_CODE_ADDR`.
    pub user: Vec<u8>,
    /// Written at `SYSCALL_HANDLER_ADDR` (MSR_LSTAR).
    pub handler: Vec<u8>,
}

impl GuestProgram {
    /// Assembles the program.
    pub fn image(self) -> GuestImage {
        match self {
            Self::SyscallFromRing3 => GuestImage {
                ring0: iretq_to_user(),
                user: user_syscall(),
                handler: marker_out(),
            },
            Self::Ring0Marker => GuestImage {
                ring0: marker_out(),
                user: halt_loop(),
                handler: halt_loop(),
            },
            Self::Ring3Out => GuestImage {
                ring0: iretq_to_user(),
                user: user_out(),
                handler: marker_out(),
            },
            Self::Spin => GuestImage {
                ring0: vec![0xeb, 0xfe], // jmp $           ; rel8 -2: itself
                user: halt_loop(),
                handler: halt_loop(),
            },
        }
    }
}

/// Checks at compile time that `value` fits a sign-extended `push imm32`.
const fn imm32(value: u64) -> u32 {
    assert!(
        value < 0x8000_0000,
        "push imm32 sign-extends: value must be < 2^31"
    );
    value as u32
}

/// `push imm32` (sign-extended to 64 bits).
fn push_imm32(code: &mut Vec<u8>, imm: u32) {
    code.push(0x68);
    code.extend_from_slice(&imm.to_le_bytes());
}

/// `mov dx, imm16` (operand-size prefix + B8+r).
fn mov_dx(code: &mut Vec<u8>, port: u16) {
    code.extend_from_slice(&[0x66, 0xba]);
    code.extend_from_slice(&port.to_le_bytes());
}

/// Ring 0 → ring 3: build an IRETQ frame and return into user code.
fn iretq_to_user() -> Vec<u8> {
    let mut code = Vec::with_capacity(24);
    push_imm32(&mut code, const { imm32(USER_DS as u64) }); //   push USER_DS        ; SS
    push_imm32(&mut code, const { imm32(USER_STACK_TOP) }); //   push USER_STACK_TOP ; RSP
    push_imm32(&mut code, 0x2); //                              push 0x2            ; RFLAGS: IF=0, IOPL=0
    push_imm32(&mut code, const { imm32(USER_CS as u64) }); //   push USER_CS        ; CS (RPL 3)
    push_imm32(&mut code, const { imm32(USER_CODE_ADDR) }); //   push USER_CODE_ADDR ; RIP
    code.extend_from_slice(&[0x48, 0xcf]); //     iretq
    code
}

/// Ring-3 code: `syscall`, then an `out` that must never run.
fn user_syscall() -> Vec<u8> {
    let mut code = vec![0x0f, 0x05]; // syscall            ; → LSTAR in ring 0
    mov_dx(&mut code, USER_PORT); //    mov dx, USER_PORT  ; only if syscall fell through
    code.push(0xee); //                 out dx, al         ; #GP at CPL 3 → triple fault
    code.extend(halt_loop());
    code
}

/// Ring-3 code: an `out` straight from user mode.
fn user_out() -> Vec<u8> {
    let mut code = Vec::with_capacity(8);
    mov_dx(&mut code, USER_PORT); // mov dx, USER_PORT
    code.push(0xee); //               out dx, al          ; #GP at CPL 3 → triple fault
    code.extend(halt_loop());
    code
}

/// Ring-0 marker: report the CS selector the guest sees on [`MARKER_PORT`].
fn marker_out() -> Vec<u8> {
    let mut code = vec![0x8c, 0xc8]; // mov eax, cs          ; AL = CS selector
    mov_dx(&mut code, MARKER_PORT); //  mov dx, MARKER_PORT
    code.push(0xee); //                 out dx, al           ; CPL 0 only (IOPL 0)
    code.extend(halt_loop());
    code
}

/// `hlt; jmp hlt` — never reached on success (the VMM stops at the marker).
fn halt_loop() -> Vec<u8> {
    vec![
        0xf4, //       hlt
        0xeb, 0xfd, // jmp short -3        ; back to hlt
    ]
}

/// MSR_LSTAR must hold a canonical address; keep the handler low.
const _: () = assert!(SYSCALL_HANDLER_ADDR < 0x8000_0000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iretq_frame_is_ss_rsp_rflags_cs_rip() {
        let code = iretq_to_user();
        #[rustfmt::skip]
        let expected = [
            0x68, 0x1b, 0x00, 0x00, 0x00, // push 0x1b
            0x68, 0x00, 0x90, 0x00, 0x00, // push 0x9000
            0x68, 0x02, 0x00, 0x00, 0x00, // push 0x2
            0x68, 0x23, 0x00, 0x00, 0x00, // push 0x23
            0x68, 0x00, 0x50, 0x00, 0x00, // push 0x5000
            0x48, 0xcf,                   // iretq
        ];
        assert_eq!(code, expected);
    }

    #[test]
    fn user_code_starts_with_syscall_then_faulting_out() {
        assert_eq!(
            user_syscall(),
            [0x0f, 0x05, 0x66, 0xba, 0x11, 0x05, 0xee, 0xf4, 0xeb, 0xfd]
        );
    }

    #[test]
    fn marker_reports_cs_on_port_0x510() {
        assert_eq!(
            marker_out(),
            [0x8c, 0xc8, 0x66, 0xba, 0x10, 0x05, 0xee, 0xf4, 0xeb, 0xfd]
        );
    }

    #[test]
    fn halt_loop_jumps_back_to_hlt() {
        let code = halt_loop();
        // jmp rel8 is relative to the next instruction: 3 bytes after hlt.
        assert_eq!(code[2] as i8, -3);
    }

    #[test]
    fn programs_put_the_marker_where_they_mean_to() {
        let probe = GuestProgram::SyscallFromRing3.image();
        assert_eq!(probe.handler, marker_out());
        assert_eq!(probe.ring0.last(), Some(&0xcf));
        let control = GuestProgram::Ring0Marker.image();
        assert_eq!(control.ring0, marker_out());
        let negative = GuestProgram::Ring3Out.image();
        assert_eq!(negative.user, user_out());
    }
}
