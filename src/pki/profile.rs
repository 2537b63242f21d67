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

use crate::pki::constraints::{NameConstraints, Permit};
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::support::error::{Error, Result};

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
                    crate::support::timefmt::rfc3339(issuer_not_after)
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

/// The names a leaf certificate carries: its subject and its SANs, checked
/// together against the issuer's name constraints. [`leaf_params`] takes
/// nothing else, so no path (NAMEs, plans, CSRs, registry, Vault) can put a
/// name in a leaf that was not checked here.
pub struct LeafNames {
    subject: DistinguishedName,
    sans: Vec<San>,
}

impl LeafNames {
    /// Every SAN must lie within `constraints`, and a CN must be one of the
    /// SANs: TLS clients that fall back to the CN (Java, Python, OpenSSL
    /// without a DNS SAN) would otherwise accept a name nobody checked.
    pub fn checked(
        subject: DistinguishedName,
        sans: Vec<San>,
        constraints: &NameConstraints,
    ) -> Result<LeafNames> {
        if let Some(cn) = subject_common_name(&subject) {
            let own = common_name_san(&cn, constraints)?;
            if !sans.contains(&own) {
                return Err(Error::invalid(
                    "CN",
                    crate::pki::names::printable(&cn),
                    "it is not one of the certificate's SANs; a CN must repeat a SAN",
                ));
            }
        }
        if sans.is_empty() {
            return Err(Error::msg(
                "a leaf certificate needs at least one SAN (a host name, IP address, e-mail address or URI)",
            ));
        }
        for san in &sans {
            constraints.check(san)?;
        }
        Ok(LeafNames { subject, sans })
    }

    pub fn sans(&self) -> &[San] {
        &self.sans
    }
}

/// The SAN a CN stands for: a host name (a wildcard only as the whole first
/// label) or an IP address, within `constraints`. Refused otherwise, naming
/// the CN.
pub fn common_name_san(cn: &str, constraints: &NameConstraints) -> Result<San> {
    let bad = |why: String| Error::invalid("CN", crate::pki::names::printable(cn), why);
    if cn.len() > 64 {
        return Err(bad(format!(
            "it is {} characters; a CN holds at most 64 (leave the CN out and name the host in a SAN)",
            cn.len()
        )));
    }
    let san = if let Ok(ip) = cn.parse::<std::net::IpAddr>() {
        // OpenSSL checks a CN as a DNS name against the issuer's DNS
        // constraints when no DNS SAN is present, and would reject it.
        if constraints.0.iter().any(|p| matches!(p, Permit::Dns(_))) {
            return Err(bad(
                "an IP address as CN fails the CA's DNS name constraints in OpenSSL; leave the CN out and name the address in a SAN (IP:...)".into(),
            ));
        }
        San::Ip(crate::pki::names::ip_address(&ip.to_string()).map_err(|e| bad(reason(e)))?)
    } else {
        San::Dns(crate::pki::names::dns_name(cn, true).map_err(|e| {
            bad(format!(
                "a CN must be a host name that is also a SAN: {}",
                reason(e)
            ))
        })?)
    };
    constraints.check(&san).map_err(|e| bad(reason(e)))?;
    Ok(san)
}

/// The part of an error after the value it names.
fn reason(e: Error) -> String {
    match e {
        Error::Invalid { expected, .. } => expected,
        other => other.to_string(),
    }
}

/// The subject's common name as text, if it has one.
pub fn subject_common_name(subject: &DistinguishedName) -> Option<String> {
    subject.get(&DnType::CommonName).map(|v| match v {
        rcgen::DnValue::Utf8String(s) => s.clone(),
        rcgen::DnValue::PrintableString(s) => s.as_str().to_string(),
        rcgen::DnValue::Ia5String(s) => s.as_str().to_string(),
        other => format!("{other:?}"),
    })
}

/// A leaf: CA:FALSE (explicit), critical keyUsage, EKU per profile.
pub fn leaf_params(
    names: &LeafNames,
    profile: Profile,
    key_type: KeyType,
    validity: Validity,
) -> Result<CertificateParams> {
    let mut p = base(names.subject.clone(), validity);
    p.is_ca = IsCa::ExplicitNoCa;
    p.subject_alt_names = names
        .sans
        .iter()
        .map(San::to_rcgen)
        .collect::<Result<_>>()?;
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
