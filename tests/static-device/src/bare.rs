//! What both bare-metal images share: the semihosting console, the panic
//! handler, and running the workload to an exit status.

use core::fmt::{self, Write};
use core::panic::PanicInfo;

use semihosting::io::Write as _;
use static_device::{Environment, Sections, StackProbe};

/// The host's console through semihosting (SYS_WRITE on `:tt`).
pub struct Console(Option<semihosting::io::Stdout>);

impl Console {
    /// Opens the console; output is dropped if the debugger has none.
    pub fn open() -> Self {
        Console(semihosting::io::stdout().ok())
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.0 {
            Some(out) => out.write_all(s.as_bytes()).map_err(|_| fmt::Error),
            None => Ok(()),
        }
    }
}

/// Runs the workload on the current stack and exits QEMU with status 0
/// if every SCMI check passed, 1 otherwise.
///
/// # Safety
///
/// `sections.stack` is the stack this runs on, and nothing else (no
/// interrupt handler, no other core) uses it meanwhile.
pub unsafe fn run_and_exit(target: &'static str, sections: Sections) -> ! {
    // SAFETY: the caller's contract: `sections.stack.start` is the lowest
    // address of this stack, used by nothing else while `run` runs.
    let probe = unsafe { StackProbe::painting(sections.stack.start) };
    let env = Environment {
        target,
        probe,
        sections: Some(sections),
    };
    let mut console = Console::open();
    let report = static_device::run(&mut console, &env);
    semihosting::process::exit(if report.passed() { 0 } else { 1 })
}

/// Reports the panic over semihosting and exits with status 101.
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut console = Console::open();
    let _ = writeln!(console, "PANIC: {info}");
    semihosting::process::exit(101)
}
