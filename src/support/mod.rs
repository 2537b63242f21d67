//! Layer 0, support: knows nothing about certificates. The error type,
//! file writing rules (atomic, 0600 secrets, never replacing without
//! --force), publishing a directory of files at once, a set in a few bits
//! a value (`hashfilter`, for flat memory at any size), time formatting,
//! standard output and error that cannot panic, and `sys`, the only module
//! with unsafe code (process hardening and the few system calls std lacks).

pub mod error;
pub mod fsutil;
pub mod hashfilter;
pub mod output;
pub mod stdout;
#[allow(unsafe_code)]
pub mod sys;
pub mod tar;
pub mod timefmt;
