//! Placeholder being written.
use crate::error::{Error, Result};
pub fn run(_p: &std::path::Path, _json: bool) -> Result<u8> { Err(Error::msg("inspect: in progress")) }
