//! uca: a sealed private certificate authority.
//!
//! One module per concept: `store` (the CA directory), `keys`, `passphrase`,
//! `names` (SAN validation), `san_rule`, `constraints`, `profile` (what goes
//! into each certificate), `ledger`, `issue`, `sign`, `seal`, `inspect`,
//! `verify`, `check`. `cli` defines the command line and `app` runs it.
//! Standard output is written only through `stdout::Stdout`, which turns a
//! failed write into one error line, and standard error through
//! `stdout::to_stderr`, which cannot panic.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod app;
pub mod bulk;
pub mod ceremony;
pub mod check;
pub mod cli;
pub mod constraints;
pub mod docs;
pub mod error;
pub mod formats;
pub mod fsutil;
pub mod hardening;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod ledger;
pub mod names;
pub mod output;
pub mod passphrase;
pub mod pkcs12;
pub mod plan;
pub mod profile;
pub mod registry;
pub mod san_rule;
pub mod seal;
pub mod sign;
pub mod stdout;
pub mod store;
pub mod timefmt;
pub mod vault;
pub mod verify;
pub mod x509;

pub use error::{Error, Result};
