//! A new root CA: its key and self-signed certificate, and storing them as a
//! CA directory without ever replacing one (a new directory is built beside
//! it and renamed into place; an existing empty one is claimed first). Used
//! by `uca init` and `uca ceremony`.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::ca::store::{self, CaStore, Settings};
use crate::pki::constraints::{NameConstraints, Permit};
use crate::pki::keys::KeyType;
use crate::pki::profile::{self, Validity};
use crate::pki::san_rule::SanRule;
use crate::support::error::{Error, Result};
use crate::{pki::x509, support::fsutil, support::timefmt};

/// Marks an existing empty directory as taken by one `uca init`, which
/// builds the CA inside it and then moves it out; a second init finds it
/// and stops.
pub const CLAIM_DIR: &str = ".uca-init";

fn bad_dir(dir: &Path, why: impl Into<String>) -> Error {
    Error::invalid("--dir", dir.display().to_string(), why)
}

/// The directory must be new or empty, and writable: a CA is never replaced
/// in place, and nothing is made before it is known it can be stored. A
/// symbolic link to a directory is followed; a dangling one is refused (it
/// is never removed, and nothing is created at its target).
pub fn check_new_ca_dir(dir: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        if meta.file_type().is_symlink() && std::fs::metadata(dir).is_err() {
            let target = std::fs::read_link(dir).unwrap_or_default();
            return Err(bad_dir(
                dir,
                format!(
                    "it is a symbolic link to {}, which does not exist; create that directory first or give a real path",
                    target.display()
                ),
            ));
        }
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if dir.join(store::CERT_FILE).exists() || dir.join(store::SETTINGS_FILE).exists() {
                return Err(bad_dir(dir, "it already holds a CA; uca never replaces a CA in place (remove it first if you really mean to)"));
            }
            if dir.join(CLAIM_DIR).exists() {
                return Err(claimed(dir));
            }
            if entries.next().is_some() {
                return Err(bad_dir(
                    dir,
                    "it is not empty; give a new or empty directory",
                ));
            }
            check_can_claim(dir)
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotADirectory
                && std::fs::symlink_metadata(dir).is_ok() =>
        {
            Err(bad_dir(dir, "it is a file, not a directory"))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let ancestor = fsutil::existing_ancestor(dir);
            if !fsutil::is_writable_dir(&ancestor) {
                return Err(bad_dir(
                    dir,
                    format!(
                        "uca cannot create it: {} is not a directory this user may write to",
                        ancestor.display()
                    ),
                ));
            }
            Ok(())
        }
        Err(e) => Err(Error::io("read", dir, e)),
    }
}

fn claimed(dir: &Path) -> Error {
    bad_dir(
        dir,
        format!(
            "another uca init is creating a CA there ({} exists; remove it if no init is running)",
            dir.join(CLAIM_DIR).display()
        ),
    )
}

/// An existing empty directory gets the documented mode 0755, which only
/// its owner can set.
fn check_can_claim(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !fsutil::is_writable_dir(dir) {
        return Err(bad_dir(dir, "this user may not write to it"));
    }
    let meta = std::fs::metadata(dir).map_err(|e| Error::io("read", dir, e))?;
    let euid = crate::support::sys::effective_uid();
    if euid != 0 && meta.uid() != euid && meta.mode() & 0o7777 != 0o755 {
        return Err(bad_dir(
            dir,
            format!("it belongs to user {}; uca sets a CA directory's mode to 0755, which only its owner can do: let its owner create the CA, or give a new directory", meta.uid()),
        ));
    }
    Ok(())
}

/// A freshly made root: key, certificate and settings, not yet stored.
pub struct NewRoot {
    pub key: crate::pki::keys::PrivateKey,
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
        crl_url: None,
    };
    Ok(NewRoot {
        key,
        cert_der,
        settings,
    })
}

/// Stores a new root in `dir`, which must be new or empty. A new directory
/// is built complete in a hidden sibling and renamed into place only if
/// nothing has appeared at `dir` meanwhile; an existing empty directory is
/// claimed by creating [`CLAIM_DIR`] in it, where the CA is built before it
/// is moved out. On failure only what this call created
/// is removed, so two inits on one directory end with one complete CA and
/// one refusal, never with a removed CA.
pub fn store_root(
    dir: &Path,
    root: &NewRoot,
    encrypted_key: Option<&str>,
    stored: Option<&crate::pki::passphrase::Passphrase>,
) -> Result<()> {
    store_with(dir, &|d: &Path| {
        CaStore::create(d, &root.settings, &root.cert_der, encrypted_key, stored)
    })
}

/// Stores a new CA directory in `dir` (see [`store_root`]): `write` fills
/// the directory it is given, which is then moved into place.
pub fn store_with(dir: &Path, write: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => store_in_new_dir(dir, write),
        Err(e) => Err(Error::io("read", dir, e)),
        Ok(_) => store_in_empty_dir(dir, write),
    }
}

fn store_in_new_dir(dir: &Path, write: impl Fn(&Path) -> Result<()>) -> Result<()> {
    use rand_core::RngCore;
    let parent = fsutil::parent_of(dir);
    fsutil::create_dir(parent, 0o755)?;
    let staging = fsutil::hidden_sibling(dir, "init", rand_core::OsRng.next_u64());
    // Not recursive: fails rather than reuse a directory this call did not make.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| Error::io("create the directory", &staging, e))?;
    let result = write(&staging)
        .and_then(|()| fsutil::sync_dir(&staging))
        .and_then(|()| match fsutil::rename_noreplace(&staging, dir) {
            Ok(()) => fsutil::sync_dir(parent),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(bad_dir(
                dir,
                "it was created by another process while this CA was being made (a second uca init?); this CA was discarded and nothing was written there",
            )),
            Err(e) => Err(Error::io("rename into", dir, e)),
        });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn store_in_empty_dir(dir: &Path, write: impl Fn(&Path) -> Result<()>) -> Result<()> {
    let claim = dir.join(CLAIM_DIR);
    // The claim is also where the CA is built: mkdir fails if another init
    // holds the directory.
    match std::fs::DirBuilder::new().mode(0o700).create(&claim) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(claimed(dir)),
        Err(e) => return Err(Error::io("create", &claim, e)),
    }
    let mut moved = Vec::new();
    let result = only_entry_is_claim(dir)
        .and_then(|()| write(&claim))
        .and_then(|()| fsutil::sync_dir(&claim))
        .and_then(|()| move_out_of_claim(dir, &claim, &mut moved))
        .and_then(|()| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io("set permissions on", dir, e))
        });
    if result.is_err() {
        // Only what this call moved in; everything else is in the claim.
        for name in moved.iter().rev() {
            let _ = remove_entry(&dir.join(name));
        }
    }
    let _ = std::fs::remove_dir_all(&claim);
    let _ = fsutil::sync_dir(dir);
    result
}

/// Moves the CA built in `claim` into `dir`, never over anything, `ca.pem`
/// last: its presence marks a complete CA.
fn move_out_of_claim(dir: &Path, claim: &Path, moved: &mut Vec<String>) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(claim)
        .map_err(|e| Error::io("read", claim, e))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io("read", claim, e))?;
    names.sort_by_key(|n| n == store::CERT_FILE);
    for name in names {
        let target = dir.join(&name);
        match fsutil::rename_noreplace(&claim.join(&name), &target) {
            Ok(()) => moved.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(bad_dir(
                    dir,
                    format!(
                        "{name} appeared there while the CA was being made; nothing was replaced"
                    ),
                ))
            }
            Err(e) => return Err(Error::io("rename into", &target, e)),
        }
    }
    Ok(())
}

fn remove_entry(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

fn only_entry_is_claim(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        if entry.file_name() != CLAIM_DIR {
            return Err(if dir.join(store::CERT_FILE).exists() {
                bad_dir(dir, "another process created a CA there meanwhile; uca never replaces a CA in place")
            } else {
                bad_dir(dir, "it is not empty; give a new or empty directory")
            });
        }
    }
    Ok(())
}
