//! The service step: its order (time, messages, kicks, polls, delivery)
//! and the barrier contract (clean, then barrier, then doorbell), recorded
//! by doubles of the two seams.

use core::cell::RefCell;
use core::ptr::NonNull;
use std::rc::Rc;
use std::vec::Vec;

use super::control::Echo;
use crate::control::DeviceCore;
use crate::device::VirtioDevice;
use crate::memory::{CacheMaintenance, Coherent, FixedWindow, GuestMemory};
use crate::mock::MockSplitQueue;
use crate::msg::{self, Request, Response};
use crate::queue::{Queue, QueueError};
use crate::service::{self, Bound, Endpoint, Kick, Mailbox, Notification, Notifier, Wake};
use crate::spec::features::VERSION_1;
use crate::spec::ring::AVAIL_F_NO_INTERRUPT;
use crate::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};

/// What the doubles saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    /// A cache clean of `len` bytes at window offset `at` (device `dev`).
    Clean {
        dev: u8,
        at: usize,
        len: usize,
    },
    Notify(u8, Notification),
    Barrier(u8),
    Ring(u8),
    /// The device's clock was advanced.
    Advance(u8, u64),
    /// The device processed a queue.
    Process(u8, u16),
    Poll(u8),
}

type Log = Rc<RefCell<Vec<Ev>>>;

/// Cache maintenance that records the cleans of one device's window.
struct RecordingCache {
    dev: u8,
    base: usize,
    log: Log,
}

impl CacheMaintenance for RecordingCache {
    fn before_read(&self, _va: usize, _len: usize) {}
    fn after_write(&self, va: usize, len: usize) {
        self.log.borrow_mut().push(Ev::Clean {
            dev: self.dev,
            at: va - self.base,
            len,
        });
    }
}

/// A notifier that records what it is asked to do.
struct RecordingNotifier {
    dev: u8,
    log: Log,
}

impl Notifier for RecordingNotifier {
    fn notify(&mut self, n: Notification) {
        self.log.borrow_mut().push(Ev::Notify(self.dev, n));
    }
    fn barrier(&mut self) {
        self.log.borrow_mut().push(Ev::Barrier(self.dev));
    }
    fn ring(&mut self) {
        self.log.borrow_mut().push(Ev::Ring(self.dev));
    }
}

/// [`Echo`] that records when time passes, queues are processed and it is
/// polled.
struct Recorder {
    dev: u8,
    inner: Echo,
    log: Log,
}

impl VirtioDevice for Recorder {
    fn device_id(&self) -> u32 {
        self.inner.device_id()
    }
    fn device_features(&self) -> u64 {
        self.inner.device_features()
    }
    fn max_queue_size(&self, index: u16) -> u16 {
        self.inner.max_queue_size(index)
    }
    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        self.log.borrow_mut().push(Ev::Process(self.dev, index));
        self.inner.process_queue(index, queues, mem)
    }
    fn poll<M: GuestMemory, const H: usize>(
        &mut self,
        _queues: &mut [Queue<H>],
        _mem: &M,
    ) -> Result<(), QueueError> {
        self.log.borrow_mut().push(Ev::Poll(self.dev));
        Ok(())
    }
    fn advance(&mut self, now_ms: u64) {
        self.log.borrow_mut().push(Ev::Advance(self.dev, now_ms));
    }
    fn reset(&mut self) {}
}

/// A mailbox of queued `(device, frame)` messages that keeps the replies.
#[derive(Default)]
struct ListMailbox {
    inbox: std::collections::VecDeque<(usize, Vec<u8>)>,
    replies: Vec<(usize, Vec<u8>)>,
    frame: usize,
}

impl Mailbox for ListMailbox {
    fn next(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        let (d, m) = self.inbox.pop_front()?;
        buf[..m.len()].copy_from_slice(&m);
        Some((d, m.len()))
    }
    fn reply(&mut self, device: usize, response: &[u8]) {
        self.replies.push((device, response.to_vec()));
    }
    fn frame_size(&self) -> usize {
        if self.frame == 0 { 64 } else { self.frame }
    }
}

const RING: u64 = 0x1000;
const SIZE: usize = 0x10000;

/// Driver memory for two devices, each with a driver-side window (plain)
/// and a device-side window whose cleans are recorded.
struct Rig {
    buf: Vec<u128>,
    log: Log,
}

impl Rig {
    fn new() -> Self {
        Rig {
            buf: std::vec![0u128; 2 * SIZE / 16],
            log: Rc::default(),
        }
    }

    fn ptr(&mut self, dev: u8) -> NonNull<u8> {
        let p = self.buf.as_mut_ptr().cast::<u8>();
        NonNull::new(p.wrapping_add(usize::from(dev) * SIZE)).unwrap()
    }

    fn driver(&mut self, dev: u8) -> FixedWindow<'static, Coherent> {
        let p = self.ptr(dev);
        // SAFETY: the buffer lives as long as the rig, which every test
        // keeps until its windows are gone; both windows only use volatile
        // copies and atomics, as a driver and a device sharing memory do.
        unsafe { FixedWindow::new(p, SIZE, 0, Coherent) }.unwrap()
    }

    fn device(&mut self, dev: u8) -> FixedWindow<'static, RecordingCache> {
        let p = self.ptr(dev);
        let cache = RecordingCache {
            dev,
            base: p.as_ptr() as usize,
            log: Rc::clone(&self.log),
        };
        // SAFETY: as in `driver`.
        unsafe { FixedWindow::new(p, SIZE, 0, cache) }.unwrap()
    }

    fn core(&self, dev: u8) -> DeviceCore<Recorder, 2, 0> {
        DeviceCore::new(Recorder {
            dev,
            inner: Echo::default(),
            log: Rc::clone(&self.log),
        })
    }

    fn notifier(&self, dev: u8) -> RecordingNotifier {
        RecordingNotifier {
            dev,
            log: Rc::clone(&self.log),
        }
    }

    fn take(&self) -> Vec<Ev> {
        core::mem::take(&mut *self.log.borrow_mut())
    }
}

fn bring_up<M: GuestMemory>(core: &mut DeviceCore<Recorder, 2, 0>, m: &M) {
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    core.set_driver_feature_block(1, (VERSION_1 >> 32) as u32)
        .unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK).unwrap();
    let (d, a, u) = MockSplitQueue::new(m, RING, 16).addresses();
    core.set_vqueue(m, 0, 16, d, a, u).unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        .unwrap();
}

/// The used ring of the queue at `RING` (16 entries): 16 descriptors of 16
/// bytes, then the available ring (4 + 2 * 16 + 2 bytes), 4-aligned.
fn used_ring() -> core::ops::Range<usize> {
    let start = (RING as usize + 16 * 16 + 4 + 2 * 16 + 2).next_multiple_of(4);
    start..start + 4 + 8 * 16 + 2
}

#[test]
fn cleans_then_barrier_then_doorbell_and_nothing_after() {
    let mut rig = Rig::new();
    let (drv_mem, dev_mem) = (rig.driver(0), rig.device(0));
    let mut core = rig.core(0);
    bring_up(&mut core, &drv_mem);
    let mut drv = MockSplitQueue::new(&drv_mem, RING, 16);
    drv_mem.write(0x8000, b"ping").unwrap();
    drv.add_chain(&[(0x8000, 4, false), (0x8100, 4, true)]);
    rig.take();
    let mut ep = Bound::new(&mut core, &dev_mem, rig.notifier(0));
    let r = service::step(
        &mut [&mut ep],
        Wake {
            kicks: &[Kick {
                device: 0,
                queue: 0,
            }],
            ..Wake::default()
        },
    );
    assert_eq!((r.kicks, r.notifications, r.rings), (1, 1, 1));
    let log = rig.take();
    let barrier = log.iter().position(|e| *e == Ev::Barrier(0)).unwrap();
    // The reply and the used ring were cleaned, all before the barrier.
    let cleans: Vec<(usize, usize)> = log
        .iter()
        .filter_map(|e| match *e {
            Ev::Clean { at, len, .. } => Some((at, len)),
            _ => None,
        })
        .collect();
    assert!(cleans.contains(&(0x8100, 4)), "{log:?}");
    assert!(
        cleans.iter().any(|&(at, _)| used_ring().contains(&at)),
        "{log:?}"
    );
    assert!(
        log[barrier..]
            .iter()
            .all(|e| !matches!(e, Ev::Clean { .. })),
        "a clean after the barrier: {log:?}"
    );
    // Notify before the barrier; the ring right after it, last of all.
    let notify = log
        .iter()
        .position(|e| *e == Ev::Notify(0, Notification::Used(0)))
        .unwrap();
    assert!(notify < barrier);
    assert_eq!(&log[barrier..], &[Ev::Barrier(0), Ev::Ring(0)]);
    assert_eq!(drv.pop_used(), Some((0, 4)));
}

#[test]
fn nothing_to_notify_rings_nothing_and_issues_no_barrier() {
    let mut rig = Rig::new();
    let (drv_mem, dev_mem) = (rig.driver(0), rig.device(0));
    let mut core = rig.core(0);
    bring_up(&mut core, &drv_mem);
    let mut drv = MockSplitQueue::new(&drv_mem, RING, 16);
    // The driver asks for no interrupts (virtio v1.2 §2.7.7).
    drv.set_avail_flags(AVAIL_F_NO_INTERRUPT);
    drv.add_chain(&[(0x8000, 4, false), (0x8100, 4, true)]);
    rig.take();
    let mut ep = Bound::new(&mut core, &dev_mem, rig.notifier(0));
    let kick = [Kick {
        device: 0,
        queue: 0,
    }];
    let r = service::step(
        &mut [&mut ep],
        Wake {
            kicks: &kick,
            ..Wake::default()
        },
    );
    assert_eq!((r.kicks, r.notifications, r.rings), (1, 0, 0));
    let log = rig.take();
    assert!(
        !log.iter()
            .any(|e| matches!(e, Ev::Barrier(_) | Ev::Ring(_) | Ev::Notify(..))),
        "{log:?}"
    );
    // A step with nothing at all: every device is still polled, nothing
    // rung.
    let r = service::step(&mut [&mut ep], Wake::default());
    assert_eq!(r, service::Report::default());
    assert_eq!(rig.take(), [Ev::Poll(0)]);
}

#[test]
fn time_first_then_messages_and_kicks_then_every_device_polled_then_delivery() {
    let mut rig = Rig::new();
    let (drv0, dev0, drv1, dev1) = (rig.driver(0), rig.device(0), rig.driver(1), rig.device(1));
    let (mut c0, mut c1) = (rig.core(0), rig.core(1));
    bring_up(&mut c0, &drv0);
    bring_up(&mut c1, &drv1);
    let mut q0 = MockSplitQueue::new(&drv0, RING, 16);
    let mut q1 = MockSplitQueue::new(&drv1, RING, 16);
    q0.add_chain(&[(0x8000, 4, false), (0x8100, 4, true)]);
    q1.add_chain(&[(0x8000, 4, false), (0x8100, 4, true)]);
    rig.take();
    let mut e0 = Bound::new(&mut c0, &dev0, rig.notifier(0));
    let mut e1 = Bound::new(&mut c1, &dev1, rig.notifier(1)).on_bus(msg::Revision::V2, 5);
    // Device 1 is kicked by an EVENT_AVAIL message, device 0 directly; a
    // kick for a device that is not there is ignored.
    let mut frame = [0u8; 64];
    let n = Request::EventAvail {
        vq_index: 0,
        next_offset: 0,
    }
    .encode(5, 0, &mut frame)
    .unwrap();
    let mut mailbox = ListMailbox::default();
    mailbox.inbox.push_back((1, frame[..n].to_vec()));
    let kicks = [
        Kick {
            device: 0,
            queue: 0,
        },
        Kick {
            device: 7,
            queue: 0,
        },
    ];
    let r = service::step(
        &mut [&mut e0, &mut e1],
        Wake {
            now_ms: Some(250),
            mailbox: Some(&mut mailbox),
            kicks: &kicks,
        },
    );
    assert_eq!(
        (
            r.messages,
            r.kicks,
            r.unknown_device,
            r.notifications,
            r.rings
        ),
        (1, 1, 1, 2, 2)
    );
    assert!(mailbox.replies.is_empty(), "EVENT_AVAIL is not answered");
    let order: Vec<Ev> = rig
        .take()
        .into_iter()
        .filter(|e| !matches!(e, Ev::Clean { .. } | Ev::Notify(..)))
        .collect();
    assert_eq!(
        order,
        [
            Ev::Advance(0, 250),
            Ev::Advance(1, 250),
            Ev::Process(1, 0),
            Ev::Process(0, 0),
            Ev::Poll(0),
            Ev::Poll(1),
            Ev::Barrier(0),
            Ev::Ring(0),
            Ev::Barrier(1),
            Ev::Ring(1),
        ]
    );
}

#[test]
fn messages_are_answered_through_the_mailbox_and_bounded_per_step() {
    let mut rig = Rig::new();
    let dev_mem = rig.device(0);
    let mut core = rig.core(0);
    let mut ep = Bound::new(&mut core, &dev_mem, rig.notifier(0)).on_bus(msg::Revision::V2, 3);
    let mut frame = [0u8; 64];
    let mut mailbox = ListMailbox::default();
    let n = Request::SetDeviceStatus {
        status: u32::from(ACKNOWLEDGE),
    }
    .encode(3, 9, &mut frame)
    .unwrap();
    mailbox.inbox.push_back((0, frame[..n].to_vec()));
    // Addressed to another device number on the bus: dropped, no reply.
    let m = Request::GetDeviceStatus.encode(4, 10, &mut frame).unwrap();
    mailbox.inbox.push_back((0, frame[..m].to_vec()));
    // For a device the step does not serve.
    mailbox.inbox.push_back((2, frame[..m].to_vec()));
    let r = service::step(
        &mut [&mut ep],
        Wake {
            mailbox: Some(&mut mailbox),
            ..Wake::default()
        },
    );
    assert_eq!(
        (r.messages, r.dropped, r.unknown_device, r.more),
        (2, 1, 1, false)
    );
    assert_eq!(mailbox.replies.len(), 1);
    let (h, resp) = Response::decode(&mailbox.replies[0].1, msg::Revision::V2).unwrap();
    assert_eq!(h.token, 9);
    assert_eq!(
        resp,
        Response::DeviceStatus {
            msg_id: msg::id::SET_DEVICE_STATUS,
            status: u32::from(ACKNOWLEDGE)
        }
    );
    // A driver that keeps sending cannot hold a step: at most
    // MAX_MESSAGES_PER_STEP, then `more`.
    let n = Request::GetDeviceStatus.encode(3, 1, &mut frame).unwrap();
    for _ in 0..service::MAX_MESSAGES_PER_STEP + 5 {
        mailbox.inbox.push_back((0, frame[..n].to_vec()));
    }
    mailbox.replies.clear();
    let r = service::step(
        &mut [&mut ep],
        Wake {
            mailbox: Some(&mut mailbox),
            ..Wake::default()
        },
    );
    assert!(r.more);
    assert_eq!(mailbox.replies.len(), service::MAX_MESSAGES_PER_STEP);
    assert_eq!(mailbox.inbox.len(), 5);
}

#[test]
fn a_ring_corrupted_by_the_driver_is_reported_as_needs_reset() {
    let mut rig = Rig::new();
    let (drv_mem, dev_mem) = (rig.driver(0), rig.device(0));
    let mut core = rig.core(0);
    bring_up(&mut core, &drv_mem);
    let drv = MockSplitQueue::new(&drv_mem, RING, 16);
    // avail.idx 100 ahead with a 16-entry ring (virtio v1.2 §2.7.13.3).
    drv.set_avail_idx(100);
    rig.take();
    let mut ep = Bound::new(&mut core, &dev_mem, rig.notifier(0));
    let kick = [Kick {
        device: 0,
        queue: 0,
    }];
    let r = service::step(
        &mut [&mut ep],
        Wake {
            kicks: &kick,
            ..Wake::default()
        },
    );
    assert_eq!(r.notifications, 1);
    let log: Vec<Ev> = rig
        .take()
        .into_iter()
        .filter(|e| matches!(e, Ev::Notify(..) | Ev::Barrier(_) | Ev::Ring(_)))
        .collect();
    assert_eq!(
        log,
        [
            Ev::Notify(
                0,
                Notification::Config {
                    needs_reset: true,
                    status: ACKNOWLEDGE
                        | DRIVER
                        | FEATURES_OK
                        | DRIVER_OK
                        | crate::spec::status::NEEDS_RESET,
                    generation: 0
                }
            ),
            Ev::Barrier(0),
            Ev::Ring(0)
        ]
    );
    assert!(core.needs_reset());
}

/// The endpoint seam is object-safe and a notifier may be borrowed.
#[test]
fn endpoints_of_different_types_share_a_step() {
    let mut rig = Rig::new();
    let (drv_mem, dev_mem) = (rig.driver(0), rig.device(0));
    let mut a = rig.core(0);
    bring_up(&mut a, &drv_mem);
    let mut b: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut n = rig.notifier(1);
    let mut ea = Bound::new(&mut a, &dev_mem, rig.notifier(0));
    let mut eb = Bound::new(&mut b, &dev_mem, &mut n).on_bus(msg::Revision::V2, 1);
    let devices: [&mut dyn Endpoint; 2] = [&mut ea, &mut eb];
    let mut devices = devices;
    let r = service::step(&mut devices, Wake::default());
    assert_eq!(r.rings, 0);
}

#[test]
fn kicks_from_a_mask_in_queue_order_as_many_as_fit() {
    use crate::service::Kick;
    let k = |queue| Kick { device: 3, queue };
    let mut out = [Kick::default(); 4];
    assert_eq!(
        Kick::from_mask(3, 0b1010_0101, &mut out),
        &[k(0), k(2), k(5), k(7)]
    );
    assert_eq!(Kick::from_mask(3, 1 << 63 | 1, &mut out), &[k(0), k(63)]);
    assert_eq!(Kick::from_mask(3, 0, &mut out), &[]);
    let mut two = [Kick::default(); 2];
    assert_eq!(Kick::from_mask(3, u64::MAX, &mut two), &[k(0), k(1)]);
}
