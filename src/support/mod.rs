//! Layer 0, support: knows nothing about certificates. The error type,
//! file writing rules (atomic, 0600 secrets, never replacing without
//! --force), publishing a directory of files at once, time formatting,
//! standard output and error that cannot panic, and process hardening.

pub mod error;
pub mod fsutil;
pub mod hardening;
pub mod output;
pub mod stdout;
pub mod timefmt;
