//! `uca inspect FILE`: what is in a PEM or DER file, certificate by
//! certificate, in words an operator can act on, or as JSON for scripts.
//!
//! Every block is first turned into a plain description (`model`), and both
//! the text and the JSON are rendered from that description, so they always
//! carry the same facts. The description never holds private key material:
//! for a private key it only holds the key type and the public key.

mod cert;
mod key;
mod model;
mod text;

use std::path::{Path, PathBuf};

use clap::Args;

use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::stdout::Stdout;

pub use model::{Block, Body, Report};

/// The PEM labels inspect understands, for error messages.
const KNOWN_TAGS: &str =
    "CERTIFICATE, CERTIFICATE REQUEST, PUBLIC KEY, PRIVATE KEY or ENCRYPTED PRIVATE KEY";

// `uca inspect`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A PEM or DER file: certificate, chain, CSR, public or private key
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `uca inspect FILE`.
pub fn run(args: InspectArgs, out: &mut Stdout) -> Result<u8> {
    out.print(&render_file(&args.file, args.json)?)?;
    Ok(0)
}

/// What `uca inspect FILE` prints: the description as text or JSON.
pub fn render_file(file: &Path, json: bool) -> Result<String> {
    let report = describe_file(file)?;
    Ok(if json {
        let mut s = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::msg(format!("cannot encode JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        text::render(&report)
    })
}

/// Reads `file` and describes every block in it.
pub fn describe_file(file: &Path) -> Result<Report> {
    let blocks = x509::read_blocks(file)?;
    // Whole seconds, like certificate times: days_left then rounds exactly.
    let now = crate::support::timefmt::now()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    let bad = |why: String| Error::invalid("file", file.display().to_string(), one_line(&why));
    let count = blocks.len();
    let mut described = Vec::with_capacity(count);
    for (i, block) in blocks.iter().enumerate() {
        let where_ = if count == 1 {
            String::new()
        } else {
            format!("block {} of {count}: ", i + 1)
        };
        let body = describe_block(block.tag(), block.contents(), now)
            .map_err(|why| bad(format!("{where_}{}", plain_parse_error(&why))))?;
        described.push(Block { index: i + 1, body });
    }
    Ok(Report {
        file: file.display().to_string(),
        blocks: described,
    })
}

/// One block by its PEM label; `DER` is a whole binary file, whose type is
/// found by trying each kind in turn.
fn describe_block(
    tag: &str,
    der: &[u8],
    now: time::OffsetDateTime,
) -> std::result::Result<Body, String> {
    match tag {
        "CERTIFICATE" => cert::certificate(der, now).map(Body::Certificate),
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => cert::csr(der).map(Body::Csr),
        "PUBLIC KEY" => key::public_key(der).map(|public_key| Body::PublicKey { public_key }),
        "PRIVATE KEY" => key::private_key(der).map(Body::PrivateKey),
        "ENCRYPTED PRIVATE KEY" => key::encrypted_private_key(der).map(Body::EncryptedPrivateKey),
        "DER" => describe_der(der, now),
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "EC PARAMETERS" => Err(format!(
            "'{tag}' is a legacy key format; convert the key to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in FILE` and inspect that"
        )),
        other => Err(format!("unsupported PEM block '{other}'; expected {KNOWN_TAGS}")),
    }
}

fn describe_der(der: &[u8], now: time::OffsetDateTime) -> std::result::Result<Body, String> {
    // The certificate error is the one to report: a DER file is usually a
    // certificate, and a truncated one fails every parser anyway.
    let cert_error = match cert::certificate(der, now) {
        Ok(c) => return Ok(Body::Certificate(c)),
        Err(e) => e,
    };
    if let Ok(c) = cert::csr(der) {
        return Ok(Body::Csr(c));
    }
    if let Ok(k) = key::encrypted_private_key(der) {
        return Ok(Body::EncryptedPrivateKey(k));
    }
    if let Ok(k) = key::private_key(der) {
        return Ok(Body::PrivateKey(k));
    }
    if let Ok(public_key) = key::public_key(der) {
        return Ok(Body::PublicKey { public_key });
    }
    let detail = plain_parse_error(&cert_error);
    let detail = detail
        .strip_prefix("not an X.509 certificate: ")
        .unwrap_or(&detail);
    Err(format!(
        "DER data that is not a certificate, CSR, PKCS#8 private key or public key (read as a certificate: {detail})"
    ))
}

/// The DER parsers report running out of input as `NomError(Eof)` or
/// `Incomplete`; say what that means for a file.
fn plain_parse_error(why: &str) -> String {
    if why.contains("Eof") || why.contains("Incomplete") {
        let what = why.split(':').next().unwrap_or(why);
        format!("{what}: the data ends early (truncated or damaged)")
    } else {
        why.to_string()
    }
}

/// Parser errors sometimes span lines; every uca error is one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(x509::base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn unknown_tags_are_named() {
        let e = describe_block("X509 CRL", b"", time::OffsetDateTime::now_utc()).unwrap_err();
        assert!(
            e.contains("'X509 CRL'") && e.contains("expected CERTIFICATE"),
            "{e}"
        );
    }
}
