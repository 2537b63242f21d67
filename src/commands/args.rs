//! Argument groups (clap) that several verbs flatten into their own.

use std::path::PathBuf;

use clap::Args;

use crate::pki::keys::KeyType;

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the CA passphrase from FILE (one line; a trailing newline is ignored)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Key type and validity of the certificates a command issues, and whether
/// it may replace what is there: the same for issue, registry and vault tls.
#[derive(Debug, Args)]
pub struct LeafArgs {
    /// Key type of the issued keys
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key: KeyType,
    /// Validity in days
    #[arg(long, value_name = "N", default_value_t = 397)]
    pub days: u32,
    /// Replace existing output
    #[arg(long)]
    pub force: bool,
}
