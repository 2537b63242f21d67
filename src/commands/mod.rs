//! Layer 3, commands: one module per verb (`init`, `issue`, `sign`, `seal`,
//! `verify`, `check`, `inspect`, `completions`, `registry`, `ceremony`, `trust`,
//! `vault`, `recover`), each holding its clap arguments, its `run` (arguments in, the
//! report printed through `support::stdout::Stdout`) and the request and
//! report types of its work. `args` holds the argument groups several verbs
//! share, `progress` the bar `issue` and `ceremony` draw. Uses `ca`, `pki` and `support`; `cli.rs` above names the verbs and
//! dispatches to them.

pub mod args;
pub mod ceremony;
pub mod check;
pub mod completions;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod progress;
pub mod recover;
pub mod registry;
pub mod seal;
pub mod sign;
pub mod trust;
pub mod vault;
pub mod verify;
