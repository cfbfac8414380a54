//! The panic handler of the firmware's scenarios (on an ARM target): `error: panicked at
//! <file>:<line>` and the panic's message when it is a plain string, then exit status 1
//! ([`crate::exit`]), without `core::fmt` (the message's arguments are not formatted), so a
//! panic path links no formatting code.
//!
//! The firmware is written not to panic (the core validates once, then runs without panicking),
//! so a panic is a bug: the location is what is needed to find it.

use core::panic::PanicInfo;

use crate::out::{self, Line};

/// Exit status of a panic.
pub const EXIT_PANIC: u8 = 1;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    let mut l = Line::new();
    l.str("error: panicked");
    if let Some(at) = info.location() {
        l.str(" at ").str(at.file()).str(":").u64(u64::from(at.line()));
    }
    if let Some(msg) = info.message().as_str() {
        l.str(": ").str(msg);
    }
    out::print(&l);
    crate::log::exit(EXIT_PANIC)
}
