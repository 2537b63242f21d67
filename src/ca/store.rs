//! `CaStore`: the CA directory and its layout.
//!
//! ```text
//! DIR/
//!   ca.pem              the CA certificate (public; give it to every client)
//!   ca.toml             SAN rules and the fingerprint of ca.pem; its copies of the
//!                       name, key type, path length and permits are for people:
//!                       uca reads those facts from ca.pem
//!   ledger.jsonl        one JSON line per issued certificate
//!   ledger.lock         lock file: one signer at a time
//!   manifest.json       after sealing: every issued certificate and its fingerprint
//!   manifest.sig        detached signature of manifest.json by the CA key
//!   sealed.json         after sealing: when, and whether the key was destroyed
//!   recoveries.jsonl    after a recovery (escrow only): each act, signed by the root
//!   crl/                written by the seal: root.crl, revoke-SERIAL.crl, revoke-all.crl
//!   private/            0700
//!     ca-key.pem        ENCRYPTED PRIVATE KEY (PKCS#8, PBES2 scrypt + AES-256-CBC), 0600
//!     passphrase        only with --generate-passphrase, 0400, destroyed by seal
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ca::ledger::Ledger;
use crate::pki::constraints::{NameConstraints, Permit};
use crate::pki::keys::{KeyType, PrivateKey};
use crate::pki::passphrase::{self, Passphrase};
use crate::pki::san_rule::SanRule;
use crate::pki::x509;
use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil::{self, Mode};

pub const CERT_FILE: &str = "ca.pem";
pub const SETTINGS_FILE: &str = "ca.toml";
pub const SEALED_FILE: &str = "sealed.json";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_SIG_FILE: &str = "manifest.sig";
/// The manifest's SHA-256 as `openssl dgst -sha256 -r` prints it: what
/// `manifest.sig` signs.
pub const MANIFEST_DIGEST_FILE: &str = "manifest.sha256";
pub const PRIVATE_DIR: &str = "private";
pub const KEY_FILE: &str = "private/ca-key.pem";
pub const PASSPHRASE_FILE: &str = "private/passphrase";
/// A CA waiting for its certificate from another CA (`uca init --csr-out`).
pub const PENDING_CSR_FILE: &str = "pending.csr";
pub const CRL_DIR: &str = "crl";

/// `ca.toml`. Only `san_rules` (a convenience: every name still passes the
/// constraints) and `fingerprint` (binds the file to its ca.pem) are used
/// once read back. The rest records, for a person reading the file, what
/// ca.pem says: ca.toml is editable, so the name, key type, path length,
/// permits and validity uca acts on are read from ca.pem (see `CaStore`).
/// The whole file is still parsed, so a damaged one is reported.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub name: String,
    pub key: KeyType,
    pub pathlen: u8,
    #[serde(default)]
    pub permit: Vec<Permit>,
    /// Rules applied by `uca issue` when it is given no `--san-rule`.
    #[serde(default = "default_rules")]
    pub san_rules: Vec<SanRule>,
    pub created: String,
    pub not_after: String,
    /// SHA-256 of ca.pem's DER.
    pub fingerprint: String,
    /// Where the root's CRL is published: put into the intermediates it
    /// signs and into its CRLs' issuing distribution point. A URL to embed,
    /// not a security fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_url: Option<String>,
}

fn default_rules() -> Vec<SanRule> {
    vec![SanRule::Base]
}

/// `sealed.json`: sealing is a recorded transition. The record is written
/// as `Sealing` after the signed manifest and before any secret is
/// destroyed, and rewritten as `Sealed` once they are gone; a seal killed
/// in between is completed by running `uca seal` again, without the
/// passphrase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SealRecord {
    /// Records written before the transition was recorded are `Sealed`.
    #[serde(default)]
    pub state: SealState,
    pub sealed_at: String,
    pub key_destroyed: bool,
    /// `--destroy-key` was asked for: a resumed seal destroys the key too.
    #[serde(default)]
    pub destroy_key: bool,
    /// The CA directory held a generated passphrase when sealing began.
    #[serde(default)]
    pub passphrase_stored: bool,
    /// A ceremony CA whose key only ever existed in memory.
    #[serde(default)]
    pub key_never_stored: bool,
    pub manifest_sha256: String,
    pub certificates: usize,
    /// Sealed with M-of-N escrow: the key stays, encrypted under a secret
    /// only a quorum of custodians recombines. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<crate::ca::escrow::EscrowRecord>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealState {
    /// The manifest is signed and written; secrets may still exist.
    Sealing,
    /// Every stored secret the seal was to destroy is gone.
    #[default]
    Sealed,
}

/// Where a CA stands on its way to being sealed.
pub enum SealStatus {
    /// No seal artefact: the CA issues.
    Open,
    /// `manifest.json` or `manifest.sig` exists but no `sealed.json`: a seal
    /// was stopped before it was recorded. Nothing was destroyed; uca does
    /// not issue, and `uca seal` starts over.
    Unrecorded(&'static str),
    /// `sealed.json` exists.
    Recorded(SealRecord),
}

/// An open CA directory. The security facts are fields read from the
/// certificate, so no code can take them from `ca.toml` by mistake.
pub struct CaStore {
    dir: PathBuf,
    pub cert_der: Vec<u8>,
    /// The subject's common name.
    pub name: String,
    pub key: KeyType,
    /// basicConstraints pathLenConstraint; `None` means unlimited.
    pub pathlen: Option<u8>,
    pub not_after: OffsetDateTime,
    pub constraints: NameConstraints,
    /// SHA-256 of ca.pem's DER.
    pub fingerprint: String,
    pub san_rules: Vec<SanRule>,
    /// For a CA below another root: the certificates after its own in
    /// ca.pem, its issuer first, the self-signed root last. Empty for a
    /// root.
    pub chain: Vec<Vec<u8>>,
    /// `crl_url` from ca.toml.
    pub crl_url: Option<String>,
}

impl CaStore {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn private_dir(&self) -> PathBuf {
        self.dir.join(PRIVATE_DIR)
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::new(&self.dir)
    }

    pub fn cert_pem(&self) -> String {
        x509::pem_certificate(&self.cert_der)
    }

    /// The root clients trust: this CA's own certificate, or the top of its
    /// chain when another root signed it.
    pub fn anchor_der(&self) -> &[u8] {
        self.chain.last().unwrap_or(&self.cert_der)
    }

    /// This CA's certificate and its chain up to the root, as ca.pem holds
    /// them: what follows a certificate it signs in a full chain.
    pub fn chain_pem(&self) -> String {
        std::iter::once(&self.cert_der)
            .chain(&self.chain)
            .map(|d| x509::pem_certificate(d))
            .collect()
    }

    /// Writes a pending CA (key, optional stored passphrase, `ca.toml`,
    /// and the CSR last, which marks it pending) into the empty `dir`.
    pub fn create_pending(
        dir: &Path,
        settings: &Settings,
        csr_pem: &str,
        encrypted_key_pem: &str,
        stored_passphrase: Option<&Passphrase>,
    ) -> Result<()> {
        Self::create_private(dir, Some(encrypted_key_pem), stored_passphrase)?;
        Self::write_settings(dir, settings, false)?;
        fsutil::write_atomic(
            &dir.join(PENDING_CSR_FILE),
            csr_pem.as_bytes(),
            Mode::Public,
            false,
            true,
        )
    }

    /// Writes a new CA into the existing empty directory `dir`, which the
    /// caller created or claimed. The caller has validated everything; this
    /// only stores it, private parts first and 0700/0600 from creation, and
    /// gives `dir` the documented mode 0755 whatever it had.
    pub fn create(
        dir: &Path,
        settings: &Settings,
        cert_der: &[u8],
        encrypted_key_pem: Option<&str>,
        stored_passphrase: Option<&Passphrase>,
    ) -> Result<()> {
        Self::create_with_chain(
            dir,
            settings,
            cert_der,
            &[],
            encrypted_key_pem,
            stored_passphrase,
        )
    }

    /// [`create`](Self::create) for a CA another root signed: `chain` (its
    /// issuer first, the root last) follows its certificate in ca.pem.
    pub fn create_with_chain(
        dir: &Path,
        settings: &Settings,
        cert_der: &[u8],
        chain: &[Vec<u8>],
        encrypted_key_pem: Option<&str>,
        stored_passphrase: Option<&Passphrase>,
    ) -> Result<()> {
        Self::create_private(dir, encrypted_key_pem, stored_passphrase)?;
        Self::write_settings(dir, settings, false)?;
        let pem: String = std::iter::once(cert_der)
            .chain(chain.iter().map(Vec::as_slice))
            .map(x509::pem_certificate)
            .collect();
        // ca.pem last: its presence marks a complete CA directory.
        fsutil::write_atomic(
            &dir.join(CERT_FILE),
            pem.as_bytes(),
            Mode::Public,
            false,
            true,
        )?;
        Ok(())
    }

    /// The private folder (0700), the encrypted key and a stored
    /// passphrase (0600/0400 from creation), and `dir` given mode 0755.
    fn create_private(
        dir: &Path,
        encrypted_key_pem: Option<&str>,
        stored_passphrase: Option<&Passphrase>,
    ) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .ctx("set permissions on", dir)?;
        fsutil::create_dir(&dir.join(PRIVATE_DIR), 0o700)?;
        if let Some(key) = encrypted_key_pem {
            fsutil::write_atomic(
                &dir.join(KEY_FILE),
                key.as_bytes(),
                Mode::Secret,
                false,
                true,
            )?;
        }
        if let Some(p) = stored_passphrase {
            let mut line = zeroize::Zeroizing::new(p.as_str().to_string());
            line.push('\n');
            fsutil::write_atomic(
                &dir.join(PASSPHRASE_FILE),
                line.as_bytes(),
                Mode::ReadOnlySecret,
                false,
                true,
            )?;
        }
        Ok(())
    }

    fn write_settings(dir: &Path, settings: &Settings, replace: bool) -> Result<()> {
        let toml = toml::to_string_pretty(settings)
            .map_err(|e| Error::msg(format!("cannot encode settings: {e}")))?;
        fsutil::write_atomic(
            &dir.join(SETTINGS_FILE),
            toml.as_bytes(),
            Mode::Public,
            replace,
            true,
        )
    }

    /// Opens an existing CA directory.
    pub fn open(dir: &Path) -> Result<CaStore> {
        let cert_path = dir.join(CERT_FILE);
        if !cert_path.exists() && dir.join(PENDING_CSR_FILE).exists() {
            return Err(Error::invalid(
                "--dir",
                dir.display().to_string(),
                format!(
                    "the CA there waits for its certificate: have {} signed by its parent CA, then run: uca init --dir {} --import-cert CHAIN.pem",
                    dir.join(PENDING_CSR_FILE).display(),
                    dir.display()
                ),
            ));
        }
        if !cert_path.exists() {
            return Err(Error::invalid(
                "--dir",
                dir.display().to_string(),
                format!("no CA there ({CERT_FILE} is missing); create one with: uca init --dir {} --name NAME", dir.display()),
            ));
        }
        let settings_path = dir.join(SETTINGS_FILE);
        let text = crate::support::fsutil::read_capped_text(
            &settings_path,
            crate::support::fsutil::limits::SETTINGS,
            "read",
            "CA settings file",
        )?;
        let settings: Settings = toml::from_str(&text).map_err(|e| {
            Error::msg(format!(
                "{} is damaged: {}",
                settings_path.display(),
                // toml's messages can span lines; uca's errors are one line.
                e.message().replace(['\n', '\r'], " ")
            ))
        })?;
        let mut certs = x509::read_certificates(&cert_path)?.into_iter();
        let cert_der = certs
            .next()
            .expect("read_certificates returns at least one");
        let chain: Vec<Vec<u8>> = certs.collect();
        let fingerprint = x509::sha256_hex(&cert_der);
        if fingerprint != settings.fingerprint {
            return Err(Error::msg(format!(
                "{} does not match the fingerprint recorded in {} (was the certificate replaced?)",
                cert_path.display(),
                settings_path.display()
            )));
        }
        let parsed = x509::parse(&cert_der).map_err(Error::msg)?;
        let damaged = |why: &str| Error::msg(format!("{} {why}", cert_path.display()));
        let basic = match parsed.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => bc.value,
            _ => {
                return Err(damaged(
                    "is not a CA certificate (no basicConstraints CA:TRUE)",
                ))
            }
        };
        let pathlen = basic
            .path_len_constraint
            .map(|n| u8::try_from(n).unwrap_or(u8::MAX));
        let name = x509::common_name(&parsed).ok_or_else(|| damaged("has no common name"))?;
        Ok(CaStore {
            dir: dir.to_path_buf(),
            name,
            key: KeyType::of_certificate(&parsed)?,
            pathlen,
            not_after: x509::not_after(&parsed),
            constraints: NameConstraints::from_certificate(&parsed)?,
            fingerprint,
            san_rules: settings.san_rules,
            crl_url: settings.crl_url,
            cert_der,
            chain,
        })
    }

    /// Reads the seal artefacts. `sealed.json` must be a regular file: a
    /// symbolic link or anything else planted there is an error, never
    /// taken for "not sealed".
    pub fn seal_status(&self) -> Result<SealStatus> {
        let path = self.dir.join(SEALED_FILE);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let limit = fsutil::limits::SETTINGS;
                let text = fsutil::read_capped_text(&path, limit, "read", "seal record")?;
                let record = serde_json::from_str(&text)
                    .map_err(|e| Error::msg(format!("{} is damaged: {e}", path.display())))?;
                return Ok(SealStatus::Recorded(record));
            }
            Ok(_) => {
                return Err(Error::msg(format!(
                    "{} is not a regular file (a symbolic link or a directory); uca neither follows nor replaces it: remove it, then run the command again",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &path, e)),
        }
        for artefact in [MANIFEST_FILE, MANIFEST_DIGEST_FILE, MANIFEST_SIG_FILE] {
            if std::fs::symlink_metadata(self.dir.join(artefact)).is_ok() {
                return Ok(SealStatus::Unrecorded(artefact));
            }
        }
        Ok(SealStatus::Open)
    }

    /// Refuses to go on unless the CA is open: no seal artefact at all.
    pub fn ensure_unsealed(&self) -> Result<()> {
        self.refuse_sealed(self.seal_status()?, false)
    }

    /// The error for a CA that is not `Open`; `Unrecorded` passes when
    /// `restart_ok` (only `seal` may start over).
    fn refuse_sealed(&self, status: SealStatus, restart_ok: bool) -> Result<()> {
        let dir = self.dir.display();
        match status {
            SealStatus::Open => Ok(()),
            SealStatus::Unrecorded(_) if restart_ok => Ok(()),
            SealStatus::Recorded(rec) if rec.state == SealState::Sealed => Err(Error::Sealed {
                dir: self.dir.clone(),
                when: rec.sealed_at,
            }),
            SealStatus::Recorded(rec) => Err(Error::msg(format!(
                "sealing {dir} began at {} and was interrupted; it will never issue or sign again: run 'uca seal --dir {dir}' to complete it",
                rec.sealed_at
            ))),
            SealStatus::Unrecorded(artefact) => Err(Error::msg(format!(
                "{} exists, written by a seal that stopped before it was recorded; uca does not issue from a CA with seal artefacts: run 'uca seal --dir {dir}' to complete the seal",
                self.dir.join(artefact).display()
            ))),
        }
    }

    /// Decrypts the CA key and checks that it belongs to ca.pem.
    pub fn unlock(&self, passphrase_file: Option<&PathBuf>) -> Result<Signer> {
        self.ensure_unsealed()?;
        self.unlock_key(passphrase_file)
    }

    /// [`unlock`](Self::unlock) for `seal`, which may also start over after
    /// a seal that stopped before it was recorded.
    pub fn unlock_to_seal(&self, passphrase_file: Option<&PathBuf>) -> Result<Signer> {
        self.refuse_sealed(self.seal_status()?, true)?;
        self.unlock_key(passphrase_file)
    }

    fn unlock_key(&self, passphrase_file: Option<&PathBuf>) -> Result<Signer> {
        let key_path = self.dir.join(KEY_FILE);
        let pem_text = zeroize::Zeroizing::new(crate::support::fsutil::read_capped_text(
            &key_path,
            crate::support::fsutil::limits::SECRET,
            "read the CA key",
            "CA key file",
        )?);
        let passphrase = passphrase::for_unlock(passphrase_file, &self.dir.join(PASSPHRASE_FILE))?;
        let key = PrivateKey::decrypt(&pem_text, &passphrase)?;
        drop(passphrase);
        Signer::new(self, key)
    }

    /// The output directory must not lie inside the CA's private folder.
    pub fn refuse_private_output(&self, out: &Path) -> Result<()> {
        let private = fsutil::resolve(&self.private_dir())?;
        let out_abs = fsutil::resolve(out)?;
        if out_abs.starts_with(&private) {
            return Err(Error::invalid(
                "--out",
                out.display().to_string(),
                format!(
                    "it is inside the CA's private folder {}; choose another directory",
                    private.display()
                ),
            ));
        }
        if out_abs.parent().is_none() {
            return Err(Error::invalid(
                "--out",
                out.display().to_string(),
                "it is the root of the file system; give uca a directory of its own (e.g. certs)",
            ));
        }
        Ok(())
    }

    /// An output path (a certificate directory, or `sign --out FILE`) must
    /// not be the CA directory, one of its ancestors, one of its own files or
    /// anything in its private folder: with `--force`, `uca issue --out DIR
    /// private` or `--out .. ca` would otherwise replace the CA's key or the
    /// whole CA. Only the parent is resolved: a symbolic link at `target`
    /// itself is replaced, never followed.
    pub fn refuse_ca_path(&self, target: &Path) -> Result<()> {
        let Some(name) = target.file_name() else {
            return Ok(());
        };
        let ca_dir = fsutil::resolve(&self.dir)?;
        let parent = fsutil::resolve(fsutil::parent_of(target))?;
        self.refuse_ca_entry(&ca_dir, &parent, name, target)
    }

    /// [`refuse_ca_path`](Self::refuse_ca_path) for every certificate
    /// directory of `plan` under `out`. Only a group directory that is the CA
    /// directory, one of its ancestors or inside its private folder can
    /// collide, so only those groups' names are looked at, and without a
    /// system call per name.
    pub fn refuse_ca_targets(&self, plan: &crate::ca::plan::Plan, out: &Path) -> Result<()> {
        let ca_dir = fsutil::resolve(&self.dir)?;
        for g in &plan.groups {
            let group_dir = fsutil::resolve(&out.join(&g.out))?;
            if !ca_dir.starts_with(&group_dir) && !group_dir.starts_with(ca_dir.join(PRIVATE_DIR)) {
                continue;
            }
            for item in plan.items(out) {
                let item = item?;
                if !std::ptr::eq(item.group, g) {
                    continue;
                }
                if let Some(name) = item.target.file_name() {
                    self.refuse_ca_entry(&ca_dir, &group_dir, name, &item.target)?;
                }
            }
        }
        Ok(())
    }

    /// `parent` (resolved) / `name` against the resolved CA directory.
    fn refuse_ca_entry(
        &self,
        ca_dir: &Path,
        parent: &Path,
        name: &std::ffi::OsStr,
        shown: &Path,
    ) -> Result<()> {
        let full = parent.join(name);
        let own_entry = parent == ca_dir && CA_ENTRIES.iter().any(|e| name == *e);
        if own_entry || ca_dir.starts_with(&full) || full.starts_with(ca_dir.join(PRIVATE_DIR)) {
            return Err(Error::invalid(
                "output",
                shown.display().to_string(),
                format!(
                    "it would replace the CA in {} or part of it; choose another output directory",
                    self.dir.display()
                ),
            ));
        }
        Ok(())
    }
}

/// Everything a CA directory holds: no output may replace any of it.
const CA_ENTRIES: &[&str] = &[
    CERT_FILE,
    SETTINGS_FILE,
    SEALED_FILE,
    MANIFEST_FILE,
    MANIFEST_DIGEST_FILE,
    MANIFEST_SIG_FILE,
    PRIVATE_DIR,
    CRL_DIR,
    "recoveries.jsonl",
    "ledger.jsonl",
    "ledger.lock",
];

/// An unlocked CA, or an intermediate below it: it can sign. The key is
/// wiped from memory when dropped.
pub struct Signer {
    pub issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub key: PrivateKey,
    /// The issuing certificate: the root's, or the intermediate's.
    pub cert_der: Vec<u8>,
    pub not_after: OffsetDateTime,
    /// The issuer's own name constraints, as its certificate states them.
    pub constraints: NameConstraints,
    pub pathlen: Option<u8>,
    /// The CAs from this issuer up to, not including, the root (empty for
    /// the root): what a leaf's chain carries between itself and ca.pem.
    pub intermediates: Vec<Vec<u8>>,
}

impl Signer {
    pub fn new(store: &CaStore, key: PrivateKey) -> Result<Signer> {
        let key_pair = key.key_pair()?;
        let parsed = x509::parse(&store.cert_der).map_err(Error::msg)?;
        if parsed.public_key().raw
            != rcgen::PublicKeyData::subject_public_key_info(&key_pair).as_slice()
        {
            return Err(Error::msg(format!(
                "the CA key in {} does not belong to {}",
                store.path(KEY_FILE).display(),
                store.path(CERT_FILE).display()
            )));
        }
        let cert = rustls_pki_types::CertificateDer::from(store.cert_der.as_slice());
        let issuer = rcgen::Issuer::from_ca_cert_der(&cert, key_pair).map_err(|e| {
            Error::msg(format!(
                "cannot use {} as an issuer: {e}",
                store.path(CERT_FILE).display()
            ))
        })?;
        // Below another root, a leaf's chain carries this CA and every CA
        // above it but the root.
        let intermediates = match store.chain.split_last() {
            Some((_root, above)) => std::iter::once(&store.cert_der)
                .chain(above)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Ok(Signer {
            issuer,
            key,
            cert_der: store.cert_der.clone(),
            not_after: store.not_after,
            constraints: store.constraints.clone(),
            pathlen: store.pathlen,
            intermediates,
        })
    }

    /// A signer for `cert_der`, an intermediate this signer issued, with its
    /// key (held only in memory by the caller). Its limits are read from
    /// its certificate, as every verifier reads them.
    pub fn subordinate(&self, cert_der: Vec<u8>, key: PrivateKey) -> Result<Signer> {
        let key_pair = key.key_pair()?;
        let parsed = x509::parse(&cert_der).map_err(Error::msg)?;
        if parsed.issuer().as_raw()
            != x509::parse(&self.cert_der)
                .map_err(Error::msg)?
                .subject()
                .as_raw()
            || parsed.public_key().raw
                != rcgen::PublicKeyData::subject_public_key_info(&key_pair).as_slice()
        {
            return Err(Error::msg(
                "the intermediate was not issued by this CA or is not the key's certificate",
            ));
        }
        let pathlen = match parsed.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => bc
                .value
                .path_len_constraint
                .map(|n| u8::try_from(n).unwrap_or(u8::MAX)),
            _ => return Err(Error::msg("the intermediate is not a CA certificate")),
        };
        let cert = rustls_pki_types::CertificateDer::from(cert_der.as_slice());
        let issuer = rcgen::Issuer::from_ca_cert_der(&cert, key_pair)
            .map_err(|e| Error::msg(format!("cannot use the intermediate as an issuer: {e}")))?;
        let mut intermediates = vec![cert_der.clone()];
        intermediates.extend(self.intermediates.iter().cloned());
        Ok(Signer {
            issuer,
            key,
            not_after: x509::not_after(&parsed),
            constraints: NameConstraints::from_certificate(&parsed)?,
            pathlen,
            intermediates,
            cert_der,
        })
    }

    /// Signs arbitrary bytes with the CA key (the manifest), in the format
    /// `openssl dgst -verify` / `pkeyutl -verify` check.
    pub fn sign_bytes(&self, data: &[u8]) -> Result<Vec<u8>> {
        rcgen::SigningKey::sign(self.issuer.key(), data)
            .map_err(|e| Error::msg(format!("cannot sign: {e}")))
    }
}
