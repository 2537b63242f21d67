//! A CA below another root: `uca init --csr-out FILE` makes the key (stored
//! encrypted, as for a root) and a CSR for another CA to sign, leaving the
//! directory pending; `uca init --import-cert FILE` completes it with the
//! certificate that CA issued and the chain up to its root. The certificate
//! is accepted only if it is the pending key's, a CA certificate, and
//! chains, signature by signature, to a self-signed root in FILE; its
//! facts (name, path length, constraints, validity) are then read from it
//! like a root's. `uca init --intermediate-of ROOT_DIR` takes the same
//! route in one step when the parent is a uca root at hand: the root signs
//! the new key's CSR as an issuing intermediate (path length 0, within its
//! name constraints) and the CA is stored complete.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyUsagePurpose};

use crate::ca::store::{self, Settings};
use crate::pki::constraints::NameConstraints;
use crate::pki::keys::KeyType;
use crate::pki::names;
use crate::pki::san_rule::SanRule;
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::timefmt;

/// A new CA key and the CSR another CA is to sign.
pub struct NewRequest {
    pub key: crate::pki::keys::PrivateKey,
    pub csr_pem: String,
    /// What `ca.toml` holds while the CA waits for its certificate: the
    /// name and SAN rules asked for; the facts come with the certificate.
    pub settings: Settings,
}

/// The key and a CSR for a CA named `name` (CA:TRUE with `pathlen`,
/// keyCertSign and cRLSign requested; name constraints are the signer's to
/// set, and are read from the certificate it returns).
pub fn make_request(
    name: &str,
    key_type: KeyType,
    pathlen: u8,
    san_rules: Vec<SanRule>,
) -> Result<NewRequest> {
    let (key, key_pair) = key_type.generate_with_pair()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = crate::pki::profile::subject_cn(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(pathlen));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let csr = params
        .serialize_request(&key_pair)
        .map_err(|e| Error::msg(format!("cannot make the CSR: {e}")))?;
    let csr_pem = csr
        .pem()
        .map_err(|e| Error::msg(format!("cannot encode the CSR: {e}")))?;
    let settings = Settings {
        name: name.to_string(),
        key: key_type,
        pathlen,
        permit: Vec::new(),
        san_rules,
        created: timefmt::rfc3339(timefmt::now()),
        not_after: String::new(),
        fingerprint: String::new(),
        crl_url: None,
    };
    Ok(NewRequest {
        key,
        csr_pem,
        settings,
    })
}

/// What an import completed.
pub struct Imported {
    pub name: String,
    pub fingerprint: String,
    pub not_after: String,
    /// The root at the top of the chain: what clients trust.
    pub root_name: String,
    pub chain_len: usize,
}

/// Completes the pending CA in `dir` with the certificate and chain in
/// `file`: checked whole before anything is written; then `ca.toml` is
/// rewritten with the certificate's fingerprint and `ca.pem` (the
/// certificate followed by its chain) written, last, as for a root.
pub fn import(dir: &Path, file: &Path) -> Result<Imported> {
    let pending = dir.join(store::PENDING_CSR_FILE);
    let shown = || file.display().to_string();
    if !pending.is_file() {
        let why = if dir.join(store::CERT_FILE).exists() {
            "it already has its certificate (ca.pem); uca never replaces a CA's certificate"
        } else {
            "it holds no CA waiting for a certificate; make one with: uca init --dir DIR --name NAME --csr-out FILE"
        };
        return Err(Error::invalid("--dir", dir.display().to_string(), why));
    }
    let csr_text =
        fsutil::read_capped_text(&pending, fsutil::limits::SETTINGS, "read", "pending CSR")?;
    let csr_der = pem::parse(csr_text.as_bytes())
        .map_err(|e| Error::msg(format!("{} is damaged: {e}", pending.display())))?
        .into_contents();
    let csr = crate::ca::signing::parse_csr(&csr_der)
        .map_err(|why| Error::msg(format!("{} is damaged: {why}", pending.display())))?;
    let certs = x509::read_certificates(file)?;
    let parsed = certs
        .iter()
        .map(|d| x509::parse(d).map_err(|why| Error::invalid("--import-cert", shown(), why)))
        .collect::<Result<Vec<_>>>()?;
    let ours = &parsed[0];
    if ours.public_key().raw != csr.spki_der.as_slice() {
        return Err(Error::invalid(
            "--import-cert",
            shown(),
            format!(
                "its first certificate is not for the key of {} (was another CSR signed?)",
                dir.display()
            ),
        ));
    }
    check_chain(&parsed).map_err(|why| Error::invalid("--import-cert", shown(), why))?;
    let name = x509::common_name(ours).ok_or_else(|| {
        Error::invalid(
            "--import-cert",
            shown(),
            "the certificate has no common name",
        )
    })?;
    names::validate_ca_name(&name)?;
    let settings_path = dir.join(store::SETTINGS_FILE);
    let fingerprint = x509::sha256_hex(&certs[0]);
    let settings = imported_settings(&settings_path, ours, &name, &fingerprint)?;
    let toml = toml::to_string_pretty(&settings)
        .map_err(|e| Error::msg(format!("cannot encode settings: {e}")))?;
    let pem: String = certs.iter().map(|d| x509::pem_certificate(d)).collect();
    fsutil::write_atomic(&settings_path, toml.as_bytes(), Mode::Public, true, true)?;
    // ca.pem last: its presence marks a complete CA directory.
    fsutil::write_atomic(
        &dir.join(store::CERT_FILE),
        pem.as_bytes(),
        Mode::Public,
        false,
        true,
    )?;
    std::fs::remove_file(&pending).map_err(|e| Error::io("remove", &pending, e))?;
    fsutil::sync_dir(dir)?;
    let root = parsed.last().expect("at least one certificate");
    Ok(Imported {
        name,
        fingerprint,
        not_after: settings.not_after,
        root_name: x509::common_name(root).unwrap_or_else(|| root.subject().to_string()),
        chain_len: certs.len(),
    })
}

/// The settings of the CA once its certificate is in: the security facts
/// read from the certificate, the rest kept from the pending `ca.toml`.
fn imported_settings(
    settings_path: &Path,
    ours: &x509_parser::certificate::X509Certificate<'_>,
    name: &str,
    fingerprint: &str,
) -> Result<Settings> {
    let text = fsutil::read_capped_text(
        settings_path,
        fsutil::limits::SETTINGS,
        "read",
        "CA settings file",
    )?;
    let pending_settings: Settings = toml::from_str(&text).map_err(|e| {
        Error::msg(format!(
            "{} is damaged: {}",
            settings_path.display(),
            e.message().replace(['\n', '\r'], " ")
        ))
    })?;
    let constraints = NameConstraints::from_certificate(ours)?;
    let pathlen = match ours.basic_constraints() {
        Ok(Some(bc)) => bc
            .value
            .path_len_constraint
            .map_or(u8::MAX, |n| u8::try_from(n).unwrap_or(u8::MAX)),
        _ => u8::MAX,
    };
    Ok(Settings {
        name: name.to_string(),
        key: KeyType::of_certificate(ours)?,
        pathlen,
        permit: constraints.0.clone(),
        san_rules: pending_settings.san_rules,
        created: pending_settings.created,
        not_after: timefmt::rfc3339(x509::not_after(ours)),
        fingerprint: fingerprint.to_string(),
        crl_url: pending_settings.crl_url,
    })
}

/// Each certificate is a CA whose issuer is the next one and whose
/// signature that one's key verifies, valid now; the last is a self-signed
/// root. The first must be allowed to sign certificates.
fn check_chain(
    chain: &[x509_parser::certificate::X509Certificate<'_>],
) -> std::result::Result<(), String> {
    if chain.len() < 2 {
        return Err("it holds only the CA's own certificate; append the chain up to the root (e.g. cat ca-cert.pem root.pem > chain.pem)".into());
    }
    let now = x509_parser::time::ASN1Time::now();
    for (i, cert) in chain.iter().enumerate() {
        let what = || format!("certificate {} ({})", i + 1, cert.subject());
        match cert.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            _ => {
                return Err(format!(
                    "{} is not a CA certificate (basicConstraints CA:TRUE)",
                    what()
                ))
            }
        }
        if !cert.validity().is_valid_at(now) {
            return Err(format!("{} is not valid now", what()));
        }
        let issuer = chain.get(i + 1).unwrap_or(cert);
        if cert.issuer().as_raw() != issuer.subject().as_raw()
            || cert.verify_signature(Some(issuer.public_key())).is_err()
        {
            return Err(if i + 1 == chain.len() {
                format!(
                    "{} is not a self-signed root; the chain must end with the root",
                    what()
                )
            } else {
                format!(
                    "{} is not signed by certificate {}; give the chain in order, up to the root",
                    what(),
                    i + 2
                )
            });
        }
    }
    match chain[0].key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            Err("the CA's certificate does not allow signing certificates (keyUsage without keyCertSign)".into())
        }
        _ => Ok(()),
    }
}

/// Stores a pending CA in `dir` as a root is stored (new or empty
/// directory, built aside and moved in): the encrypted key, a generated
/// passphrase if any, `ca.toml` and the CSR, which marks it pending.
pub fn store_request(
    dir: &Path,
    request: &NewRequest,
    encrypted_key: &str,
    stored: Option<&crate::pki::passphrase::Passphrase>,
) -> Result<()> {
    crate::ca::root::store_with(dir, &|d: &Path| {
        store::CaStore::create_pending(
            d,
            &request.settings,
            &request.csr_pem,
            encrypted_key,
            stored,
        )
    })
}

/// What `uca init --intermediate-of` asks of the root.
pub struct UnderRoot<'a> {
    pub root: &'a store::CaStore,
    pub root_passphrase_file: Option<&'a std::path::PathBuf>,
    pub permits: Vec<String>,
    /// None: until the root expires.
    pub days: Option<u32>,
}

/// A new issuing intermediate signed by `under.root` now (path length 0,
/// its name constraints the root's narrowed by `permits`), stored in `dir`
/// as a complete CA whose ca.pem holds it and the root. The root records
/// it in its ledger. Everything is checked before the root's key is
/// unlocked.
pub fn make_under_root(
    dir: &Path,
    request: NewRequest,
    encrypted_key: &str,
    stored: Option<&crate::pki::passphrase::Passphrase>,
    under: &UnderRoot<'_>,
) -> Result<Imported> {
    let root = under.root;
    root.ensure_unsealed()?;
    let prepared = prepare_under(root, &request, &under.permits, under.days)?;
    let signer = root.unlock(under.root_passphrase_file)?;
    let lock = root.ledger().lock()?;
    let key = StoredKey {
        encrypted: Some(encrypted_key),
        passphrase: stored,
    };
    sign_under(root, &signer, &lock, prepared, &request, dir, key)
}

/// How an intermediate's key is kept in its directory: encrypted (with a
/// stored passphrase, if generated), or not at all (a ceremony holds it).
pub struct StoredKey<'a> {
    pub encrypted: Option<&'a str>,
    pub passphrase: Option<&'a crate::pki::passphrase::Passphrase>,
}

/// The request's CSR checked as an issuing intermediate of `root`: path
/// length 0, the root's constraints narrowed by `permits`, `days` within it
/// (none: until the root expires).
pub fn prepare_under(
    root: &store::CaStore,
    request: &NewRequest,
    permits: &[String],
    days: Option<u32>,
) -> Result<crate::ca::signing::PreparedSign> {
    let csr_der = pem::parse(request.csr_pem.as_bytes())
        .map_err(|e| Error::msg(format!("cannot read the new CSR: {e}")))?
        .into_contents();
    let csr = crate::ca::signing::parse_csr(&csr_der).map_err(Error::msg)?;
    let options = crate::ca::signing::SignOptions {
        profile: crate::pki::profile::Profile::Both,
        intermediate: true,
        pathlen: 0,
        permits: permits.to_vec(),
        sans: Vec::new(),
        days,
        ends_with_issuer: true,
        crl_url: None,
    };
    crate::ca::signing::prepare(root, &csr, &request.settings.name, &options)
}

/// Signs the prepared intermediate with the root (recorded in its ledger)
/// and stores it in `dir` as a complete CA whose ca.pem holds it and the
/// root.
pub fn sign_under(
    root: &store::CaStore,
    signer: &store::Signer,
    lock: &crate::ca::ledger::LedgerLock,
    prepared: crate::ca::signing::PreparedSign,
    request: &NewRequest,
    dir: &Path,
    key: StoredKey<'_>,
) -> Result<Imported> {
    let recorded = fsutil::absolute(&dir.join(store::CERT_FILE))
        .display()
        .to_string();
    let mut outcome = None;
    crate::ca::signing::sign_prepared(root, signer, lock, prepared, Some(recorded), |der| {
        let cert = x509::parse(der).map_err(Error::msg)?;
        let constraints = NameConstraints::from_certificate(&cert)?;
        let settings = Settings {
            permit: constraints.0.clone(),
            pathlen: 0,
            not_after: timefmt::rfc3339(x509::not_after(&cert)),
            fingerprint: x509::sha256_hex(der),
            ..request.settings.clone()
        };
        let chain = vec![root.cert_der.clone()];
        crate::ca::root::store_with(dir, &|d: &Path| {
            store::CaStore::create_with_chain(
                d,
                &settings,
                der,
                &chain,
                key.encrypted,
                key.passphrase,
            )
        })?;
        outcome = Some(Imported {
            name: settings.name.clone(),
            fingerprint: settings.fingerprint.clone(),
            not_after: settings.not_after.clone(),
            root_name: root.name.clone(),
            chain_len: 2,
        });
        Ok(())
    })?;
    outcome.ok_or_else(|| Error::msg("the intermediate was not stored"))
}
