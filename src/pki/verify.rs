//! Chain verification behind `uca verify`: checks a certificate (or chain)
//! the way a TLS peer will, with rustls-webpki, and explains a failure in
//! terms an operator can act on. (A sealed CA's manifest is `ca::seal`'s.)

use std::path::Path;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

use crate::pki::constraints::NameConstraints;
use crate::pki::names::San;
use crate::support::error::{Error, Result};
use crate::{pki::x509, support::timefmt};

/// What the certificate must be good for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A TLS server, optionally for one DNS name or IP address.
    Server(Option<String>),
    /// A TLS client (mutual TLS).
    Client,
}

/// One certificate read from CERT or CA, with what the explanations need.
struct Info<'a> {
    der: &'a [u8],
    parsed: X509Certificate<'a>,
    /// Where it came from: the CERT or CA path, or a description.
    source: &'a str,
}

impl Info<'_> {
    fn name(&self) -> String {
        display_name(&self.parsed)
    }

    fn subject_raw(&self) -> &[u8] {
        self.parsed.subject().as_raw()
    }

    fn issuer_raw(&self) -> &[u8] {
        self.parsed.issuer().as_raw()
    }

    fn not_after(&self) -> OffsetDateTime {
        x509::not_after(&self.parsed)
    }

    fn not_before(&self) -> OffsetDateTime {
        x509::not_before(&self.parsed)
    }

    fn is_self_issued(&self) -> bool {
        self.subject_raw() == self.issuer_raw()
    }
}

/// The subject as `CN=...`, or the first SAN when the subject is empty.
fn display_name(cert: &X509Certificate<'_>) -> String {
    let subject = cert.subject().to_string();
    if !subject.is_empty() {
        return subject;
    }
    match x509::sans(cert).first() {
        Some(san) => format!("(empty subject, {san})"),
        None => format!("(empty subject, serial {})", x509::serial_hex(cert)),
    }
}

fn parse_all<'a>(ders: &'a [Vec<u8>], source: &'a str) -> Result<Vec<Info<'a>>> {
    if ders.is_empty() {
        return Err(Error::invalid("certificates", source, "there are none"));
    }
    ders.iter()
        .map(|der| {
            let parsed =
                x509::parse(der).map_err(|why| Error::invalid("certificate in", source, why))?;
            Ok(Info {
                der,
                parsed,
                source,
            })
        })
        .collect()
}

fn unix(t: UnixTime) -> OffsetDateTime {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn when(t: OffsetDateTime) -> String {
    timefmt::rfc3339(t)
}

/// Verifies CERT (leaf first, then intermediates; a copy of a trusted root is
/// ignored) against the trust anchors in CA for `purpose` at time `now`.
/// Returns the `OK: ...` line, or `Error::Verification` explaining why not.
pub fn verify_files(
    cert_path: &Path,
    ca_path: &Path,
    purpose: &Purpose,
    now: UnixTime,
) -> Result<String> {
    let chain_der = x509::read_certificates(cert_path)?;
    let ca_der = x509::read_certificates(ca_path)?;
    verify_der_at(
        &chain_der,
        &ca_der,
        purpose,
        now,
        &cert_path.display().to_string(),
        &ca_path.display().to_string(),
    )
}

/// [`verify_files`] for certificates already in memory (DER), now: `chain`
/// is the leaf then intermediates, `cas` the trust anchors.
pub fn verify_der(chain: &[Vec<u8>], cas: &[Vec<u8>], purpose: &Purpose) -> Result<String> {
    verify_der_at(
        chain,
        cas,
        purpose,
        UnixTime::now(),
        "the certificate chain",
        "the trusted CA certificates",
    )
}

/// The verification itself; `cert_label` and `ca_label` name the inputs in
/// messages (file names, or a description).
pub fn verify_der_at(
    chain_der: &[Vec<u8>],
    ca_der: &[Vec<u8>],
    purpose: &Purpose,
    now: UnixTime,
    cert_label: &str,
    ca_label: &str,
) -> Result<String> {
    let chain = parse_all(chain_der, cert_label)?;
    let cas = parse_all(ca_der, ca_label)?;
    let (cert_path, ca_path) = (cert_label, ca_label);
    let server_name = server_name_of(purpose)?;
    let anchors = trust_anchors(&cas, ca_path)?;

    let ctx = Ctx {
        chain: &chain,
        cas: &cas,
        purpose,
        now,
        cert_path,
        ca_path,
    };
    let leaf_der = CertificateDer::from(chain[0].der);
    let leaf_cert =
        EndEntityCert::try_from(&leaf_der).map_err(|e| Error::Verification(explain(&e, &ctx)))?;
    // Intermediates from CERT, without copies of a trusted certificate.
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .filter(|c| !cas.iter().any(|ca| ca.der == c.der))
        .map(|c| CertificateDer::from(c.der))
        .collect();
    let usage = match purpose {
        Purpose::Server(_) => KeyUsage::server_auth(),
        Purpose::Client => KeyUsage::client_auth(),
    };
    let path = leaf_cert
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            now,
            usage,
            None,
            None,
        )
        .map_err(|e| Error::Verification(explain(&e, &ctx)))?;
    if let Some(name) = &server_name {
        leaf_cert
            .verify_is_valid_for_subject_name(name)
            .map_err(|e| Error::Verification(explain(&e, &ctx)))?;
    }

    // The path, for the report: leaf, intermediates (issuer of the leaf
    // first), then the trust anchor.
    let mut names = vec![chain[0].name()];
    let mut expiries = vec![(chain[0].not_after(), chain[0].name())];
    for inter in path.intermediate_certificates() {
        let der = inter.der();
        if let Ok(p) = x509::parse(der.as_ref()) {
            names.push(display_name(&p));
            expiries.push((x509::not_after(&p), display_name(&p)));
        }
    }
    let anchor_index = anchors
        .iter()
        .position(|a| std::ptr::eq(a, path.anchor()))
        .unwrap_or(0);
    let root = &cas[anchor_index];
    check_anchor_validity(root, ca_path, unix(now))?;
    names.push(root.name());
    expiries.push((root.not_after(), root.name()));
    Ok(success_report(&chain[0], purpose, &names, &expiries))
}

/// `--name` as the server name to check, for a server certificate.
fn server_name_of(purpose: &Purpose) -> Result<Option<ServerName<'static>>> {
    let Purpose::Server(Some(name)) = purpose else {
        return Ok(None);
    };
    let name = ServerName::try_from(name.as_str()).map_err(|_| {
        Error::invalid(
            "--name",
            name.as_str(),
            "expected a DNS name like web1.internal or an IP address like 10.0.0.5",
        )
    })?;
    Ok(Some(name.to_owned()))
}

/// Each CA certificate as a trust anchor, in the order given.
fn trust_anchors(cas: &[Info<'_>], ca_path: &str) -> Result<Vec<TrustAnchor<'static>>> {
    let mut anchors = Vec::with_capacity(cas.len());
    for ca in cas {
        let der = CertificateDer::from(ca.der);
        let anchor = webpki::anchor_from_trusted_cert(&der).map_err(|e| {
            Error::invalid(
                "trust anchor in",
                ca_path,
                format!("{} cannot be used as a trust anchor: {e:?}", ca.name()),
            )
        })?;
        anchors.push(anchor.to_owned());
    }
    Ok(anchors)
}

/// webpki does not check a trust anchor's own validity; a peer using
/// OpenSSL does, so uca does too.
fn check_anchor_validity(root: &Info<'_>, ca_path: &str, now: OffsetDateTime) -> Result<()> {
    if root.not_after() < now {
        return Err(Error::Verification(format!(
            "the chain ends at {} from {}, which expired at {} (now {}): every certificate it issued is refused by OpenSSL-based peers; create a new CA",
            root.name(),
            ca_path,
            when(root.not_after()),
            when(now)
        )));
    }
    if root.not_before() > now {
        return Err(Error::Verification(format!(
            "the chain ends at {} from {}, which is not valid until {} (now {}): check this machine's clock",
            root.name(),
            ca_path,
            when(root.not_before()),
            when(now)
        )));
    }
    Ok(())
}

/// The OK line: what `leaf` is valid for, until when (or until an earlier
/// expiry in its chain), and the chain as `names`, leaf first.
fn success_report(
    leaf: &Info<'_>,
    purpose: &Purpose,
    names: &[String],
    expiries: &[(OffsetDateTime, String)],
) -> String {
    let leaf_until = leaf.not_after();
    let mut until = when(leaf_until);
    if let Some((t, who)) = expiries.iter().min_by_key(|(t, _)| *t) {
        if *t < leaf_until {
            until = format!(
                "{until} (but {who} in its chain expires first, at {})",
                when(*t)
            );
        }
    }
    let usage_text = match purpose {
        Purpose::Server(Some(name)) => format!("server use (as {name})"),
        Purpose::Server(None) => "server use (no --name given, names not checked)".to_string(),
        Purpose::Client => "client use".to_string(),
    };
    format!(
        "OK: {} is valid for {usage_text} until {until}, chain: {}",
        leaf.name(),
        names.join(" <- ")
    )
}

/// Everything an explanation may refer to.
struct Ctx<'a> {
    chain: &'a [Info<'a>],
    cas: &'a [Info<'a>],
    purpose: &'a Purpose,
    now: UnixTime,
    cert_path: &'a str,
    ca_path: &'a str,
}

impl Ctx<'_> {
    fn leaf(&self) -> &Info<'_> {
        &self.chain[0]
    }

    fn all(&self) -> impl Iterator<Item = &Info<'_>> {
        self.chain.iter().chain(self.cas.iter())
    }

    fn ca_names(&self) -> String {
        self.cas
            .iter()
            .map(Info::name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Who held a given notBefore/notAfter, for the time errors.
    fn find_by_time(&self, t: UnixTime, not_after: bool) -> Option<&Info<'_>> {
        let t = unix(t);
        self.all().find(|c| {
            if not_after {
                c.not_after() == t
            } else {
                c.not_before() == t
            }
        })
    }
}

fn names_list(cert: &X509Certificate<'_>) -> String {
    let sans = x509::sans(cert);
    if sans.is_empty() {
        "none (it has no subjectAltName; TLS matches names only against subjectAltName, never the CN)".into()
    } else {
        sans.join(", ")
    }
}

/// serverAuth / clientAuth in the certificate's extendedKeyUsage, if it has one.
fn eku_text(cert: &X509Certificate<'_>) -> Option<(bool, bool, String)> {
    let eku = cert.extended_key_usage().ok().flatten()?;
    let e = eku.value;
    let mut parts = Vec::new();
    if e.server_auth {
        parts.push("serverAuth".to_string());
    }
    if e.client_auth {
        parts.push("clientAuth".to_string());
    }
    if e.any {
        parts.push("anyExtendedKeyUsage".to_string());
    }
    if e.code_signing {
        parts.push("codeSigning".to_string());
    }
    if e.email_protection {
        parts.push("emailProtection".to_string());
    }
    if e.time_stamping {
        parts.push("timeStamping".to_string());
    }
    if e.ocsp_signing {
        parts.push("OCSPSigning".to_string());
    }
    parts.extend(e.other.iter().map(|o| o.to_id_string()));
    Some((e.server_auth, e.client_auth, parts.join(", ")))
}

/// "was issued with the client profile (EKU clientAuth only)" and the like.
fn profile_text(cert: &X509Certificate<'_>) -> String {
    match eku_text(cert) {
        None => "has no extendedKeyUsage".into(),
        Some((true, true, list)) => format!("was issued with the both profile (EKU {list})"),
        Some((true, false, list)) if list == "serverAuth" => {
            "was issued with the server profile (EKU serverAuth only)".into()
        }
        Some((false, true, list)) if list == "clientAuth" => {
            "was issued with the client profile (EKU clientAuth only)".into()
        }
        Some((_, _, list)) if list.is_empty() => "has an empty extendedKeyUsage".into(),
        Some((_, _, list)) => format!("has extendedKeyUsage {list}"),
    }
}

fn key_ids(cert: &X509Certificate<'_>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => {}
        }
    }
    (ski, aki)
}

fn explain_bad_signature(ctx: &Ctx<'_>) -> String {
    // Find the certificate whose signature fails against the issuer named in it.
    for cert in ctx.chain {
        let candidates: Vec<&Info<'_>> = ctx
            .cas
            .iter()
            .chain(ctx.chain.iter())
            .filter(|c| c.subject_raw() == cert.issuer_raw() && c.der != cert.der)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        if candidates.iter().any(|issuer| {
            cert.parsed
                .verify_signature(Some(issuer.parsed.public_key()))
                .is_ok()
        }) {
            continue;
        }
        let issuer = candidates[0];
        let (_, aki) = key_ids(&cert.parsed);
        let (ski, _) = key_ids(&issuer.parsed);
        let why = match (aki, ski) {
            (Some(a), Some(s)) if a != s => format!(
                "it was signed by a different CA with the same name (its authority key id is {}, the key id of {} in {} is {})",
                x509::colon_hex(&a),
                issuer.name(),
                issuer.source,
                x509::colon_hex(&s)
            ),
            _ => format!(
                "the certificate was altered after signing or {} is damaged; use the original file",
                cert.source
            ),
        };
        return format!(
            "the signature on {} does not verify with the public key of {} from {}: {why}",
            cert.name(),
            issuer.name(),
            issuer.source
        );
    }
    format!(
        "a signature in the chain of {} does not verify with the key of its issuer (trusted: {}): the certificate was altered, or signed by a different CA with the same name",
        ctx.leaf().name(),
        ctx.ca_names()
    )
}

fn explain_unknown_issuer(ctx: &Ctx<'_>) -> String {
    // Follow the chain in CERT as far as it goes.
    let mut top = ctx.leaf();
    let mut steps = 0;
    while let Some(next) = ctx
        .chain
        .iter()
        .find(|c| c.subject_raw() == top.issuer_raw() && c.der != top.der)
    {
        if next.is_self_issued() || steps > ctx.chain.len() {
            break;
        }
        top = next;
        steps += 1;
    }
    let leaf = ctx.leaf();
    let start = if std::ptr::eq(top, leaf) {
        format!("{} was issued by {}", leaf.name(), top.parsed.issuer())
    } else {
        format!(
            "the chain of {} in {} ends at {}, issued by {}",
            leaf.name(),
            ctx.cert_path,
            top.name(),
            top.parsed.issuer()
        )
    };
    let mut msg = format!(
        "{start}, which is not in {} (it holds {}): verify with the CA that issued it, or give its intermediates in {} after the leaf",
        ctx.ca_path,
        ctx.ca_names(),
        ctx.cert_path
    );
    let not_cas: Vec<String> = ctx
        .cas
        .iter()
        .filter(|c| !x509::is_ca(&c.parsed))
        .map(Info::name)
        .collect();
    if !not_cas.is_empty() {
        msg.push_str(&format!(
            " (note: {} in {} is not a CA certificate)",
            not_cas.join(", "),
            ctx.ca_path
        ));
    }
    msg
}

fn explain_eku(ctx: &Ctx<'_>) -> String {
    let leaf = ctx.leaf();
    let (want, other, fix) = match ctx.purpose {
        Purpose::Server(_) => ("serverAuth", "server", "--profile server or --profile both"),
        Purpose::Client => ("clientAuth", "client", "--profile client or --profile both"),
    };
    let leaf_has = match eku_text(&leaf.parsed) {
        None => true,
        Some((s, c, _)) => match ctx.purpose {
            Purpose::Server(_) => s,
            Purpose::Client => c,
        },
    };
    if !leaf_has {
        let role = match ctx.purpose {
            Purpose::Server(_) => "by a TLS server",
            Purpose::Client => "as a TLS client certificate",
        };
        return format!(
            "{} cannot be used {role}: it {}, and {other} use needs {want}; issue a certificate with {fix}",
            leaf.name(),
            profile_text(&leaf.parsed)
        );
    }
    let restricting: Vec<String> = ctx
        .chain
        .iter()
        .skip(1)
        .chain(ctx.cas.iter())
        .filter(|c| matches!(eku_text(&c.parsed), Some((s, cl, _)) if !(match ctx.purpose { Purpose::Server(_) => s, Purpose::Client => cl })))
        .map(|c| format!("{} ({})", c.name(), profile_text(&c.parsed)))
        .collect();
    format!(
        "{} is not valid for {other} use: an issuer in its chain restricts extendedKeyUsage without {want}{}",
        leaf.name(),
        if restricting.is_empty() { String::new() } else { format!(": {}", restricting.join(", ")) }
    )
}

fn explain_name_constraints(ctx: &Ctx<'_>) -> String {
    let leaf = ctx.leaf();
    let mut parts = Vec::new();
    for ca in ctx.chain.iter().skip(1).chain(ctx.cas.iter()) {
        let Ok(nc) = NameConstraints::from_certificate(&ca.parsed) else {
            continue;
        };
        if nc.is_empty() {
            continue;
        }
        let outside: Vec<String> = x509::sans(&leaf.parsed)
            .into_iter()
            .filter(|s| San::parse(s).is_ok_and(|san| nc.check(&san).is_err()))
            .collect();
        let permitted =
            nc.0.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ");
        if outside.is_empty() {
            parts.push(format!("{} permits only {permitted}", ca.name()));
        } else {
            parts.push(format!(
                "{} is outside {} (which permits only {permitted})",
                outside.join(", "),
                ca.name()
            ));
        }
    }
    format!(
        "{} violates the name constraints of its chain: {}",
        leaf.name(),
        if parts.is_empty() {
            format!("its names are {}", names_list(&leaf.parsed))
        } else {
            parts.join("; ")
        }
    )
}

fn explain_expired(ctx: &Ctx<'_>, not_after: UnixTime) -> String {
    let leaf = ctx.leaf();
    let now = when(unix(ctx.now));
    let who = ctx
        .find_by_time(not_after, true)
        .map_or_else(|| "a certificate in the chain".into(), Info::name);
    let whose = if ctx
        .find_by_time(not_after, true)
        .is_some_and(|c| std::ptr::eq(c, leaf))
    {
        "issue a new certificate".to_string()
    } else {
        format!("{} is in the chain of {}; replace it", who, leaf.name())
    };
    format!(
        "{who} expired at {} (now {now}): {whose}",
        when(unix(not_after))
    )
}

fn explain_not_valid_yet(ctx: &Ctx<'_>, not_before: UnixTime) -> String {
    let now = when(unix(ctx.now));
    let who = ctx
        .find_by_time(not_before, false)
        .map_or_else(|| "a certificate in the chain".into(), Info::name);
    format!(
        "{who} is not valid yet: its validity starts at {} (now {now}); check this machine's clock",
        when(unix(not_before))
    )
}

fn explain_wrong_name(ctx: &Ctx<'_>) -> String {
    let leaf = ctx.leaf();
    let name = match ctx.purpose {
        Purpose::Server(Some(n)) => n.as_str(),
        _ => "the requested name",
    };
    format!(
        "{} is not valid for {name}: its names are {}; issue one that includes {name} (e.g. with --san)",
        leaf.name(),
        names_list(&leaf.parsed)
    )
}

/// Turns a webpki error into an explanation: one arm per error webpki can
/// return, so the match is as long as that list.
fn explain(err: &webpki::Error, ctx: &Ctx<'_>) -> String {
    use webpki::Error as E;
    let leaf = ctx.leaf();
    let malformed = |what: &str| {
        format!(
            "a certificate in {} (or {}) is malformed: {what}; was the file altered? ({err:?})",
            ctx.cert_path, ctx.ca_path
        )
    };
    #[allow(deprecated)]
    match err {
        E::CertExpired { not_after, .. } => explain_expired(ctx, *not_after),
        E::CertNotValidYet { not_before, .. } => explain_not_valid_yet(ctx, *not_before),
        E::CertNotValidForName(_) => explain_wrong_name(ctx),
        E::UnknownIssuer => explain_unknown_issuer(ctx),
        E::InvalidSignatureForPublicKey => explain_bad_signature(ctx),
        E::SignatureAlgorithmMismatch => format!(
            "{}: the signature algorithm inside the signed part differs from the one outside it; the certificate was altered",
            leaf.name()
        ),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => explain_eku(ctx),
        E::EmptyEkuExtension => format!(
            "{} has an extendedKeyUsage extension with no purposes in it, so it is valid for nothing",
            leaf.name()
        ),
        E::NameConstraintViolation => explain_name_constraints(ctx),
        E::CaUsedAsEndEntity => format!(
            "{} holds a CA certificate ({}, CA:TRUE), not a server or client certificate; verify a leaf such as certs/NAME/cert.pem and give the CA with --ca",
            ctx.cert_path,
            leaf.name()
        ),
        E::EndEntityUsedAsCa => format!(
            "the chain of {} needs a certificate that is not a CA (CA:FALSE) to act as an issuer; {} must hold the leaf first, then its intermediate CAs, and {} the root",
            leaf.name(),
            ctx.cert_path,
            ctx.ca_path
        ),
        E::PathLenConstraintViolated => format!(
            "the chain of {} has more intermediate CAs than the path length constraint of a CA above them allows",
            leaf.name()
        ),
        E::MaximumPathDepthExceeded => format!("the chain of {} is too long (more than 6 intermediates)", leaf.name()),
        E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumNameConstraintComparisonsExceeded => format!(
            "the chain of {} is too complex to verify ({err:?}); remove unneeded certificates from {} and {}",
            leaf.name(),
            ctx.cert_path,
            ctx.ca_path
        ),
        E::UnsupportedCriticalExtension => format!(
            "a certificate in the chain of {} has a critical extension that TLS verifiers do not understand, so it must be refused",
            leaf.name()
        ),
        E::UnsupportedCertVersion => malformed("it is not an X.509 version 3 certificate"),
        E::InvalidCertValidity => malformed("its notAfter is before its notBefore"),
        E::InvalidSerialNumber => malformed("its serial number is negative or longer than 20 bytes"),
        E::BadDer | E::TrailingData(_) => malformed("invalid DER encoding"),
        E::BadDerTime => malformed("invalid time encoding"),
        E::MalformedExtensions | E::ExtensionValueInvalid => malformed("an extension is invalid"),
        E::MalformedNameConstraint | E::InvalidNetworkMaskConstraint => malformed("a name constraint is invalid"),
        E::MalformedDnsIdentifier => match ctx.purpose {
            Purpose::Server(Some(n)) => format!("'{n}' is not a valid DNS name, or {} holds a malformed DNS name", leaf.name()),
            _ => format!("{} holds a malformed DNS name", leaf.name()),
        },
        E::UnsupportedNameType => "the --name given is of a kind TLS cannot check (expected a DNS name or an IP address)".into(),
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => format!(
            "a certificate in the chain of {} is signed with an algorithm rustls does not accept, or one that does not match its issuer's key ({err:?})",
            leaf.name()
        ),
        E::CertDistrusted => format!("a public key in the chain of {} is explicitly distrusted", leaf.name()),
        E::CertRevoked => format!("{} or a certificate in its chain is revoked", leaf.name()),
        other => format!("{} did not verify: {other:?}", leaf.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::constraints::NameConstraints;
    use crate::pki::keys::KeyType;
    use crate::pki::profile::{self, Profile, Validity};
    use time::Duration;

    /// A root valid over `ca` and a leaf for web.internal valid over `leaf`,
    /// both as DER.
    fn pair(ca: (i64, i64), leaf: (i64, i64)) -> (Vec<u8>, Vec<u8>) {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let window = |(a, b): (i64, i64)| Validity {
            not_before: now + Duration::days(a),
            not_after: now + Duration::days(b),
        };
        let ca_key = KeyType::EcP256.generate().unwrap().key_pair().unwrap();
        let ca_params =
            profile::root_params("Unit Root", window(ca), 0, &NameConstraints::default());
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(ca_cert.der(), ca_key).unwrap();
        let leaf_key = KeyType::EcP256.generate().unwrap().key_pair().unwrap();
        let names = profile::LeafNames::checked(
            profile::subject_cn("web.internal"),
            vec![San::Dns("web.internal".into())],
            &NameConstraints::default(),
        )
        .unwrap();
        let leaf_params =
            profile::leaf_params(&names, Profile::Both, &[], KeyType::EcP256, window(leaf))
                .unwrap();
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        (ca_cert.der().to_vec(), leaf_cert.der().to_vec())
    }

    #[test]
    fn verifies_in_memory_and_names_the_inputs() {
        let (ca, leaf) = pair((-1, 10), (-1, 5));
        let line = verify_der(
            std::slice::from_ref(&leaf),
            std::slice::from_ref(&ca),
            &Purpose::Server(Some("web.internal".into())),
        )
        .unwrap();
        assert!(
            line.starts_with(
                "OK: CN=web.internal is valid for server use (as web.internal) until "
            ),
            "{line}"
        );
        assert!(
            line.ends_with("chain: CN=web.internal <- CN=Unit Root"),
            "{line}"
        );
        let err = verify_der(&[], &[ca], &Purpose::Client)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the certificate chain"), "{err}");
        let (other_ca, _) = pair((-1, 10), (-1, 5));
        let err = verify_der(&[leaf], &[other_ca], &Purpose::Client)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the trusted CA certificates"), "{err}");
    }

    /// webpki does not look at a trust anchor's validity; uca does, as
    /// OpenSSL peers will.
    #[test]
    fn an_expired_or_future_root_is_refused_even_when_the_leaf_is_valid() {
        let (ca, leaf) = pair((-10, -1), (-5, 10));
        let err = verify_der(&[leaf], &[ca], &Purpose::Client)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the chain ends at CN=Unit Root"), "{err}");
        assert!(err.contains("which expired at"), "{err}");
        let (ca, leaf) = pair((2, 20), (-1, 10));
        let err = verify_der(&[leaf], &[ca], &Purpose::Client)
            .unwrap_err()
            .to_string();
        assert!(err.contains("which is not valid until"), "{err}");
    }

    #[test]
    fn an_expiring_root_is_mentioned_in_the_success_line() {
        let (ca, leaf) = pair((-1, 3), (-1, 10));
        let line = verify_der(&[leaf], &[ca], &Purpose::Client).unwrap();
        assert!(
            line.contains("(but CN=Unit Root in its chain expires first, at "),
            "{line}"
        );
    }
}
