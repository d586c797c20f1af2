//! What a transport needs from the server to carry one agent's channel:
//! its requests in, its replies out, and the platform-to-agent messages
//! waiting for it ([`Backend`]).
//!
//! Implemented for an owned [`Server`], a `&mut` to any backend, and a
//! `&RefCell` of one, so that several channels (virtio-scmi devices,
//! socket connections) can share one server.

use core::cell::RefCell;

use crate::platform::Platform;
use crate::server::{Handled, Server};

/// What a transport needs from the SCMI server: one request in, one
/// response out, and the agent's queued platform-to-agent messages.
///
/// Implemented for an owned [`Server`], a `&mut Server`, and a
/// `&RefCell<Server>` (several devices over one server).
pub trait Backend {
    /// Serves one request from `agent` ([`Server::handle`]).
    fn handle(&mut self, agent: u32, request: &[u8], response: &mut [u8]) -> Handled;
    /// Whether a notification or delayed response waits for `agent`.
    fn has_event(&self, agent: u32) -> bool;
    /// Moves the oldest waiting message for `agent` into `buf` if it fits;
    /// returns its length ([`Server::next_event`]).
    fn next_event(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize>;
    /// Whether `agent` has a P2A channel ([`Server::set_p2a`]).
    fn set_p2a(&mut self, agent: u32, p2a: bool);
    /// The driver of `agent` went away (device reset): no P2A channel, no
    /// notification subscriptions, no negotiated versions, nothing waiting
    /// in the outbox. Platform settings and permissions stay.
    fn forget_driver(&mut self, agent: u32);
    /// Time passed: the platform's clock reads `now_ms` ([`Server::tick`];
    /// the same time twice changes nothing).
    fn tick(&mut self, now_ms: u64);
}

impl<P: Platform, const A: usize, const E: usize> Backend for Server<P, A, E> {
    fn handle(&mut self, agent: u32, request: &[u8], response: &mut [u8]) -> Handled {
        Server::handle(self, agent, request, response)
    }

    fn has_event(&self, agent: u32) -> bool {
        Server::has_event(self, agent)
    }

    fn next_event(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize> {
        Server::next_event(self, agent, buf)
    }

    fn set_p2a(&mut self, agent: u32, p2a: bool) {
        Server::set_p2a(self, agent, p2a);
    }

    fn forget_driver(&mut self, agent: u32) {
        Server::forget_agent(self, agent);
    }

    fn tick(&mut self, now_ms: u64) {
        Server::tick(self, now_ms);
    }
}

impl<B: Backend + ?Sized> Backend for &mut B {
    fn handle(&mut self, agent: u32, request: &[u8], response: &mut [u8]) -> Handled {
        (**self).handle(agent, request, response)
    }

    fn has_event(&self, agent: u32) -> bool {
        (**self).has_event(agent)
    }

    fn next_event(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize> {
        (**self).next_event(agent, buf)
    }

    fn set_p2a(&mut self, agent: u32, p2a: bool) {
        (**self).set_p2a(agent, p2a);
    }

    fn forget_driver(&mut self, agent: u32) {
        (**self).forget_driver(agent);
    }

    fn tick(&mut self, now_ms: u64) {
        (**self).tick(now_ms);
    }
}

/// A server shared by several devices. The device only borrows it for the
/// duration of one call; a borrow that fails (a re-entrant call by the
/// integrator) is treated as "nothing could be done": the request is
/// completed with used length 0 and no event is taken.
impl<B: Backend> Backend for &RefCell<B> {
    fn handle(&mut self, agent: u32, request: &[u8], response: &mut [u8]) -> Handled {
        match self.try_borrow_mut() {
            Ok(mut s) => s.handle(agent, request, response),
            Err(_) => Handled::Malformed,
        }
    }

    fn has_event(&self, agent: u32) -> bool {
        self.try_borrow().is_ok_and(|s| s.has_event(agent))
    }

    fn next_event(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize> {
        self.try_borrow_mut().ok()?.next_event(agent, buf)
    }

    fn set_p2a(&mut self, agent: u32, p2a: bool) {
        if let Ok(mut s) = self.try_borrow_mut() {
            s.set_p2a(agent, p2a);
        }
    }

    fn forget_driver(&mut self, agent: u32) {
        if let Ok(mut s) = self.try_borrow_mut() {
            s.forget_driver(agent);
        }
    }

    fn tick(&mut self, now_ms: u64) {
        if let Ok(mut s) = self.try_borrow_mut() {
            s.tick(now_ms);
        }
    }
}
