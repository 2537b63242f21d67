//! uca: a sealed private certificate authority.
//!
//! The crate is built in four layers. Each uses only the layers below it
//! (`tests/layers.rs` fails on any other import, and on any import circle):
//!
//! ```text
//! main.rs -> cli.rs, docs.rs -> commands/ -> ca/ -> pki/ -> support/
//! ```
//!
//! - `support/`: knows nothing of certificates. `error` (one error type,
//!   one-line messages), `fsutil` (atomic writes, 0600 secrets, capped
//!   reads, nothing replaced without --force), `hashfilter` (what is surely
//!   new, in a few bits a value), `output` (publishing a
//!   directory of files at once), `stdout` (the only way to print: a failed
//!   write becomes one error line), `timefmt`, `tar` (the tar stream
//!   `--archive` writes and `verify --manifest` reads), `sys` (process
//!   hardening, the environment and the few system calls std lacks: the
//!   crate's only unsafe code).
//! - `pki/`: X.509 facts, no CA directory. `names` (host names, SANs, CA
//!   names), `host` (a registry's HOST[:PORT] and its certs.d folder),
//!   `san_rule`, `constraints`, `keys`, `passphrase`, `profile` (what goes
//!   into each certificate), `subject` (subject templates), `x509`
//!   (reading certificates back), `crl` (revocation lists), `shamir`
//!   (secret sharing for escrow), `age` (encrypting a share to its
//!   custodian's age key), `verify` (chain verification as a TLS
//!   peer does it), `formats`, `pkcs12`.
//! - `ca/`: the CA directory and the issuing engine. `store` (the directory;
//!   its security facts read from ca.pem), `ledger`, `root` (a new root and
//!   storing it), `subordinate` (a CA another root signs), `plan` and `bulk` (validate every output, then issue),
//!   `issuance` (the pipeline every issuing command runs: validate, refuse
//!   what exists, unlock or use a held key, lock, issue),
//!   `archive` (a plan's output as one tar stream),
//!   `signing` (CSRs), `sections` (the plan file's `[registry]` and
//!   `[vault]` settings), `seal` (the recorded seal), `manifest` (what
//!   the seal signs, written and checked as a stream),
//!   `revocation` (the root's CRLs), `escrow` (M-of-N custody of a sealed
//!   key) and `recovery` (what a quorum may do, and its signed log).
//! - `commands/`: one module per verb, each holding its arguments (clap),
//!   its `run` and its report's rendering: `init`, `issue`, `sign`, `seal`,
//!   `verify`, `check`, `inspect`, `completions`, `registry`, `ceremony`
//!   (which runs the others), `recover` (a quorum's one operation), `trust`
//!   (system, Java and NSS trust stores, and bundles) and `vault`
//!   (`bootstrap`, `tls`, `commands` and the HTTP client); `args` holds the
//!   argument groups they share, `progress` the bar `issue` and `ceremony`
//!   draw while the bulk engine reports.
//!
//! `cli.rs` names the verbs (clap) and sends a parsed command line to the
//! verb's `run`; `docs.rs` renders the man pages; `main.rs` sets up the
//! process and turns an error into one line and an exit status.

#![deny(clippy::print_stdout, clippy::print_stderr)]
// Only `support::sys` may hold unsafe code (it alone is allowed it).
#![deny(unsafe_code)]

pub mod ca;
pub mod cli;
pub mod commands;
pub mod docs;
pub mod pki;
pub mod support;

pub use support::error::{Error, Result};
