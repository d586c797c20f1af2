//! Static configuration: agents, devices, and who may see what.
//!
//! An agent is one front-end (one virtio-scmi device, one channel). Agent
//! ids are 1..=N in table order; 0 is the platform (SCMI v3.2 §4.2.2.10).
//! A *device* groups resources of one or more protocols (a device id is
//! what BASE_SET_DEVICE_PERMISSIONS names, §4.2.2.12). A resource that
//! belongs to a device is visible to an agent only while the agent has
//! access to that device and to the resource's protocol on it; a resource
//! in no device is visible to every agent that may use its protocol.

/// Most devices a configuration may name.
pub const MAX_DEVICES: usize = 32;

/// One agent.
#[derive(Debug, Clone, Copy)]
pub struct AgentConfig {
    /// Name reported by BASE_DISCOVER_AGENT (at most 15 characters).
    pub name: &'static str,
    /// Whether the agent may change permissions (SET_DEVICE_PERMISSIONS,
    /// SET_PROTOCOL_PERMISSIONS, RESET_AGENT_CONFIGURATION of others).
    pub trusted: bool,
    /// Protocols the agent may use: bit `id - 0x10`. Base is always allowed.
    pub protocols: u32,
    /// Devices the agent may access at start: bit = device index.
    pub devices: u32,
}

/// One device: a named group of resources.
#[derive(Debug, Clone, Copy)]
pub struct DeviceConfig {
    /// Name, for diagnostics.
    pub name: &'static str,
    /// `(protocol id, resource id)` pairs the device owns.
    pub resources: &'static [(u8, u32)],
}

/// The server's static configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// BASE_DISCOVER_VENDOR (at most 15 characters).
    pub vendor: &'static str,
    /// BASE_DISCOVER_SUB_VENDOR.
    pub sub_vendor: &'static str,
    /// BASE_DISCOVER_IMPLEMENTATION_VERSION.
    pub implementation_version: u32,
    /// Agents, ids 1..=N.
    pub agents: &'static [AgentConfig],
    /// Devices, ids 0..N.
    pub devices: &'static [DeviceConfig],
}

/// Bit of protocol `id` in a protocol mask.
pub const fn protocol_bit(id: u8) -> u32 {
    if id >= 0x10 && id < 0x30 {
        1 << (id - 0x10)
    } else {
        0
    }
}

impl Config {
    /// The device owning `(protocol, resource)`, if any.
    pub fn device_of(&self, protocol: u8, resource: u32) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.resources.contains(&(protocol, resource)))
    }
}
