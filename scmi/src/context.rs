//! What a protocol handler sees while it serves one command: the calling
//! agent, every agent's run-time state, the static configuration, the
//! platform and where platform-to-agent messages go ([`Cx`]).
//!
//! The handlers in [`crate::protocols`] depend on this module and on the
//! platform traits; the [`Server`](crate::Server) builds a [`Cx`] per
//! command and owns the state it borrows. Nothing here knows the protocol
//! table.

use crate::config::{AgentConfig, Config, MAX_DEVICES, protocol_bit};
use crate::header::{Header, MsgType, Status};

/// Kinds of per-resource notification subscriptions an agent can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum NotifyKind {
    /// Base: BASE_ERROR_EVENT (resource 0).
    BaseErrors,
    /// Power: POWER_STATE_CHANGED.
    PowerState,
    /// Power: POWER_STATE_CHANGE_REQUESTED.
    PowerStateRequested,
    /// System power: SYSTEM_POWER_STATE_NOTIFIER (resource 0).
    SystemPower,
    /// Performance: PERFORMANCE_LIMITS_CHANGED.
    PerfLimits,
    /// Performance: PERFORMANCE_LEVEL_CHANGED.
    PerfLevel,
    /// Clock: CLOCK_RATE_CHANGED.
    ClockRate,
    /// Clock: CLOCK_RATE_CHANGE_REQUESTED.
    ClockRateRequested,
    /// Sensor: SENSOR_TRIP_POINT_EVENT.
    SensorTrip,
    /// Sensor: SENSOR_UPDATE.
    SensorUpdate,
    /// Reset: RESET_ISSUED.
    ResetIssued,
}

/// Number of [`NotifyKind`]s.
pub const NOTIFY_KINDS: usize = 11;

/// Per-agent run-time state.
#[derive(Debug, Clone, Copy)]
pub struct AgentState {
    /// Devices the agent may access (bit = device index).
    pub devices: u32,
    /// Per device, protocols denied on it (bit `id - 0x10`).
    pub denied_protocols: [u32; MAX_DEVICES],
    /// Per protocol (index `id - 0x10`), the version negotiated with
    /// NEGOTIATE_PROTOCOL_VERSION, 0 if none.
    pub negotiated: [u32; 16],
    /// Notification subscriptions, one bit per resource id (< 128).
    pub notify: [u128; NOTIFY_KINDS],
}

impl AgentState {
    pub(crate) const fn new(devices: u32) -> Self {
        AgentState {
            devices,
            denied_protocols: [0; MAX_DEVICES],
            negotiated: [0; 16],
            notify: [0; NOTIFY_KINDS],
        }
    }

    /// Whether the agent subscribed to `kind` for `resource`.
    pub fn subscribed(&self, kind: NotifyKind, resource: u32) -> bool {
        resource < 128 && self.notify[kind as usize] & (1u128 << resource) != 0
    }

    /// Subscribes or unsubscribes; NOT_FOUND past the bitmap.
    pub fn set_notify(&mut self, kind: NotifyKind, resource: u32, on: bool) -> Result<(), Status> {
        if resource >= 128 {
            return Err(Status::NotFound);
        }
        let bit = 1u128 << resource;
        let m = &mut self.notify[kind as usize];
        if on {
            *m |= bit;
        } else {
            *m &= !bit;
        }
        Ok(())
    }
}

/// Everything a protocol handler may touch while serving one command.
pub struct Cx<'s, P, const A: usize> {
    /// The platform.
    pub platform: &'s mut P,
    /// Static configuration.
    pub config: &'static Config,
    /// Calling agent, 1-based.
    pub agent: u32,
    /// All agents' state (index = id - 1).
    pub agents: &'s mut [AgentState; A],
    /// Whether the caller's transport has a P2A channel (notifications and
    /// delayed responses possible).
    pub p2a: bool,
    /// The command's header.
    pub header: Header,
    /// Where notifications and delayed responses go.
    pub(crate) outbox: &'s mut dyn EventSink,
}

/// Where handlers queue platform-to-agent messages.
pub trait EventSink {
    /// Queues `body` (everything after the header) for `agent`.
    fn queue(&mut self, agent: u32, header: Header, body: &[u8]) -> Result<(), Status>;
    /// Slots `agent` may still fill.
    fn free_for(&self, agent: u32) -> usize;
    /// Drops everything waiting for `agent`.
    fn clear_agent(&mut self, agent: u32);
}

/// Agents of `config` a server for `A` agents serves.
pub(crate) const fn agent_count<const A: usize>(config: &Config) -> u32 {
    let n = config.agents.len();
    (if n < A { n } else { A }) as u32
}

impl<P, const A: usize> Cx<'_, P, A> {
    /// Agents the server serves.
    pub fn agent_count(&self) -> u32 {
        agent_count::<A>(self.config)
    }

    /// Index of agent `agent` (1-based) in [`Cx::agents`] and the
    /// configuration's agents; `None` for 0 and for agents not served.
    pub fn agent_index(&self, agent: u32) -> Option<usize> {
        let i = usize::try_from(agent).ok()?.checked_sub(1)?;
        let served = usize::try_from(self.agent_count()).ok()?;
        (i < served).then_some(i)
    }

    /// The configuration of agent `agent` (1-based), if served.
    pub fn agent_config(&self, agent: u32) -> Option<&'static AgentConfig> {
        self.config.agents.get(self.agent_index(agent)?)
    }

    /// Whether agent `agent` (1-based) is served and trusted.
    pub fn trusted(&self, agent: u32) -> bool {
        self.agent_config(agent).is_some_and(|c| c.trusted)
    }

    /// The state of agent `agent` (1-based); NOT_FOUND if not served.
    pub fn state_of(&mut self, agent: u32) -> Result<&mut AgentState, Status> {
        let i = self.agent_index(agent).ok_or(Status::NotFound)?;
        self.agents.get_mut(i).ok_or(Status::NotFound)
    }

    /// The caller's state. The server only builds a context for an agent
    /// it serves, so this does not fail; if it did, GENERIC_ERROR.
    pub fn me(&mut self) -> Result<&mut AgentState, Status> {
        self.state_of(self.agent).map_err(|_| Status::GenericError)
    }

    /// Whether agent `agent` (1-based) may see `resource` of `protocol`.
    pub fn visible_to(&self, agent: u32, protocol: u8, resource: u32) -> bool {
        let i = (agent as usize).wrapping_sub(1);
        let Some(st) = self.agents.get(i) else {
            return false;
        };
        let Some(cfg) = self.config.agents.get(i) else {
            return false;
        };
        if cfg.protocols & protocol_bit(protocol) == 0 {
            return false;
        }
        match self.config.device_of(protocol, resource) {
            None => true,
            Some(d) => {
                let bit = u32::try_from(d).ok().and_then(|d| 1u32.checked_shl(d));
                bit.is_some_and(|b| st.devices & b != 0)
                    && st
                        .denied_protocols
                        .get(d)
                        .is_some_and(|m| m & protocol_bit(protocol) == 0)
            }
        }
    }

    /// Whether the caller may see `resource` of the current protocol.
    pub fn visible(&self, resource: u32) -> bool {
        self.visible_to(self.agent, self.header.protocol, resource)
    }

    /// NOT_FOUND unless the caller may see `resource` (SCMI v3.2
    /// §4.2.2.12: a denied device's resources are not found).
    pub fn check(&self, resource: u32) -> Result<(), Status> {
        if self.visible(resource) {
            Ok(())
        } else {
            Err(Status::NotFound)
        }
    }

    /// Entry `id` of `table`, one of the platform's resource tables, if it
    /// exists and the caller may see it; NOT_FOUND otherwise (SCMI v3.2
    /// §4.2.2.12, and each protocol's "resource id does not exist").
    pub fn resource<T>(&self, table: &'static [T], id: u32) -> Result<&'static T, Status> {
        self.check(id)?;
        table.get(id as usize).ok_or(Status::NotFound)
    }

    /// Queues a delayed response to the current command for the caller.
    /// `body` starts with the status word.
    pub fn delayed_response(&mut self, body: &[u8]) -> Result<(), Status> {
        let h = self.header.with_type(MsgType::DelayedResponse);
        self.outbox.queue(self.agent, h, body)
    }

    /// Whether a delayed response could be queued now: async commands are
    /// refused with BUSY otherwise, so a delayed response is never lost.
    pub fn can_delay(&self) -> bool {
        self.p2a && self.outbox.free_for(self.agent) > 0
    }

    /// Sends notification `event` of the current protocol about `resource`
    /// to every agent subscribed to `kind` for it that may see it.
    pub fn notify_all(&mut self, kind: NotifyKind, resource: u32, event: u8, body: &[u8]) {
        for a in 1..=A as u32 {
            let Some(st) = self.agents.get((a as usize).wrapping_sub(1)) else {
                continue;
            };
            if st.subscribed(kind, resource) && self.visible_to(a, self.header.protocol, resource) {
                let h = Header {
                    msg_id: event,
                    msg_type: MsgType::Notification,
                    protocol: self.header.protocol,
                    token: 0,
                };
                // A full outbox drops the notification (counted there).
                let _ = self.outbox.queue(a, h, body);
            }
        }
    }
}
