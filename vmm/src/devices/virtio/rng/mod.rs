//! virtio-rng (entropy device): fills the guest's write-only buffers with
//! bytes from the host's `getrandom(2)`, so the guest never waits for
//! entropy at boot.

mod device;

pub use device::Rng;

/// The only queue: requests.
pub const REQUEST_QUEUE: usize = 0;
/// Its size.
pub const QUEUE_SIZE: u16 = 256;
/// Most bytes handed out per request (bounds the host work a guest can ask for).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
