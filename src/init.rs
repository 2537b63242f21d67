//! `uca init`: create a CA directory with a self-signed root whose key is
//! encrypted at rest.

use std::path::{Path, PathBuf};

use crate::constraints::{NameConstraints, Permit};
use crate::error::{Error, Result};
use crate::keys::KeyType;
use crate::passphrase::NewPassphrase;
use crate::profile::{self, Validity};
use crate::san_rule::SanRule;
use crate::store::{self, CaStore, Settings};
use crate::{names, timefmt, x509};

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

pub fn validate_ca_name(name: &str) -> Result<()> {
    names::check_typography("CA name", name)?;
    if name.trim().is_empty() {
        return Err(Error::invalid("CA name", name, "it is empty"));
    }
    if name.len() > 64 {
        return Err(Error::invalid(
            "CA name",
            name,
            format!(
                "it is {} characters; a common name holds at most 64",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// The directory must be new or empty: a CA is never replaced in place.
fn check_dir_is_free(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if dir.join(store::CERT_FILE).exists() || dir.join(store::SETTINGS_FILE).exists() {
                return Err(Error::invalid(
                    "--dir",
                    dir.display().to_string(),
                    "it already holds a CA; uca never replaces a CA in place (remove it first if you really mean to)",
                ));
            }
            if entries.next().is_some() {
                return Err(Error::invalid(
                    "--dir",
                    dir.display().to_string(),
                    "it is not empty; give a new or empty directory",
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::invalid(
            "--dir",
            dir.display().to_string(),
            "it is a file, not a directory",
        )),
        Err(e) => Err(Error::io("read", dir, e)),
    }
}

/// A freshly made root: key, certificate and settings, not yet stored.
pub struct NewRoot {
    pub key: crate::keys::PrivateKey,
    pub cert_der: Vec<u8>,
    pub settings: Settings,
}

/// Makes a root key and its self-signed certificate.
pub fn make_root(
    name: &str,
    key_type: KeyType,
    validity: Validity,
    pathlen: u8,
    permits: Vec<Permit>,
    san_rules: Vec<SanRule>,
) -> Result<NewRoot> {
    let constraints = NameConstraints(permits.clone());
    let (key, key_pair) = key_type.generate_with_pair()?;
    let params = profile::root_params(name, validity, pathlen, &constraints);
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| Error::msg(format!("cannot create the CA certificate: {e}")))?;
    let cert_der = cert.der().to_vec();
    let settings = Settings {
        name: name.to_string(),
        key: key_type,
        pathlen,
        permit: permits,
        san_rules,
        created: timefmt::rfc3339(timefmt::now()),
        not_after: timefmt::rfc3339(validity.not_after),
        fingerprint: x509::sha256_hex(&cert_der),
    };
    Ok(NewRoot {
        key,
        cert_der,
        settings,
    })
}

/// Stores a new root; on failure removes what it wrote, so nothing
/// half-made is left behind, and nothing that was there before (a file it
/// refused to replace, or a concurrent run's) is removed.
pub fn store_root(
    dir: &Path,
    root: &NewRoot,
    encrypted_key: Option<&str>,
    stored: Option<&crate::passphrase::Passphrase>,
) -> Result<()> {
    let absent = |rel: &str| std::fs::symlink_metadata(dir.join(rel)).is_err();
    let created_dir = absent("");
    let created_private = absent(store::PRIVATE_DIR);
    let new_files: Vec<&str> = [
        store::CERT_FILE,
        store::SETTINGS_FILE,
        store::KEY_FILE,
        store::PASSPHRASE_FILE,
    ]
    .into_iter()
    .filter(|f| absent(f))
    .collect();
    let result = CaStore::create(dir, &root.settings, &root.cert_der, encrypted_key, stored);
    if let Err(e) = &result {
        // A file that appeared although it was absent above is another
        // run's: it is what made this one fail.
        let lost_race = matches!(e, crate::error::Error::Exists(_));
        if !lost_race {
            for f in &new_files {
                let _ = std::fs::remove_file(dir.join(f));
            }
            if created_private {
                let _ = std::fs::remove_dir(dir.join(store::PRIVATE_DIR));
            }
            if created_dir {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    result
}

/// Checks that `dir` can receive a new CA.
pub fn check_new_ca_dir(dir: &Path) -> Result<()> {
    check_dir_is_free(dir)
}

pub fn run(req: &InitRequest) -> Result<InitReport> {
    // Everything is validated before the passphrase is asked for or a key made.
    validate_ca_name(&req.name)?;
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
    check_dir_is_free(&req.dir)?;
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
