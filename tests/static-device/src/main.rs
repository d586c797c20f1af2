//! The static-device image: runs [`static_device::run`] bare-metal under
//! QEMU and exits through Arm semihosting with status 0 only if every SCMI
//! check passed, or runs the same workload on the host.
//!
//! * `aarch64-unknown-none`: QEMU `virt`, Cortex-A53 at EL1, started by
//!   `aarch64-rt` with an identity map (MMU and caches on, RAM normal
//!   write-back memory).
//! * `armv8r-none-eabihf`: QEMU `mps3-an536`, Cortex-R52, started by
//!   `aarch32-rt` in EL1 system mode (MPU off: the default memory map).
//! * the host: a plain `main` that prints the sizes and checks the replies
//!   (no stack painting).
//!
//! See `tests/static-device/run.sh`.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod aarch64;
#[cfg(all(target_os = "none", target_arch = "arm"))]
mod armv8r;
#[cfg(target_os = "none")]
mod bare;

#[cfg(not(target_os = "none"))]
fn main() {
    /// The workload's report, printed as it comes.
    struct Stdout;
    impl core::fmt::Write for Stdout {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(s.as_bytes())
                .map_err(|_| core::fmt::Error)
        }
    }
    let env = static_device::Environment {
        target: "host",
        probe: static_device::StackProbe::NONE,
        sections: None,
    };
    let report = static_device::run(&mut Stdout, &env);
    std::process::exit(if report.passed() { 0 } else { 1 });
}
