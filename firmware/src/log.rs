//! The logging shim of the training scenarios (`finetune`, `smoke`): [`info!`](crate::info) and
//! [`error!`](crate::error) print plain text lines over semihosting through `core::fmt`, or,
//! with the `defmt` feature, defmt frames (decode with `defmt-print -e <elf>`; on a board, any
//! defmt global logger). Off an ARM target (the library checked on a host) they compile to
//! nothing. `classify` does not use them: its lines ([`crate::report`]) need no `core::fmt`.
//!
//! Format strings must suit both back ends: plain `{}` placeholders with values that are
//! `Display` and `defmt::Format` (integers, floats, `&str`, [`BootError`](crate::BootError)).
//! [`exit`] ends the program with an exit status the host sees.

#[doc(hidden)]
pub mod __private {
    #[cfg(all(target_arch = "arm", target_os = "none", not(feature = "defmt")))]
    pub use cortex_m_semihosting::hprintln;
    #[cfg(feature = "defmt")]
    pub use defmt;
}

/// Logs an informational line (see the [module docs](crate::log)).
#[cfg(feature = "defmt")]
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::__private::defmt::info!($($t)*) };
}
/// Logs an informational line (see the [module docs](crate::log)).
#[cfg(all(target_arch = "arm", target_os = "none", not(feature = "defmt")))]
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::__private::hprintln!($($t)*) };
}
/// Logs an informational line (see the [module docs](crate::log)).
#[cfg(not(any(feature = "defmt", all(target_arch = "arm", target_os = "none"))))]
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => {{ let _ = ::core::format_args!($($t)*); }};
}

/// Logs an error line, prefixed `error: ` in plain text (see the [module docs](crate::log)).
#[cfg(feature = "defmt")]
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::__private::defmt::error!($($t)*) };
}
/// Logs an error line, prefixed `error: ` in plain text (see the [module docs](crate::log)).
#[cfg(all(target_arch = "arm", target_os = "none", not(feature = "defmt")))]
#[macro_export]
macro_rules! error {
    ($fmt:literal $($t:tt)*) => { $crate::log::__private::hprintln!(concat!("error: ", $fmt) $($t)*) };
}
/// Logs an error line, prefixed `error: ` in plain text (see the [module docs](crate::log)).
#[cfg(not(any(feature = "defmt", all(target_arch = "arm", target_os = "none"))))]
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => {{ let _ = ::core::format_args!($($t)*); }};
}

/// Ends the program with `code` as the host-visible exit status (semihosting
/// `SYS_EXIT_EXTENDED`; under QEMU, `qemu-system-arm` exits with it). Without a debugger
/// attached on a real board, semihosting calls trap: there the scenarios' statuses are for
/// QEMU and probe-rs runs.
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn exit(code: u8) -> ! {
    semihosting::process::exit(i32::from(code))
}
