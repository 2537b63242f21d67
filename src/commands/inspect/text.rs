//! The human rendering of a `Report`: one numbered section per block,
//! aligned `Label: value` lines, extensions indented below.

use std::fmt::Write;

use super::model::{
    Block, Body, Certificate, Csr, EncryptedPrivateKey, Extension, ExtensionKind, PublicKey, Report,
};
use crate::support::timefmt::human_span;

const WIDTH: usize = 21;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let total = report.blocks.len();
    for (i, block) in report.blocks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_block(&mut out, block, total);
    }
    out
}

fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {:<WIDTH$}{value}", format!("{label}:"));
}

fn render_block(out: &mut String, block: &Block, total: usize) {
    let title = match &block.body {
        Body::Certificate(_) => "Certificate",
        Body::Csr(_) => "Certificate signing request",
        Body::PublicKey { .. } => "Public key",
        Body::PrivateKey(_) => "Private key (PKCS#8, not encrypted; the key itself is not shown)",
        Body::EncryptedPrivateKey(_) => "Encrypted private key (PKCS#8)",
    };
    let _ = writeln!(out, "[{}/{total}] {title}", block.index);
    match &block.body {
        Body::Certificate(c) => certificate(out, c),
        Body::Csr(c) => csr(out, c),
        Body::PublicKey { public_key } => public_key_lines(out, public_key),
        Body::PrivateKey(k) => {
            line(out, "Key type", &k.key_type);
            match &k.public_key {
                Some(pk) => public_key_lines(out, pk),
                None => line(
                    out,
                    "Public key",
                    "not derived (key type not supported by uca)",
                ),
            }
        }
        Body::EncryptedPrivateKey(k) => encrypted(out, k),
    }
}

fn certificate(out: &mut String, c: &Certificate) {
    line(out, "Subject", &c.subject);
    let self_signed = if c.self_signed { " (self-signed)" } else { "" };
    line(out, "Issuer", format!("{}{self_signed}", c.issuer));
    line(out, "Serial", &c.serial);
    line(out, "Version", c.version);
    line(out, "Signature algorithm", &c.signature_algorithm);
    let left = time::Duration::seconds(c.seconds_left);
    let (before_note, after_note) = match c.status {
        "expired" => (
            String::new(),
            format!(" (EXPIRED {} ago)", human_span(left)),
        ),
        "not_yet_valid" => (
            " (NOT YET VALID)".to_string(),
            format!(" (expires in {})", human_span(left)),
        ),
        _ => (String::new(), format!(" (expires in {})", human_span(left))),
    };
    line(out, "Not before", format!("{}{before_note}", c.not_before));
    line(out, "Not after", format!("{}{after_note}", c.not_after));
    public_key_lines(out, &c.public_key);
    line(out, "SHA-256 fingerprint", &c.sha256_fingerprint);
    extensions(out, "Extensions", &c.extensions);
}

fn csr(out: &mut String, c: &Csr) {
    line(out, "Subject", &c.subject);
    line(out, "Signature algorithm", &c.signature_algorithm);
    let signature = match (&c.signature_valid, &c.signature_error) {
        (true, _) => "valid (signed by the key it carries)".to_string(),
        (false, Some(e)) => format!("INVALID ({e})"),
        (false, None) => "INVALID".to_string(),
    };
    line(out, "Signature", signature);
    public_key_lines(out, &c.public_key);
    extensions(out, "Requested extensions", &c.extensions);
}

fn public_key_lines(out: &mut String, k: &PublicKey) {
    let mut desc = k.algorithm.clone();
    if let Some(curve) = &k.curve {
        desc = format!("{desc} {curve}");
    }
    if let Some(bits) = k.bits {
        desc = format!("{desc} ({bits} bits)");
    }
    line(out, "Public key", desc);
    line(out, "SPKI SHA-256 pin", &k.spki_sha256_pin);
}

fn encrypted(out: &mut String, k: &EncryptedPrivateKey) {
    line(out, "Encryption", &k.scheme);
    let kdf = match k.kdf.as_deref() {
        Some("scrypt") => format!(
            "scrypt (N={}, r={}, p={})",
            k.scrypt_n.unwrap_or_default(),
            k.scrypt_r.unwrap_or_default(),
            k.scrypt_p.unwrap_or_default()
        ),
        Some("PBKDF2") => format!(
            "PBKDF2 ({} iterations, {})",
            k.pbkdf2_iterations.unwrap_or_default(),
            k.pbkdf2_prf.as_deref().unwrap_or("?")
        ),
        Some(other) => other.to_string(),
        None => "none (the scheme derives its key itself)".to_string(),
    };
    line(out, "Key derivation", kdf);
    line(out, "Cipher", &k.cipher);
}

fn extensions(out: &mut String, title: &str, exts: &[Extension]) {
    if exts.is_empty() {
        line(out, title, "none");
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for e in exts {
        let crit = if e.critical { " (critical)" } else { "" };
        let (label, value) = extension(e);
        let _ = writeln!(out, "    {label}{crit}: {value}");
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn extension(e: &Extension) -> (String, String) {
    match &e.kind {
        ExtensionKind::BasicConstraints { ca, pathlen } => {
            let value = match (ca, pathlen) {
                (false, _) => "CA:FALSE".to_string(),
                (true, Some(n)) => format!("CA:TRUE, pathlen:{n}"),
                (true, None) => "CA:TRUE, pathlen:unlimited".to_string(),
            };
            ("Basic constraints".into(), value)
        }
        ExtensionKind::KeyUsage { usages } => ("Key usage".into(), list(usages)),
        ExtensionKind::ExtendedKeyUsage { usages } => {
            let named: Vec<String> = usages
                .iter()
                .map(|u| match u.as_str() {
                    "serverAuth" => "serverAuth (TLS server)".to_string(),
                    "clientAuth" => "clientAuth (TLS client)".to_string(),
                    other => other.to_string(),
                })
                .collect();
            ("Extended key usage".into(), list(&named))
        }
        ExtensionKind::SubjectAltNames { names } => {
            ("Subject alternative names".into(), list(names))
        }
        ExtensionKind::SubjectKeyIdentifier { key_id } => {
            ("Subject key identifier".into(), key_id.clone())
        }
        ExtensionKind::AuthorityKeyIdentifier { key_id } => (
            "Authority key identifier".into(),
            key_id
                .clone()
                .unwrap_or_else(|| "(issuer name and serial only)".into()),
        ),
        ExtensionKind::NameConstraints {
            permitted,
            excluded,
        } => (
            "Name constraints".into(),
            format!("permitted {}; excluded {}", list(permitted), list(excluded)),
        ),
        ExtensionKind::AuthorityInfoAccess { access } => {
            ("Authority information access".into(), list(access))
        }
        ExtensionKind::CrlDistributionPoints { points } => {
            ("CRL distribution points".into(), list(points))
        }
        ExtensionKind::Other {
            label,
            bytes,
            error,
        } => other(&e.oid, label, *bytes, error),
    }
}

fn other(
    oid: &str,
    label: &Option<String>,
    bytes: usize,
    error: &Option<String>,
) -> (String, String) {
    let label = match label {
        Some(l) => format!("{l} ({oid})"),
        None => format!("Unknown extension {oid}"),
    };
    let value = match error {
        Some(e) => format!("{bytes} bytes, unreadable: {e}"),
        None => format!("{bytes} bytes, not decoded"),
    };
    (label, value)
}
