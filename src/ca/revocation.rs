//! Revocation that outlives the seal. Before its secrets go, the root signs
//! into `DIR/crl/` an empty CA-only CRL valid until the root expires
//! (`root.crl`, to publish at the CRL URL) and, for every intermediate it
//! ever signed, a CRL that revokes it (`revoke-SERIAL.crl`, and
//! `revoke-all.crl` when there are several), each with a higher CRL number,
//! kept offline until needed. A recovery (`uca recover revoke`) signs the
//! next number. Every CRL is recorded, with its SHA-256, in a signed record.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ca::store::{CaStore, Signer};
use crate::pki::crl::{self, CrlParams};
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::{pki::x509, support::timefmt};

pub use crate::ca::store::CRL_DIR;
pub const ROOT_CRL: &str = "crl/root.crl";

/// A signed CRL as the manifest and the recovery log record it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlRecord {
    /// Relative to the CA directory.
    pub path: String,
    pub number: u64,
    /// Serials (ledger hex) the CRL revokes.
    pub revokes: Vec<String>,
    pub sha256: String,
}

pub struct SignedCrl {
    pub record: CrlRecord,
    pub der: Vec<u8>,
}

/// The serials of every intermediate in the ledger, in the order signed.
pub fn intermediates(store: &CaStore) -> Result<Vec<String>> {
    let mut serials = Vec::new();
    store.ledger().scan(|e| {
        if e.profile == "intermediate" && !serials.contains(&e.serial) {
            serials.push(e.serial);
        }
    })?;
    Ok(serials)
}

/// The CRLs a seal leaves: `root.crl` (number 1), one per intermediate
/// (2, 3...), then `revoke-all.crl` when there are several.
pub fn presigned(store: &CaStore, signer: &Signer) -> Result<Vec<SignedCrl>> {
    let serials = intermediates(store)?;
    let now = now();
    let mut crls = vec![sign(store, signer, ROOT_CRL, 1, &[], now)?];
    for (i, serial) in serials.iter().enumerate() {
        let path = format!("{CRL_DIR}/revoke-{serial}.crl");
        crls.push(sign(
            store,
            signer,
            &path,
            2 + i as u64,
            std::slice::from_ref(serial),
            now,
        )?);
    }
    if serials.len() > 1 {
        let path = format!("{CRL_DIR}/revoke-all.crl");
        crls.push(sign(
            store,
            signer,
            &path,
            2 + serials.len() as u64,
            &serials,
            now,
        )?);
    }
    Ok(crls)
}

/// Signs one CRL of the root, valid from `now` until the root expires. It
/// is CA-only (onlyContainsCACerts) unless it revokes a leaf.
pub fn sign(
    store: &CaStore,
    signer: &Signer,
    path: &str,
    number: u64,
    serials: &[String],
    now: OffsetDateTime,
) -> Result<SignedCrl> {
    if now >= store.not_after {
        return Err(Error::msg(format!(
            "the root in {} expired at {}; a CRL of an expired root means nothing",
            store.dir().display(),
            timefmt::rfc3339(store.not_after)
        )));
    }
    let leaves = leaf_serials(store, serials)?;
    let revoked = serials
        .iter()
        .map(|s| serial_bytes(s))
        .collect::<Result<Vec<_>>>()?;
    let params = CrlParams {
        number,
        this_update: now,
        next_update: store.not_after,
        ca_only: leaves.is_empty(),
        revoked,
    };
    let der = crl::sign(&params, &store.cert_der, |tbs| signer.sign_bytes(tbs))?;
    Ok(SignedCrl {
        record: CrlRecord {
            path: path.to_string(),
            number,
            revokes: serials.to_vec(),
            sha256: x509::sha256_hex(&der),
        },
        der,
    })
}

/// Which of `serials` the ledger records as leaves (not intermediates).
fn leaf_serials(store: &CaStore, serials: &[String]) -> Result<Vec<String>> {
    if serials.is_empty() {
        return Ok(Vec::new());
    }
    let mut leaves = Vec::new();
    store.ledger().scan(|e| {
        if e.profile != "intermediate" && serials.contains(&e.serial) {
            leaves.push(e.serial);
        }
    })?;
    Ok(leaves)
}

/// Writes `crls` into `DIR/crl/` (0755, files 0644), each atomically.
/// `replace` lets a restarted seal write over what its earlier, unrecorded
/// attempt left.
pub fn write(store: &CaStore, crls: &[SignedCrl], replace: bool) -> Result<()> {
    fsutil::create_dir(&store.path(CRL_DIR), 0o755)?;
    for crl in crls {
        fsutil::write_atomic(
            &store.path(&crl.record.path),
            &crl.der,
            Mode::Public,
            replace,
            true,
        )?;
    }
    fsutil::sync_dir(&store.path(CRL_DIR))
}

/// Checks each recorded CRL file under `dir` against its SHA-256; returns
/// one line per problem.
pub fn check_files(dir: &Path, records: &[CrlRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in records {
        let path = dir.join(&r.path);
        match fsutil::read_capped_file(&path, fsutil::limits::PEM, "read", "CRL") {
            Ok(bytes) if x509::sha256_hex(&bytes) == r.sha256 => {}
            Ok(_) => problems.push(format!(
                "{}: fingerprint differs from the manifest (CRL number {})",
                path.display(),
                r.number
            )),
            Err(_) if !path.exists() => problems.push(format!(
                "{}: missing (CRL number {})",
                path.display(),
                r.number
            )),
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems
}

/// A ledger serial (lower-case hex) as big-endian bytes.
pub fn serial_bytes(serial: &str) -> Result<Vec<u8>> {
    let bad = || {
        Error::invalid(
            "serial",
            serial,
            "expected hexadecimal digits (e.g. 3a9f...)",
        )
    };
    if serial.is_empty() || serial.len() > 42 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let padded = if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// A serial as a person may paste it (`3A:9F:...`, leading zeros) in the
/// ledger's form: lower-case hex without separators or leading zeros.
pub fn normalize_serial(text: &str) -> Result<String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    Ok(x509::serial_hex_of(
        &serial_bytes(&hex.to_ascii_lowercase()).map_err(|_| {
            Error::invalid(
                "serial",
                text,
                "expected hexadecimal digits (e.g. 3a9f... or 3A:9F:...)",
            )
        })?,
    ))
}

/// Now, in whole seconds (CRL times carry no fractions).
pub fn now() -> OffsetDateTime {
    timefmt::now()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}
