//! A [`DeviceCore`] behind the vhost-user front-end messages.
//!
//! vhost-user has no device status register: the front-end (QEMU) runs the
//! virtio handshake with the guest itself and tells the back-end the
//! outcome. This adapter maps the messages onto the core:
//!
//! * `SET_FEATURES` is the end of feature negotiation: the core is reset and
//!   taken through ACKNOWLEDGE, DRIVER, the driver features, FEATURES_OK and
//!   DRIVER_OK (virtio v1.2 §3.1.1), so the device type learns the
//!   negotiated features ([`VirtioDevice::activate`]) and forgets the previous
//!   driver ([`VirtioDevice::reset`]). The same features again while the
//!   rings run (QEMU toggling dirty logging) change nothing.
//! * A ring is *started* by `SET_VRING_KICK` (vhost-user spec, "Starting and
//!   stopping rings") once its size (`SET_VRING_NUM`), addresses
//!   (`SET_VRING_ADDR`, front-end virtual addresses translated through the
//!   memory table) and base (`SET_VRING_BASE`) are known: the core's
//!   [`Queue`](virtio_backend::Queue) is configured, checked against guest
//!   memory and enabled, then positioned at the base.
//! * A started ring is served only while *enabled*: from the start when
//!   `VHOST_USER_F_PROTOCOL_FEATURES` was not negotiated, else after
//!   `SET_VRING_ENABLE 1`.
//! * `GET_VRING_BASE` stops the ring and answers the device's next available
//!   index ([`Queue::avail_base`](virtio_backend::Queue::avail_base)).
//! * A wakeup (kicks, time) runs the core's service step
//!   ([`virtio_backend::service::step`]); its notifications become writes
//!   to the call eventfds. A device that needs a reset
//!   (`DEVICE_NEEDS_RESET`) signals the err eventfds: vhost-user has no
//!   configuration interrupt without a back-end channel.
//!
//! Every error is logged to stderr with the request that caused it and
//! answered as a failure (with `REPLY_ACK`, the front-end sees it).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{Error, GpuBackend, VhostUserBackendReqHandlerMut};
use virtio_backend::service::{self, Bound, Kick, Notification, Notifier, Wake};
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
use virtio_backend::{DeviceCore, VirtioDevice};

use crate::memory::{MemoryTable, RegionDesc};
use crate::sys;

type Result<T> = std::result::Result<T, Error>;

/// `VHOST_USER_F_PROTOCOL_FEATURES` (vhost-user spec): a feature bit the
/// back-end offers in `GET_FEATURES` to say it speaks protocol features.
/// Not a virtio feature; never passed to the core.
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;

/// Protocol features offered (`REPLY_ACK` is added by the `vhost` crate,
/// which implements it): several queues with `GET_QUEUE_NUM`,
/// `RESET_DEVICE`, and `CONFIG`.
///
/// `CONFIG`: `GET_CONFIG`/`SET_CONFIG` are answered from the device's
/// configuration space. virtio-scmi has none (virtio v1.2 §5.17.4), so every
/// read is refused with the zero-length payload the vhost-user spec assigns
/// to a failed `GET_CONFIG`, and every write is refused (a failed ack with
/// `REPLY_ACK`); both leave the connection usable. QEMU 10's
/// vhost-user-scmi has no configuration callbacks: it does not acknowledge
/// `CONFIG` and prints a one-line warning that the back-end offers it.
pub fn protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::RESET_DEVICE
        | VhostUserProtocolFeatures::CONFIG
}

/// Front-end state of one vring.
#[derive(Debug, Default)]
struct Vring {
    /// `SET_VRING_NUM`.
    num: Option<u16>,
    /// `SET_VRING_BASE`, or where the ring stopped.
    base: u16,
    /// `SET_VRING_ADDR`: descriptor, available and used ring, front-end
    /// virtual addresses.
    addr: Option<(u64, u64, u64)>,
    kick: Option<File>,
    call: Option<File>,
    err: Option<File>,
    /// Started by `SET_VRING_KICK`, stopped by `GET_VRING_BASE`.
    started: bool,
    /// `SET_VRING_ENABLE`; `None` until the first one.
    enabled: Option<bool>,
}

/// A virtio device served over vhost-user: the core, the front-end's memory
/// table and the vrings' eventfds.
#[derive(Debug)]
pub struct VhostUserDevice<D, const NQ: usize> {
    core: DeviceCore<D, NQ>,
    mem: Option<MemoryTable>,
    vrings: [Vring; NQ],
    /// Virtio features of the last `SET_FEATURES` (without
    /// [`VHOST_USER_F_PROTOCOL_FEATURES`]).
    features: Option<u64>,
    /// `VHOST_USER_F_PROTOCOL_FEATURES` was negotiated.
    protocol: bool,
    protocol_features: u64,
    /// An error the front-end got no reply for (a failed `GET_*`): the
    /// connection should be dropped so it does not wait forever.
    fatal: Option<String>,
    /// The loop's epoll set, which holds exactly the kick eventfds stored in
    /// `vrings` (edge-triggered, token [`KICK_TOKEN`] + queue index).
    watch: Option<Arc<sys::Epoll>>,
}

/// Epoll token of queue 0's kick eventfd; queue `i` has `KICK_TOKEN + i`.
pub const KICK_TOKEN: u64 = 16;

impl<D: VirtioDevice, const NQ: usize> VhostUserDevice<D, NQ> {
    /// Wraps `device`, waiting for a front-end.
    pub fn new(device: D) -> Self {
        VhostUserDevice {
            core: DeviceCore::new(device),
            mem: None,
            vrings: std::array::from_fn(|_| Vring::default()),
            features: None,
            protocol: false,
            protocol_features: 0,
            fatal: None,
            watch: None,
        }
    }

    /// Keeps the kick eventfds registered in the epoll set `epoll` from now
    /// on (`None`: in none), moving them out of the set used so far. Kicks
    /// are then reported edge-triggered, once per front-end write, and
    /// [`VhostUserDevice::wake`] does not read them.
    pub fn watch_kicks(&mut self, epoll: Option<Arc<sys::Epoll>>) {
        let old = std::mem::replace(&mut self.watch, epoll);
        for (i, v) in self.vrings.iter().enumerate() {
            if let Some(k) = &v.kick {
                if let Some(ep) = &old {
                    // Fails only when it was not registered.
                    let _ = sys::unwatch(ep, k.as_raw_fd());
                }
                self.watch_kick(i, k.as_raw_fd());
            }
        }
    }

    fn watch_kick(&self, i: usize, fd: RawFd) {
        if let Some(ep) = &self.watch
            && let Err(e) = sys::watch(ep, fd, KICK_TOKEN + i as u64, true)
        {
            eprintln!("vhost-user: cannot watch the kick eventfd of queue {i}: {e}");
        }
    }

    fn unwatch(&self, fd: RawFd) {
        if let Some(ep) = &self.watch {
            // Fails only when it was not registered.
            let _ = sys::unwatch(ep, fd);
        }
    }

    /// Replaces ring `i`'s kick eventfd, keeping the epoll set in step: the
    /// old one leaves it before it is closed (the front-end still holds the
    /// same open file, so closing alone would leave it registered).
    fn set_kick(&mut self, i: usize, fd: Option<File>) {
        if let Some(old) = &self.vrings[i].kick {
            self.unwatch(old.as_raw_fd());
        }
        if let Some(new) = &fd {
            self.watch_kick(i, new.as_raw_fd());
        }
        self.vrings[i].kick = fd;
    }

    /// The device core.
    pub fn core(&self) -> &DeviceCore<D, NQ> {
        &self.core
    }

    /// Takes the error that requires dropping the connection, if any.
    pub fn take_fatal(&mut self) -> Option<String> {
        self.fatal.take()
    }

    /// Forgets the front-end: the connection closed. The device is reset,
    /// memory unmapped, eventfds closed; a new front-end starts afresh.
    pub fn disconnect(&mut self) {
        for i in 0..NQ {
            self.set_kick(i, None);
        }
        self.core.reset();
        self.mem = None;
        self.vrings = std::array::from_fn(|_| Vring::default());
        self.features = None;
        self.protocol = false;
        self.protocol_features = 0;
        self.fatal = None;
    }

    /// Serves one wakeup through the core's service step
    /// ([`service::step`]): with the clock at `now_ms` if time is to pass,
    /// the queues of `kicked` (bit `n`: queue `n`) that are started and
    /// enabled, and, with `now_ms`, the rings the front-end asked to be
    /// polled (started without a kick eventfd); then the device is polled
    /// and the notifications go out as call eventfd writes (err eventfds
    /// when the device needs a reset). Kick eventfds are drained unless
    /// the epoll set watches them edge-triggered ([`Self::watch_kicks`]).
    pub fn wake(&mut self, kicked: u64, now_ms: Option<u64>) {
        let mut serve = 0u64;
        for (i, v) in self.vrings.iter().enumerate().take(64) {
            let kick = kicked & (1 << i) != 0;
            if let (true, None, Some(k)) = (kick, &self.watch, &v.kick) {
                sys::drain_eventfd(k);
            }
            let polled = now_ms.is_some() && v.kick.is_none();
            if (kick || polled) && v.started && v.enabled.unwrap_or(!self.protocol) {
                serve |= 1 << i;
            }
        }
        let mut kicks = [Kick::default(); NQ];
        let mut notifier = CallEventfds {
            vrings: &self.vrings,
            used: 0,
            needs_reset: false,
        };
        match &self.mem {
            Some(mem) => {
                let mut ep = Bound::new(&mut self.core, mem.guest(), &mut notifier);
                let wake = Wake {
                    now_ms,
                    kicks: Kick::from_mask(0, serve, &mut kicks),
                    ..Wake::default()
                };
                service::step(&mut [&mut ep], wake);
            }
            // No front-end memory: only time passes.
            None => now_ms.into_iter().for_each(|now| self.core.advance(now)),
        }
    }

    /// Index of an existing vring.
    fn vring(&mut self, index: u32, what: &str) -> Result<usize> {
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        if i >= NQ || self.core.queues()[i].max_size() == 0 {
            eprintln!("vhost-user: {what}: no queue {index}");
            return Err(Error::InvalidParam);
        }
        Ok(i)
    }

    /// Runs the virtio handshake on the core for `features`.
    fn negotiate(&mut self, features: u64) -> std::result::Result<(), String> {
        self.stop_all();
        self.core.reset();
        let steps = [ACKNOWLEDGE, ACKNOWLEDGE | DRIVER];
        for s in steps {
            self.core.set_status(s).map_err(|e| e.to_string())?;
        }
        for block in 0..2 {
            self.core
                .set_driver_feature_block(block, (features >> (32 * block)) as u32)
                .map_err(|e| e.to_string())?;
        }
        let ok = ACKNOWLEDGE | DRIVER | FEATURES_OK;
        self.core.set_status(ok).map_err(|e| {
            format!(
                "features {features:#x} refused ({e}); offered {:#x}",
                self.core.device_features()
            )
        })?;
        self.core
            .set_status(ok | DRIVER_OK)
            .map_err(|e| e.to_string())
    }

    /// Stops every ring (the core's queues go back to reset state).
    fn stop_all(&mut self) {
        for i in 0..NQ {
            self.stop(i);
        }
    }

    /// Stops ring `i`; returns where it stopped.
    fn stop(&mut self, i: usize) -> u16 {
        let (device, queues) = self.core.parts_mut();
        let v = &mut self.vrings[i];
        if v.started {
            let q = &mut queues[i];
            if q.ready() {
                v.base = q.avail_base();
                q.reset();
                device.reset_queue(i as u16);
            }
            v.started = false;
            eprintln!("vhost-user: queue {i} stopped at {}", v.base);
            // A restarted ring is initialised disabled again when protocol
            // features are in use (vhost-user spec, "Ring states").
            v.enabled = None;
            // The front-end owns the kick eventfd again (vhost-user spec:
            // the back-end stops watching it once the ring is stopped).
            self.set_kick(i, None);
        }
        self.vrings[i].base
    }

    /// Starts ring `i`: configures the core's queue from the front-end's
    /// description.
    fn start(&mut self, i: usize) -> std::result::Result<(), String> {
        let Some(features) = self.features else {
            return Err("ring started before SET_FEATURES".into());
        };
        let mem = self
            .mem
            .as_ref()
            .ok_or("ring started before SET_MEM_TABLE")?;
        let v = &self.vrings[i];
        let num = v.num.ok_or("ring started before SET_VRING_NUM")?;
        let (desc, avail, used) = v.addr.ok_or("ring started before SET_VRING_ADDR")?;
        let tr = |what: &str, a: u64| {
            mem.user_to_guest(a)
                .ok_or_else(|| format!("{what} address {a:#x} is in no region of the memory table"))
        };
        let (desc, avail, used) = (
            tr("descriptor table", desc)?,
            tr("available ring", avail)?,
            tr("used ring", used)?,
        );
        let base = v.base;
        let (_, queues) = self.core.parts_mut();
        let q = &mut queues[i];
        q.reset();
        q.set_size(num);
        q.set_desc_table_address(desc);
        q.set_avail_ring_address(avail);
        q.set_used_ring_address(used);
        // Checks size and every ring area against guest memory (virtio v1.2
        // §2.7 alignment and size table).
        q.enable(mem.guest(), features)
            .map_err(|e| format!("ring refused: {e}"))?;
        q.set_avail_base(base);
        self.vrings[i].started = true;
        eprintln!("vhost-user: queue {i} started (size {num}, base {base})");
        Ok(())
    }

    fn fail<T>(&self, what: &str, msg: impl std::fmt::Display) -> Result<T> {
        eprintln!("vhost-user: {what}: {msg}");
        Err(Error::InvalidParam)
    }
}

impl<D: VirtioDevice, const NQ: usize> VhostUserBackendReqHandlerMut for VhostUserDevice<D, NQ> {
    fn set_owner(&mut self) -> Result<()> {
        Ok(())
    }

    fn reset_owner(&mut self) -> Result<()> {
        // Deprecated in the spec; treated as a full reset of the device.
        self.reset_device()
    }

    fn reset_device(&mut self) -> Result<()> {
        // vhost-user spec RESET_DEVICE: back to the state right after the
        // connection, except that protocol features stay negotiated.
        let pf = self.protocol_features;
        self.stop_all();
        self.disconnect();
        self.protocol_features = pf;
        Ok(())
    }

    fn get_features(&mut self) -> Result<u64> {
        Ok(self.core.device_features() | VHOST_USER_F_PROTOCOL_FEATURES)
    }

    fn set_features(&mut self, features: u64) -> Result<()> {
        let virtio = features & !VHOST_USER_F_PROTOCOL_FEATURES;
        let running = self.vrings.iter().any(|v| v.started);
        if self.features == Some(virtio) && running && !self.core.needs_reset() {
            return Ok(());
        }
        self.features = None;
        self.protocol = features & VHOST_USER_F_PROTOCOL_FEATURES != 0;
        match self.negotiate(virtio) {
            Ok(()) => {
                eprintln!("vhost-user: features {virtio:#x} negotiated");
                self.features = Some(virtio);
                Ok(())
            }
            Err(e) => self.fail("SET_FEATURES", e),
        }
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<Vec<u64>>> {
        let regions: Vec<RegionDesc> = ctx
            .iter()
            .map(|r| RegionDesc {
                guest_phys_addr: r.guest_phys_addr,
                size: r.memory_size,
                user_addr: r.user_addr,
                mmap_offset: r.mmap_offset,
            })
            .collect();
        match MemoryTable::map(&regions, &files) {
            Ok(t) => {
                eprintln!(
                    "vhost-user: memory table: {}",
                    regions
                        .iter()
                        .map(|r| format!("{:#x}+{:#x}", r.guest_phys_addr, r.size))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for r in t.unsealed() {
                    eprintln!(
                        "vhost-user: warning: region {:#x}+{:#x}: its file is not sealed against shrinking; truncating it would crash this daemon (QEMU: memory-backend-memfd with seal=on, the default)",
                        r.guest_phys_addr, r.size
                    );
                }
                // Started rings keep their guest physical addresses; the new
                // table serves them from now on.
                self.mem = Some(t);
                Ok(None)
            }
            Err(e) => self.fail("SET_MEM_TABLE", e),
        }
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> Result<()> {
        let i = self.vring(index, "SET_VRING_NUM")?;
        let max = self.core.queues()[i].max_size();
        if self.vrings[i].started {
            return self.fail("SET_VRING_NUM", format_args!("queue {i} is running"));
        }
        match u16::try_from(num) {
            Ok(n) if n > 0 && n <= max => {
                self.vrings[i].num = Some(n);
                Ok(())
            }
            _ => self.fail(
                "SET_VRING_NUM",
                format_args!("queue {i}: size {num} (at most {max})"),
            ),
        }
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> Result<()> {
        let i = self.vring(index, "SET_VRING_ADDR")?;
        let addr = (descriptor, available, used);
        let v = &mut self.vrings[i];
        if v.started && v.addr != Some(addr) {
            return self.fail("SET_VRING_ADDR", format_args!("queue {i} is running"));
        }
        v.addr = Some(addr);
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> Result<()> {
        let i = self.vring(index, "SET_VRING_BASE")?;
        if self.vrings[i].started {
            return self.fail("SET_VRING_BASE", format_args!("queue {i} is running"));
        }
        // Split rings: the next available index (the upper half is for
        // packed rings' used index, which this back-end does not offer).
        self.vrings[i].base = base as u16;
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> Result<VhostUserVringState> {
        let Ok(i) = self.vring(index, "GET_VRING_BASE") else {
            self.fatal = Some(format!(
                "GET_VRING_BASE for queue {index}, which does not exist"
            ));
            return Err(Error::InvalidParam);
        };
        let base = self.stop(i);
        Ok(VhostUserVringState::new(index, u32::from(base)))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let i = self.vring(u32::from(index), "SET_VRING_KICK")?;
        if let Some(f) = &fd
            && let Err(e) = sys::set_nonblocking(f)
        {
            return self.fail("SET_VRING_KICK", e);
        }
        self.set_kick(i, fd);
        if self.vrings[i].started {
            return Ok(());
        }
        if let Err(e) = self.start(i) {
            self.set_kick(i, None);
            return self.fail("SET_VRING_KICK", format_args!("queue {i}: {e}"));
        }
        // Buffers made available before the start are served now.
        self.wake(1 << i, None);
        Ok(())
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let i = self.vring(u32::from(index), "SET_VRING_CALL")?;
        self.vrings[i].call = fd;
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let i = self.vring(u32::from(index), "SET_VRING_ERR")?;
        self.vrings[i].err = fd;
        Ok(())
    }

    fn get_protocol_features(&mut self) -> Result<VhostUserProtocolFeatures> {
        Ok(protocol_features())
    }

    fn set_protocol_features(&mut self, features: u64) -> Result<()> {
        self.protocol_features = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> Result<u64> {
        Ok(self
            .core
            .queues()
            .iter()
            .filter(|q| q.max_size() > 0)
            .count() as u64)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> Result<()> {
        let i = self.vring(index, "SET_VRING_ENABLE")?;
        self.vrings[i].enabled = Some(enable);
        if enable {
            self.wake(1 << i, None);
        }
        Ok(())
    }

    fn get_config(
        &mut self,
        offset: u32,
        size: u32,
        _flags: VhostUserConfigFlags,
    ) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; size as usize];
        match self.core.read_config(offset, &mut buf) {
            Ok(_) => Ok(buf),
            // virtio-scmi has no configuration space (virtio v1.2 §5.17.4).
            Err(e) => self.fail("GET_CONFIG", format_args!("{size} bytes at {offset}: {e}")),
        }
    }

    fn set_config(&mut self, offset: u32, buf: &[u8], _flags: VhostUserConfigFlags) -> Result<()> {
        match self.core.write_config(offset, buf) {
            Ok(_) => Ok(()),
            Err(e) => self.fail(
                "SET_CONFIG",
                format_args!("{} bytes at {offset}: {e}", buf.len()),
            ),
        }
    }

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> Result<()> {
        self.fail("GPU_SET_SOCKET", "not a GPU")
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> Result<File> {
        self.fail("GET_SHARED_OBJECT", "not offered")
    }

    fn get_inflight_fd(
        &mut self,
        _inflight: &VhostUserInflight,
    ) -> Result<(VhostUserInflight, File)> {
        self.fatal = Some("GET_INFLIGHT_FD is not offered".into());
        Err(Error::InvalidOperation("inflight"))
    }

    fn set_inflight_fd(&mut self, _inflight: &VhostUserInflight, _file: File) -> Result<()> {
        self.fail("SET_INFLIGHT_FD", "not offered")
    }

    fn get_max_mem_slots(&mut self) -> Result<u64> {
        self.fatal = Some("GET_MAX_MEM_SLOTS is not offered".into());
        Err(Error::InvalidOperation("mem slots"))
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<u64>> {
        self.fail("ADD_MEM_REG", "CONFIGURE_MEM_SLOTS is not offered")
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> Result<()> {
        self.fail("REM_MEM_REG", "CONFIGURE_MEM_SLOTS is not offered")
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> Result<Option<File>> {
        self.fail("SET_DEVICE_STATE_FD", "migration is not supported")
    }

    fn check_device_state(&mut self) -> Result<()> {
        self.fail("CHECK_DEVICE_STATE", "migration is not supported")
    }

    fn get_shmem_config(&mut self) -> Result<VhostUserShMemConfig> {
        self.fatal = Some("GET_SHMEM_CONFIG is not offered".into());
        Err(Error::InvalidOperation("shmem"))
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> Result<()> {
        self.fatal = Some("SET_LOG_BASE: LOG_SHMFD is not offered".into());
        Err(Error::InvalidOperation("log"))
    }
}

/// The service step's notifier for vhost-user: used-buffer notifications
/// are writes to the rings' call eventfds, and a device that needs a reset
/// signals the err eventfds (vhost-user has no configuration interrupt
/// without a back-end channel). Writing an eventfd is a system call, which
/// orders the device's earlier stores to guest memory before the front-end
/// sees the signal, so the barrier has nothing to do.
struct CallEventfds<'a> {
    vrings: &'a [Vring],
    used: u64,
    needs_reset: bool,
}

impl Notifier for CallEventfds<'_> {
    fn notify(&mut self, n: Notification) {
        match n {
            Notification::Used(q) if q < 64 => self.used |= 1 << q,
            Notification::Used(_) => {}
            Notification::Config { needs_reset, .. } => self.needs_reset |= needs_reset,
        }
    }

    fn barrier(&mut self) {}

    fn ring(&mut self) {
        for (q, v) in self.vrings.iter().enumerate().take(64) {
            if self.used & (1 << q) == 0 {
                continue;
            }
            if let Some(call) = &v.call
                && let Err(e) = sys::signal_eventfd(call)
            {
                eprintln!("vhost-user: cannot signal the call eventfd of queue {q}: {e}");
            }
        }
        if self.needs_reset {
            eprintln!(
                "vhost-user: the device needs a reset (the driver corrupted a ring); \
                 signalling the err eventfds"
            );
            for v in self.vrings {
                if let Some(err) = &v.err {
                    let _ = sys::signal_eventfd(err);
                }
            }
        }
        self.used = 0;
        self.needs_reset = false;
    }
}
