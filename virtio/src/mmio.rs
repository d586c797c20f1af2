//! virtio-mmio version 2 register file (virtio v1.2 §4.2.2) mapped onto the
//! [`DeviceCore`] state machine.
//!
//! The adapter serves register reads and writes however they reach it:
//! trapped MMIO accesses (a hypervisor's IOREQ/ioeventfd path) or a register
//! block in shared memory (virtio over ivshmem). It keeps only what the
//! register interface itself needs (selectors, staged queue configuration,
//! the interrupt status word); everything else is the core's.

use crate::control::{ControlError, DeviceCore};
use crate::device::{Interrupts, VirtioDevice};
use crate::memory::GuestMemory;
use crate::queue::DEFAULT_HELD;

/// Register offsets (virtio v1.2 §4.2.2, table "MMIO Device Register Layout").
pub mod reg {
    /// 0x74726976 ("virt").
    pub const MAGIC_VALUE: u32 = 0x000;
    /// Device version: 2 for non-legacy devices.
    pub const VERSION: u32 = 0x004;
    /// Virtio device id.
    pub const DEVICE_ID: u32 = 0x008;
    /// Vendor id.
    pub const VENDOR_ID: u32 = 0x00c;
    /// Device features, the 32-bit block selected by `DEVICE_FEATURES_SEL`.
    pub const DEVICE_FEATURES: u32 = 0x010;
    /// Selects the device feature block.
    pub const DEVICE_FEATURES_SEL: u32 = 0x014;
    /// Driver features, block selected by `DRIVER_FEATURES_SEL`.
    pub const DRIVER_FEATURES: u32 = 0x020;
    /// Selects the driver feature block.
    pub const DRIVER_FEATURES_SEL: u32 = 0x024;
    /// Selects the queue the queue registers refer to.
    pub const QUEUE_SEL: u32 = 0x030;
    /// Maximum size of the selected queue (0: not available).
    pub const QUEUE_NUM_MAX: u32 = 0x034;
    /// Size of the selected queue.
    pub const QUEUE_NUM: u32 = 0x038;
    /// Selected queue ready.
    pub const QUEUE_READY: u32 = 0x044;
    /// Queue notifier: the value is the queue index.
    pub const QUEUE_NOTIFY: u32 = 0x050;
    /// Interrupt status: bit 0 used buffer, bit 1 configuration change.
    pub const INTERRUPT_STATUS: u32 = 0x060;
    /// Interrupt acknowledge.
    pub const INTERRUPT_ACK: u32 = 0x064;
    /// Device status.
    pub const STATUS: u32 = 0x070;
    /// Descriptor area, low 32 bits.
    pub const QUEUE_DESC_LOW: u32 = 0x080;
    /// Descriptor area, high 32 bits.
    pub const QUEUE_DESC_HIGH: u32 = 0x084;
    /// Driver area, low 32 bits.
    pub const QUEUE_DRIVER_LOW: u32 = 0x090;
    /// Driver area, high 32 bits.
    pub const QUEUE_DRIVER_HIGH: u32 = 0x094;
    /// Device area, low 32 bits.
    pub const QUEUE_DEVICE_LOW: u32 = 0x0a0;
    /// Device area, high 32 bits.
    pub const QUEUE_DEVICE_HIGH: u32 = 0x0a4;
    /// Selects a shared memory region.
    pub const SHM_SEL: u32 = 0x0ac;
    /// Shared memory region length, low.
    pub const SHM_LEN_LOW: u32 = 0x0b0;
    /// Shared memory region length, high.
    pub const SHM_LEN_HIGH: u32 = 0x0b4;
    /// Shared memory region base, low.
    pub const SHM_BASE_LOW: u32 = 0x0b8;
    /// Shared memory region base, high.
    pub const SHM_BASE_HIGH: u32 = 0x0bc;
    /// Resets the selected queue (`VIRTIO_F_RING_RESET`).
    pub const QUEUE_RESET: u32 = 0x0c0;
    /// Configuration generation.
    pub const CONFIG_GENERATION: u32 = 0x0fc;
    /// Start of the device-specific configuration space.
    pub const CONFIG: u32 = 0x100;
}

/// `MagicValue`.
pub const MAGIC: u32 = 0x7472_6976;

/// `InterruptStatus` bit: a queue has used buffers.
pub const INT_USED_BUFFER: u32 = 1 << 0;
/// `InterruptStatus` bit: configuration changed.
pub const INT_CONFIG: u32 = 1 << 1;

#[derive(Debug, Clone, Copy, Default)]
struct Staged {
    size: u16,
    desc: u64,
    driver: u64,
    device: u64,
}

/// What a register write asks of the integrator.
#[must_use = "an interrupt may need raising"]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Notifications produced by the write (from a queue notify, a device
    /// reset, `NEEDS_RESET`). Already folded into `InterruptStatus`.
    pub interrupts: Interrupts,
    /// What the control plane refused, if anything.
    pub refused: Option<ControlError>,
}

impl WriteOutcome {
    /// Whether the interrupt line should be raised.
    pub fn raise_irq(&self) -> bool {
        !self.interrupts.is_empty()
    }
}

/// A virtio-mmio register file around a [`DeviceCore`].
#[derive(Debug)]
pub struct MmioTransport<D, const NQ: usize, const H: usize = DEFAULT_HELD> {
    core: DeviceCore<D, NQ, H>,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
    staged: [Staged; NQ],
    interrupt_status: u32,
}

impl<D: VirtioDevice, const NQ: usize, const H: usize> MmioTransport<D, NQ, H> {
    /// Wraps a device.
    pub fn new(device: D) -> Self {
        let core = DeviceCore::new(device);
        let mut t = MmioTransport {
            core,
            device_features_sel: 0,
            driver_features_sel: 0,
            queue_sel: 0,
            staged: [Staged::default(); NQ],
            interrupt_status: 0,
        };
        t.restage();
        t
    }

    /// The state machine.
    pub fn core(&self) -> &DeviceCore<D, NQ, H> {
        &self.core
    }

    /// The state machine, mutably (device-initiated work: call
    /// [`MmioTransport::poll`] or fold its results with
    /// [`MmioTransport::raise`]).
    pub fn core_mut(&mut self) -> &mut DeviceCore<D, NQ, H> {
        &mut self.core
    }

    /// The current `InterruptStatus` word; non-zero means the line should
    /// be asserted.
    pub fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    /// Folds notifications into `InterruptStatus`.
    pub fn raise(&mut self, i: Interrupts) {
        if i.used != 0 {
            self.interrupt_status |= INT_USED_BUFFER;
        }
        if i.config {
            self.interrupt_status |= INT_CONFIG;
        }
    }

    /// Device-initiated work; returns the notifications (already folded
    /// into `InterruptStatus`).
    pub fn poll<M: GuestMemory>(&mut self, mem: &M) -> Interrupts {
        let i = self.core.poll(mem);
        self.raise(i);
        i
    }

    fn restage(&mut self) {
        for (i, s) in self.staged.iter_mut().enumerate() {
            *s = Staged {
                size: self.core.queue_info(i as u16).max_size,
                ..Staged::default()
            };
        }
    }

    fn selected(&mut self) -> Option<(u16, &mut Staged)> {
        let i = usize::try_from(self.queue_sel).ok()?;
        let s = self.staged.get_mut(i)?;
        Some((i as u16, s))
    }

    /// Reads a register. Registers below 0x100 need 32-bit accesses
    /// (virtio v1.2 §4.2.2.2); other widths and reserved or write-only
    /// registers read as 0 (§4.2.2.1).
    pub fn read(&mut self, offset: u32, width: u8) -> u32 {
        if offset >= reg::CONFIG {
            return self.read_config(offset - reg::CONFIG, width);
        }
        if width != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        let qi = u16::try_from(self.queue_sel).unwrap_or(u16::MAX);
        match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => 2,
            reg::DEVICE_ID => self.core.info().device_id,
            reg::VENDOR_ID => self.core.info().vendor_id,
            reg::DEVICE_FEATURES => self.core.device_feature_block(self.device_features_sel),
            reg::QUEUE_NUM_MAX => u32::from(self.core.queue_info(qi).max_size),
            reg::QUEUE_READY => u32::from(self.core.queue_info(qi).enabled),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => u32::from(self.core.status()),
            // No shared memory regions: length reads as all ones (§4.2.2).
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                u32::MAX
            }
            reg::QUEUE_RESET => 0,
            reg::CONFIG_GENERATION => self.core.config_generation(),
            _ => 0,
        }
    }

    fn read_config(&mut self, offset: u32, width: u8) -> u32 {
        let n = usize::from(width);
        if !matches!(n, 1 | 2 | 4) {
            return 0;
        }
        let mut b = [0u8; 4];
        match self.core.read_config(offset, &mut b[..n]) {
            Ok(_) => u32::from_le_bytes(b),
            Err(_) => 0,
        }
    }

    /// Writes a register. Reserved and read-only registers ignore writes.
    pub fn write<M: GuestMemory>(
        &mut self,
        mem: &M,
        offset: u32,
        width: u8,
        value: u32,
    ) -> WriteOutcome {
        let mut out = WriteOutcome::default();
        if offset >= reg::CONFIG {
            let n = usize::from(width);
            if matches!(n, 1 | 2 | 4) {
                let b = value.to_le_bytes();
                out.refused = self.core.write_config(offset - reg::CONFIG, &b[..n]).err();
            }
            return out;
        }
        if width != 4 || !offset.is_multiple_of(4) {
            return out;
        }
        let hi = |old: u64| (old & 0xffff_ffff) | (u64::from(value) << 32);
        let lo = |old: u64| (old & !0xffff_ffff) | u64::from(value);
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES => {
                out.refused = self
                    .core
                    .set_driver_feature_block(self.driver_features_sel, value)
                    .err();
            }
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM => {
                if let Some((_, s)) = self.selected() {
                    s.size = u16::try_from(value).unwrap_or(u16::MAX);
                }
            }
            reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => {
                if let Some((_, s)) = self.selected() {
                    s.desc = if offset == reg::QUEUE_DESC_LOW {
                        lo(s.desc)
                    } else {
                        hi(s.desc)
                    };
                }
            }
            reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH => {
                if let Some((_, s)) = self.selected() {
                    s.driver = if offset == reg::QUEUE_DRIVER_LOW {
                        lo(s.driver)
                    } else {
                        hi(s.driver)
                    };
                }
            }
            reg::QUEUE_DEVICE_LOW | reg::QUEUE_DEVICE_HIGH => {
                if let Some((_, s)) = self.selected() {
                    s.device = if offset == reg::QUEUE_DEVICE_LOW {
                        lo(s.device)
                    } else {
                        hi(s.device)
                    };
                }
            }
            reg::QUEUE_READY => {
                out.refused = match self.selected().map(|(i, s)| (i, *s)) {
                    None => Some(ControlError::NoSuchQueue),
                    Some((i, s)) if value & 1 == 1 => self
                        .core
                        .set_vqueue(mem, i, s.size, s.desc, s.driver, s.device)
                        .err(),
                    Some((i, _)) => self.core.disable_vqueue(i).err(),
                };
            }
            reg::QUEUE_RESET if value & 1 == 1 => {
                if let Some((i, _)) = self.selected() {
                    out.refused = self.core.reset_vqueue(i).err();
                    if out.refused.is_none() {
                        let max = self.core.queue_info(i).max_size;
                        if let Some(s) = self.staged.get_mut(usize::from(i)) {
                            *s = Staged {
                                size: max,
                                ..Staged::default()
                            };
                        }
                    }
                }
            }
            reg::QUEUE_NOTIFY => {
                // Without VIRTIO_F_NOTIFICATION_DATA the value is the index.
                let index = (value & 0xffff) as u16;
                out.interrupts = self.core.queue_notify(mem, index);
            }
            reg::INTERRUPT_ACK => self.interrupt_status &= !value,
            reg::STATUS => {
                let status = (value & 0xff) as u8;
                out.refused = self.core.set_status(status).err();
                if status == 0 {
                    // Reset also clears the register interface's state.
                    self.device_features_sel = 0;
                    self.driver_features_sel = 0;
                    self.queue_sel = 0;
                    self.interrupt_status = 0;
                    self.restage();
                }
            }
            _ => {}
        }
        self.raise(out.interrupts);
        out
    }

    /// Queue `index` needs processing without a register write (polling
    /// mode or a doorbell outside the register file).
    pub fn queue_notify<M: GuestMemory>(&mut self, mem: &M, index: u16) -> Interrupts {
        let i = self.core.queue_notify(mem, index);
        self.raise(i);
        i
    }
}
