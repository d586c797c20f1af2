//! Either transport behind one type, so a test body runs over both.

use std::sync::Arc;

use virtio_backend::VirtioDevice;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::loopback::{Kind, Loopback};
use crate::mmio_transport::MmioRegTransport;
use crate::msg_transport::{MsgTransport, msg_transport};

/// A driver end of either transport.
pub enum AnyTransport<D: VirtioDevice, const NQ: usize> {
    /// Transport A.
    Msg(MsgTransport<D, NQ>),
    /// Transport B.
    Mmio(MmioRegTransport<D, NQ>),
}

impl<D: VirtioDevice, const NQ: usize> AnyTransport<D, NQ> {
    /// A new driver end for `link`, over the link's transport.
    pub fn new(link: &Arc<Loopback<D, NQ>>) -> Self {
        match link.kind() {
            Kind::Msg => AnyTransport::Msg(msg_transport(Arc::clone(link))),
            Kind::Mmio => AnyTransport::Mmio(MmioRegTransport::new(Arc::clone(link))),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $t:ident => $e:expr) => {
        match $self {
            AnyTransport::Msg($t) => $e,
            AnyTransport::Mmio($t) => $e,
        }
    };
}

impl<D: VirtioDevice, const NQ: usize> Transport for AnyTransport<D, NQ> {
    fn device_type(&self) -> DeviceType {
        delegate!(self, t => t.device_type())
    }
    fn read_device_features(&mut self) -> u64 {
        delegate!(self, t => t.read_device_features())
    }
    fn write_driver_features(&mut self, driver_features: u64) {
        delegate!(self, t => t.write_driver_features(driver_features))
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        delegate!(self, t => t.max_queue_size(queue))
    }
    fn notify(&mut self, queue: u16) {
        delegate!(self, t => t.notify(queue))
    }
    fn get_status(&self) -> DeviceStatus {
        delegate!(self, t => t.get_status())
    }
    fn set_status(&mut self, status: DeviceStatus) {
        delegate!(self, t => t.set_status(status))
    }
    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        delegate!(self, t => t.set_guest_page_size(guest_page_size))
    }
    fn requires_legacy_layout(&self) -> bool {
        delegate!(self, t => t.requires_legacy_layout())
    }
    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        delegate!(self, t => t.queue_set(queue, size, descriptors, driver_area, device_area))
    }
    fn queue_unset(&mut self, queue: u16) {
        delegate!(self, t => t.queue_unset(queue))
    }
    fn queue_used(&mut self, queue: u16) -> bool {
        delegate!(self, t => t.queue_used(queue))
    }
    fn ack_interrupt(&mut self) -> InterruptStatus {
        delegate!(self, t => t.ack_interrupt())
    }
    fn read_config_generation(&self) -> u32 {
        delegate!(self, t => t.read_config_generation())
    }
    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        delegate!(self, t => t.read_config_space(offset))
    }
    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        delegate!(self, t => t.write_config_space(offset, value))
    }
}
