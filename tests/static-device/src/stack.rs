//! Stack depth by painting (bare-metal targets only).
//!
//! [`measure`] fills the free stack below its own stack pointer with
//! [`PATTERN`], runs the measured code, then looks for the lowest word that
//! no longer holds the pattern: everything from there up to the stack
//! pointer was used by the measured code and whatever it called.
//!
//! On the host only [`Depth`] exists: the host run measures nothing.

/// How many bytes below the stack pointer are painted for one measurement
/// (bounded below by the stack's lowest address).
pub const PAINT_BYTES: usize = 16 * 1024;

/// The paint: `0xA5` in every byte of a word.
pub const PATTERN: usize = usize::MAX / 0xff * 0xa5;

#[cfg(target_os = "none")]
const WORD: usize = core::mem::size_of::<usize>();

/// How deep one measured call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    /// Bytes below the caller's stack pointer that the call wrote.
    pub bytes: usize,
    /// Bytes that were painted; a depth equal to it means the call may
    /// have gone deeper than could be seen.
    pub painted: usize,
}

impl Depth {
    /// Whether the call used every painted byte (the depth is then only a
    /// lower bound).
    pub fn saturated(&self) -> bool {
        self.bytes >= self.painted
    }
}

/// The current stack pointer.
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies SP into a general-purpose register; touches no memory
    // and no flags.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    sp
}

/// The current stack pointer.
#[cfg(all(target_os = "none", target_arch = "arm"))]
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies SP into a general-purpose register; touches no memory
    // and no flags.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    sp
}

/// Paints `[bottom, sp)` with [`PATTERN`], `sp` being the stack pointer
/// inside the assembly block, which the caller inlines (so it is the
/// caller's own stack pointer); returns `sp`.
///
/// # Safety
///
/// `bottom` is word-aligned, not above the stack pointer, and every byte
/// of `[bottom, sp)` is free stack of the running thread: no live object
/// is there, and no interrupt handler runs on this stack meanwhile.
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn paint_below_sp(bottom: usize) -> usize {
    let top: usize;
    // SAFETY: the caller's contract: only free stack below SP is written;
    // the loop itself keeps its state in registers and pushes nothing.
    unsafe {
        core::arch::asm!(
            "mov {top}, sp",
            "2:",
            "cmp {p}, {top}",
            "b.hs 3f",
            "str {pat}, [{p}], #8",
            "b 2b",
            "3:",
            p = inout(reg) bottom => _,
            top = out(reg) top,
            pat = in(reg) PATTERN,
            options(nostack),
        );
    }
    top
}

/// Paints `[bottom, sp)` with [`PATTERN`]; see the AArch64 version.
///
/// # Safety
///
/// As for the AArch64 version.
#[cfg(all(target_os = "none", target_arch = "arm"))]
#[inline(always)]
unsafe fn paint_below_sp(bottom: usize) -> usize {
    let top: usize;
    // SAFETY: the caller's contract: only free stack below SP is written;
    // the loop itself keeps its state in registers and pushes nothing.
    unsafe {
        core::arch::asm!(
            "mov {top}, sp",
            "2:",
            "cmp {p}, {top}",
            "bhs 3f",
            "str {pat}, [{p}], #4",
            "b 2b",
            "3:",
            p = inout(reg) bottom => _,
            top = out(reg) top,
            pat = in(reg) PATTERN,
            options(nostack),
        );
    }
    top
}

/// Runs `f` and returns how many bytes of stack below this function's
/// stack pointer it used: every frame `f` and its callees pushed.
///
/// Paints up to [`PAINT_BYTES`] below the stack pointer, but not below
/// `floor`. Not inlined, so that the stack pointer it paints from is its
/// own and `f` (called through a `dyn` reference) runs below it.
///
/// # Safety
///
/// `floor` is the lowest address of the stack this runs on, and nothing
/// else (an interrupt handler, another core) uses that stack meanwhile.
#[cfg(target_os = "none")]
#[inline(never)]
pub unsafe fn measure(floor: usize, f: &mut dyn FnMut()) -> Depth {
    let sp = stack_pointer();
    let bottom = (sp.saturating_sub(PAINT_BYTES).max(floor) + 15) & !15;
    // SAFETY: `[bottom, sp)` lies between the stack's lowest address (the
    // caller's contract) and the stack pointer: free stack, which nothing
    // else uses meanwhile (the caller's contract). `bottom` is 16-aligned.
    let top = unsafe { paint_below_sp(bottom) };
    f();
    let mut p = bottom;
    while p < top {
        // SAFETY: `p` is word-aligned and inside `[bottom, top)`, stack
        // memory of this thread that holds no live object any more (`f`
        // returned); a volatile read, since it is outside every Rust
        // object.
        let word = unsafe { (p as *const usize).read_volatile() };
        if word != PATTERN {
            break;
        }
        p += WORD;
    }
    Depth {
        bytes: top - p,
        painted: top - bottom,
    }
}
