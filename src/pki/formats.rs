//! Output formats of a certificate: the files each consumer wants, named
//! exactly as that consumer expects. All formats of one certificate land in
//! one directory, published atomically.

use base64::Engine;
use zeroize::Zeroizing;

use crate::pki::keys::PrivateKey;
use crate::pki::passphrase::Passphrase;
use crate::support::error::{Error, Result};
use crate::support::fsutil::Mode;
use crate::support::output::RenderedFile;

/// Everything a format may need about one issued certificate.
pub struct CertMaterial<'a> {
    pub name: &'a str,
    pub cert_der: &'a [u8],
    pub cert_pem: &'a str,
    pub key: &'a PrivateKey,
    /// The CAs between the leaf and the root, issuer first (none when the
    /// root signed): they go wherever a chain is sent, never in ca.pem.
    pub intermediates_der: &'a [Vec<u8>],
    pub intermediates_pem: &'a str,
    /// The root: the trust anchor.
    pub ca_der: &'a [u8],
    pub ca_pem: &'a str,
    pub pkcs12_password: Option<&'a Passphrase>,
    pub k8s_namespace: &'a str,
}

fn file(path: impl Into<String>, contents: Vec<u8>, mode: Mode) -> RenderedFile {
    RenderedFile {
        path: path.into(),
        contents: Zeroizing::new(contents),
        mode,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// OUT/NAME/{cert,key,chain,ca}.pem
    Pem,
    /// OUT/NAME/combined.pem: leaf, CA and key in one file (HAProxy)
    Combined,
    /// OUT/NAME/NAME.p12 for Java clients
    Pkcs12,
    /// OUT/NAME/secret.yaml: a kubernetes.io/tls Secret with ca.crt
    K8s,
    /// OUT/NAME/certs.d/{ca.crt,client.cert,client.key} for Docker/Podman
    Certsd,
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputFormat::Pem => "pem",
            OutputFormat::Combined => "combined",
            OutputFormat::Pkcs12 => "pkcs12",
            OutputFormat::K8s => "k8s",
            OutputFormat::Certsd => "certsd",
        })
    }
}

/// Every output format, for checks that hold whatever a plan chose.
pub const ALL: [OutputFormat; 5] = [
    OutputFormat::Pem,
    OutputFormat::Combined,
    OutputFormat::Pkcs12,
    OutputFormat::K8s,
    OutputFormat::Certsd,
];

/// The relative paths [`render`] writes for `name` in `formats`, without
/// making anything: what path checks and leftover clean-up go by.
pub fn file_paths(formats: &[OutputFormat], name: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(4 * formats.len());
    for f in formats {
        match f {
            OutputFormat::Pem => {
                out.extend(["cert.pem", "key.pem", "chain.pem", "ca.pem"].map(String::from))
            }
            OutputFormat::Combined => out.push("combined.pem".into()),
            OutputFormat::Pkcs12 => out.push(pkcs12_file(name)),
            OutputFormat::K8s => out.push("secret.yaml".into()),
            OutputFormat::Certsd => out.extend(
                [
                    "certs.d/ca.crt",
                    "certs.d/client.cert",
                    "certs.d/client.key",
                ]
                .map(String::from),
            ),
        }
    }
    out
}

fn pkcs12_file(name: &str) -> String {
    format!("{name}.p12")
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
                    [m.cert_pem, m.intermediates_pem, m.ca_pem]
                        .concat()
                        .into_bytes(),
                    Mode::Public,
                ));
                out.push(file("ca.pem", m.ca_pem.as_bytes().to_vec(), Mode::Public));
            }
            OutputFormat::Combined => {
                // HAProxy's crt: leaf, then chain, then key, in one file.
                let key = m.key.to_pem();
                let body = [m.cert_pem, m.intermediates_pem, m.ca_pem, key.as_str()].concat();
                out.push(file("combined.pem", body.into_bytes(), Mode::Secret));
            }
            OutputFormat::Pkcs12 => {
                let password = m
                    .pkcs12_password
                    .expect("the plan requires a password for pkcs12");
                let mut chain = m.intermediates_der.to_vec();
                chain.push(m.ca_der.to_vec());
                let p12 = crate::pki::pkcs12::build(m.cert_der, &chain, m.key, password, m.name)?;
                out.push(file(pkcs12_file(m.name), p12, Mode::Secret));
            }
            OutputFormat::K8s => out.push(file(
                "secret.yaml",
                k8s_secret(m)?.into_bytes(),
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
                    [m.cert_pem, m.intermediates_pem].concat().into_bytes(),
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

/// A `kubernetes.io/tls` Secret. tls.crt holds the leaf and any
/// intermediates: the root is a trust anchor and goes in ca.crt.
fn k8s_secret(m: &CertMaterial<'_>) -> Result<String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let key = m.key.to_pem();
    Ok(format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: uca\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {crt}\n  tls.key: {key}\n  ca.crt: {ca}\n",
        name = k8s_secret_name(m.name)?,
        ns = m.k8s_namespace,
        crt = b64([m.cert_pem, m.intermediates_pem].concat().as_bytes()),
        key = b64(key.as_bytes()),
        ca = b64(m.ca_pem.as_bytes()),
    ))
}

/// Kubernetes object names are RFC 1123 subdomains of at most this length.
const K8S_NAME_MAX: usize = 253;

/// The Secret's name for certificate NAME: `NAME-tls`, made a valid RFC 1123
/// subdomain (lower-case letters, digits, '-' and '.', each dot-separated
/// part starting and ending with a letter or digit, at most 253
/// characters). An IPv6 address is written out in full, its groups joined
/// by '-' (`::1` -> `0-0-0-0-0-0-0-1-tls`); a wildcard becomes `wildcard`; a
/// name too long for the suffix is cut and keeps a hash of the whole name,
/// so two names never share a Secret. Checked before it is used: a plan
/// refuses a NAME with no valid Secret name before any key is made.
pub fn k8s_secret_name(name: &str) -> Result<String> {
    let base = match name.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => v6
            .segments()
            .iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join("-"),
        _ => name
            .to_ascii_lowercase()
            .replace('*', "wildcard")
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' | '.' | '-' => c,
                _ => '-',
            })
            .collect::<String>()
            .split('.')
            .map(|part| part.trim_matches('-'))
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("."),
    };
    const SUFFIX: &str = "-tls";
    let secret = if base.len() + SUFFIX.len() <= K8S_NAME_MAX {
        format!("{base}{SUFFIX}")
    } else {
        let hash = &crate::pki::x509::sha256_hex(name.as_bytes())[..12];
        let keep = K8S_NAME_MAX - SUFFIX.len() - hash.len() - 1;
        let cut = base[..keep].trim_end_matches(['.', '-']);
        format!("{cut}-{hash}{SUFFIX}")
    };
    if !is_rfc1123_subdomain(&secret) {
        return Err(Error::invalid(
            "name",
            crate::pki::names::printable(name),
            format!("it gives no valid Kubernetes Secret name ('{secret}'); use a host name"),
        ));
    }
    Ok(secret)
}

/// Whether `s` is a valid Kubernetes namespace (RFC 1123 label): one
/// label of at most 63 characters.
pub fn is_rfc1123_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_rfc1123_subdomain(s)
}

/// Whether `s` is a valid Kubernetes object name (RFC 1123 subdomain).
pub fn is_rfc1123_subdomain(s: &str) -> bool {
    let part_ok = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    !s.is_empty() && s.len() <= K8S_NAME_MAX && s.split('.').all(part_ok)
}

/// PEM text as the lines of a YAML literal block (`|`), indented by
/// `indent` spaces.
pub fn yaml_literal(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    pem.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A Kubernetes ConfigMap named `name` (an RFC 1123 subdomain, checked by
/// the caller), in `namespace` if given (an RFC 1123 label, checked by the
/// caller), holding the PEM `roots` under data key `ca.crt`, the key
/// trust-manager and most images read a CA bundle from.
pub fn k8s_configmap(name: &str, namespace: Option<&str>, roots: &str) -> String {
    let ns = namespace.map_or(String::new(), |ns| format!("  namespace: {ns}\n"));
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{ns}data:\n  ca.crt: |\n{}",
        yaml_literal(roots, 4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_rfc1123() {
        let long = format!("{}.internal", vec!["a".repeat(60); 4].join("."));
        for (name, want) in [
            ("::1", "0-0-0-0-0-0-0-1-tls"),
            ("fd00::5", "fd00-0-0-0-0-0-0-5-tls"),
            ("10.0.0.5", "10.0.0.5-tls"),
            ("web.internal", "web.internal-tls"),
            ("*.svc.internal", "wildcard.svc.internal-tls"),
            ("Web_1.internal", "web-1.internal-tls"),
        ] {
            assert_eq!(k8s_secret_name(name).unwrap(), want);
        }
        let a = k8s_secret_name(&long).unwrap();
        let b = k8s_secret_name(&long.replace("internal", "internax")).unwrap();
        assert!(a.len() <= 253 && is_rfc1123_subdomain(&a), "{a}");
        assert_ne!(a, b);
        assert!(!is_rfc1123_subdomain("--1-tls"));
        assert!(!is_rfc1123_subdomain("a..b"));
        assert!(!is_rfc1123_subdomain("A-tls"));
    }

    #[test]
    fn file_paths_are_what_render_writes() {
        let validity = crate::pki::profile::Validity::days_from_now(1).unwrap();
        let root = crate::ca::root::make_root(
            "T",
            crate::pki::keys::KeyType::EcP256,
            validity,
            0,
            Vec::new(),
            Vec::new(),
        )
        .unwrap();
        let pem = crate::pki::x509::pem_certificate(&root.cert_der);
        let password = Passphrase::generate();
        let m = CertMaterial {
            name: "web1.internal",
            cert_der: &root.cert_der,
            cert_pem: &pem,
            key: &root.key,
            intermediates_der: &[],
            intermediates_pem: "",
            ca_der: &root.cert_der,
            ca_pem: &pem,
            pkcs12_password: Some(&password),
            k8s_namespace: "default",
        };
        for f in ALL {
            let rendered: Vec<String> = render(&[f], &m)
                .unwrap()
                .into_iter()
                .map(|r| r.path)
                .collect();
            assert_eq!(rendered, file_paths(&[f], m.name), "format {f}");
        }
    }
}
