//! `uca seal`: sign the root's CRLs and a manifest of everything the CA
//! issued, then destroy the stored passphrase (and, if asked, the key) so
//! that the root can never sign again; with escrow, the key stays encrypted
//! under a secret only a quorum of custodians recombines (`ca::escrow`).
//! `verify_manifest` checks such a manifest later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ca::escrow::{self, EscrowRecord, EscrowSpec};
use crate::ca::ledger::{LedgerEntry, LedgerLock};
use crate::ca::revocation::{self, CrlRecord};
use crate::ca::store::{self, CaStore, SealRecord, SealState, SealStatus, Signer};
use crate::pki::keys::KeyType;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::{pki::x509, support::timefmt};

/// `manifest.json` as read back. It is written by [`write_manifest`], one
/// certificate per line, without ever holding all entries in memory.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub ca: ManifestCa,
    pub sealed_at: String,
    pub signature_file: String,
    pub verify_with: String,
    /// The CRLs the root signed before its seal (`DIR/crl/`).
    #[serde(default)]
    pub crls: Vec<CrlRecord>,
    /// M-of-N escrow of the key, when sealed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<EscrowRecord>,
    pub certificates: Vec<ManifestEntry>,
}

/// What the manifest says of each certificate: enough to find the file and
/// check it. SANs and validity start stay in the ledger and the certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub serial: String,
    pub subject: String,
    pub profile: String,
    pub not_after: String,
    pub sha256: String,
    pub path: Option<String>,
}

impl From<LedgerEntry> for ManifestEntry {
    fn from(e: LedgerEntry) -> Self {
        ManifestEntry {
            serial: e.serial,
            subject: e.subject,
            profile: e.profile,
            not_after: e.not_after,
            sha256: e.sha256,
            path: e.path,
        }
    }
}

/// Builds the manifest bytes by streaming the ledger: memory grows with the
/// manifest's own size (about 250 bytes a certificate), not with parsed
/// entries. Returns the bytes and the number of certificates.
fn write_manifest(
    store: &CaStore,
    ca: &ManifestCa,
    sealed_at: &str,
    verify_with: &str,
    crls: &[CrlRecord],
    escrow: Option<&EscrowRecord>,
) -> Result<(Vec<u8>, usize)> {
    let enc = |e: serde_json::Error| Error::msg(format!("cannot encode the manifest: {e}"));
    let ledger_len = std::fs::metadata(store.ledger().path())
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    // Capacity that is never touched costs no memory; growth by doubling would.
    let mut out: Vec<u8> = Vec::with_capacity(ledger_len / 2 + 4096);
    out.extend_from_slice(b"{\n  \"ca\": ");
    serde_json::to_writer(&mut out, ca).map_err(enc)?;
    for (k, v) in [
        ("sealed_at", sealed_at),
        ("signature_file", store::MANIFEST_SIG_FILE),
        ("verify_with", verify_with),
    ] {
        out.extend_from_slice(format!(",\n  \"{k}\": ").as_bytes());
        serde_json::to_writer(&mut out, v).map_err(enc)?;
    }
    out.extend_from_slice(b",\n  \"crls\": ");
    serde_json::to_writer(&mut out, crls).map_err(enc)?;
    if let Some(escrow) = escrow {
        out.extend_from_slice(b",\n  \"escrow\": ");
        serde_json::to_writer(&mut out, escrow).map_err(enc)?;
    }
    out.extend_from_slice(b",\n  \"certificates\": [");
    let mut count = 0usize;
    let mut failed = None;
    store.ledger().scan(|entry| {
        if failed.is_some() {
            return;
        }
        out.extend_from_slice(if count == 0 { b"\n    " } else { b",\n    " });
        if let Err(e) = serde_json::to_writer(&mut out, &ManifestEntry::from(entry)) {
            failed = Some(e);
        }
        count += 1;
    })?;
    if let Some(e) = failed {
        return Err(enc(e));
    }
    out.extend_from_slice(if count == 0 { b"]\n}\n" } else { b"\n  ]\n}\n" });
    Ok((out, count))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestCa {
    pub name: String,
    pub sha256: String,
    pub key: KeyType,
    pub not_after: String,
}

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

/// The stock OpenSSL command line that checks the manifest signature, run
/// from the CA directory. `pkeyutl -certin` takes the public key straight
/// from ca.pem, so checking writes no file (an extracted ca.pub would land in
/// the sealed CA directory); `openssl dgst -verify` with an extracted key
/// checks the same signature.
pub fn openssl_verify_command(key: KeyType) -> String {
    let digest = key
        .openssl_digest()
        .map(|d| format!(" -digest {d}"))
        .unwrap_or_default();
    format!(
        "openssl pkeyutl -verify -certin -inkey ca.pem -rawin{digest} -in manifest.json -sigfile manifest.sig"
    )
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
/// order that makes every crash point recoverable: the signed manifest, then
/// the record of the seal (`Sealing`), then the secrets go, then the record
/// says `Sealed`. A kill before the record leaves every secret in place; a
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
    let verify_with = openssl_verify_command(store.key);
    let ca = ManifestCa {
        name: store.name.clone(),
        sha256: store.fingerprint.clone(),
        key: store.key,
        not_after: timefmt::rfc3339(store.not_after),
    };
    // The CRLs first, while the key is at hand: a seal killed before its
    // record starts over and signs them again.
    let crls = revocation::presigned(store, &signer)?;
    revocation::write(store, &crls, true)?;
    let records: Vec<CrlRecord> = crls.into_iter().map(|c| c.record).collect();
    // The escrowed key and the shares, also before the record: a seal
    // stopped before it leaves the operator's key and passphrase in place.
    let escrowed = match escrow {
        Some(spec) => Some(escrow_key(store, &signer, spec)?),
        None => None,
    };
    let escrow_record = escrowed.as_ref().map(|(r, _)| r.clone());
    let (json, certificates) = write_manifest(
        store,
        &ca,
        &sealed_at,
        &verify_with,
        &records,
        escrow_record.as_ref(),
    )?;
    let signature = signer.sign_bytes(&json)?;
    drop(signer);
    // A manifest left by an unrecorded earlier attempt is replaced.
    for (file, bytes) in [
        (store::MANIFEST_FILE, json.as_slice()),
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
        manifest_sha256: x509::sha256_hex(&json),
        certificates,
        escrow: escrow_record,
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
    let manifest = store.path(store::MANIFEST_FILE);
    let json = fsutil::read_capped_file(&manifest, fsutil::limits::MANIFEST, "read", "manifest")?;
    if x509::sha256_hex(&json) != record.manifest_sha256 {
        return Err(Error::Verification(format!(
            "{} is not the manifest that {} records (SHA-256 differs): it was altered after sealing began; restore it from a backup, then run uca seal again",
            manifest.display(),
            store.path(store::SEALED_FILE).display()
        )));
    }
    verify_manifest(
        &manifest,
        &store.path(store::MANIFEST_SIG_FILE),
        &store.path(store::CERT_FILE),
    )?;
    record.destroy_key |= destroy_key;
    finish(
        store,
        record,
        true,
        openssl_verify_command(store.key),
        Vec::new(),
    )
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

/// Result of checking a manifest and the files it lists.
pub struct ManifestCheck {
    pub crls: usize,
    pub certificates: usize,
    pub files_ok: usize,
    /// Entries whose file was later re-issued (`--force`) at the same path:
    /// only the newest entry for a path describes the file on disk.
    pub replaced: usize,
    pub problems: Vec<String>,
}

/// Reads `manifest.json`, checks `manifest.sig` over it with the key of
/// `ca_path` and that it names that CA; returns it and its bytes.
pub fn read_verified_manifest(
    manifest_path: &Path,
    sig_path: &Path,
    ca_path: &Path,
) -> Result<(Manifest, Vec<u8>)> {
    let json = crate::support::fsutil::read_capped_file(
        manifest_path,
        crate::support::fsutil::limits::MANIFEST,
        "read",
        "manifest",
    )?;
    let sig = crate::support::fsutil::read_capped_file(
        sig_path,
        crate::support::fsutil::limits::SECRET,
        "read",
        "manifest signature",
    )?;
    let ca_der = x509::read_certificates(ca_path)?.remove(0);
    let ca = x509::parse(&ca_der).map_err(Error::msg)?;
    let spki = ca.public_key();
    let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| {
        Error::invalid(
            "manifest",
            manifest_path.display().to_string(),
            format!("not a uca manifest: {e}"),
        )
    })?;
    // The algorithm follows the key in ca.pem; the manifest's own "key"
    // field is a claim inside the signed text, not a fact to act on.
    let alg = KeyType::of_certificate(&ca)?.verification_algorithm();
    let public_key = spki.subject_public_key.data.as_ref();
    ring::signature::UnparsedPublicKey::new(alg, public_key)
        .verify(&json, &sig)
        .map_err(|_| {
            Error::Verification(format!(
                "the signature {} does not match {} under the key of {}: the manifest was altered or signed by another CA",
                sig_path.display(),
                manifest_path.display(),
                ca_path.display()
            ))
        })?;
    if x509::sha256_hex(&ca_der) != manifest.ca.sha256 {
        return Err(Error::Verification(format!(
            "{} is not the CA the manifest names (SHA-256 {})",
            ca_path.display(),
            manifest.ca.sha256
        )));
    }
    Ok((manifest, json))
}

/// Verifies `manifest.sig` over `manifest.json` with the public key of
/// `ca_pem`, then every listed certificate file's SHA-256.
pub fn verify_manifest(
    manifest_path: &Path,
    sig_path: &Path,
    ca_path: &Path,
) -> Result<ManifestCheck> {
    let (manifest, _) = read_verified_manifest(manifest_path, sig_path, ca_path)?;
    let ca_dir = match manifest_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut problems = revocation::check_files(ca_dir, &manifest.crls);
    let mut files_ok = 0;
    let mut replaced = 0;
    let mut newest: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, entry) in manifest.certificates.iter().enumerate() {
        if let Some(p) = &entry.path {
            newest.insert(p.as_str(), i);
        }
    }
    for (i, entry) in manifest.certificates.iter().enumerate() {
        let Some(path) = &entry.path else { continue };
        if newest.get(path.as_str()) != Some(&i) {
            replaced += 1;
            continue;
        }
        let path = Path::new(path);
        match x509::read_certificates(path) {
            Ok(certs)
                if certs.first().map(|c| x509::sha256_hex(c)) == Some(entry.sha256.clone()) =>
            {
                files_ok += 1
            }
            Ok(_) => problems.push(format!(
                "{}: fingerprint differs from the manifest (serial {})",
                path.display(),
                entry.serial
            )),
            Err(_) if !path.exists() => problems.push(format!(
                "{}: missing (serial {})",
                path.display(),
                entry.serial
            )),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok(ManifestCheck {
        crls: manifest.crls.len(),
        certificates: manifest.certificates.len(),
        files_ok,
        replaced,
        problems,
    })
}
