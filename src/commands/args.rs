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

/// `message` with each flag of the argument group `A` (`--max-ttl`,
/// `--allowed-domain`) written as its field's name (`max_ttl`,
/// `allowed_domains`), which is its key in a plan file: for errors about a
/// plan section that shares its checks with a command.
pub fn flags_as_keys<A: clap::Args>(message: &str) -> String {
    let cmd = A::augment_args(clap::Command::new("section"));
    let mut out = message.to_string();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            out = flag_as_key(&out, &format!("--{long}"), arg.get_id().as_str());
        }
    }
    out
}

/// `text` with `flag` replaced by `key` wherever it is the whole flag
/// (`--role`, not the start of `--role-max-ttl`).
pub fn flag_as_key(text: &str, flag: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(flag) {
        let after = &rest[i + flag.len()..];
        out.push_str(&rest[..i]);
        let longer = after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
        out.push_str(if longer { flag } else { key });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_becomes_its_key_only_where_it_is_the_whole_flag() {
        assert_eq!(
            flag_as_key("--role-max-ttl longer than --role's", "--role", "role"),
            "--role-max-ttl longer than role's"
        );
        let text = "invalid --role-max-ttl '9h': longer than the mount's --max-ttl 1h";
        assert_eq!(
            flags_as_keys::<crate::ca::sections::VaultSettings>(text),
            "invalid role_max_ttl '9h': longer than the mount's max_ttl 1h"
        );
    }
}
