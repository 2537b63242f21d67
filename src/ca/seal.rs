//! `uca seal`: sign the root's CRLs and a manifest of everything the CA
//! issued, then destroy the stored passphrase (and, if asked, the key) so
//! that the root can never sign again; with escrow, the key stays encrypted
//! under a secret only a quorum of custodians recombines (`ca::escrow`).
//! The manifest it signs, and checking it later, are `ca::manifest`.

use std::path::{Path, PathBuf};

use crate::ca::escrow::{self, EscrowRecord, EscrowSpec};
use crate::ca::ledger::LedgerLock;
use crate::ca::manifest::{self, ManifestCa, ManifestHeader};
use crate::ca::revocation;
use crate::ca::store::{self, CaStore, SealRecord, SealState, SealStatus, Signer};
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::timefmt;

pub struct SealReport {
    pub dir: PathBuf,
    pub sealed_at: String,
    pub certificates: usize,
    pub passphrase_destroyed: bool,
    pub key_destroyed: bool,
    /// The escrow and its share files, when sealed with escrow.
    pub escrow: Option<(EscrowRecord, Vec<PathBuf>)>,
    /// This run completed a seal that an earlier run began.
    pub resumed: bool,
    pub verify_command: String,
}

/// `uca seal`: seals an open CA, or completes a seal that was interrupted.
/// Only a seal that began and was recorded can be completed without the
/// passphrase; one that stopped before its record starts over.
pub fn run(
    dir: &Path,
    passphrase_file: Option<&PathBuf>,
    destroy_key: bool,
    escrow: Option<&EscrowSpec>,
) -> Result<SealReport> {
    let store = CaStore::open(dir)?;
    if let SealStatus::Recorded(_) = store.seal_status()? {
        // Read again under the lock: another seal may be finishing it.
        let lock = store.ledger().lock()?;
        if let SealStatus::Recorded(record) = store.seal_status()? {
            if record.state == SealState::Sealing {
                if escrow.is_some() && record.escrow.is_none() {
                    return Err(Error::msg(format!(
                        "the seal of {} began without escrow and was interrupted; complete it with 'uca seal --dir {}' (escrow can no longer be added)",
                        dir.display(),
                        dir.display()
                    )));
                }
                return resume(&store, record, &lock, destroy_key);
            }
        }
        store.ensure_unsealed()?;
    }
    if let Some(spec) = escrow {
        escrow::check_spec(spec, dir)?;
    }
    let signer = match store.unlock_to_seal(passphrase_file) {
        Ok(signer) => signer,
        Err(e) => {
            // A seal running at the same time destroys the stored
            // passphrase: once it is done, report the seal, not the symptom.
            let _lock = store.ledger().lock()?;
            store.ensure_unsealed()?;
            return Err(e);
        }
    };
    let lock = store.ledger().lock()?;
    seal_with(&store, signer, &lock, destroy_key, false, escrow)
}

/// Seals `store` with an unlocked signer while holding its lock, in the
/// order that makes every crash point recoverable: the signed manifest
/// (`manifest.json` streamed, then `manifest.sha256`, then `manifest.sig`),
/// then the record of the seal (`Sealing`), then the secrets go, then the
/// record says `Sealed`. A kill before the record leaves every secret in place; a
/// kill after it leaves a CA that never issues again and that `uca seal`
/// completes.
pub fn seal_with(
    store: &CaStore,
    signer: Signer,
    _lock: &LedgerLock,
    destroy_key: bool,
    key_never_stored: bool,
    escrow: Option<&EscrowSpec>,
) -> Result<SealReport> {
    // Under the lock: a concurrent seal may have recorded itself meanwhile.
    if let SealStatus::Recorded(_) = store.seal_status()? {
        store.ensure_unsealed()?;
    }
    let sealed_at = timefmt::rfc3339(timefmt::now());
    let verify_with = manifest::openssl_verify_command(store.key);
    // The CRLs first, while the key is at hand: a seal killed before its
    // record starts over and signs them again.
    let crls = revocation::presigned(store, &signer)?;
    revocation::write(store, &crls, true)?;
    // The escrowed key and the shares, also before the record: a seal
    // stopped before it leaves the operator's key and passphrase in place.
    let escrowed = match escrow {
        Some(spec) => Some(escrow_key(store, &signer, spec)?),
        None => None,
    };
    let header = ManifestHeader {
        ca: ManifestCa {
            name: store.name.clone(),
            sha256: store.fingerprint.clone(),
            key: store.key,
            not_after: timefmt::rfc3339(store.not_after),
        },
        sealed_at: sealed_at.clone(),
        signature_file: store::MANIFEST_SIG_FILE.to_string(),
        digest_file: Some(store::MANIFEST_DIGEST_FILE.to_string()),
        verify_with: verify_with.clone(),
        crls: crls.into_iter().map(|c| c.record).collect(),
        escrow: escrowed.as_ref().map(|(r, _)| r.clone()),
    };
    // A manifest left by an unrecorded earlier attempt is replaced.
    let written = fsutil::write_atomic_with(
        &store.path(store::MANIFEST_FILE),
        Mode::Public,
        true,
        true,
        |file, tmp| manifest::write_manifest(file, tmp, store, &header),
    )?;
    let digest = manifest::digest_line(&written.sha256);
    let signature = signer.sign_bytes(digest.as_bytes())?;
    drop(signer);
    for (file, bytes) in [
        (store::MANIFEST_DIGEST_FILE, digest.as_bytes()),
        (store::MANIFEST_SIG_FILE, signature.as_slice()),
    ] {
        fsutil::write_atomic(&store.path(file), bytes, Mode::Public, true, true)?;
    }
    let record = SealRecord {
        state: SealState::Sealing,
        sealed_at,
        key_destroyed: false,
        // With escrow the copy under the operator's passphrase goes: only
        // the escrowed copy may open the key.
        destroy_key: destroy_key || escrowed.is_some(),
        passphrase_stored: fsutil::exists(&store.path(store::PASSPHRASE_FILE)),
        key_never_stored,
        manifest_sha256: written.sha256,
        certificates: written.certificates,
        escrow: header.escrow,
    };
    write_record(store, &record, false)?;
    let shares = escrowed.map(|(_, paths)| paths).unwrap_or_default();
    finish(store, record, false, verify_with, shares)
}

/// Encrypts the key under a fresh secret into `private/escrow-key.pem` and
/// writes the secret's shares. Returns the escrow record and the files.
fn escrow_key(
    store: &CaStore,
    signer: &Signer,
    spec: &EscrowSpec,
) -> Result<(EscrowRecord, Vec<PathBuf>)> {
    let secret = escrow::NewSecret::generate();
    let encrypted = signer.key.encrypt(&secret.passphrase)?;
    // Replaces what an unrecorded earlier attempt left: its shares are
    // replaced too (with --force) or this run stops before writing any.
    fsutil::write_atomic(
        &store.path(escrow::ESCROW_KEY_FILE),
        encrypted.as_bytes(),
        Mode::Secret,
        true,
        true,
    )?;
    let paths = secret.write_shares(spec, &store.fingerprint)?;
    Ok((secret.record(spec), paths))
}

/// Completes a recorded seal: checks that the manifest on disk is the one
/// the record names and that ca.pem's key signed it, then destroys what is
/// left. `destroy_key` here adds to what the first run asked for.
fn resume(
    store: &CaStore,
    mut record: SealRecord,
    _lock: &LedgerLock,
    destroy_key: bool,
) -> Result<SealReport> {
    let path = store.path(store::MANIFEST_FILE);
    if manifest::sha256_of_file(&path)? != record.manifest_sha256 {
        return Err(Error::Verification(format!(
            "{} is not the manifest that {} records (SHA-256 differs): it was altered after sealing began; restore it from a backup, then run uca seal again",
            path.display(),
            store.path(store::SEALED_FILE).display()
        )));
    }
    let verified = manifest::read_verified_manifest(
        &path,
        &store.path(store::MANIFEST_SIG_FILE),
        &store.path(store::CERT_FILE),
        &mut |_| {},
    )?;
    record.destroy_key |= destroy_key;
    // The command the signed manifest gives: a manifest sealed before
    // manifest.sha256 existed is checked the way it says.
    let verify_command = verified.header.verify_with;
    finish(store, record, true, verify_command, Vec::new())
}

/// The irreversible half of sealing, idempotent: destroys the stored
/// passphrase (and the key when asked), then records the CA as sealed.
fn finish(
    store: &CaStore,
    mut record: SealRecord,
    resumed: bool,
    verify_command: String,
    share_files: Vec<PathBuf>,
) -> Result<SealReport> {
    fsutil::shred(&store.path(store::PASSPHRASE_FILE))?;
    if record.escrow.is_none() {
        // An escrowed key left by an earlier, unrecorded attempt with
        // escrow: its shares would open it, and this seal has no escrow.
        fsutil::shred(&store.path(escrow::ESCROW_KEY_FILE))?;
    }
    if record.destroy_key {
        // Gone now, whether by this run or by the interrupted one.
        fsutil::shred(&store.path(store::KEY_FILE))?;
        record.key_destroyed = true;
    }
    record.state = SealState::Sealed;
    write_record(store, &record, true)?;
    Ok(SealReport {
        dir: store.dir().to_path_buf(),
        sealed_at: record.sealed_at,
        certificates: record.certificates,
        passphrase_destroyed: record.passphrase_stored,
        key_destroyed: record.key_destroyed,
        escrow: record.escrow.map(|e| (e, share_files)),
        resumed,
        verify_command,
    })
}

fn write_record(store: &CaStore, record: &SealRecord, replace: bool) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::msg(format!("cannot encode the seal record: {e}")))?;
    let path = store.path(store::SEALED_FILE);
    fsutil::write_atomic(&path, &bytes, Mode::Public, replace, true).map_err(|e| match e {
        // Seal has no --force: say what happened instead of suggesting one.
        Error::Exists(_) => Error::msg(format!(
            "{} appeared while this seal was running (another uca seal, or a planted file); nothing was destroyed: remove it if it is not a seal record, then run uca seal again",
            path.display()
        )),
        other => other,
    })
}
