//! Per-platform manifests: one device-tree source file per platform, in the
//! FF-A partition manifest format (`compatible = "arm,ffa-manifest-1.0"` or
//! `-1.1`) extended with a `/virtio` node (the virtio devices: transport,
//! queues, shared window, doorbells) and a `/scmi` node (vendor strings,
//! agents and permissions, devices, and every SCMI resource). The format is
//! specified property by property in `manifests/README.md`.
//!
//! What this crate does with a manifest:
//!
//! * **validates** it into a [`Manifest`] ([`load`], [`parse_dtb`]):
//!   unknown nodes and properties, wrong sizes, duplicate ids and names,
//!   values outside their ranges, dangling references and more resources
//!   than the server supports are refused with an [`Error`] naming the file
//!   and the node path;
//! * at **run time**, leaks it into the server's `&'static` configuration
//!   and a [`platform_sim::SimPlatform`] serving its tables
//!   ([`Manifest::into_server_parts`]);
//! * at **build time**, writes the same tables as Rust source
//!   ([`codegen::to_rust`]) for firmware without a heap;
//! * writes the Linux guest's `firmware { scmi { ... } }` node
//!   ([`linux_dt_fragment`]) and the manifest itself back as source
//!   ([`dts::to_dts`]).
//!
//! Source files are compiled to a flattened tree by `dtc`, the reference
//! compiler (Debian package `device-tree-compiler`): it handles includes,
//! labels, expressions and `/bits/ 64` exactly as every other consumer of
//! the file (Hafnium's and TF-A's tooling) does. The blob is then read with
//! the `dtoolkit` crate (no_std, maintained by Google). No maintained Rust
//! crate parses device-tree *source*.
//!
//! The crate refuses to know about transports' mechanics or the protocols'
//! wire formats: it only checks and carries the numbers the manifest
//! gives. The model and validation need only `core` and `alloc`; loading
//! files and running `dtc` need the `std` feature.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

use alloc::string::String;

#[cfg(feature = "std")]
pub mod build;
pub mod codegen;
pub mod dts;
pub mod hafnium;
mod linux;
pub mod model;
mod parse;
mod server;
pub mod spkg;
pub mod tree;

pub use linux::linux_dt_fragment;
pub use model::Manifest;
pub use parse::{LONG_NAME, MAX_AGENTS, PROTOCOLS, SHORT_NAME, VIRTIO_MSG_FFA_UUID};

/// Why a manifest was refused: the file, the node path (empty when the
/// problem is the file as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The file, as given.
    pub file: String,
    /// Node path, e.g. `/scmi/clocks/clock@3`.
    pub node: String,
    /// What is wrong, naming the property where there is one.
    pub message: String,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.node.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.node, self.message)
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Validates a flattened device tree; `file` names it in errors.
pub fn parse_dtb(dtb: &[u8], file: &str) -> Result<Manifest, Error> {
    let to_err = |e: tree::NodeError| Error {
        file: String::from(file),
        node: e.node,
        message: e.message,
    };
    let root = tree::from_dtb(dtb).map_err(to_err)?;
    parse::manifest(&root, file).map_err(to_err)
}

#[cfg(feature = "std")]
mod load;
#[cfg(feature = "std")]
pub use load::{compile, load, load_server_parts};
