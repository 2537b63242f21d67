//! `uca seal`: write a signed manifest of everything the CA issued, then
//! destroy the stored passphrase (and, if asked, the key) so that the root can
//! never sign again. `verify_manifest` checks such a manifest later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{self, Mode};
use crate::keys::KeyType;
use crate::ledger::{LedgerEntry, LedgerLock};
use crate::store::{self, CaStore, SealRecord, Signer};
use crate::{timefmt, x509};

/// `manifest.json` as read back. It is written by [`write_manifest`], one
/// certificate per line, without ever holding all entries in memory.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub ca: ManifestCa,
    pub sealed_at: String,
    pub signature_file: String,
    pub verify_with: String,
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

pub fn run(dir: &Path, passphrase_file: Option<&PathBuf>, destroy_key: bool) -> Result<SealReport> {
    let store = CaStore::open(dir)?;
    store.ensure_unsealed()?;
    let signer = store.unlock(passphrase_file)?;
    let lock = store.ledger().lock()?;
    seal_with(&store, signer, &lock, destroy_key, false)
}

/// Seals `store` with an unlocked signer while holding its lock: signed
/// manifest first, then the stored secrets go, then the seal record.
pub fn seal_with(
    store: &CaStore,
    signer: Signer,
    _lock: &LedgerLock,
    destroy_key: bool,
    key_never_stored: bool,
) -> Result<SealReport> {
    store.ensure_unsealed()?;
    let sealed_at = timefmt::rfc3339(timefmt::now());
    let verify_with = openssl_verify_command(store.settings.key);
    let ca = ManifestCa {
        name: store.settings.name.clone(),
        sha256: store.settings.fingerprint.clone(),
        key: store.settings.key,
        not_after: store.settings.not_after.clone(),
    };
    let (json, certificates) = write_manifest(store, &ca, &sealed_at, &verify_with)?;
    let signature = signer.sign_bytes(&json)?;
    // Signed first, so a crash below leaves an unsealed CA with a valid
    // manifest, never a sealed one without it.
    fsutil::write_atomic(
        &store.path(store::MANIFEST_FILE),
        &json,
        Mode::Public,
        true,
        true,
    )?;
    fsutil::write_atomic(
        &store.path(store::MANIFEST_SIG_FILE),
        &signature,
        Mode::Public,
        true,
        true,
    )?;
    drop(signer);

    let passphrase_destroyed = fsutil::shred(&store.path(store::PASSPHRASE_FILE))?;
    let key_destroyed = destroy_key && fsutil::shred(&store.path(store::KEY_FILE))?;
    let record = SealRecord {
        sealed_at: sealed_at.clone(),
        key_destroyed,
        key_never_stored,
        manifest_sha256: x509::sha256_hex(&json),
        certificates,
    };
    let rec = serde_json::to_vec_pretty(&record)
        .map_err(|e| Error::msg(format!("cannot encode the seal record: {e}")))?;
    fsutil::write_atomic(
        &store.path(store::SEALED_FILE),
        &rec,
        Mode::Public,
        false,
        true,
    )?;
    Ok(SealReport {
        dir: store.dir().to_path_buf(),
        sealed_at,
        certificates,
        passphrase_destroyed,
        key_destroyed,
        verify_command: verify_with,
    })
}

/// Result of checking a manifest and the files it lists.
pub struct ManifestCheck {
    pub certificates: usize,
    pub files_ok: usize,
    /// Entries whose file was later re-issued (`--force`) at the same path:
    /// only the newest entry for a path describes the file on disk.
    pub replaced: usize,
    pub problems: Vec<String>,
}

/// Verifies `manifest.sig` over `manifest.json` with the public key of
/// `ca_pem`, then every listed certificate file's SHA-256.
pub fn verify_manifest(
    manifest_path: &Path,
    sig_path: &Path,
    ca_path: &Path,
) -> Result<ManifestCheck> {
    let json = crate::fsutil::read_capped(
        manifest_path,
        crate::fsutil::limits::MANIFEST,
        "read",
        "manifest",
    )?;
    let sig = crate::fsutil::read_capped(
        sig_path,
        crate::fsutil::limits::SECRET,
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
    let alg: &dyn ring::signature::VerificationAlgorithm = match manifest.ca.key {
        KeyType::EcP256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
        KeyType::EcP384 => &ring::signature::ECDSA_P384_SHA384_ASN1,
        KeyType::Ed25519 => &ring::signature::ED25519,
        _ => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    };
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
    let mut problems = Vec::new();
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
        certificates: manifest.certificates.len(),
        files_ok,
        replaced,
        problems,
    })
}
