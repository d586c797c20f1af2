//! Events waiting for the driver, and how they reach it.
//!
//! The core reports notifications through the service step's
//! [`Notifier`]; here they become pending events: at most one EVENT_USED
//! per queue (a used-buffer notification says "look at the used ring",
//! so two of them say no more than one) and the latest EVENT_CONFIG.
//! Nothing is lost and nothing grows: the driver takes them one at a time
//! with EVENT_POLL, or the transport sends them (indirect messages) or
//! signals them (an FF-A notification) as the driver configured.

use virtio_backend::bus::EventMethod;
use virtio_backend::msg::{self, Revision};
use virtio_backend::service::{Notification, Notifier};

use crate::DEV_NUM;

/// How events reach the driver besides EVENT_POLL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// FF-A notification with this bit (0..64).
    Notif(u8),
    /// Indirect messages.
    Indirect,
}

/// The pending events.
#[derive(Debug, Default)]
pub struct Events {
    /// Bit n: queue n has used buffers the driver was not told about.
    used: u64,
    /// The latest configuration event not yet taken.
    config: Option<Notification>,
    /// Events arrived since the last signal.
    fresh: bool,
    method: Option<Method>,
}

impl Events {
    /// Sets how events are signalled (EVENT_CONFIGURE).
    pub(crate) fn configure(&mut self, method: EventMethod, notif_id: u16) -> bool {
        self.method = match method {
            EventMethod::Poll => None,
            EventMethod::Notif => match u8::try_from(notif_id) {
                // FF-A §10.2: 64 notification bits per endpoint.
                Ok(bit) if bit < 64 => Some(Method::Notif(bit)),
                _ => return false,
            },
            EventMethod::Indirect => Some(Method::Indirect),
            _ => return false,
        };
        true
    }

    pub(crate) fn method(&self) -> Option<Method> {
        self.method
    }

    /// Forgets every event and the method (bus or device reset).
    pub(crate) fn clear(&mut self) {
        *self = Events::default();
    }

    /// Whether events came since the last call.
    pub(crate) fn take_fresh(&mut self) -> bool {
        core::mem::take(&mut self.fresh)
    }

    /// The oldest-first event frame: configuration before used buffers,
    /// lower queues first. Its length in `out`, or `None`.
    pub(crate) fn peek(&self, out: &mut [u8]) -> Option<usize> {
        let n = match self.config {
            Some(c) => c,
            None if self.used != 0 => Notification::Used(self.used.trailing_zeros() as u16),
            None => return None,
        };
        msg::event(n).encode(Revision::V2, DEV_NUM, 0, out).ok()
    }

    /// Drops the event [`peek`](Self::peek) shows.
    pub(crate) fn pop(&mut self) {
        if self.config.take().is_none() {
            self.used &= self.used.wrapping_sub(1);
        }
    }

    /// [`peek`](Self::peek) then [`pop`](Self::pop).
    pub(crate) fn take(&mut self, out: &mut [u8]) -> Option<usize> {
        let n = self.peek(out)?;
        self.pop();
        Some(n)
    }
}

impl Notifier for Events {
    fn notify(&mut self, n: Notification) {
        match n {
            Notification::Used(q) if q < 64 => self.used |= 1 << q,
            Notification::Used(_) => {}
            Notification::Config { .. } => self.config = Some(n),
        }
        self.fresh = true;
    }

    /// The driver reads what we wrote after a call that goes through the
    /// SPMC; ordering our writes before it is enough (a `DMB` on Arm).
    fn barrier(&mut self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }

    /// The signal goes after the step (an FF-A call cannot be made from
    /// inside it): see `FfaDevice::signal`.
    fn ring(&mut self) {}
}
