//! Signing a CSR with the CA: what uca takes from a CSR (only the subject,
//! the public key and the requested SANs, each validated), the checks
//! against the CA, and the one place a CSR-based certificate is signed and
//! recorded. CA flags, key usages and validity always come from uca. Used
//! by `uca sign` and by `uca vault bootstrap` for Vault's intermediate.

use std::path::Path;

use rcgen::{DistinguishedName, DnType, DnValue};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use crate::ca::ledger::{LedgerEntry, LedgerLock};
use crate::ca::recovery::Quorum;
use crate::ca::store::{CaStore, Signer};
use crate::pki::constraints::{NameConstraints, Permit};
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::profile::{self, Profile, Validity};
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self};
use crate::{pki::x509, support::timefmt};

/// What uca accepts from a CSR, after checking its signature.
pub struct CsrContents {
    pub subject: DistinguishedName,
    pub subject_text: String,
    pub common_name: Option<String>,
    pub spki_der: Vec<u8>,
    pub sans: Vec<San>,
    pub requests_ca: bool,
    /// RSA keys get keyEncipherment on server certificates.
    pub rsa_key: bool,
}

pub fn read_csr(path: &Path) -> Result<CsrContents> {
    let shown = path.display().to_string();
    let bytes = fsutil::read_capped(path, fsutil::limits::CSR, "read the CSR", "CSR")?;
    let blocks =
        x509::parse_blocks(&bytes).map_err(|why| Error::invalid("CSR", shown.clone(), why))?;
    let der = match blocks.as_slice() {
        [b] if matches!(
            b.tag(),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" | "DER"
        ) =>
        {
            b.contents().to_vec()
        }
        [b] => {
            return Err(Error::invalid(
                "CSR",
                shown,
                format!(
                    "it holds a '{}' block; expected CERTIFICATE REQUEST",
                    b.tag()
                ),
            ))
        }
        _ => {
            return Err(Error::invalid(
                "CSR",
                shown,
                "expected exactly one CERTIFICATE REQUEST block",
            ))
        }
    };
    parse_csr(&der).map_err(|why| Error::invalid("CSR", shown, why))
}

/// A certificate's or CSR's subject as rcgen writes it, and its common
/// name. rcgen keeps one value per attribute type and one attribute per
/// RDN; anything else would be signed differently from how it was asked
/// for, so it is refused rather than quietly collapsed. Each value passes
/// the look-alike checks names do (`what` names it in the error).
fn rcgen_subject(
    name: &x509_parser::x509::X509Name<'_>,
    what: &'static str,
) -> std::result::Result<(DistinguishedName, Option<String>), String> {
    let mut subject = DistinguishedName::new();
    let mut common_name = None;
    let mut seen = Vec::new();
    for rdn in name.iter() {
        if rdn.iter().count() > 1 {
            return Err(format!(
                "its subject has a multi-valued RDN ({}); give one attribute per RDN",
                subject_attr_names(rdn.iter())
            ));
        }
        for attr in rdn.iter() {
            if seen.contains(attr.attr_type()) {
                return Err(format!(
                    "its subject repeats {} ({}); uca signs each attribute type once, so give it once",
                    attr_name(attr.attr_type()),
                    name
                ));
            }
            seen.push(attr.attr_type().clone());
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or("the subject has an attribute type uca cannot read")?
                .collect();
            let value = attr.as_str().map_err(|_| {
                format!(
                    "subject attribute {} is not a text string",
                    attr.attr_type()
                )
            })?;
            crate::pki::names::check_typography(what, value).map_err(|e| e.to_string())?;
            let ty = DnType::from_oid(&oid);
            if ty == DnType::CommonName {
                common_name = Some(value.to_string());
            }
            subject.push(ty, DnValue::Utf8String(value.to_string()));
        }
    }
    Ok((subject, common_name))
}

pub fn parse_csr(der: &[u8]) -> std::result::Result<CsrContents, String> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| format!("not a PKCS#10 request: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the request".into());
    }
    let info = &csr.certification_request_info;
    // The key first: an unsupported key would otherwise be reported as a bad
    // signature (ring verifies neither RSA-1024 nor P-521, secp256k1, DSA
    // or Ed448).
    supported_key(&info.subject_pki)?;
    csr.verify_signature().map_err(|e| match e {
        x509_parser::error::X509Error::SignatureUnsupportedAlgorithm => format!(
            "its signature algorithm {} is not supported (ECDSA with SHA-256/SHA-384, RSA with SHA-256/384/512, or Ed25519)",
            csr.signature_algorithm.algorithm.to_id_string()
        ),
        _ => "its signature does not verify with its own public key (altered or corrupt request)"
            .to_string(),
    })?;
    let (subject, common_name) = rcgen_subject(&info.subject, "CSR subject")?;
    let spki = &info.subject_pki;
    let rsa_key = matches!(
        spki.parsed(),
        Ok(x509_parser::public_key::PublicKey::RSA(_))
    );
    let mut sans = Vec::new();
    let mut requests_ca = false;
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    let text = x509::general_name(name);
                    sans.push(San::parse(&text).map_err(|e| format!("requested SAN: {e}"))?);
                }
            }
            ParsedExtension::BasicConstraints(bc) if bc.ca => requests_ca = true,
            // Key usages, EKUs, key identifiers and anything else are uca's
            // to decide; they are read past, not copied.
            _ => {}
        }
    }
    Ok(CsrContents {
        subject_text: info.subject.to_string(),
        subject,
        common_name,
        spki_der: spki.raw.to_vec(),
        sans,
        requests_ca,
        rsa_key,
    })
}

/// An attribute type as OpenSSL names it (OU, CN...), else its OID.
fn attr_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn subject_attr_names<'a>(
    attrs: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> String {
    attrs
        .map(|a| attr_name(a.attr_type()))
        .collect::<Vec<_>>()
        .join("+")
}

/// Refuses keys uca cannot sign for (and ring cannot verify), naming them.
fn supported_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> std::result::Result<(), String> {
    const SUPPORTED: &str = "uca signs P-256, P-384, Ed25519 and RSA (2048 bits or more) keys";
    let (alg, curve) = crate::pki::keys::spki_algorithm(spki);
    match (alg.as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => {
                Err(format!(
                    "its RSA key has {} bits; at least 2048 are required",
                    rsa.key_size()
                ))
            }
            Ok(_) => Ok(()),
            Err(_) => Err("its public key cannot be read".into()),
        },
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7" | "1.3.132.0.34"))
        | ("1.3.101.112", _) => Ok(()),
        ("1.2.840.10045.2.1", curve) => {
            let name = match curve {
                Some("1.3.132.0.35") => "P-521".to_string(),
                Some("1.3.132.0.10") => "secp256k1".to_string(),
                Some(other) => other.to_string(),
                None => "(none named)".to_string(),
            };
            Err(format!(
                "its elliptic curve {name} is not supported; {SUPPORTED}"
            ))
        }
        (other, _) => {
            let name = match other {
                "1.2.840.10040.4.1" => "DSA",
                "1.3.101.113" => "Ed448",
                "1.3.101.110" => "X25519",
                "1.3.101.111" => "X448",
                other => other,
            };
            Err(format!(
                "its key algorithm {name} is not supported; {SUPPORTED}"
            ))
        }
    }
}

/// Constraints for an intermediate: the root's, with each kind of name
/// given in `--permit` (DNS, IPv4, IPv6) narrowed to the given permits, each
/// within the root's; the kinds not given keep the root's constraints.
pub fn intermediate_constraints(
    root: &NameConstraints,
    given: &[String],
) -> Result<NameConstraints> {
    let permits = given
        .iter()
        .map(|t| Permit::parse(t))
        .collect::<Result<Vec<_>>>()?;
    root.narrowed(&permits).map_err(|outside| {
        let text = permits
            .iter()
            .position(|p| *p == outside)
            .map_or_else(|| outside.to_string(), |i| given[i].clone());
        let why = match root.0.iter().find(|r| r.within(&outside)) {
            Some(r) => {
                let kind = if matches!(r, Permit::Dns(_)) {
                    "DNS"
                } else {
                    "IP"
                };
                format!("it is wider than the root's own {kind} constraint {r}")
            }
            None => format!(
                "it lies outside the root's name constraints ({})",
                root.0
                    .iter()
                    .map(Permit::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Error::invalid("--permit value", text, why)
    })
}

/// How to sign a CSR: everything except the CSR itself.
pub struct SignOptions {
    pub profile: Profile,
    pub intermediate: bool,
    pub pathlen: u8,
    pub permits: Vec<String>,
    pub sans: Vec<String>,
    pub days: Option<u32>,
    /// Without `days`, the certificate ends when the CA does, instead of
    /// the default lifetime (an issuing CA made with its root).
    pub ends_with_issuer: bool,
    /// CRL distribution point for an intermediate (else the CA's `crl_url`).
    pub crl_url: Option<String>,
}

/// A CSR checked against the CA and turned into certificate parameters,
/// ready to sign. Nothing has been signed or written yet.
pub struct PreparedSign {
    params: rcgen::CertificateParams,
    public_key: rcgen::SubjectPublicKeyInfo,
    pub sans: Vec<San>,
    pub profile_name: String,
    pub subject_text: String,
    pub validity: Validity,
}

/// Validates `csr` (read from `shown`) against the CA and the options.
pub fn prepare(
    store: &CaStore,
    csr: &CsrContents,
    shown: &str,
    opts: &SignOptions,
) -> Result<PreparedSign> {
    if csr.requests_ca && !opts.intermediate {
        return Err(Error::invalid(
            "CSR",
            shown,
            "it asks for CA:TRUE; uca signs it as a CA only with --intermediate, never because a CSR asks",
        ));
    }
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(&csr.spki_der).map_err(|_| {
        Error::invalid(
            "CSR",
            shown,
            "its key type is not supported (P-256, P-384, Ed25519 or RSA)",
        )
    })?;
    let lifetime = match opts.days {
        Some(days) => profile::Lifetime::days(days)?,
        None if opts.ends_with_issuer => profile::Lifetime::until_issuer_expires(store.not_after),
        None => profile::Lifetime::days(if opts.intermediate { 1825 } else { 397 })?,
    };
    let validity = lifetime.within(store.not_after)?;
    let mut sans = Vec::new();
    let (params, profile_name) = if opts.intermediate {
        // The limit is the one in ca.pem, which every verifier enforces.
        if store.pathlen == Some(0) {
            return Err(Error::msg("the root has path length 0, so it cannot sign an intermediate CA; create the root with --pathlen 1 or more"));
        }
        if let Some(limit) = store.pathlen.filter(|limit| opts.pathlen >= *limit) {
            return Err(Error::invalid(
                "--pathlen",
                opts.pathlen.to_string(),
                format!("must be below the root's path length {limit}"),
            ));
        }
        if csr.subject.iter().next().is_none() {
            return Err(Error::invalid(
                "CSR",
                shown,
                "an intermediate CA needs a subject (e.g. CN=Acme Vault Intermediate)",
            ));
        }
        let constraints = intermediate_constraints(&store.constraints, &opts.permits)?;
        if let Some(cn) = &csr.common_name {
            intermediate_common_name(cn, &constraints)?;
        }
        let mut params =
            profile::intermediate_params(csr.subject.clone(), validity, opts.pathlen, &constraints);
        if let Some(url) = crl_url(store, opts.crl_url.as_deref())? {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![url] }];
        }
        (params, "intermediate".to_string())
    } else {
        if !opts.permits.is_empty() {
            return Err(Error::msg("--permit applies only with --intermediate"));
        }
        if opts.crl_url.is_some() {
            return Err(Error::msg("--crl-url applies only with --intermediate"));
        }
        let names = leaf_names(store, csr, shown, &opts.sans)?;
        sans = names.sans().to_vec();
        // Only "is it RSA" matters to the leaf profile.
        let key_type = if csr.rsa_key {
            KeyType::Rsa2048
        } else {
            KeyType::EcP256
        };
        (
            profile::leaf_params(&names, opts.profile, &[], key_type, validity)?,
            opts.profile.to_string(),
        )
    };
    Ok(PreparedSign {
        params,
        public_key,
        sans,
        profile_name,
        subject_text: csr.subject_text.clone(),
        validity,
    })
}

/// A cross-certificate for a successor root (`uca recover cross-sign`):
/// the successor's subject, key and key identifier, as a CA issued by this
/// root, so a client that trusts only this root validates chains under the
/// successor. The successor must be a self-signed CA certificate other than
/// this one; its name constraints must lie within this root's (this root's
/// own are used when it has none), and the cross-certificate ends when the
/// first of the two roots does.
pub fn prepare_cross_sign(store: &CaStore, der: &[u8], shown: &str) -> Result<PreparedSign> {
    let bad = |why: String| Error::invalid("successor root", shown.to_string(), why);
    let cert = x509::parse(der).map_err(bad)?;
    if der == store.cert_der.as_slice() {
        return Err(bad("it is this CA's own certificate".into()));
    }
    if cert.subject().as_raw() != cert.issuer().as_raw() || cert.verify_signature(None).is_err() {
        return Err(bad(
            "it is not a self-signed root (its signature does not verify with its own key)".into(),
        ));
    }
    let pathlen = match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => bc.value.path_len_constraint,
        _ => {
            return Err(bad(
                "it is not a CA certificate (basicConstraints CA:TRUE)".into()
            ))
        }
    };
    let (subject, _) = rcgen_subject(cert.subject(), "successor root's subject").map_err(bad)?;
    let own = NameConstraints::from_certificate(&cert)?;
    let constraints = if own.0.is_empty() {
        store.constraints.clone()
    } else {
        let given: Vec<String> = own.0.iter().map(ToString::to_string).collect();
        intermediate_constraints(&store.constraints, &given)?
    };
    let now = timefmt::now()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    let not_after = x509::not_after(&cert).min(store.not_after);
    if not_after <= now {
        return Err(bad("it, or this root, has expired".into()));
    }
    let validity = Validity {
        not_before: now - time::Duration::minutes(1),
        not_after,
    };
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.is_ca = match pathlen {
        Some(n) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(
            u8::try_from(n).unwrap_or(u8::MAX),
        )),
        None => rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
    };
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.name_constraints = constraints.to_rcgen();
    params.use_authority_key_identifier_extension = true;
    // The successor's own key identifier: path builders match a child's
    // AKI against it, whichever certificate of the successor they hold.
    params.key_identifier_method = match x509::subject_key_identifier(&cert) {
        Some(ski) => rcgen::KeyIdMethod::PreSpecified(ski),
        None => rcgen::KeyIdMethod::Sha256,
    };
    if let Some(url) = crl_url(store, None)? {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![url] }];
    }
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(cert.public_key().raw)
        .map_err(|_| bad("its key type is not supported (P-256, P-384, Ed25519 or RSA)".into()))?;
    Ok(PreparedSign {
        params,
        public_key,
        sans: Vec::new(),
        profile_name: "cross-certificate".into(),
        subject_text: cert.subject().to_string(),
        validity,
    })
}

/// The CRL URL an intermediate carries: `given`, else the CA's. A given
/// URL that differs from the CA's is refused: the root's CRLs name the CA's
/// URL as their distribution point, and verifiers match the two.
fn crl_url(store: &CaStore, given: Option<&str>) -> Result<Option<String>> {
    match (given, store.crl_url.as_deref()) {
        (Some(url), Some(own)) if url != own => Err(Error::invalid(
            "--crl-url",
            url,
            format!("the CA publishes its CRL at {own} (crl_url in ca.toml), which its CRLs name; leave --crl-url out or give that URL"),
        )),
        (Some(url), _) => {
            crate::pki::crl::check_url(url)?;
            Ok(Some(url.to_string()))
        }
        (None, own) => Ok(own.map(str::to_string)),
    }
}

/// A leaf's names from a CSR: its SANs, its CN (which counts as a name and
/// is added as a SAN when missing) and the `--san` extras, all checked
/// against the CA's name constraints.
fn leaf_names(
    store: &CaStore,
    csr: &CsrContents,
    shown: &str,
    extras: &[String],
) -> Result<profile::LeafNames> {
    let mut sans = csr.sans.clone();
    if let Some(cn) = &csr.common_name {
        let own = profile::common_name_san(cn, &store.constraints)?;
        if !sans.contains(&own) {
            sans.insert(0, own);
        }
    }
    for extra in extras {
        let s = San::parse(extra)?;
        if !sans.contains(&s) {
            sans.push(s);
        }
    }
    if sans.is_empty() {
        return Err(Error::invalid(
            "CSR",
            shown,
            "it names no host: give it a SAN or a host-name CN, or add --san",
        ));
    }
    profile::LeafNames::checked(csr.subject.clone(), sans, &store.constraints)
}

/// An intermediate's CN is a label ("Acme Vault Intermediate"), not a host
/// name; but one that reads as a host name must lie within the CA's own
/// constraints, as OpenSSL would check it as one.
fn intermediate_common_name(cn: &str, constraints: &NameConstraints) -> Result<()> {
    crate::pki::names::validate_ca_name(cn)?;
    let looks_like_host = cn.contains('.') && crate::pki::names::dns_name(cn, true).is_ok();
    if looks_like_host || cn.parse::<std::net::IpAddr>().is_ok() {
        profile::common_name_san(cn, constraints)?;
    }
    Ok(())
}

/// Signs a prepared CSR under the CA's lock, hands the DER to `publish`
/// (which writes it wherever it goes), and only then records it in the
/// ledger with `path`. Returns DER and serial.
pub fn sign_prepared(
    store: &CaStore,
    signer: &Signer,
    lock: &LedgerLock,
    prepared: PreparedSign,
    path: Option<String>,
    publish: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<(Vec<u8>, String)> {
    store.ensure_unsealed()?;
    sign_and_record(store, signer, lock, prepared, path, publish)
}

/// [`sign_prepared`] for a root sealed with escrow, which signs only with
/// the proof that a quorum of its custodians recombined its key.
pub fn sign_prepared_recovered(
    store: &CaStore,
    signer: &Signer,
    lock: &LedgerLock,
    prepared: PreparedSign,
    path: Option<String>,
    publish: impl FnOnce(&[u8]) -> Result<()>,
    _quorum: &Quorum,
) -> Result<(Vec<u8>, String)> {
    sign_and_record(store, signer, lock, prepared, path, publish)
}

fn sign_and_record(
    store: &CaStore,
    signer: &Signer,
    lock: &LedgerLock,
    mut prepared: PreparedSign,
    path: Option<String>,
    publish: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<(Vec<u8>, String)> {
    let ledger = store.ledger();
    let used = ledger.used_serials(1)?;
    let serial_bytes = loop {
        let s = profile::random_serial_bytes();
        if !used.may_contain(x509::serial_hex_of(&s).as_str()) {
            break s;
        }
    };
    prepared.params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial_bytes));
    let cert = prepared
        .params
        .signed_by(&prepared.public_key, &signer.issuer)
        .map_err(|e| Error::msg(format!("cannot sign {}: {e}", prepared.subject_text)))?;
    let der = cert.der().to_vec();
    let serial = x509::serial_hex_of(&serial_bytes);
    let (subject, sans) = x509::recorded_names(&der)?;
    let entry = LedgerEntry {
        serial: serial.clone(),
        subject,
        sans,
        profile: prepared.profile_name.clone(),
        key: "external".into(),
        not_before: timefmt::rfc3339(prepared.validity.not_before),
        not_after: timefmt::rfc3339(prepared.validity.not_after),
        sha256: x509::sha256_hex(&der),
        path,
        issued_at: timefmt::rfc3339(timefmt::now()),
        replaces: None,
        archive: None,
        member: None,
        member_sha256: None,
    };
    publish(&der)?;
    ledger.append(lock, &[entry])?;
    Ok((der, serial))
}
