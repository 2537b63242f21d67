//! `CaStore`: the CA directory and its layout.
//!
//! ```text
//! DIR/
//!   ca.pem              the CA certificate (public; give it to every client)
//!   ca.toml             settings: name, key type, path length, permits, SAN rules
//!   ledger.jsonl        one JSON line per issued certificate
//!   ledger.lock         lock file: one signer at a time
//!   manifest.json       after sealing: every issued certificate and its fingerprint
//!   manifest.sig        detached signature of manifest.json by the CA key
//!   sealed.json         after sealing: when, and whether the key was destroyed
//!   private/            0700
//!     ca-key.pem        ENCRYPTED PRIVATE KEY (PKCS#8, PBES2 scrypt + AES-256-CBC), 0600
//!     passphrase        only with --generate-passphrase, 0400, destroyed by seal
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::constraints::{NameConstraints, Permit};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Mode};
use crate::keys::{KeyType, PrivateKey};
use crate::ledger::Ledger;
use crate::passphrase::{self, Passphrase};
use crate::san_rule::SanRule;
use crate::x509;

pub const CERT_FILE: &str = "ca.pem";
pub const SETTINGS_FILE: &str = "ca.toml";
pub const SEALED_FILE: &str = "sealed.json";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_SIG_FILE: &str = "manifest.sig";
pub const PRIVATE_DIR: &str = "private";
pub const KEY_FILE: &str = "private/ca-key.pem";
pub const PASSPHRASE_FILE: &str = "private/passphrase";

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
}

fn default_rules() -> Vec<SanRule> {
    vec![SanRule::Base]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SealRecord {
    pub sealed_at: String,
    pub key_destroyed: bool,
    /// A ceremony CA whose key only ever existed in memory.
    #[serde(default)]
    pub key_never_stored: bool,
    pub manifest_sha256: String,
    pub certificates: usize,
}

pub struct CaStore {
    dir: PathBuf,
    pub settings: Settings,
    pub cert_der: Vec<u8>,
    pub not_after: OffsetDateTime,
    pub constraints: NameConstraints,
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
        let toml = toml::to_string_pretty(settings)
            .map_err(|e| Error::msg(format!("cannot encode settings: {e}")))?;
        fsutil::write_atomic(
            &dir.join(SETTINGS_FILE),
            toml.as_bytes(),
            Mode::Public,
            false,
            true,
        )?;
        // ca.pem last: its presence marks a complete CA directory.
        fsutil::write_atomic(
            &dir.join(CERT_FILE),
            x509::pem_certificate(cert_der).as_bytes(),
            Mode::Public,
            false,
            true,
        )?;
        Ok(())
    }

    /// Opens an existing CA directory.
    pub fn open(dir: &Path) -> Result<CaStore> {
        let cert_path = dir.join(CERT_FILE);
        if !cert_path.exists() {
            return Err(Error::invalid(
                "--dir",
                dir.display().to_string(),
                format!("no CA there ({CERT_FILE} is missing); create one with: uca init --dir {} --name NAME", dir.display()),
            ));
        }
        let settings_path = dir.join(SETTINGS_FILE);
        let text = std::fs::read_to_string(&settings_path).ctx("read", &settings_path)?;
        let settings: Settings = toml::from_str(&text).map_err(|e| {
            Error::msg(format!(
                "{} is damaged: {}",
                settings_path.display(),
                // toml's messages can span lines; uca's errors are one line.
                e.message().replace(['\n', '\r'], " ")
            ))
        })?;
        let certs = x509::read_certificates(&cert_path)?;
        let cert_der = certs
            .into_iter()
            .next()
            .expect("read_certificates returns at least one");
        let fp = x509::sha256_hex(&cert_der);
        if fp != settings.fingerprint {
            return Err(Error::msg(format!(
                "{} does not match the fingerprint recorded in {} (was the certificate replaced?)",
                cert_path.display(),
                settings_path.display()
            )));
        }
        let parsed = x509::parse(&cert_der).map_err(Error::msg)?;
        let not_after = x509::not_after(&parsed);
        let constraints = NameConstraints::from_certificate(&parsed)?;
        Ok(CaStore {
            dir: dir.to_path_buf(),
            settings,
            cert_der,
            not_after,
            constraints,
        })
    }

    pub fn seal_record(&self) -> Result<Option<SealRecord>> {
        let path = self.dir.join(SEALED_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::msg(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Refuses to go on if the CA is sealed.
    pub fn ensure_unsealed(&self) -> Result<()> {
        if let Some(rec) = self.seal_record()? {
            return Err(Error::Sealed {
                dir: self.dir.clone(),
                when: rec.sealed_at,
            });
        }
        Ok(())
    }

    /// Decrypts the CA key and checks that it belongs to ca.pem.
    pub fn unlock(&self, passphrase_file: Option<&PathBuf>) -> Result<Signer> {
        self.ensure_unsealed()?;
        let key_path = self.dir.join(KEY_FILE);
        let pem_text = std::fs::read_to_string(&key_path).ctx("read the CA key", &key_path)?;
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
    pub fn refuse_ca_targets(&self, plan: &crate::plan::Plan, out: &Path) -> Result<()> {
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
    MANIFEST_SIG_FILE,
    PRIVATE_DIR,
    "ledger.jsonl",
    "ledger.lock",
];

/// An unlocked CA: it can sign. The key is wiped from memory when dropped.
pub struct Signer {
    pub issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub key: PrivateKey,
    pub cert_der: Vec<u8>,
    pub not_after: OffsetDateTime,
    pub constraints: NameConstraints,
    pub pathlen: u8,
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
        Ok(Signer {
            issuer,
            key,
            cert_der: store.cert_der.clone(),
            not_after: store.not_after,
            constraints: store.constraints.clone(),
            pathlen: store.settings.pathlen,
        })
    }

    /// Signs arbitrary bytes with the CA key (the manifest), in the format
    /// `openssl dgst -verify` / `pkeyutl -verify` check.
    pub fn sign_bytes(&self, data: &[u8]) -> Result<Vec<u8>> {
        rcgen::SigningKey::sign(self.issuer.key(), data)
            .map_err(|e| Error::msg(format!("cannot sign: {e}")))
    }
}
