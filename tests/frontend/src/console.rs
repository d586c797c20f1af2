//! An echo console (virtio v1.2 §5.3) built on [`VirtioDevice`], for
//! `virtio-drivers`' `VirtIOConsole` to drive.
//!
//! Bytes the driver transmits on `transmitq0` come back on `receiveq0` as
//! soon as the driver has a receive buffer there, so one kick on one queue
//! completes buffers on the other. Configuration space carries the console
//! size (`VIRTIO_CONSOLE_F_SIZE`) and the write-only `emerg_wr` register
//! (`VIRTIO_CONSOLE_F_EMERG_WRITE`), which exercises configuration writes.

use std::collections::VecDeque;

use virtio_backend::spec::features;
use virtio_backend::{GuestMemory, Queue, QueueError, VirtioDevice};

/// virtio device id of a console.
pub const DEVICE_ID: u32 = 3;
/// `receiveq0`: device to driver.
pub const RECEIVEQ: u16 = 0;
/// `transmitq0`: driver to device.
pub const TRANSMITQ: u16 = 1;
/// Configuration space: `cols`, `rows`, `max_nr_ports`, `emerg_wr`.
pub const CONFIG_SIZE: u32 = 12;
/// Offset of `emerg_wr` in configuration space.
pub const EMERG_WR: u32 = 8;

/// Console feature bits (§5.3.3).
pub mod feature {
    /// `cols` and `rows` are valid.
    pub const SIZE: u64 = 1 << 0;
    /// `emerg_wr` is supported.
    pub const EMERG_WRITE: u64 = 1 << 2;
}

/// What the device observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Transmit chains consumed.
    pub tx_chains: u64,
    /// Receive chains filled and returned.
    pub rx_chains: u64,
    /// Bytes received from the driver.
    pub tx_bytes: u64,
    /// Bytes echoed back to the driver.
    pub rx_bytes: u64,
    /// Most bytes waiting for a receive buffer at once.
    pub max_backlog: usize,
    /// Device resets.
    pub resets: u64,
}

/// A console that echoes what it is sent.
#[derive(Debug)]
pub struct EchoConsole {
    cols: u16,
    rows: u16,
    offer: u64,
    backlog: VecDeque<u8>,
    transcript: Vec<u8>,
    emergency: Vec<u8>,
    stats: ConsoleStats,
}

impl EchoConsole {
    /// A console of `cols` x `rows`, offering indirect descriptors and
    /// event indices as asked.
    pub fn new(cols: u16, rows: u16, indirect: bool, event_idx: bool) -> Self {
        let mut offer = features::VERSION_1 | feature::SIZE | feature::EMERG_WRITE;
        if indirect {
            offer |= features::INDIRECT_DESC;
        }
        if event_idx {
            offer |= features::EVENT_IDX;
        }
        EchoConsole {
            cols,
            rows,
            offer,
            backlog: VecDeque::new(),
            transcript: Vec::new(),
            emergency: Vec::new(),
            stats: ConsoleStats::default(),
        }
    }

    /// Everything the driver transmitted, in order.
    pub fn transcript(&self) -> &[u8] {
        &self.transcript
    }

    /// Characters written to `emerg_wr`.
    pub fn emergency(&self) -> &[u8] {
        &self.emergency
    }

    /// What the device observed.
    pub fn stats(&self) -> ConsoleStats {
        self.stats.clone()
    }

    /// Bytes waiting for a receive buffer.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// Takes transmitted bytes into the backlog.
    fn drain_tx<M: GuestMemory, const H: usize>(
        &mut self,
        q: &mut Queue<H>,
        mem: &M,
    ) -> Result<(), QueueError> {
        loop {
            let chain = match q.pop_descriptor_chain(mem) {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(QueueError::InvalidChain { .. }) => continue,
                Err(e) => return Err(e),
            };
            let mut r = chain.reader(mem);
            let mut buf = [0u8; 256];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.backlog.extend(&buf[..n]);
                        self.transcript.extend_from_slice(&buf[..n]);
                        self.stats.tx_bytes += n as u64;
                    }
                }
            }
            self.stats.max_backlog = self.stats.max_backlog.max(self.backlog.len());
            self.stats.tx_chains += 1;
            q.add_used(mem, chain, 0)?;
        }
    }

    /// Moves the backlog into receive buffers while there are both.
    fn fill_rx<M: GuestMemory, const H: usize>(
        &mut self,
        q: &mut Queue<H>,
        mem: &M,
    ) -> Result<(), QueueError> {
        if !q.ready() {
            return Ok(());
        }
        while !self.backlog.is_empty() {
            let chain = match q.pop_descriptor_chain(mem) {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(QueueError::InvalidChain { .. }) => continue,
                Err(e) => return Err(e),
            };
            let mut w = chain.writer(mem);
            while w.remaining() > 0 && !self.backlog.is_empty() {
                let (a, _) = self.backlog.as_slices();
                let n = a.len().min(w.remaining());
                match w.write(&a[..n]) {
                    Ok(k) if k > 0 => {
                        self.backlog.drain(..k);
                    }
                    _ => break,
                }
            }
            let len = w.written();
            self.stats.rx_bytes += u64::from(len);
            self.stats.rx_chains += 1;
            q.add_used(mem, chain, len)?;
        }
        Ok(())
    }
}

impl VirtioDevice for EchoConsole {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        self.offer
    }

    fn max_queue_size(&self, index: u16) -> u16 {
        match index {
            RECEIVEQ | TRANSMITQ => 16,
            _ => 0,
        }
    }

    fn config_size(&self) -> u32 {
        CONFIG_SIZE
    }

    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let mut c = [0u8; CONFIG_SIZE as usize];
        c[0..2].copy_from_slice(&self.cols.to_le_bytes());
        c[2..4].copy_from_slice(&self.rows.to_le_bytes());
        c[4..8].copy_from_slice(&1u32.to_le_bytes());
        // emerg_wr is write-only: reads as 0.
        let at = offset as usize;
        data.copy_from_slice(&c[at..at + data.len()]);
    }

    fn write_config(&mut self, offset: u32, data: &[u8]) -> bool {
        // Only a whole write of emerg_wr; its low byte is the character.
        if offset == EMERG_WR && data.len() == 4 {
            self.emergency.push(data[0]);
            true
        } else {
            false
        }
    }

    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        if index == TRANSMITQ {
            self.drain_tx(&mut queues[usize::from(TRANSMITQ)], mem)?;
        }
        // New receive buffers, or new bytes for the ones waiting.
        self.fill_rx(&mut queues[usize::from(RECEIVEQ)], mem)
    }

    fn poll<M: GuestMemory, const H: usize>(
        &mut self,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        self.fill_rx(&mut queues[usize::from(RECEIVEQ)], mem)
    }

    fn reset(&mut self) {
        self.stats.resets += 1;
        self.backlog.clear();
    }
}
