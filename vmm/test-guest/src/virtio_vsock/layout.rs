//! Where the driver's queues and buffers live: identity-mapped RAM from
//! 8 MiB, laid out at compile time (`check` makes sure the guest image ends
//! below it and the memory reaches past it), and the queues' indexes and
//! sizes.

/// Queue indexes and sizes (powers of two).
pub const RX: u32 = 0;
pub const TX: u32 = 1;
pub const EVENT: u32 = 2;
pub const RX_SIZE: u16 = 64;
pub const TX_SIZE: u16 = 64;
pub const EVENT_SIZE: u16 = 4;
/// Everything lives in identity-mapped RAM from 8 MiB (above the guest
/// image at 2 MiB, whose end is checked): three queues of three 4 KiB
/// pages each (descriptors, avail, used), event buffers, then the rx and
/// tx buffers (one descriptor of 16 KiB each, header and payload), then
/// one receive buffer of [`BUF_ALLOC`] per connection slot.
pub const REGION: u64 = 0x80_0000;
pub const RX_RING: u64 = REGION;
pub const TX_RING: u64 = REGION + 0x3000;
pub const EVENT_RING: u64 = REGION + 0x6000;
pub const EVENT_BUFS: u64 = REGION + 0x9000;
pub const RINGS_END: u64 = REGION + 0xa000;
pub const RX_BUFS: u64 = REGION + 0x10_0000;
pub const TX_BUFS: u64 = REGION + 0x20_0000;
pub const BUF_SIZE: u64 = 0x4000;
pub const CONN_BUFS: u64 = REGION + 0x40_0000;
/// Our receive buffer per connection (`buf_alloc`; a power of two).
pub const BUF_ALLOC: u32 = 256 * 1024;
pub const MAX_CONNS: usize = 8;
pub const REGION_END: u64 = CONN_BUFS + MAX_CONNS as u64 * BUF_ALLOC as u64;
