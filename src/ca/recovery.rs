//! The recovery ceremony of a root sealed with escrow: a quorum of
//! custodians' shares recombines the escrowed key's passphrase, in memory
//! only; the key then does exactly one operation (a CRL with the next
//! number, or an intermediate), and every such act is appended, signed by
//! the root, to `recoveries.jsonl` beside the manifest. Each entry names
//! the SHA-256 of what precedes it (the manifest, then the entry before),
//! so none can be removed or reordered unseen. The CA stays sealed: nothing
//! in its seal record changes, and the stored key stays escrowed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ca::escrow::{self, EscrowRecord};
use crate::ca::ledger::LedgerLock;
use crate::ca::manifest::{self, ManifestHeader};
use crate::ca::revocation::CrlRecord;
use crate::ca::store::{self, CaStore, SealState, SealStatus, Signer};
use crate::pki::keys::{KeyType, PrivateKey};
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::timefmt;

pub const LOG_FILE: &str = "recoveries.jsonl";

/// One recovery, as signed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryEntry {
    /// `revoke`, `sign-intermediate` or `cross-sign`.
    pub operation: String,
    pub at: String,
    /// The indices of the shares that took part.
    pub shares: Vec<u8>,
    /// SHA-256 of manifest.json for the first entry, else of the entry before.
    pub previous_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<CrlRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<RecoveredCertificate>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveredCertificate {
    pub serial: String,
    pub subject: String,
    pub sha256: String,
    pub path: Option<String>,
}

/// A line of the log: the entry's exact text and the root's signature.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedLine {
    entry: String,
    signature: String,
}

/// Proof that a quorum of custodians recombined the escrowed key: only
/// [`unlock`] makes one, and signing a sealed CA's certificate needs one.
pub struct Quorum {
    indices: Vec<u8>,
}

/// An unlocked escrowed key, with the CA's lock held.
pub struct Recovery {
    pub signer: Signer,
    pub quorum: Quorum,
    pub lock: LedgerLock,
    manifest: ManifestHeader,
    /// The entries so far, with the SHA-256 the next one must name.
    entries: Vec<RecoveryEntry>,
    last_sha256: String,
}

/// Refuses a CA that is not sealed with escrow, reads and checks every
/// share, and only with a quorum recombines the passphrase and decrypts
/// the escrowed key. Nothing is written.
pub fn unlock(store: &CaStore, share_files: &[PathBuf]) -> Result<Recovery> {
    require_escrow(store)?;
    let shares = share_files
        .iter()
        .map(|p| escrow::read_share(p))
        .collect::<Result<Vec<_>>>()?;
    unlock_escrowed(store, shares)
}

/// [`unlock`] with shares already read (entered at a prompt).
pub fn unlock_shares(store: &CaStore, shares: Vec<escrow::Share>) -> Result<Recovery> {
    require_escrow(store)?;
    unlock_escrowed(store, shares)
}

/// Refuses, first of all, a CA that is open, half sealed, or sealed
/// without escrow (which never signs again).
pub fn require_escrow(store: &CaStore) -> Result<()> {
    let dir = store.dir().display();
    match store.seal_status()? {
        SealStatus::Recorded(r) if r.state == SealState::Sealed && r.escrow.is_some() => {}
        SealStatus::Recorded(r) if r.state == SealState::Sealed => {
            return Err(Error::msg(format!(
                "{dir} was sealed at {} without escrow: it never signs again, and no share can change that",
                r.sealed_at
            )))
        }
        SealStatus::Recorded(_) => {
            return Err(Error::msg(format!(
                "the seal of {dir} was interrupted; complete it first with 'uca seal --dir {dir}'"
            )))
        }
        _ => {
            return Err(Error::msg(format!(
                "{dir} is not sealed: recovery is for a sealed root; sign with 'uca sign' while it is open"
            )))
        }
    }
    Ok(())
}

/// Continues the unlock once the CA is known to be sealed with escrow.
fn unlock_escrowed(store: &CaStore, shares: Vec<escrow::Share>) -> Result<Recovery> {
    let dir = store.dir().display();
    let verified = manifest::read_verified_manifest(
        &store.path(store::MANIFEST_FILE),
        &store.path(store::MANIFEST_SIG_FILE),
        &store.path(store::CERT_FILE),
        &mut |_| {},
    )?;
    let manifest = verified.header;
    let record: EscrowRecord = manifest.escrow.clone().ok_or_else(|| {
        Error::msg(format!(
            "{dir}'s signed manifest records no escrow: it never signs again"
        ))
    })?;
    let entries = verify_log(store.dir(), &verified.sha256, &store.cert_der)?;
    let (passphrase, indices) =
        escrow::recombine(&shares, &store.fingerprint, &record, store.dir())?;
    let key_path = store.path(escrow::ESCROW_KEY_FILE);
    let pem = zeroize::Zeroizing::new(fsutil::read_capped_text(
        &key_path,
        fsutil::limits::SECRET,
        "read the escrowed key",
        "CA key file",
    )?);
    let key = PrivateKey::decrypt(&pem, &passphrase)?;
    drop(passphrase);
    let signer = Signer::new(store, key)?;
    let lock = store.ledger().lock()?;
    let last_sha256 = match entries.last() {
        Some((_, sha)) => sha.clone(),
        None => verified.sha256,
    };
    Ok(Recovery {
        signer,
        quorum: Quorum { indices },
        lock,
        manifest,
        entries: entries.into_iter().map(|(e, _)| e).collect(),
        last_sha256,
    })
}

impl Recovery {
    /// One more than every CRL number the manifest and the log record.
    pub fn next_crl_number(&self) -> u64 {
        let sealed = self.manifest.crls.iter().map(|c| c.number);
        let recovered = self
            .entries
            .iter()
            .filter_map(|e| e.crl.as_ref().map(|c| c.number));
        sealed.chain(recovered).max().unwrap_or(0) + 1
    }

    /// Every serial an earlier recovery revoked: a new CRL replaces the
    /// last one, so it lists them again.
    pub fn revoked_so_far(&self) -> Vec<String> {
        let mut serials: Vec<String> = Vec::new();
        for crl in self.entries.iter().filter_map(|e| e.crl.as_ref()) {
            for s in &crl.revokes {
                if !serials.contains(s) {
                    serials.push(s.clone());
                }
            }
        }
        serials
    }

    /// Appends the signed entry for this recovery's one operation.
    pub fn record(
        &self,
        store: &CaStore,
        operation: &str,
        crl: Option<CrlRecord>,
        certificate: Option<RecoveredCertificate>,
    ) -> Result<()> {
        let entry = RecoveryEntry {
            operation: operation.to_string(),
            at: timefmt::rfc3339(timefmt::now()),
            shares: self.quorum.indices.clone(),
            previous_sha256: self.last_sha256.clone(),
            crl,
            certificate,
        };
        let text = serde_json::to_string(&entry)
            .map_err(|e| Error::msg(format!("cannot encode the recovery entry: {e}")))?;
        let signature = self.signer.sign_bytes(text.as_bytes())?;
        let line = serde_json::to_string(&SignedLine {
            entry: text,
            signature: x509::base64(&signature),
        })
        .map_err(|e| Error::msg(format!("cannot encode the recovery entry: {e}")))?;
        let path = store.path(LOG_FILE);
        let mut log = if fsutil::exists(&path) {
            fsutil::read_capped_file(&path, fsutil::limits::MANIFEST, "read", "recovery log")?
        } else {
            Vec::new()
        };
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
        fsutil::write_atomic(&path, &log, Mode::Public, true, true)
    }
}

/// Reads `recoveries.jsonl` beside the manifest (none: no entry), checks
/// each entry's signature with the key of `ca_der` and the chain of
/// SHA-256 from the manifest's, `manifest_sha256` (hex, as the verified
/// manifest's signature binds it). Returns the entries, each with the
/// SHA-256 of its text.
pub fn verify_log(
    dir: &Path,
    manifest_sha256: &str,
    ca_der: &[u8],
) -> Result<Vec<(RecoveryEntry, String)>> {
    let path = dir.join(LOG_FILE);
    if !fsutil::exists(&path) {
        return Ok(Vec::new());
    }
    let text = fsutil::read_capped_text(&path, fsutil::limits::MANIFEST, "read", "recovery log")?;
    let ca = x509::parse(ca_der).map_err(Error::msg)?;
    let alg = KeyType::of_certificate(&ca)?.verification_algorithm();
    let key = ring::signature::UnparsedPublicKey::new(
        alg,
        ca.public_key().subject_public_key.data.as_ref(),
    );
    let mut previous = manifest_sha256.to_string();
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad =
            |why: &str| Error::Verification(format!("{} line {}: {why}", path.display(), i + 1));
        let signed: SignedLine =
            serde_json::from_str(line).map_err(|_| bad("not a signed recovery entry"))?;
        let signature =
            base64_decode(&signed.signature).ok_or_else(|| bad("its signature is not base64"))?;
        key.verify(signed.entry.as_bytes(), &signature)
            .map_err(|_| bad("its signature does not verify with the root's key (altered, or not this root's)"))?;
        let entry: RecoveryEntry = serde_json::from_str(&signed.entry)
            .map_err(|_| bad("its entry is not a recovery entry"))?;
        if entry.previous_sha256 != previous {
            return Err(bad("it does not follow the entry before it (an entry was removed, reordered, or the manifest replaced)"));
        }
        previous = x509::sha256_hex(signed.entry.as_bytes());
        entries.push((entry, previous.clone()));
    }
    Ok(entries)
}

/// The number of entries in the log and the SHA-256 of the last (what the
/// next entry will name), unchecked: for the ceremony's written record,
/// against which a log cut short later shows.
pub fn head(dir: &Path) -> Result<Option<(usize, String)>> {
    let path = dir.join(LOG_FILE);
    if !fsutil::exists(&path) {
        return Ok(None);
    }
    let text = fsutil::read_capped_text(&path, fsutil::limits::MANIFEST, "read", "recovery log")?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(last) = lines.last() else {
        return Ok(None);
    };
    let signed: SignedLine = serde_json::from_str(last).map_err(|_| {
        Error::Verification(format!(
            "{} line {}: not a signed recovery entry",
            path.display(),
            lines.len()
        ))
    })?;
    Ok(Some((
        lines.len(),
        x509::sha256_hex(signed.entry.as_bytes()),
    )))
}

/// Acts of the root that neither the manifest nor a recovery entry
/// records: a ledger entry past the `sealed` ones the manifest lists whose
/// serial no entry names, or a CRL file in `crl/` that neither names. The
/// chain of entries proves only the entries it holds, so a log cut short,
/// or removed, shows here, as long as what those acts left remains. One
/// line per act.
pub fn unrecorded_acts(
    dir: &Path,
    sealed: usize,
    manifest_crls: &[String],
    entries: &[(RecoveryEntry, String)],
) -> Result<Vec<String>> {
    let log = dir.join(LOG_FILE);
    let cut = |what: String| {
        format!(
            "{what}, but no entry of {} records it: the recovery log was cut short or removed",
            log.display()
        )
    };
    let recorded_serials: Vec<&str> = entries
        .iter()
        .filter_map(|(e, _)| e.certificate.as_ref().map(|c| c.serial.as_str()))
        .collect();
    let mut problems = Vec::new();
    let mut index = 0usize;
    let ledger = crate::ca::ledger::Ledger::new(dir);
    ledger.scan(|e| {
        index += 1;
        if index > sealed && !recorded_serials.contains(&e.serial.as_str()) {
            problems.push(cut(format!(
                "{}: serial {} ({}) was signed after the seal",
                ledger.path().display(),
                e.serial,
                e.subject
            )));
        }
    })?;
    let crl_dir = dir.join(crate::ca::store::CRL_DIR);
    let Ok(files) = std::fs::read_dir(&crl_dir) else {
        return Ok(problems);
    };
    let mut names: Vec<String> = files
        .filter_map(|f| f.ok())
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".crl"))
        .collect();
    names.sort();
    for name in names {
        let path = format!("{}/{name}", crate::ca::store::CRL_DIR);
        let in_log = entries
            .iter()
            .any(|(e, _)| e.crl.as_ref().is_some_and(|c| c.path == path));
        if !in_log && !manifest_crls.contains(&path) {
            problems.push(cut(format!(
                "{}: a CRL of the root that the manifest does not list",
                dir.join(&path).display()
            )));
        }
    }
    Ok(problems)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Checks the files the entries name against their SHA-256; one line per
/// problem.
pub fn check_outputs(dir: &Path, entries: &[(RecoveryEntry, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (e, _) in entries {
        if let Some(crl) = &e.crl {
            problems.extend(crate::ca::revocation::check_files(
                dir,
                std::slice::from_ref(crl),
            ));
        }
        if let Some(path) = e
            .certificate
            .as_ref()
            .and_then(|c| c.path.as_ref().map(|p| (c, p)))
        {
            let (cert, p) = path;
            match x509::read_certificates(Path::new(p)) {
                Ok(certs)
                    if certs.first().map(|c| x509::sha256_hex(c)).as_ref()
                        == Some(&cert.sha256) => {}
                Ok(_) => problems.push(format!(
                    "{p}: fingerprint differs from the recovery entry (serial {})",
                    cert.serial
                )),
                Err(_) => problems.push(format!(
                    "{p}: missing or unreadable (serial {})",
                    cert.serial
                )),
            }
        }
    }
    problems
}
