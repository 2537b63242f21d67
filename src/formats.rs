//! Output formats of a certificate: the files each consumer wants, named
//! exactly as that consumer expects. All formats of one certificate land in
//! one directory, published atomically.

use base64::Engine;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::fsutil::Mode;
use crate::keys::PrivateKey;
use crate::passphrase::Passphrase;
use crate::plan::OutputFormat;

/// Everything a format may need about one issued certificate.
pub struct CertMaterial<'a> {
    pub name: &'a str,
    pub cert_der: &'a [u8],
    pub cert_pem: &'a str,
    pub key: &'a PrivateKey,
    pub ca_der: &'a [u8],
    pub ca_pem: &'a str,
    pub pkcs12_password: Option<&'a Passphrase>,
    pub k8s_namespace: &'a str,
}

/// One file to write, relative to the certificate's directory.
pub struct RenderedFile {
    pub path: String,
    pub contents: Zeroizing<Vec<u8>>,
    pub mode: Mode,
}

fn file(path: impl Into<String>, contents: Vec<u8>, mode: Mode) -> RenderedFile {
    RenderedFile {
        path: path.into(),
        contents: Zeroizing::new(contents),
        mode,
    }
}

/// The files of every requested format, in a stable order.
pub fn render(formats: &[OutputFormat], m: &CertMaterial<'_>) -> Result<Vec<RenderedFile>> {
    let mut out = Vec::with_capacity(4 * formats.len());
    for f in formats {
        match f {
            OutputFormat::Pem => {
                out.push(file(
                    "cert.pem",
                    m.cert_pem.as_bytes().to_vec(),
                    Mode::Public,
                ));
                out.push(file(
                    "key.pem",
                    m.key.to_pem().as_bytes().to_vec(),
                    Mode::Secret,
                ));
                out.push(file(
                    "chain.pem",
                    [m.cert_pem, m.ca_pem].concat().into_bytes(),
                    Mode::Public,
                ));
                out.push(file("ca.pem", m.ca_pem.as_bytes().to_vec(), Mode::Public));
            }
            OutputFormat::Combined => {
                // HAProxy's crt: leaf, then chain, then key, in one file.
                let key = m.key.to_pem();
                let body = [m.cert_pem, m.ca_pem, key.as_str()].concat();
                out.push(file("combined.pem", body.into_bytes(), Mode::Secret));
            }
            OutputFormat::Pkcs12 => {
                let password = m
                    .pkcs12_password
                    .expect("the plan requires a password for pkcs12");
                let p12 = crate::pkcs12::build(
                    m.cert_der,
                    &[m.ca_der.to_vec()],
                    m.key,
                    password,
                    m.name,
                )?;
                out.push(file(format!("{}.p12", m.name), p12, Mode::Secret));
            }
            OutputFormat::K8s => out.push(file(
                "secret.yaml",
                k8s_secret(m).into_bytes(),
                Mode::Secret,
            )),
            OutputFormat::Certsd => {
                // Docker/Podman: every *.crt is a CA, NAME.cert + NAME.key a client pair.
                out.push(file(
                    "certs.d/ca.crt",
                    m.ca_pem.as_bytes().to_vec(),
                    Mode::Public,
                ));
                out.push(file(
                    "certs.d/client.cert",
                    m.cert_pem.as_bytes().to_vec(),
                    Mode::Public,
                ));
                out.push(file(
                    "certs.d/client.key",
                    m.key.to_pem().as_bytes().to_vec(),
                    Mode::Secret,
                ));
            }
        }
    }
    Ok(out)
}

/// A `kubernetes.io/tls` Secret. tls.crt holds the leaf only: the root is a
/// trust anchor and goes in ca.crt.
fn k8s_secret(m: &CertMaterial<'_>) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let key = m.key.to_pem();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-tls\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: uca\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {crt}\n  tls.key: {key}\n  ca.crt: {ca}\n",
        // Secret names are DNS subdomains: an IPv6 NAME's colons become dashes.
        name = m.name.replace(':', "-"),
        ns = m.k8s_namespace,
        crt = b64(m.cert_pem.as_bytes()),
        key = b64(key.as_bytes()),
        ca = b64(m.ca_pem.as_bytes()),
    )
}
