//! The static-device workload on the host: the same requests and checks as
//! the bare-metal images, without stack painting.

use static_device::{Environment, StackProbe, run};

fn run_on_host() -> (static_device::Report, String) {
    let mut out = String::new();
    let env = Environment {
        target: "host",
        probe: StackProbe::NONE,
        sections: None,
    };
    let report = run(&mut out, &env);
    (report, out)
}

#[test]
fn every_round_trip_passes_on_the_host() {
    let (report, out) = run_on_host();
    assert!(report.passed(), "{out}");
    assert_eq!(report.ok, static_device::ROUND_TRIPS, "{out}");
    assert!(out.contains("\nok: "), "{out}");
    assert!(report.deepest.is_none(), "nothing is measured on the host");
    assert!(report.sizes.total > report.sizes.platform);
    println!("{out}");
}

#[test]
fn runs_repeat_from_a_reset() {
    // The device is reset and brought up again; every check passes again.
    let (first, _) = run_on_host();
    let (second, out) = run_on_host();
    assert!(first.passed() && second.passed(), "{out}");
}
