//! Layer 3, commands: one module per verb (`init`, `issue`, `sign`,
//! `verify`, `check`, `inspect`, `registry`, `ceremony`, `vault`), each
//! taking its request and returning its report. Uses `ca`, `pki` and
//! `support`; `cli.rs` and `app.rs` above parse the command line and print.

pub mod ceremony;
pub mod check;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod registry;
pub mod sign;
pub mod trust;
pub mod vault;
pub mod verify;
