//! Device models: the address buses, the legacy PC devices and virtio.

pub mod bus;
pub mod legacy;
pub mod virtio;

pub use bus::{Bus, BusDevice, SharedDevice};
