//! The Xen transport on the host: the device on its Xen bus, the driver's
//! memory behind grants, fake hypercalls (`frontend_tests::xen`).

use frontend_tests::arena::ARENA_SIZE;
use frontend_tests::xen::*;
use scmi_agent::probe::Prober;
use virtio_drivers::transport::{DeviceStatus, Transport};

#[test]
fn the_tour_passes_on_the_xen_bus_and_a_reset_ends_the_session() {
    let s = install();
    s.granted.set((ARENA_SIZE / 4096) as u32);
    // The driver's "granted" event: the device publishes the channel.
    s.calls.pending.set(true);
    turn();
    assert!(with_bus(|b| b.published()));
    let mut agent = agent(connect(&s));
    frontend_tests::tour_passes(&mut agent, now, idle);
    // Every access went through grants; the cache kept the working set:
    // far fewer maps than accesses, and no more pages than slots.
    let st = with_bus(|b| b.memory().stats());
    assert!(st.maps > 0 && st.mapped <= SLOTS, "{st:?}");
    assert_eq!(st.maps, s.maps.get());
    assert!(ended().is_empty(), "no reset yet");

    // The driver resets the device: the session ends, every page of the
    // driver's is unmapped, and its figures are the hypercalls made.
    agent.transport().set_status(DeviceStatus::empty());
    let ended = ended();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let e = ended[0];
    assert_eq!(with_bus(|b| b.memory().stats().mapped), 0);
    assert_eq!(e.maps, s.maps.get());
    assert_eq!(e.unmaps, st.unmaps + st.mapped as u64);
    assert_eq!(e.sends, s.calls.sends.get());
    assert_eq!(e.polls, s.calls.polls.get());
    assert!(e.messages > 40 && e.hypercalls() < 2 * e.messages, "{e:?}");
    // Mapping pays off: many more page accesses than maps.
    assert!(e.accesses > 10 * e.maps, "{e:?}");
    println!(
        "tour on the Xen bus: {} messages, {} hypercalls ({} polls, {} sends, {} maps, {} unmaps): {:.2} per message; {} grant-page accesses ({:.1} per message)",
        e.messages,
        e.hypercalls(),
        e.polls,
        e.sends,
        e.maps,
        e.unmaps,
        e.hypercalls() as f64 / e.messages as f64,
        e.accesses,
        e.accesses as f64 / e.messages as f64
    );

    // A second driver finds a fresh device: the whole Linux probe.
    let d = agent.into_transport();
    let mut a2 = self::agent(d);
    let p = Prober::run(&mut a2);
    assert!(p.complaints.is_empty(), "{:?}", p.complaints);
}

#[test]
fn events_before_the_channel_page_is_granted_change_nothing_and_polls_then_wait_for_the_tick() {
    let s = install();
    // The spurious event of a static channel, and the driver ringing
    // before it granted anything: nothing to publish, no timeout (only the
    // driver's next event can help).
    for _ in 0..3 {
        s.calls.pending.set(true);
        turn();
        assert!(!with_bus(|b| b.published()));
        assert!(!s.calls.pending.get(), "the event is taken");
    }
    turn();
    assert!(s.calls.timeouts.borrow().iter().all(|&t| t == 0));
    assert_eq!(s.maps.get(), 0);
    // Granted now: the next event publishes.
    s.granted.set(1);
    s.calls.pending.set(true);
    turn();
    assert!(with_bus(|b| b.published()));
    // Quiet from now on: the first turn serves (the tick is due), the
    // next waits until the next tick, in Xen's time (the runstate offset).
    set_now_ms(100);
    turn();
    s.calls.timeouts.borrow_mut().clear();
    turn();
    assert_eq!(
        *s.calls.timeouts.borrow(),
        [110_000_000 + XEN_OFFSET_NS],
        "a poll until the next tick"
    );
}
