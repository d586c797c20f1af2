//! The complete device (platform, server, virtio-scmi device, core and
//! queues) is built at compile time into a `static`, as firmware holds it.

use std::sync::Mutex;

use platform_host_vhost_user as builtin;
use scmi_server::Server;
use virtio_backend::spec::features::{RING_PACKED, VERSION_1};
use virtio_backend::{DeviceCore, VirtioDevice};
use virtio_scmi::{CMDQ, EVENTQ, Options, VirtioScmi};

type Device = DeviceCore<VirtioScmi<Server<builtin::Platform, 2, 8>>, 2, 0>;

/// No constructor runs at run time: the initializer is a constant.
static DEVICE: Mutex<Device> = Mutex::new(
    VirtioScmi::with_options(
        Server::new(&builtin::CONFIG, builtin::PLATFORM),
        1,
        Options::DEFAULT,
    )
    .into_core(),
);

#[test]
fn a_static_device_has_the_queues_its_options_say() {
    let dev = DEVICE.lock().unwrap();
    let q = dev.queues();
    assert_eq!(q[usize::from(CMDQ)].max_size(), Options::DEFAULT.cmdq_size);
    assert_eq!(
        q[usize::from(EVENTQ)].max_size(),
        Options::DEFAULT.eventq_size
    );
    for i in [CMDQ, EVENTQ, 2] {
        assert_eq!(
            dev.queue_info(i).max_size,
            dev.device().max_queue_size(i),
            "queue {i}"
        );
    }
    assert_eq!(dev.device().backend().agent_count(), 2);
}

#[test]
fn without_a_held_list_store_packed_rings_are_not_offered() {
    let dev = DEVICE.lock().unwrap();
    // The device type would offer them; the core without a store does not.
    assert_ne!(dev.device().device_features() & RING_PACKED, 0);
    assert_eq!(dev.device_features() & RING_PACKED, 0);
    assert_ne!(dev.device_features() & VERSION_1, 0);
    let with_store: DeviceCore<_, 2, 64> = VirtioScmi::new(
        Server::<builtin::Platform, 2, 8>::new(&builtin::CONFIG, builtin::PLATFORM),
        1,
    )
    .into_core();
    assert_ne!(with_store.device_features() & RING_PACKED, 0);
    let no_p2a = Options {
        p2a: false,
        ..Options::DEFAULT
    };
    let core: DeviceCore<_, 2, 0> = VirtioScmi::with_options(
        Server::<builtin::Platform, 2, 8>::new(&builtin::CONFIG, builtin::PLATFORM),
        1,
        no_p2a,
    )
    .into_core();
    assert_eq!(core.queue_info(EVENTQ).max_size, 0, "no eventq without P2A");
}

/// Time reaches the platform through the core's time hook
/// (`DeviceCore::advance` → `VirtioDevice::advance` → `Backend::tick`),
/// whatever the device status.
#[test]
fn time_passes_through_the_core_to_the_platform() {
    let mut dev: Device =
        VirtioScmi::new(Server::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
    assert_eq!(dev.device().backend().platform.sensor.now_ms(), 0);
    dev.advance(1_500);
    dev.advance(1_500);
    assert_eq!(dev.device().backend().platform.sensor.now_ms(), 1_500);
}
