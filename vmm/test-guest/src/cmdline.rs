//! The kernel command line as the guest received it, and the test guest's
//! `testguest.*` parameters.

/// Reads the NUL-terminated string at `addr` (at most `max` bytes).
///
/// # Safety
/// `addr..addr + max` must be readable memory.
pub unsafe fn c_str(addr: u64, max: usize) -> &'static [u8] {
    let ptr = addr as *const u8;
    let mut len = 0;
    // SAFETY: the caller guarantees `max` readable bytes.
    while len < max && unsafe { ptr.add(len).read_volatile() } != 0 {
        len += 1;
    }
    // SAFETY: the first `len` bytes were just read; nothing writes them.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// The value of `key=value` on the command line.
pub fn param<'a>(cmdline: &'a [u8], key: &str) -> Option<&'a [u8]> {
    cmdline.split(|b| *b == b' ').find_map(|word| {
        let rest = word.strip_prefix(key.as_bytes())?;
        rest.strip_prefix(b"=")
    })
}

/// Parses a decimal number.
pub fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, b| {
        let digit = (*b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}
