//! `uca init`: create a CA directory with a self-signed root whose key is
//! encrypted at rest.

use std::path::PathBuf;

use crate::ca::root::{check_new_ca_dir, make_root, store_root};
use crate::pki::constraints::Permit;
use crate::pki::keys::KeyType;
use crate::pki::names;
use crate::pki::passphrase::NewPassphrase;
use crate::pki::profile::Validity;
use crate::pki::san_rule::SanRule;
use crate::support::error::Result;

pub struct InitRequest {
    pub dir: PathBuf,
    pub name: String,
    pub key: KeyType,
    pub days: u32,
    pub pathlen: u8,
    pub permits: Vec<String>,
    pub san_rules: Vec<String>,
    pub passphrase_file: Option<PathBuf>,
    pub generate_passphrase: bool,
}

/// What `init` created, for the summary.
pub struct InitReport {
    pub dir: PathBuf,
    pub fingerprint: String,
    pub not_after: String,
    pub passphrase_stored: bool,
}

pub fn run(req: &InitRequest) -> Result<InitReport> {
    // Everything is validated before the passphrase is asked for or a key made.
    names::validate_ca_name(&req.name)?;
    let permits = req
        .permits
        .iter()
        .map(|p| Permit::parse(p))
        .collect::<Result<Vec<_>>>()?;
    let san_rules = if req.san_rules.is_empty() {
        vec![SanRule::Base]
    } else {
        req.san_rules
            .iter()
            .map(|r| SanRule::parse(r))
            .collect::<Result<Vec<_>>>()?
    };
    let validity = Validity::days_from_now(req.days)?;
    check_new_ca_dir(&req.dir)?;
    let new_passphrase =
        NewPassphrase::obtain(req.passphrase_file.as_ref(), req.generate_passphrase)?;

    let root = make_root(
        &req.name,
        req.key,
        validity,
        req.pathlen,
        permits,
        san_rules,
    )?;
    let encrypted = root.key.encrypt(new_passphrase.passphrase())?;
    let stored = match &new_passphrase {
        NewPassphrase::Generated(p) => Some(p),
        NewPassphrase::Given(_) => None,
    };
    store_root(&req.dir, &root, Some(&encrypted), stored)?;
    Ok(InitReport {
        dir: req.dir.clone(),
        fingerprint: root.settings.fingerprint.clone(),
        not_after: root.settings.not_after.clone(),
        passphrase_stored: stored.is_some(),
    })
}
