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
use crate::support::error::{Error, Result, Spelling};

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
/// slightly behind does not reject a certificate issued a moment ago. The
/// minute counts inside the requested lifetime: `--valid-for 200d` spans
/// exactly 200 days, notBefore and notAfter included (RFC 5280 4.1.2.5).
const BACKDATE: Duration = Duration::minutes(1);

/// The shortest lifetime uca issues: well beyond the one-minute backdating.
const SHORTEST: Duration = Duration::minutes(5);

/// The longest lifetime uca issues: 100 years.
const LONGEST: Duration = Duration::days(36_500);

/// How long a certificate is valid, as the user asked for it: `--days N`,
/// `--valid-for 12h` or `--not-after 2027-01-31T00:00:00Z` (or the same
/// keys in a plan). Errors name the option and the value as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifetime {
    option: &'static str,
    given: String,
    end: LifetimeEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LifetimeEnd {
    /// This long from notBefore, notAfter included.
    Length(Duration),
    /// Until this instant.
    At(OffsetDateTime),
}

impl Lifetime {
    /// `--days N`: 1 to 36500 days.
    pub fn days(days: u32) -> Result<Lifetime> {
        Lifetime::days_spelled(days, Spelling::Flag)
    }

    /// [`days`](Self::days), its errors naming `--days` or a plan's `days`.
    pub fn days_spelled(days: u32, spelling: Spelling) -> Result<Lifetime> {
        let option = spelling.of("--days", "days");
        if days == 0 {
            return Err(Error::invalid(
                option,
                "0",
                "a certificate must be valid for at least 1 day",
            ));
        }
        if days > 36_500 {
            return Err(Error::invalid(
                option,
                days.to_string(),
                "at most 36500 days (100 years)",
            ));
        }
        Ok(Lifetime {
            option,
            given: days.to_string(),
            end: LifetimeEnd::Length(Duration::days(i64::from(days))),
        })
    }

    /// Until `issuer_not_after`: an issuing CA made with its root, when no
    /// lifetime is asked for, ends when the root does (the root's own
    /// lifetime counted from a later second would outlive it).
    pub fn until_issuer_expires(issuer_not_after: OffsetDateTime) -> Lifetime {
        Lifetime {
            option: "--days",
            given: "(until the root expires)".into(),
            end: LifetimeEnd::At(issuer_not_after),
        }
    }

    /// `--valid-for`: a whole number and a unit, `m`, `h` or `d` (`90m`,
    /// `12h`, `397d`), from 5 minutes to 36500 days.
    pub fn valid_for(text: &str) -> Result<Lifetime> {
        Lifetime::valid_for_spelled(text, Spelling::Flag)
    }

    /// [`valid_for`](Self::valid_for), its errors naming `--valid-for` or a
    /// plan's `valid_for`.
    pub fn valid_for_spelled(text: &str, spelling: Spelling) -> Result<Lifetime> {
        let option = spelling.of("--valid-for", "valid_for");
        let bad = |why: &str| Error::invalid(option, crate::pki::names::printable(text), why);
        let expected = "expected a whole number and a unit m, h or d, like 90m, 12h or 397d";
        let split = text.len().saturating_sub(1);
        let (number, unit) = (
            text.get(..split).unwrap_or(""),
            text.get(split..).unwrap_or(""),
        );
        let n: i64 = match number.parse::<u32>() {
            Ok(n) if !number.starts_with('+') => i64::from(n),
            _ => return Err(bad(expected)),
        };
        let length = match unit {
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            _ => return Err(bad(expected)),
        };
        if length < SHORTEST {
            return Err(bad(
                "at least 5m: the one minute of backdating counts inside the lifetime",
            ));
        }
        if length > LONGEST {
            return Err(bad("at most 36500d (100 years)"));
        }
        Ok(Lifetime {
            option,
            given: text.to_string(),
            end: LifetimeEnd::Length(length),
        })
    }

    /// `--not-after`: an RFC 3339 time (`2027-01-31T00:00:00Z`), at least 5
    /// minutes and at most 100 years from now, in whole seconds.
    pub fn not_after(text: &str) -> Result<Lifetime> {
        Lifetime::not_after_spelled(text, Spelling::Flag)
    }

    /// [`not_after`](Self::not_after), its errors naming `--not-after` or a
    /// plan's `not_after`.
    pub fn not_after_spelled(text: &str, spelling: Spelling) -> Result<Lifetime> {
        let option = spelling.of("--not-after", "not_after");
        let bad = |why: String| Error::invalid(option, crate::pki::names::printable(text), why);
        let at = crate::support::timefmt::parse(text)
            .ok_or_else(|| bad("expected an RFC 3339 time like 2027-01-31T00:00:00Z".into()))?;
        if at.nanosecond() != 0 {
            return Err(bad(
                "expected whole seconds: certificates carry no fractions".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        if at < now + SHORTEST {
            return Err(bad(format!(
                "it is not at least 5 minutes after now ({})",
                crate::support::timefmt::rfc3339(now)
            )));
        }
        if at > now + LONGEST {
            return Err(bad("at most 100 years from now".into()));
        }
        Ok(Lifetime {
            option,
            given: text.to_string(),
            end: LifetimeEnd::At(at),
        })
    }

    /// The one of `--days`, `--valid-for` and `--not-after` that was given
    /// (clap keeps them exclusive), else `--days` with its default.
    pub fn from_options(
        days: u32,
        valid_for: Option<&str>,
        not_after: Option<&str>,
    ) -> Result<Lifetime> {
        match (valid_for, not_after) {
            (Some(v), _) => Lifetime::valid_for(v),
            (None, Some(t)) => Lifetime::not_after(t),
            (None, None) => Lifetime::days(days),
        }
    }

    /// The window from now: notBefore one minute ago, notAfter so that the
    /// whole window, both ends included, is the lifetime asked for.
    pub fn from_now(&self) -> Validity {
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond");
        let not_before = now - BACKDATE;
        let not_after = match self.end {
            LifetimeEnd::Length(length) => not_before + length - Duration::SECOND,
            LifetimeEnd::At(at) => at,
        };
        Validity {
            not_before,
            not_after,
        }
    }

    /// [`from_now`](Self::from_now), refused if the certificate would
    /// outlive its issuer.
    pub fn within(&self, issuer_not_after: OffsetDateTime) -> Result<Validity> {
        let validity = self.from_now();
        if validity.not_after > issuer_not_after {
            let left = (issuer_not_after - OffsetDateTime::now_utc()).whole_days();
            return Err(Error::invalid(
                self.option,
                self.given.clone(),
                format!(
                    "the certificate would outlive the CA, which expires {} ({left} days from now)",
                    crate::support::timefmt::rfc3339(issuer_not_after)
                ),
            ));
        }
        Ok(validity)
    }
}

/// The validity window of a certificate, in whole seconds.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// `days` from now (see [`Lifetime::days`]).
    pub fn days_from_now(days: u32) -> Result<Validity> {
        Ok(Lifetime::days(days)?.from_now())
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

/// An extended key usage added to a leaf's profile with `--eku` (or a plan
/// group's `eku`): a name or a dotted OID. What would contradict the
/// profile is refused when parsed: anyExtendedKeyUsage (it would let the
/// certificate do anything), timeStamping (RFC 3161 wants it alone),
/// OCSPSigning (a CA's delegated responder only), and serverAuth or
/// clientAuth beyond what `--profile` grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraUsage(ExtendedKeyUsagePurpose);

/// Usage names and their OIDs under id-kp (1.3.6.1.5.5.7.3). A lookup table.
const USAGES: &[(&str, u64)] = &[
    ("serverAuth", 1),
    ("clientAuth", 2),
    ("codeSigning", 3),
    ("emailProtection", 4),
    ("timeStamping", 8),
    ("OCSPSigning", 9),
];

const ID_KP: [u64; 8] = [1, 3, 6, 1, 5, 5, 7, 3];

impl ExtraUsage {
    pub fn parse(text: &str, profile: Profile) -> Result<ExtraUsage> {
        ExtraUsage::parse_spelled(text, profile, Spelling::Flag)
    }

    /// [`parse`](Self::parse), its errors naming the settings as the user
    /// wrote them: `--eku` and `--profile`, or a plan's `eku` and `profile`.
    pub fn parse_spelled(text: &str, profile: Profile, spelling: Spelling) -> Result<ExtraUsage> {
        let what = spelling.of("--eku", "eku");
        let bad = |why: String| Error::invalid(what, crate::pki::names::printable(text), why);
        let profile_is = |p: &str| match spelling {
            Spelling::Flag => format!("--profile {p}"),
            Spelling::PlanKey => format!("profile = \"{p}\""),
        };
        let arcs = match USAGES.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
            Some((_, last)) => ID_KP.iter().copied().chain([*last]).collect(),
            None if text.eq_ignore_ascii_case("anyExtendedKeyUsage") => vec![2, 5, 29, 37, 0],
            None => oid_arcs(text).ok_or_else(|| {
                bad("expected codeSigning, emailProtection, serverAuth, clientAuth or a dotted OID like 1.3.6.1.5.5.7.3.17".into())
            })?,
        };
        let purpose = match arcs.as_slice() {
            [2, 5, 29, 37, 0] => {
                return Err(bad("anyExtendedKeyUsage would let the certificate be used for anything; name the usages it needs".into()))
            }
            [1, 3, 6, 1, 5, 5, 7, 3, 8] => {
                return Err(bad("timeStamping must be a certificate's only extended key usage (RFC 3161), which a TLS profile is not".into()))
            }
            [1, 3, 6, 1, 5, 5, 7, 3, 9] => {
                return Err(bad("OCSPSigning is for a CA's delegated OCSP responder, not a leaf of this profile".into()))
            }
            [1, 3, 6, 1, 5, 5, 7, 3, 1] if profile == Profile::Client => {
                return Err(bad(format!("serverAuth contradicts {}; use {}", profile_is("client"), profile_is("both"))))
            }
            [1, 3, 6, 1, 5, 5, 7, 3, 2] if profile == Profile::Server => {
                return Err(bad(format!("clientAuth contradicts {}; use {}", profile_is("server"), profile_is("both"))))
            }
            [1, 3, 6, 1, 5, 5, 7, 3, 1] => ExtendedKeyUsagePurpose::ServerAuth,
            [1, 3, 6, 1, 5, 5, 7, 3, 2] => ExtendedKeyUsagePurpose::ClientAuth,
            [1, 3, 6, 1, 5, 5, 7, 3, 3] => ExtendedKeyUsagePurpose::CodeSigning,
            [1, 3, 6, 1, 5, 5, 7, 3, 4] => ExtendedKeyUsagePurpose::EmailProtection,
            _ => ExtendedKeyUsagePurpose::Other(arcs),
        };
        Ok(ExtraUsage(purpose))
    }
}

/// The arcs of a dotted OID (`1.3.6.1.5.5.7.3.17`), if it is one: at least
/// two arcs, the first 0, 1 or 2, the second below 40 under 0 and 1, no
/// leading zeros.
fn oid_arcs(text: &str) -> Option<Vec<u64>> {
    let arcs = text
        .split('.')
        .map(|a| {
            let canonical = !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a == "0" || !a.starts_with('0'));
            canonical.then(|| a.parse::<u64>().ok()).flatten()
        })
        .collect::<Option<Vec<u64>>>()?;
    let valid = arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40);
    valid.then_some(arcs)
}

/// A leaf: CA:FALSE (explicit), critical keyUsage, EKU per profile plus
/// the extra usages asked for.
pub fn leaf_params(
    names: &LeafNames,
    profile: Profile,
    extra_usages: &[ExtraUsage],
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
    for ExtraUsage(purpose) in extra_usages {
        if !p.extended_key_usages.contains(purpose) {
            p.extended_key_usages.push(purpose.clone());
        }
    }
    Ok(p)
}

/// A subject holding only a common name.
pub fn subject_cn(cn: &str) -> DistinguishedName {
    common_name(cn)
}
