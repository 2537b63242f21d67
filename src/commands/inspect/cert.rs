//! Certificates and CSRs, field by field, with every extension in words.

use std::net::{Ipv4Addr, Ipv6Addr};

use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{
    DistributionPointName, GeneralName, KeyUsage, ParsedExtension, X509Extension,
};
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::FromDer;

use super::key;
use super::model::{Certificate, Csr, Extension, ExtensionKind};
use crate::pki::x509;
use crate::support::timefmt::rfc3339;

pub fn certificate(der: &[u8], now: OffsetDateTime) -> Result<Certificate, String> {
    let cert = x509::parse(der)?;
    let not_before = x509::not_before(&cert);
    let not_after = x509::not_after(&cert);
    let left = not_after - now;
    let status = if now > not_after {
        "expired"
    } else if now < not_before {
        "not_yet_valid"
    } else {
        "valid"
    };
    Ok(Certificate {
        version: cert.version().0 + 1,
        serial: serial(cert.raw_serial()),
        signature_algorithm: signature_algorithm(&cert.signature_algorithm.algorithm),
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        self_signed: cert.issuer().as_raw() == cert.subject().as_raw(),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        status,
        seconds_left: left.whole_seconds(),
        days_left: left.whole_seconds().div_euclid(86_400),
        public_key: key::describe_spki(cert.public_key()),
        extensions: cert.extensions().iter().map(extension).collect(),
        sha256_fingerprint: x509::colon_hex(
            ring::digest::digest(&ring::digest::SHA256, der).as_ref(),
        ),
    })
}

pub fn csr(der: &[u8]) -> Result<Csr, String> {
    let csr = match X509CertificationRequest::from_der(der) {
        Ok(([], csr)) => csr,
        Ok(_) => return Err("trailing bytes after the certificate request".into()),
        Err(e) => return Err(format!("not a certificate signing request: {e}")),
    };
    let info = &csr.certification_request_info;
    let signature = csr.verify_signature();
    let extensions = info
        .iter_attributes()
        .filter_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(r) => Some(r.extensions.iter().map(extension)),
            _ => None,
        })
        .flatten()
        .collect();
    Ok(Csr {
        version: info.version.0 + 1,
        subject: info.subject.to_string(),
        signature_algorithm: signature_algorithm(&csr.signature_algorithm.algorithm),
        signature_valid: signature.is_ok(),
        signature_error: signature.err().map(|e| e.to_string()),
        public_key: key::describe_spki(&info.subject_pki),
        extensions,
    })
}

/// Colon hex without the sign byte DER adds to serials with the top bit set.
fn serial(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    x509::colon_hex(&raw[start..])
}

/// The names people search for, rather than OIDs.
fn signature_algorithm(oid: &Oid<'_>) -> String {
    let name = match oid.to_id_string().as_str() {
        "1.2.840.10045.4.3.2" => "ECDSA-SHA256",
        "1.2.840.10045.4.3.3" => "ECDSA-SHA384",
        "1.2.840.10045.4.3.4" => "ECDSA-SHA512",
        "1.2.840.10045.4.1" => "ECDSA-SHA1 (insecure)",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.113549.1.1.11" => "RSA-SHA256",
        "1.2.840.113549.1.1.12" => "RSA-SHA384",
        "1.2.840.113549.1.1.13" => "RSA-SHA512",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.5" => "RSA-SHA1 (insecure)",
        "1.2.840.113549.1.1.4" => "RSA-MD5 (insecure)",
        other => return other.to_string(),
    };
    name.to_string()
}

fn extension(ext: &X509Extension<'_>) -> Extension {
    let kind = match ext.parsed_extension() {
        ParsedExtension::BasicConstraints(bc) => ExtensionKind::BasicConstraints {
            ca: bc.ca,
            pathlen: bc.path_len_constraint,
        },
        ParsedExtension::KeyUsage(ku) => ExtensionKind::KeyUsage {
            usages: key_usages(ku),
        },
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let known = [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ];
            let usages = known
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, name)| name.to_string())
                .chain(eku.other.iter().map(|o| o.to_id_string()))
                .collect();
            ExtensionKind::ExtendedKeyUsage { usages }
        }
        ParsedExtension::SubjectAlternativeName(san) => ExtensionKind::SubjectAltNames {
            names: san.general_names.iter().map(x509::general_name).collect(),
        },
        ParsedExtension::SubjectKeyIdentifier(id) => ExtensionKind::SubjectKeyIdentifier {
            key_id: x509::colon_hex(id.0),
        },
        ParsedExtension::AuthorityKeyIdentifier(aki) => ExtensionKind::AuthorityKeyIdentifier {
            key_id: aki.key_identifier.as_ref().map(|id| x509::colon_hex(id.0)),
        },
        ParsedExtension::NameConstraints(nc) => {
            let list = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
                subtrees
                    .iter()
                    .flatten()
                    .map(|s| subtree(&s.base))
                    .collect()
            };
            ExtensionKind::NameConstraints {
                permitted: list(&nc.permitted_subtrees),
                excluded: list(&nc.excluded_subtrees),
            }
        }
        ParsedExtension::AuthorityInfoAccess(aia) => ExtensionKind::AuthorityInfoAccess {
            access: aia
                .iter()
                .map(|d| {
                    let method = match d.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" => "OCSP".to_string(),
                        "1.3.6.1.5.5.7.48.2" => "caIssuers".to_string(),
                        other => other.to_string(),
                    };
                    format!("{method} {}", x509::general_name(&d.access_location))
                })
                .collect(),
        },
        ParsedExtension::CRLDistributionPoints(crl) => ExtensionKind::CrlDistributionPoints {
            points: crl
                .points
                .iter()
                .flat_map(|p| match &p.distribution_point {
                    Some(DistributionPointName::FullName(names)) => {
                        names.iter().map(x509::general_name).collect()
                    }
                    Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => {
                        vec!["(a name relative to the CRL issuer)".to_string()]
                    }
                    None => Vec::new(),
                })
                .collect(),
        },
        ParsedExtension::ParseError { error } => ExtensionKind::Other {
            label: registered_name(&ext.oid),
            bytes: ext.value.len(),
            error: Some(error.to_string()),
        },
        _ => ExtensionKind::Other {
            label: registered_name(&ext.oid),
            bytes: ext.value.len(),
            error: None,
        },
    };
    Extension {
        oid: ext.oid.to_id_string(),
        critical: ext.critical,
        kind,
    }
}

fn registered_name(oid: &Oid<'_>) -> Option<String> {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .ok()
        .map(str::to_string)
}

/// RFC 5280 names, in bit order.
fn key_usages(ku: &KeyUsage) -> Vec<String> {
    [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_string())
    .collect()
}

/// A name constraint subtree. IP subtrees are address + mask, shown as CIDR.
fn subtree(name: &GeneralName<'_>) -> String {
    let GeneralName::IPAddress(bytes) = name else {
        return x509::general_name(name);
    };
    let half = bytes.len() / 2;
    let (addr, mask) = bytes.split_at(half);
    let prefix: u32 = mask.iter().map(|b| b.count_ones()).sum();
    match half {
        4 => format!(
            "IP:{}/{prefix}",
            Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
        ),
        16 => {
            let a: [u8; 16] = addr.try_into().expect("length checked");
            format!("IP:{}/{prefix}", Ipv6Addr::from(a))
        }
        _ => format!("IP:<{} bytes>", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_drops_the_sign_byte_only() {
        assert_eq!(serial(&[0x00, 0x8f, 0x01]), "8F:01");
        assert_eq!(serial(&[0x00]), "00");
        assert_eq!(serial(&[0x12, 0x00]), "12:00");
    }

    #[test]
    fn ip_subtrees_are_cidr() {
        assert_eq!(
            subtree(&GeneralName::IPAddress(&[10, 0, 0, 0, 255, 0, 0, 0])),
            "IP:10.0.0.0/8"
        );
        let mut v6 = [0u8; 32];
        v6[0] = 0xfd;
        v6[16] = 0xff;
        assert_eq!(subtree(&GeneralName::IPAddress(&v6)), "IP:fd00::/8");
        assert_eq!(subtree(&GeneralName::DNSName("internal")), "DNS:internal");
    }
}
