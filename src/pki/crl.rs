//! Certificate revocation lists (RFC 5280 section 5), encoded here rather
//! than by rcgen: rcgen's issuing distribution point always carries a
//! distribution point URL, and the root's CA-only CRL must carry none
//! (onlyContainsCACerts alone). The root itself has no CRL distribution
//! point, and a verifier checking every certificate of the chain (OpenSSL's
//! -crl_check_all) takes a CRL whose issuing distribution point names a URL
//! to be out of scope for a certificate that names none. The
//! encoder is small DER: the issuer's name and key identifier are copied
//! from the issuer's own certificate, so the CRL names exactly the issuer
//! that verifiers look up; the signature algorithm is the one the issuer's
//! key signs with, which for a CA signed by another root (a subordinate, a
//! two-tier issuing CA) need not be the one its certificate was signed with.

use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;

use crate::pki::keys::KeyType;
use crate::support::error::{Error, Result};

/// A CRL about to be signed.
pub struct CrlParams {
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Only CA certificates are in scope (onlyContainsCACerts).
    pub ca_only: bool,
    /// Serials (big-endian bytes) revoked at `this_update`.
    pub revoked: Vec<Vec<u8>>,
}

const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_IDP: &[u8] = &[0x55, 0x1d, 0x1c];

/// Checks a CRL distribution point URL: http or https, a host, printable
/// ASCII without spaces (it is embedded verbatim as an IA5String URI).
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid("--crl-url", url, why);
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            bad("expected an http:// or https:// URL (e.g. http://pki.example.internal/root.crl)")
        })?;
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("a URL holds only printable ASCII, without spaces"));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("it names no host"));
    }
    if url.len() > 1024 {
        return Err(bad("at most 1024 characters"));
    }
    Ok(())
}

/// Signs `params` for the issuer `issuer_der` (a certificate) with `sign`,
/// which signs the to-be-signed bytes with the issuer's key in that key's
/// algorithm ([`KeyType::signature_algorithm`]). Returns the CRL's DER.
pub fn sign(
    params: &CrlParams,
    issuer_der: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let issuer = Issuer::read(issuer_der)?;
    let tbs = tbs(params, &issuer);
    let signature = sign(&tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    Ok(tlv(
        0x30,
        &[tbs, issuer.algorithm, tlv(0x03, &bits)].concat(),
    ))
}

/// What a CRL copies from its issuer's certificate.
struct Issuer {
    name: Vec<u8>,
    algorithm: Vec<u8>,
    key_id: Vec<u8>,
}

impl Issuer {
    fn read(der: &[u8]) -> Result<Issuer> {
        let cert = crate::pki::x509::parse(der).map_err(Error::msg)?;
        let key_id = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .ok_or_else(|| Error::msg("the CA certificate has no subject key identifier"))?;
        // The algorithm of the issuer's key, not of the signature on its
        // certificate: that one is its parent's.
        let algorithm = algorithm_identifier(KeyType::of_certificate(&cert)?);
        Ok(Issuer {
            name: cert.tbs_certificate.subject.as_raw().to_vec(),
            algorithm,
            key_id,
        })
    }
}

/// The AlgorithmIdentifier (DER) of the signatures `Signer::sign_bytes`
/// makes with a key of this type (RFC 5758 3.2, RFC 8410 3, RFC 4055 5).
fn algorithm_identifier(key: KeyType) -> Vec<u8> {
    const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    const RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    match key {
        KeyType::EcP256 => tlv(0x30, &tlv(0x06, ECDSA_SHA256)),
        KeyType::EcP384 => tlv(0x30, &tlv(0x06, ECDSA_SHA384)),
        KeyType::Ed25519 => tlv(0x30, &tlv(0x06, ED25519)),
        // RSA's parameters are an explicit NULL.
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            tlv(0x30, &[tlv(0x06, RSA_SHA256), vec![0x05, 0x00]].concat())
        }
    }
}

fn tbs(p: &CrlParams, issuer: &Issuer) -> Vec<u8> {
    let mut body = vec![
        tlv(0x02, &[1]), // v2
        issuer.algorithm.clone(),
        issuer.name.clone(),
        time(p.this_update),
        time(p.next_update),
    ];
    if !p.revoked.is_empty() {
        let entries: Vec<u8> = p
            .revoked
            .iter()
            .flat_map(|serial| tlv(0x30, &[integer(serial), time(p.this_update)].concat()))
            .collect();
        body.push(tlv(0x30, &entries));
    }
    let mut extensions = vec![
        extension(OID_AKI, false, &tlv(0x30, &tlv(0x80, &issuer.key_id))),
        extension(OID_CRL_NUMBER, false, &integer(&p.number.to_be_bytes())),
    ];
    if p.ca_only {
        // IssuingDistributionPoint { [2] onlyContainsCACerts TRUE }.
        extensions.push(extension(OID_IDP, true, &tlv(0x30, &tlv(0x82, &[0xff]))));
    }
    body.push(tlv(0xa0, &tlv(0x30, &extensions.concat())));
    tlv(0x30, &body.concat())
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut fields = tlv(0x06, oid);
    if critical {
        fields.extend(tlv(0x01, &[0xff]));
    }
    fields.extend(tlv(0x04, value));
    tlv(0x30, &fields)
}

/// A non-negative INTEGER from big-endian bytes, minimally encoded.
fn integer(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut value = bytes[first..].to_vec();
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    tlv(0x02, &value)
}

/// UTCTime through 2049, GeneralizedTime after (RFC 5280 5.1.2.4).
fn time(t: OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let hms = format!("{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&y) {
        tlv(0x17, format!("{:02}{mo:02}{d:02}{hms}", y % 100).as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{mo:02}{d:02}{hms}").as_bytes())
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// One DER element: (tag, contents, what follows it).
#[cfg(test)]
fn split_tlv(der: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let bad = || Error::msg("the CA certificate is not valid DER");
    let (&tag, rest) = der.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| a << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// What uca reads back from a CRL it signed.
pub struct CrlFacts {
    pub number: Option<u64>,
    pub issuer: String,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub revoked: Vec<String>,
}

/// Parses a DER CRL (or one PEM `X509 CRL` block).
pub fn read(bytes: &[u8]) -> std::result::Result<CrlFacts, String> {
    let der = match pem::parse(bytes) {
        Ok(block) if block.tag() == "X509 CRL" => block.contents().to_vec(),
        Ok(block) => {
            return Err(format!(
                "it holds a '{}' block; expected X509 CRL",
                block.tag()
            ))
        }
        Err(_) => bytes.to_vec(),
    };
    let (rest, crl) = x509_parser::parse_x509_crl(&der).map_err(|e| format!("not a CRL: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the CRL".into());
    }
    let number = crl.crl_number().and_then(|n| u64::try_from(n.clone()).ok());
    Ok(CrlFacts {
        number,
        issuer: crl.issuer().to_string(),
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        revoked: crl
            .iter_revoked_certificates()
            .map(|r| crate::pki::x509::serial_hex_of(r.raw_serial()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers_are_minimal_der() {
        assert_eq!(tlv(0x04, &[7; 3]), vec![0x04, 3, 7, 7, 7]);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(integer(&[0, 0, 1]), vec![0x02, 1, 1]);
        assert_eq!(integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(integer(&[0, 0]), vec![0x02, 1, 0]);
        let (tag, body, rest) = split_tlv(&[0x30, 0x81, 2, 1, 2, 9]).unwrap();
        assert_eq!((tag, body, rest), (0x30, &[1u8, 2][..], &[9u8][..]));
    }

    /// The identifier a CRL names is the one rcgen writes into a
    /// certificate signed by a key of the same type, for every type.
    #[test]
    fn the_crl_algorithm_is_the_issuers_keys_for_every_key_type() {
        use crate::pki::keys::KeyType;
        for key in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let (_, pair) = key.generate_with_pair().unwrap();
            let cert = rcgen::CertificateParams::default()
                .self_signed(&pair)
                .unwrap();
            let (_, body, _) = split_tlv(cert.der()).unwrap();
            let (_, _, rest) = split_tlv(body).unwrap();
            let (_, _, after) = split_tlv(rest).unwrap();
            let signed_with = &rest[..rest.len() - after.len()];
            assert_eq!(algorithm_identifier(key), signed_with, "{key:?}");
        }
    }

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        let t = time::macros::datetime!(2049-12-31 23:59:59 UTC);
        assert_eq!(time(t), tlv(0x17, b"491231235959Z"));
        let t = time::macros::datetime!(2050-01-01 00:00:00 UTC);
        assert_eq!(time(t), tlv(0x18, b"20500101000000Z"));
    }

    #[test]
    fn crl_urls_are_http_with_a_host() {
        assert!(check_url("http://pki.internal/root.crl").is_ok());
        for bad in [
            "ftp://x/y",
            "http:///root.crl",
            "http://a b/c",
            "pki.internal/root.crl",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
