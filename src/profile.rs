//! What goes into each kind of certificate. rcgen's defaults are unsafe for a
//! CA (validity 1975-4096, serial = hash of the key, no AKI, no
//! basicConstraints on leaves), so every field is set here explicitly.

use std::fmt;

use clap::ValueEnum;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::constraints::NameConstraints;
use crate::error::{Error, Result};
use crate::keys::KeyType;
use crate::names::San;

/// What a leaf certificate may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// TLS server (EKU serverAuth)
    Server,
    /// TLS client (EKU clientAuth)
    Client,
    /// Both ends of mutual TLS (serverAuth + clientAuth)
    Both,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Server => "server",
            Profile::Client => "client",
            Profile::Both => "both",
        })
    }
}

/// Certificates start one minute in the past so a peer whose clock is
/// slightly behind does not reject a certificate issued a moment ago.
const BACKDATE: Duration = Duration::minutes(1);

/// The validity window of a certificate, truncated to whole seconds.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    pub fn days_from_now(days: u32) -> Result<Validity> {
        if days == 0 {
            return Err(Error::invalid(
                "--days",
                "0",
                "a certificate must be valid for at least 1 day",
            ));
        }
        if days > 36_500 {
            return Err(Error::invalid(
                "--days",
                days.to_string(),
                "at most 36500 days (100 years)",
            ));
        }
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond");
        Ok(Validity {
            not_before: now - BACKDATE,
            not_after: now + Duration::days(i64::from(days)),
        })
    }

    /// Refuses a certificate that would outlive its issuer.
    pub fn within(self, issuer_not_after: OffsetDateTime, days: u32) -> Result<Validity> {
        if self.not_after > issuer_not_after {
            let left = (issuer_not_after - OffsetDateTime::now_utc()).whole_days();
            return Err(Error::invalid(
                "--days",
                days.to_string(),
                format!(
                    "the certificate would outlive the CA, which expires {} ({left} days from now)",
                    crate::timefmt::rfc3339(issuer_not_after)
                ),
            ));
        }
        Ok(self)
    }
}

/// A random positive serial of 159 bits: 20 bytes with the top bit clear, so
/// the DER INTEGER is at most 20 octets (RFC 5280 4.1.2.2) and carries far
/// more than the 64 bits of entropy the CA/Browser Forum requires.
pub fn random_serial() -> SerialNumber {
    SerialNumber::from_slice(&random_serial_bytes())
}

pub fn random_serial_bytes() -> [u8; 20] {
    use rand_core::RngCore;
    let mut bytes = [0u8; 20];
    loop {
        rand_core::OsRng.fill_bytes(&mut bytes);
        bytes[0] &= 0x7f;
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

/// The serial as the ledger writes it: lower-case hex of the DER INTEGER's
/// value, without leading zero bytes.
pub fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    crate::x509::hex(&bytes[first..])
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn base(subject: DistinguishedName, validity: Validity) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject;
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = rcgen::KeyIdMethod::Sha256;
    p
}

/// A self-signed root: CA:TRUE with a path length, keyCertSign + cRLSign,
/// optional name constraints.
pub fn root_params(
    name: &str,
    validity: Validity,
    pathlen: u8,
    constraints: &NameConstraints,
) -> CertificateParams {
    let mut p = base(common_name(name), validity);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(pathlen));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.name_constraints = constraints.to_rcgen();
    // A self-signed certificate's AKI would only repeat its own SKI.
    p.use_authority_key_identifier_extension = false;
    p
}

/// An intermediate CA below the root (e.g. Vault's issuer).
pub fn intermediate_params(
    subject: DistinguishedName,
    validity: Validity,
    pathlen: u8,
    constraints: &NameConstraints,
) -> CertificateParams {
    let mut p = base(subject, validity);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(pathlen));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.name_constraints = constraints.to_rcgen();
    p
}

/// A leaf: CA:FALSE (explicit), critical keyUsage, EKU per profile.
pub fn leaf_params(
    subject: DistinguishedName,
    sans: &[San],
    profile: Profile,
    key_type: KeyType,
    validity: Validity,
) -> Result<CertificateParams> {
    let mut p = base(subject, validity);
    p.is_ca = IsCa::ExplicitNoCa;
    p.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_>>()?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // RSA key transport (TLS 1.2 RSA kx) needs keyEncipherment on servers;
    // EC and Ed25519 keys only ever sign.
    if key_type.is_rsa() && profile != Profile::Client {
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    p.extended_key_usages = match profile {
        Profile::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Profile::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Profile::Both => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    Ok(p)
}

/// A subject holding only a common name.
pub fn subject_cn(cn: &str) -> DistinguishedName {
    common_name(cn)
}
