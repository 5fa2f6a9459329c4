//! The code generated from `protos/agent.proto` by `build.rs`: protobuf
//! messages (`agent`) and ttrpc client/server glue (`agent_ttrpc`).

/// What this build speaks.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::undocumented_unsafe_blocks,
    missing_docs
)]
pub mod current {
    include!(concat!(env!("OUT_DIR"), "/current/mod.rs"));
}

/// The API as first published (`tests/v2_0/agent.proto`), for skew tests.
#[doc(hidden)]
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::undocumented_unsafe_blocks,
    missing_docs
)]
pub mod v2_0 {
    include!(concat!(env!("OUT_DIR"), "/v2_0/mod.rs"));
}
