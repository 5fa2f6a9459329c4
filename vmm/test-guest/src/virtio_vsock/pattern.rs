//! The test data the client sends and expects back (the host side of the
//! tests computes the same), and its fast fill and check: eight bytes at
//! a time, for where KVM emulates every guest instruction.

use super::mem::{read, write};

/// The test data: byte `i` of the stream with `seed` (the host side of the
/// tests computes the same).
pub fn pattern(seed: u8, i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i >> 8) as u8) ^ seed
}

/// `i % 251` for `i` in `0..258`: the eight bytes from index `m < 251`,
/// read as one little-endian word, are the `i % 251` parts of [`pattern`]
/// for stream offsets `i..i + 8` where `i % 251 == m`.
static CYCLE: [u8; 258] = {
    let mut cycle = [0u8; 258];
    let mut i = 0;
    while i < cycle.len() {
        cycle[i] = (i % 251) as u8;
        i += 1;
    }
    cycle
};

/// [`pattern`] bytes `i..i + 8` as a little-endian word, for `i` a
/// multiple of 8 (so that the eight share `i >> 8`) with `i % 251 == m`.
#[inline(always)]
fn pattern_word(seed: u8, i: u64, m: usize) -> u64 {
    debug_assert!(i.is_multiple_of(8) && m < 251);
    // SAFETY: `m < 251`, so the eight bytes lie in CYCLE.
    let cycle = unsafe { CYCLE.as_ptr().add(m).cast::<u64>().read_unaligned() };
    cycle ^ (u64::from((i >> 8) as u8 ^ seed) * 0x0101_0101_0101_0101)
}

/// Writes `len` bytes of the pattern `seed` from stream offset `from` at
/// `to`, eight at a time from the first offset that is a multiple of 8.
///
/// About 1.6 instructions per byte, where a byte at a time took 17 to 20
/// (the `% 251` alone nine). That matters where KVM emulates every guest
/// instruction: at about 10 µs per byte, generating the client's data or
/// checking the host's answer took seconds inside one
/// [`Vsock::poll`](super::Vsock::poll), and packets queued behind it went
/// unanswered that long: a host connection's REQUEST outlived the VMM's
/// 2 s connect timeout, and the VMM reset it.
// `#[inline]`: the caller (`send.rs`) is another codegen unit; inlined
// there, the seed is a constant, as the count above assumes.
#[inline]
pub fn fill_pattern(seed: u8, from: u64, to: u64, len: u32) {
    let end = from + u64::from(len);
    let mut i = from;
    while i < end && !i.is_multiple_of(8) {
        write(to + (i - from), pattern(seed, i));
        i += 1;
    }
    let mut m = (i % 251) as usize;
    while end - i >= 8 {
        let at = (to + (i - from)) as *mut u64;
        // SAFETY: as for `mem::write`; the buffer need not be aligned.
        unsafe { at.write_unaligned(pattern_word(seed, i, m)) };
        i += 8;
        m += 8;
        if m >= 251 {
            m -= 251;
        }
    }
    while i < end {
        write(to + (i - from), pattern(seed, i));
        i += 1;
    }
}

/// The first stream offset in `from..from + len` where the bytes at `at`
/// differ from the pattern `seed`; compared eight at a time as
/// [`fill_pattern`] writes them.
// `#[inline]`: a copy in the caller's codegen unit (`receive.rs`), where
// the seed is a constant.
#[inline]
pub fn pattern_mismatch(seed: u8, from: u64, at: u64, len: u32) -> Option<u64> {
    let end = from + u64::from(len);
    let differs = |i: u64| read::<u8>(at + (i - from)) != pattern(seed, i);
    let mut i = from;
    while i < end && !i.is_multiple_of(8) {
        if differs(i) {
            return Some(i);
        }
        i += 1;
    }
    let mut m = (i % 251) as usize;
    while end - i >= 8 {
        let word = (at + (i - from)) as *const u64;
        // SAFETY: as for `mem::read`; the buffer need not be aligned.
        if unsafe { word.read_unaligned() } != pattern_word(seed, i, m) {
            return (i..i + 8).find(|&j| differs(j));
        }
        i += 8;
        m += 8;
        if m >= 251 {
            m -= 251;
        }
    }
    (i..end).find(|&j| differs(j))
}
