//! podvm's local OCI image store.
//!
//! Imports OCI image archives and docker-archives (verifying every digest),
//! keeps blobs content-addressed with an index of names, unpacks images
//! safely into root filesystem trees and builds a read-only EROFS disk image
//! per image id for the microVM. See `docs/images.md`.

mod archive;
mod blobs;
mod config;
mod digest;
mod disk;
mod error;
mod fsutil;
mod import;
mod index;
mod layer;
mod limits;
mod manifest;
mod record;
mod reference;
mod rootfs;
mod store;
mod unpack;

pub use config::ImageConfig;
pub use digest::Digest;
pub use error::{Error, Result};
pub use layer::Compression;
pub use limits::Limits;
pub use record::{ImageRecord, LayerRecord};
pub use reference::normalize_reference;
pub use store::ImageStore;
