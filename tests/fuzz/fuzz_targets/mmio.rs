//! The virtio-mmio register file over the echo device.
//!
//! Sequences of register reads and writes (any offset, any width, any
//! value; or values that point at real ring layouts in the arena), whole
//! bring-ups, chains a driver puts on the queues it set up, queue
//! notifies, interrupt acknowledges, polls and device-side configuration
//! changes.
//!
//! Checked after every step: nothing panics; identification registers
//! read their constants (MagicValue, Version 2, ids); feature, queue and
//! status registers read what the core and the selectors say; sub-word or
//! unaligned accesses below the configuration space read 0 and change
//! nothing; reads never change anything; configuration space reads and
//! writes follow the device's layout; QueueReady reads back what was
//! accepted; writing 0 to Status resets the device, its queues, the
//! selectors and InterruptStatus; InterruptStatus is exactly what the
//! writes' notifications raised minus what was acknowledged; and the
//! state machine's invariants hold.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtio_backend::mmio::{INT_CONFIG, INT_USED_BUFFER, MAGIC, MmioTransport, reg};
use virtio_backend::spec::features::{
    EVENT_IDX, INDIRECT_DESC, RING_PACKED, RING_RESET, VERSION_1,
};
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET};
use virtio_backend::{FixedWindow, Interrupts};
use virtio_fuzz::seed::{Enc, encode, variant};
use virtio_fuzz::{
    ARENA_BASE, Arena, Driver, ECHO_DEVICE_ID, ECHO_FEATURES, ECHO_QUEUE_MAX, ECHO_VENDOR_ID,
    EchoDevice, Layout, check_core, enc_struct, maybe_write_seeds,
};

const NQ: usize = 2;
const MAX_OPS: usize = 256;

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Input {
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Op {
    Read {
        reg: Reg,
        width: u8,
    },
    Write {
        reg: Reg,
        width: u8,
        value: Value,
    },
    /// The standard bring-up through the registers.
    BringUp {
        features: u8,
        size_log: u8,
    },
    /// A driver puts a chain on a queue it set up, maybe kicking it.
    Chain {
        queue: u8,
        bufs: Vec<(u16, u16, bool)>,
        table: Option<u16>,
        kick: bool,
    },
    /// Acknowledges every pending interrupt.
    Ack,
    Poll,
    /// The device changes its configuration space.
    ConfigChanged {
        byte: u8,
    },
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Reg {
    /// One of the registers (and a few sub-register offsets), by index.
    Known(u8),
    /// Any offset.
    Raw(u16),
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Value {
    Raw(u32),
    /// Low or high half of an area address of queue `queue`'s contiguous
    /// layout (`area % 3`: descriptors, driver, device) at size `size`.
    Area {
        queue: u8,
        area: u8,
        size: u8,
        high: bool,
    },
}

enc_struct!(Input { ops });

impl Enc for Op {
    fn enc(&self, out: &mut Vec<u8>) {
        const N: u32 = 7;
        match self {
            Op::Read { reg, width } => {
                variant(out, 0, N);
                reg.enc(out);
                width.enc(out);
            }
            Op::Write { reg, width, value } => {
                variant(out, 1, N);
                reg.enc(out);
                width.enc(out);
                value.enc(out);
            }
            Op::BringUp { features, size_log } => {
                variant(out, 2, N);
                features.enc(out);
                size_log.enc(out);
            }
            Op::Chain {
                queue,
                bufs,
                table,
                kick,
            } => {
                variant(out, 3, N);
                queue.enc(out);
                bufs.enc(out);
                table.enc(out);
                kick.enc(out);
            }
            Op::Ack => variant(out, 4, N),
            Op::Poll => variant(out, 5, N),
            Op::ConfigChanged { byte } => {
                variant(out, 6, N);
                byte.enc(out);
            }
        }
    }
}

impl Enc for Reg {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Reg::Known(i) => {
                variant(out, 0, 2);
                i.enc(out);
            }
            Reg::Raw(o) => {
                variant(out, 1, 2);
                o.enc(out);
            }
        }
    }
}

impl Enc for Value {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Value::Raw(v) => {
                variant(out, 0, 2);
                v.enc(out);
            }
            Value::Area {
                queue,
                area,
                size,
                high,
            } => {
                variant(out, 1, 2);
                queue.enc(out);
                area.enc(out);
                size.enc(out);
                high.enc(out);
            }
        }
    }
}

const KNOWN: &[u32] = &[
    reg::MAGIC_VALUE,
    reg::VERSION,
    reg::DEVICE_ID,
    reg::VENDOR_ID,
    reg::DEVICE_FEATURES,
    reg::DEVICE_FEATURES_SEL,
    reg::DRIVER_FEATURES,
    reg::DRIVER_FEATURES_SEL,
    reg::QUEUE_SEL,
    reg::QUEUE_NUM_MAX,
    reg::QUEUE_NUM,
    reg::QUEUE_READY,
    reg::QUEUE_NOTIFY,
    reg::INTERRUPT_STATUS,
    reg::INTERRUPT_ACK,
    reg::STATUS,
    reg::QUEUE_DESC_LOW,
    reg::QUEUE_DESC_HIGH,
    reg::QUEUE_DRIVER_LOW,
    reg::QUEUE_DRIVER_HIGH,
    reg::QUEUE_DEVICE_LOW,
    reg::QUEUE_DEVICE_HIGH,
    reg::SHM_SEL,
    reg::SHM_LEN_LOW,
    reg::SHM_LEN_HIGH,
    reg::SHM_BASE_LOW,
    reg::SHM_BASE_HIGH,
    reg::QUEUE_RESET,
    reg::CONFIG_GENERATION,
    reg::STATUS + 1,
    reg::QUEUE_READY + 2,
    reg::CONFIG,
    reg::CONFIG + 1,
    reg::CONFIG + 2,
    reg::CONFIG + 3,
    reg::CONFIG + 4,
    reg::CONFIG + 5,
    reg::CONFIG + 6,
    reg::CONFIG + 7,
    reg::CONFIG + 8,
    0xfff,
];

/// Widths, biased towards the 32-bit accesses the registers need.
const WIDTHS: [u8; 8] = [4, 4, 4, 1, 2, 8, 0, 3];

/// The arena offset where queue `i`'s rings go.
fn ring_base(i: usize) -> u64 {
    ARENA_BASE + 0x100 + 0x1000 * i as u64
}

/// Everything the register file or the core holds that a read must not
/// change.
type Fingerprint = (
    u8,
    u64,
    u32,
    [u8; 8],
    bool,
    u32,
    Vec<virtio_backend::QueueInfo>,
);

struct Harness<'w, 'a> {
    mem: &'w FixedWindow<'a>,
    t: MmioTransport<EchoDevice, NQ>,
    // The register interface's state as the driver put it.
    dev_sel: u32,
    drv_sel: u32,
    queue_sel: u32,
    int_status: u32,
    drivers: [Option<Driver>; NQ],
}

fn bits(i: Interrupts) -> u32 {
    (if i.used != 0 { INT_USED_BUFFER } else { 0 }) | if i.config { INT_CONFIG } else { 0 }
}

impl Harness<'_, '_> {
    fn fingerprint(&self) -> Fingerprint {
        let c = self.t.core();
        (
            c.status(),
            c.driver_features(),
            c.config_generation(),
            c.device().config,
            c.device().active,
            self.t.interrupt_status(),
            (0..=NQ as u16).map(|i| c.queue_info(i)).collect(),
        )
    }

    fn sel_queue(&self) -> u16 {
        u16::try_from(self.queue_sel).unwrap_or(u16::MAX)
    }

    fn read(&mut self, off: u32, width: u8) -> u32 {
        let before = self.fingerprint();
        let v = self.t.read(off, width);
        assert_eq!(
            self.fingerprint(),
            before,
            "read of {off:#x}/{width} changed state"
        );
        let core = self.t.core();
        let want = if off >= reg::CONFIG {
            let o = (off - reg::CONFIG) as usize;
            let n = usize::from(width);
            if matches!(n, 1 | 2 | 4) && o + n <= 8 {
                let mut b = [0u8; 4];
                b[..n].copy_from_slice(&core.device().config[o..o + n]);
                u32::from_le_bytes(b)
            } else {
                0
            }
        } else if width != 4 || !off.is_multiple_of(4) {
            0
        } else {
            let q = core.queue_info(self.sel_queue());
            match off {
                reg::MAGIC_VALUE => MAGIC,
                reg::VERSION => 2,
                reg::DEVICE_ID => ECHO_DEVICE_ID,
                reg::VENDOR_ID => ECHO_VENDOR_ID,
                reg::DEVICE_FEATURES => core.device_feature_block(self.dev_sel),
                reg::QUEUE_NUM_MAX => u32::from(
                    ECHO_QUEUE_MAX
                        .get(self.queue_sel as usize)
                        .copied()
                        .unwrap_or(0),
                ),
                reg::QUEUE_READY => u32::from(q.enabled),
                reg::INTERRUPT_STATUS => self.int_status,
                reg::STATUS => u32::from(core.status()),
                reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                    u32::MAX
                }
                reg::CONFIG_GENERATION => core.config_generation(),
                // Write-only and reserved registers.
                _ => 0,
            }
        };
        assert_eq!(v, want, "read of {off:#x}/{width}");
        v
    }

    fn write(&mut self, off: u32, width: u8, value: u32) {
        let before = self.fingerprint();
        let was_enabled: [bool; NQ] =
            core::array::from_fn(|i| self.t.core().queue_info(i as u16).enabled);
        let running = {
            let s = self.t.core().status();
            s & DRIVER_OK != 0 && s & NEEDS_RESET == 0
        };
        let config_before = self.t.core().device().config;
        let out = self.t.write(self.mem, off, width, value);
        assert_eq!(out.raise_irq(), !out.interrupts.is_empty());
        assert_eq!(
            out.interrupts.used >> NQ,
            0,
            "notification for a missing queue"
        );
        let core = self.t.core();
        if off >= reg::CONFIG {
            assert!(out.interrupts.is_empty());
            let o = (off - reg::CONFIG) as usize;
            let n = usize::from(width);
            let fits = matches!(n, 1 | 2 | 4) && o + n <= 8;
            if fits && o >= 4 {
                assert_eq!(out.refused, None);
                let mut want = config_before;
                want[o..o + n].copy_from_slice(&value.to_le_bytes()[..n]);
                assert_eq!(core.device().config, want, "config write");
            } else {
                assert_eq!(core.device().config, config_before);
                assert_eq!(out.refused.is_some(), matches!(n, 1 | 2 | 4));
            }
        } else if width != 4 || !off.is_multiple_of(4) {
            assert_eq!(out, Default::default(), "ignored access had an outcome");
            assert_eq!(self.fingerprint(), before, "ignored access changed state");
            return;
        }
        match off {
            reg::DEVICE_FEATURES_SEL => self.dev_sel = value,
            reg::DRIVER_FEATURES_SEL => self.drv_sel = value,
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::INTERRUPT_ACK => self.int_status &= !value,
            reg::DRIVER_FEATURES if out.refused.is_none() => {
                let f = core.driver_features();
                match self.drv_sel {
                    0 => assert_eq!(f as u32, value, "driver features 0..31"),
                    1 => assert_eq!((f >> 32) as u32, value, "driver features 32..63"),
                    _ if value != 0 => assert_ne!(f >> 63, 0, "unknown feature block"),
                    _ => {}
                }
            }
            reg::STATUS => {
                let s = value as u8;
                if s == 0 {
                    self.dev_sel = 0;
                    self.drv_sel = 0;
                    self.queue_sel = 0;
                    self.int_status = 0;
                    assert_eq!(core.status(), 0, "reset");
                    assert_eq!(core.driver_features(), 0, "reset");
                    assert!(!core.device().active);
                    assert_eq!(self.t.interrupt_status(), 0, "reset keeps interrupts");
                } else if out.refused.is_none() {
                    assert_eq!(core.status() & !NEEDS_RESET, s & !NEEDS_RESET);
                } else {
                    assert_ne!(core.status() & !NEEDS_RESET, s & !NEEDS_RESET);
                }
            }
            reg::QUEUE_READY => {
                let q = core.queue_info(self.sel_queue());
                if out.refused.is_none() {
                    assert_eq!(q.enabled, value & 1 == 1, "QueueReady {value}");
                }
            }
            reg::QUEUE_RESET if value & 1 == 1 => {
                if out.refused.is_none() {
                    assert!(!core.queue_info(self.sel_queue()).enabled);
                }
            }
            reg::QUEUE_NOTIFY => {
                let i = value & 0xffff;
                if !running || !was_enabled.get(i as usize).copied().unwrap_or(false) {
                    assert!(out.interrupts.is_empty(), "notify of a queue not running");
                }
            }
            _ => {}
        }
        if !matches!(off, reg::QUEUE_NOTIFY) {
            // Only a notify processes queues.
            assert_eq!(out.interrupts.used, 0, "write to {off:#x} used buffers");
        }
        self.int_status |= bits(out.interrupts);
        assert_eq!(
            self.t.interrupt_status(),
            self.int_status,
            "InterruptStatus"
        );
        // Read-back of what the write set.
        match off {
            reg::QUEUE_READY | reg::STATUS | reg::INTERRUPT_STATUS => {
                self.read(off, 4);
            }
            reg::DEVICE_FEATURES_SEL => {
                self.read(reg::DEVICE_FEATURES, 4);
            }
            _ => {}
        }
        if off == reg::STATUS && value as u8 == 0 {
            for i in 0..=NQ as u16 {
                assert!(!self.t.core().queue_info(i).enabled, "reset left queue {i}");
            }
            // The selectors are back at 0.
            assert_eq!(
                self.read(reg::QUEUE_NUM_MAX, 4),
                u32::from(ECHO_QUEUE_MAX[0])
            );
            assert_eq!(self.read(reg::DEVICE_FEATURES, 4), ECHO_FEATURES as u32);
        }
        self.track(was_enabled);
    }

    fn value(&self, v: &Value) -> u32 {
        match *v {
            Value::Raw(x) => x,
            Value::Area {
                queue,
                area,
                size,
                high,
            } => {
                let i = usize::from(queue) % NQ;
                let packed = self.t.core().driver_features() & RING_PACKED != 0;
                let size = u16::from(size).clamp(1, ECHO_QUEUE_MAX[i]);
                let l = Layout::contiguous(ring_base(i), packed, size);
                let a = [l.desc, l.driver, l.device][usize::from(area % 3)];
                if high { (a >> 32) as u32 } else { a as u32 }
            }
        }
    }

    /// Sets up queue `i` through the registers at its contiguous layout.
    fn setup_queue(&mut self, i: usize, size: u16) {
        let packed = self.t.core().driver_features() & RING_PACKED != 0;
        let l = Layout::contiguous(ring_base(i), packed, size);
        Driver::new(l).zero(self.mem);
        self.write(reg::QUEUE_SEL, 4, i as u32);
        self.write(reg::QUEUE_NUM, 4, u32::from(size));
        for (lo, a) in [
            (reg::QUEUE_DESC_LOW, l.desc),
            (reg::QUEUE_DRIVER_LOW, l.driver),
            (reg::QUEUE_DEVICE_LOW, l.device),
        ] {
            self.write(lo, 4, a as u32);
            self.write(lo + 4, 4, (a >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 4, 1);
        assert_eq!(self.read(reg::QUEUE_READY, 4), 1, "queue {i} set up");
    }

    fn bring_up(&mut self, features: u8, size_log: u8) {
        let mut f = VERSION_1;
        if features & 1 != 0 {
            f |= RING_PACKED;
        }
        if features & 2 != 0 {
            f |= EVENT_IDX;
        }
        if features & 4 != 0 {
            f |= INDIRECT_DESC;
        }
        if features & 8 != 0 {
            f |= RING_RESET;
        }
        self.write(reg::STATUS, 4, 0);
        self.write(reg::STATUS, 4, u32::from(ACKNOWLEDGE));
        self.write(reg::STATUS, 4, u32::from(ACKNOWLEDGE | DRIVER));
        for block in 0..2u32 {
            self.write(reg::DEVICE_FEATURES_SEL, 4, block);
            self.write(reg::DRIVER_FEATURES_SEL, 4, block);
            self.write(reg::DRIVER_FEATURES, 4, (f >> (32 * block)) as u32);
        }
        self.write(
            reg::STATUS,
            4,
            u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        );
        for (i, max) in ECHO_QUEUE_MAX.into_iter().enumerate() {
            self.setup_queue(i, (1u16 << (size_log % 7)).min(max));
        }
        let ok = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
        self.write(reg::STATUS, 4, u32::from(ok));
        assert_eq!(self.read(reg::STATUS, 4), u32::from(ok));
    }

    /// Gives each enabled queue at its contiguous layout a driver, and
    /// forgets the drivers of queues no longer enabled.
    fn track(&mut self, was: [bool; NQ]) {
        let packed = self.t.core().driver_features() & RING_PACKED != 0;
        for (i, &was_enabled) in was.iter().enumerate() {
            let q = self.t.core().queue_info(i as u16);
            if !q.enabled {
                self.drivers[i] = None;
            } else if !was_enabled {
                let l = Layout::contiguous(ring_base(i), packed, q.size);
                if (q.desc, q.driver, q.device) == (l.desc, l.driver, l.device) {
                    self.drivers[i] = Some(Driver::new(l));
                }
            }
        }
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Read { reg, width } => {
                let off = reg_offset(reg);
                self.read(off, WIDTHS[usize::from(width % 8)]);
            }
            Op::Write { reg, width, value } => {
                let off = reg_offset(reg);
                let v = self.value(value);
                self.write(off, WIDTHS[usize::from(width % 8)], v);
            }
            Op::BringUp { features, size_log } => self.bring_up(*features, *size_log),
            Op::Chain {
                queue,
                bufs,
                table,
                kick,
            } => {
                let i = usize::from(*queue) % NQ;
                if let Some(d) = self.drivers[i].as_mut() {
                    let mut b: Vec<_> = bufs
                        .iter()
                        .take(usize::from(d.layout.size))
                        .map(|&(a, l, w)| {
                            (
                                ARENA_BASE + 0x2000 + u64::from(a) % 0x1400,
                                u32::from(l % 0x400),
                                w,
                            )
                        })
                        .collect();
                    if b.is_empty() {
                        b.push((ARENA_BASE + 0x3000, 64, true));
                    }
                    let table = table.map(|t| ARENA_BASE + 0x3800 + u64::from(t) % 0x40 * 16);
                    d.add_chain(self.mem, &b, table, true);
                    if *kick {
                        self.write(reg::QUEUE_NOTIFY, 4, i as u32);
                        // The driver takes what came back.
                        let d = self.drivers[i].as_mut().unwrap();
                        while d.pop_used(self.mem).is_some() {}
                    }
                }
            }
            Op::Ack => self.write(reg::INTERRUPT_ACK, 4, self.int_status),
            Op::Poll => {
                let i = self.t.poll(self.mem);
                assert_eq!(i, Interrupts::default(), "the echo device has no own work");
                assert_eq!(self.t.interrupt_status(), self.int_status);
            }
            Op::ConfigChanged { byte } => {
                let gen_before = self.t.core().config_generation();
                self.t.core_mut().device_mut().config[0] = *byte;
                let i = self.t.core_mut().config_changed();
                self.t.raise(i);
                let core = self.t.core();
                assert_eq!(core.config_generation(), gen_before.wrapping_add(1));
                assert_eq!(i.config, core.status() & DRIVER_OK != 0);
                assert_eq!(i.used, 0);
                self.int_status |= bits(i);
                assert_eq!(self.t.interrupt_status(), self.int_status);
                assert_eq!(
                    self.read(reg::CONFIG_GENERATION, 4),
                    gen_before.wrapping_add(1)
                );
            }
        }
        check_core(self.t.core());
        assert_eq!(self.t.interrupt_status(), self.int_status);
    }
}

fn reg_offset(r: &Reg) -> u32 {
    match *r {
        Reg::Known(i) => KNOWN[usize::from(i) % KNOWN.len()],
        Reg::Raw(o) => u32::from(o),
    }
}

fn run(input: &Input) {
    let mut arena = Arena::new();
    let views = arena.views();
    let mut h = Harness {
        mem: &views.window,
        t: MmioTransport::new(EchoDevice::default()),
        dev_sel: 0,
        drv_sel: 0,
        queue_sel: 0,
        int_status: 0,
        drivers: [None, None],
    };
    for off in [reg::MAGIC_VALUE, reg::VERSION, reg::DEVICE_ID, reg::STATUS] {
        h.read(off, 4);
    }
    for op in input.ops.iter().take(MAX_OPS) {
        h.op(op);
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let known = |off: u32| Reg::Known(KNOWN.iter().position(|&k| k == off).unwrap() as u8);
    let w = |off: u32, v: u32| Op::Write {
        reg: known(off),
        width: 0,
        value: Value::Raw(v),
    };
    let r = |off: u32| Op::Read {
        reg: known(off),
        width: 0,
    };
    let chain = |queue: u8| Op::Chain {
        queue,
        bufs: vec![(0, 5, false), (0x100, 16, true)],
        table: None,
        kick: true,
    };
    let mut out = Vec::new();
    for features in [0u8, 0x0f, 0x06, 0x09] {
        out.push(Input {
            ops: vec![
                r(reg::MAGIC_VALUE),
                Op::BringUp {
                    features,
                    size_log: 3,
                },
                chain(0),
                chain(1),
                Op::Chain {
                    queue: 0,
                    bufs: vec![(0x10, 3, false), (0x20, 3, false), (0x200, 64, true)],
                    table: Some(3),
                    kick: true,
                },
                r(reg::INTERRUPT_STATUS),
                Op::Ack,
                Op::ConfigChanged { byte: 9 },
                r(reg::CONFIG_GENERATION),
                Op::Write {
                    reg: known(reg::CONFIG + 4),
                    width: 4,
                    value: Value::Raw(0xbeef),
                },
                Op::Read {
                    reg: known(reg::CONFIG + 4),
                    width: 3,
                },
                w(reg::QUEUE_SEL, 1),
                w(reg::QUEUE_RESET, 1),
                w(reg::QUEUE_NUM, 4),
                Op::Write {
                    reg: known(reg::QUEUE_DESC_LOW),
                    width: 0,
                    value: Value::Area {
                        queue: 1,
                        area: 0,
                        size: 4,
                        high: false,
                    },
                },
                Op::Write {
                    reg: known(reg::QUEUE_DRIVER_LOW),
                    width: 0,
                    value: Value::Area {
                        queue: 1,
                        area: 1,
                        size: 4,
                        high: false,
                    },
                },
                Op::Write {
                    reg: known(reg::QUEUE_DEVICE_LOW),
                    width: 0,
                    value: Value::Area {
                        queue: 1,
                        area: 2,
                        size: 4,
                        high: false,
                    },
                },
                w(reg::QUEUE_READY, 1),
                chain(1),
                Op::Poll,
                w(reg::QUEUE_NOTIFY, 5),
                r(reg::SHM_LEN_LOW),
                w(reg::STATUS, 0),
                r(reg::QUEUE_READY),
            ],
        });
    }
    out.push(Input {
        ops: vec![
            w(reg::STATUS, 1),
            w(reg::STATUS, 3),
            w(reg::DRIVER_FEATURES, 0xffff_ffff),
            w(reg::STATUS, 0xb),
            r(reg::STATUS),
            w(reg::QUEUE_SEL, 0),
            w(reg::QUEUE_READY, 1),
            Op::Write {
                reg: Reg::Raw(0x72),
                width: 1,
                value: Value::Raw(0),
            },
        ],
    });
    out.iter().map(encode).collect()
}

fuzz_target!(
    init: maybe_write_seeds("mmio", seeds),
    |input: Input| run(&input)
);
