//! Reading certificates back: PEM bundles, fingerprints, serials, names and
//! validity, shared by the store, `inspect`, `verify` and `check`.

use std::path::Path;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::support::error::{Error, Result};

pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Lower-case hex. By table: it runs several times per certificate issued.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// `AB:CD:...` as OpenSSL and step print fingerprints.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The serial as the ledger writes it: lower-case hex of the DER INTEGER's
/// value, without leading zero bytes.
pub fn serial_hex_of(bytes: &[u8]) -> String {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    hex(&bytes[first..])
}

pub fn pem_certificate(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Every PEM block in a file, or the whole file as one DER block if it is
/// not PEM at all.
pub fn read_blocks(path: &Path) -> Result<Vec<pem::Pem>> {
    let bytes = crate::support::fsutil::read_capped(
        path,
        crate::support::fsutil::limits::PEM,
        "read",
        "PEM or DER file",
    )?;
    parse_blocks(&bytes).map_err(|why| Error::invalid("file", path.display().to_string(), why))
}

pub fn parse_blocks(bytes: &[u8]) -> std::result::Result<Vec<pem::Pem>, String> {
    if bytes.starts_with(b"\x30") {
        return Ok(vec![pem::Pem::new("DER", bytes.to_vec())]);
    }
    // The pem crate quotes the labels it found, which may span lines: keep
    // the message on one line.
    let blocks = pem::parse_many(bytes).map_err(|e| {
        format!(
            "malformed PEM: {}",
            crate::pki::names::printable(&e.to_string())
        )
    })?;
    if blocks.is_empty() {
        return Err("expected PEM (-----BEGIN ...-----) or DER, found neither".into());
    }
    Ok(blocks)
}

/// The certificates in a PEM file, in order; an error if there are none or a
/// block is not a certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>> {
    let blocks = read_blocks(path)?;
    let mut out = Vec::new();
    for b in blocks {
        match b.tag() {
            "CERTIFICATE" | "DER" => {
                parse(b.contents()).map_err(|why| {
                    Error::invalid("certificate file", path.display().to_string(), why)
                })?;
                out.push(b.contents().to_vec());
            }
            other => {
                return Err(Error::invalid(
                    "certificate file",
                    path.display().to_string(),
                    format!("it holds a '{other}' block; expected CERTIFICATE"),
                ))
            }
        }
    }
    Ok(out)
}

pub fn parse(der: &[u8]) -> std::result::Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing bytes after the certificate".into()),
        Err(e) => Err(format!("not an X.509 certificate: {e}")),
    }
}

pub fn not_after(cert: &X509Certificate<'_>) -> OffsetDateTime {
    cert.validity().not_after.to_datetime()
}

pub fn not_before(cert: &X509Certificate<'_>) -> OffsetDateTime {
    cert.validity().not_before.to_datetime()
}

pub fn serial_hex(cert: &X509Certificate<'_>) -> String {
    serial_hex_of(cert.raw_serial())
}

/// SANs as `DNS:x`, `IP:x`, `EMAIL:x`, `URI:x` strings.
pub fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value.general_names.iter().map(general_name).collect()
}

pub fn general_name(n: &GeneralName<'_>) -> String {
    match n {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("EMAIL:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            16 => {
                let a: [u8; 16] = (*b).try_into().expect("length checked");
                format!("IP:{}", std::net::Ipv6Addr::from(a))
            }
            _ => format!("IP:<{} bytes>", b.len()),
        },
        GeneralName::DirectoryName(d) => format!("DirName:{d}"),
        other => format!("{other:?}"),
    }
}

/// The subject and SANs of a certificate as the ledger, the manifest and
/// the user see them: read back from the signed DER, so what is recorded is
/// always what was signed.
pub fn recorded_names(der: &[u8]) -> Result<(String, Vec<String>)> {
    let cert = parse(der).map_err(|why| {
        Error::msg(format!(
            "cannot read back the certificate just signed: {why}"
        ))
    })?;
    Ok((cert.subject().to_string(), sans(&cert)))
}

/// The subjectKeyIdentifier extension's value, if the certificate has one.
pub fn subject_key_identifier(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
}

pub fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// Standard base64 with padding (RFC 4648), as SPKI pins are written.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The SHA-256 pin of a DER SubjectPublicKeyInfo, base64 as HPKP and
/// `curl --pinnedpubkey sha256//...` write it. A certificate and its key
/// have the same pin, which is how to tell which key belongs to which
/// certificate.
pub fn spki_pin(spki_der: &[u8]) -> String {
    base64(ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref())
}

/// The first common name of the subject, if it is readable text.
pub fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// The length of the DER element at the start of `der`: its header and its
/// contents, or `None` if it does not fit (or uses a form DER forbids).
fn der_element_len(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, first as usize)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let len = der
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + n, len)
    };
    (header + len <= der.len()).then_some((header, len))
}

/// A DER header: tag and definite length.
pub fn der_header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out
}

/// `cert` (as rcgen signed it) with its subject replaced by `name`, a DER
/// Name, and signed again by `sign` with the issuer's key, whose algorithm
/// the certificate already names. For subjects rcgen cannot write (an
/// attribute type given twice); nothing else in the certificate changes.
pub fn with_subject(
    cert: &[u8],
    name: &[u8],
    sign: impl Fn(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let malformed = || {
        Error::msg(
            "cannot re-encode the subject: the signed certificate is not the DER uca expects",
        )
    };
    let (h, len) = der_element_len(cert).ok_or_else(malformed)?;
    let body = &cert[h..h + len];
    let (th, tlen) = der_element_len(body).ok_or_else(malformed)?;
    let (tbs, rest) = body.split_at(th + tlen);
    let (ah, alen) = der_element_len(rest).ok_or_else(malformed)?;
    let algorithm = &rest[..ah + alen];
    // TBSCertificate: [0] version, serial, signature, issuer, validity,
    // subject, ... : the subject follows the version and four fields.
    let fields = &tbs[th..];
    let skip = |at: usize| -> Result<usize> {
        let (fh, flen) =
            der_element_len(fields.get(at..).ok_or_else(malformed)?).ok_or_else(malformed)?;
        Ok(at + fh + flen)
    };
    let mut start = if fields.first() == Some(&0xa0) {
        skip(0)?
    } else {
        0
    };
    for _ in 0..4 {
        start = skip(start)?;
    }
    let old_len = skip(start)? - start;
    let new_fields = [&fields[..start], name, &fields[start + old_len..]].concat();
    let new_tbs = [der_header(0x30, new_fields.len()), new_fields].concat();
    let signature = sign(&new_tbs)?;
    let bits = [der_header(0x03, signature.len() + 1), vec![0], signature].concat();
    let contents = [new_tbs, algorithm.to_vec(), bits].concat();
    Ok([der_header(0x30, contents.len()), contents].concat())
}

#[cfg(test)]
mod subject_surgery {
    use super::with_subject;

    /// Truncated or foreign input is one error, never a panic or a
    /// certificate signed over garbage.
    #[test]
    fn anything_but_a_certificate_is_refused() {
        let sign = |_: &[u8]| -> crate::support::error::Result<Vec<u8>> {
            panic!("nothing may be signed")
        };
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x05, 0x02, 0x01],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(with_subject(bad, &[0x30, 0x00], sign).is_err(), "{bad:?}");
        }
    }
}
