//! Sizes both sides agree on. ttrpc refuses messages over 4 MiB
//! (`ttrpc::MESSAGE_LENGTH_MAX`); chunks of bytes stay well below that.

/// Most bytes one ReadStdout/ReadStderr/ReadLog answer carries.
pub const MAX_READ_CHUNK: u32 = 1024 * 1024;
/// Most bytes one WriteStdin request may carry.
pub const MAX_WRITE_CHUNK: usize = 1024 * 1024;
/// Most events one GetEvents answer carries.
pub const MAX_EVENTS_PER_REPLY: usize = 256;
