//! The intermediate a bootstrap signs is kept in the CA directory
//! (`vault/[NAMESPACE/]MOUNT/intermediate.pem`) from the moment it is signed,
//! before Vault has it. A run cut off between signing and import leaves the
//! mount with Vault's key but no issuer; the next run finds the certificate
//! that key was certified in and imports it, instead of signing a second
//! intermediate for the same mount.

use std::path::PathBuf;

use serde_json::{json, Value};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use super::client::VaultClient;
use crate::ca::store::CaStore;
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};

/// Where the intermediate signed for `mount` (in `namespace`) is kept, as
/// an absolute path, as the ledger records every path. Both are path-safe:
/// segments of letters, digits, '-' and '_'.
pub fn path(store: &CaStore, namespace: Option<&str>, mount: &str) -> PathBuf {
    let mut p = fsutil::absolute(&store.path("vault"));
    if let Some(ns) = namespace {
        p.push(ns);
    }
    p.push(mount);
    p.push("intermediate.pem");
    p
}

/// Keeps the signed intermediate, before the ledger records it and before
/// Vault is sent it.
pub fn keep(file: &std::path::Path, der: &[u8]) -> Result<()> {
    if let Some(dir) = file.parent() {
        fsutil::create_dir(dir, 0o755)?;
    }
    fsutil::write_atomic(
        file,
        x509::pem_certificate(der).as_bytes(),
        Mode::Public,
        true,
        true,
    )
}

/// The kept intermediate for this mount, if it is one the ledger recorded
/// as signed by this root, still valid, whose key is one the mount holds
/// without an issuer: its DER and serial.
pub fn find(
    client: &VaultClient,
    store: &CaStore,
    file: &std::path::Path,
    mount: &str,
) -> Result<Option<(Vec<u8>, String)>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    let Ok(block) = pem::parse(&text) else {
        return Ok(None);
    };
    let der = block.into_contents();
    let Ok(cert) = x509::parse(&der) else {
        return Ok(None);
    };
    let root = x509::parse(&store.cert_der).map_err(Error::msg)?;
    let ours = cert.verify_signature(Some(root.public_key())).is_ok()
        && cert.validity().time_to_expiration().is_some();
    let serial = x509::serial_hex(&cert);
    if !ours || !recorded(store, &serial, &x509::sha256_hex(&der))? {
        return Ok(None);
    }
    let spki = cert.public_key().raw.to_vec();
    let cn = x509::common_name(&cert).unwrap_or_default();
    for key in mount_keys(client, mount)? {
        if key_spki(client, mount, &key, &cn)?.as_deref() == Some(spki.as_slice()) {
            return Ok(Some((der, serial)));
        }
    }
    Ok(None)
}

/// Whether the ledger holds this certificate.
fn recorded(store: &CaStore, serial: &str, sha256: &str) -> Result<bool> {
    let mut found = false;
    store.ledger().scan(|e| {
        found |= e.serial.eq_ignore_ascii_case(serial) && e.sha256.eq_ignore_ascii_case(sha256);
    })?;
    Ok(found)
}

/// The ids of the mount's keys (none on a Vault without managed keys).
fn mount_keys(client: &VaultClient, mount: &str) -> Result<Vec<String>> {
    let (status, v) = client.get(&format!("{mount}/keys?list=true"))?;
    if !(200..300).contains(&status) {
        return Ok(Vec::new());
    }
    Ok(v.get("data")
        .and_then(|d| d.get("keys"))
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// The SubjectPublicKeyInfo of one of the mount's keys, from a CSR Vault
/// makes for it (which changes nothing in the mount).
fn key_spki(client: &VaultClient, mount: &str, key: &str, cn: &str) -> Result<Option<Vec<u8>>> {
    let (status, v) = client.post(
        &format!("{mount}/intermediate/generate/existing"),
        &json!({"key_ref": key, "common_name": cn}),
    )?;
    if !(200..300).contains(&status) {
        return Ok(None);
    }
    let Some(csr_pem) = v
        .get("data")
        .and_then(|d| d.get("csr"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let Ok(block) = pem::parse(csr_pem) else {
        return Ok(None);
    };
    Ok(X509CertificationRequest::from_der(block.contents())
        .ok()
        .map(|(_, csr)| csr.certification_request_info.subject_pki.raw.to_vec()))
}
