//! `uca trust bundle --format containerd`: one folder per registry host in
//! containerd's registry configuration directory (`config_path`, usually
//! `/etc/containerd/certs.d`):
//!
//! ```text
//! OUT/HOSTDIR/hosts.toml    server, [host."https://HOSTDIR"] capabilities, ca, client
//! OUT/HOSTDIR/ca.crt        the roots
//! OUT/HOSTDIR/client.cert   with --client-cert: the client certificate (and its chain)
//! OUT/HOSTDIR/client.key    with --client-key, 0600
//! ```
//!
//! HOSTDIR is the registry host as an image reference names it (`host:port`,
//! or `host` for port 443), which is the folder containerd looks up. The
//! paths in hosts.toml are relative to it, as containerd resolves them, so
//! the folder works wherever `config_path` points once copied there.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::TrustedRoot;
use crate::pki::host::Host;
use crate::pki::keys::PrivateKey;
use crate::pki::names;
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::output::{self, RenderedFile};

pub use crate::pki::host::{
    CONTAINERD_CA_FILE as CA_FILE, CONTAINERD_CLIENT_CERT_FILE as CLIENT_CERT_FILE,
    CONTAINERD_CLIENT_KEY_FILE as CLIENT_KEY_FILE, CONTAINERD_HOSTS_FILE as HOSTS_FILE,
};

/// A client identity for the registry: its certificate (chain) and key,
/// checked to belong together.
pub struct ClientPair {
    cert_pem: Vec<u8>,
    key_pem: Zeroizing<Vec<u8>>,
}

/// The registry hosts, parsed, each given once.
pub fn parse_hosts(given: &[String]) -> Result<Vec<Host>> {
    if given.is_empty() {
        return Err(Error::msg(
            "--format containerd needs --host HOST[:PORT]: the registry whose folder to write",
        ));
    }
    let mut hosts: Vec<Host> = Vec::with_capacity(given.len());
    for text in given {
        let host = Host::parse(text)?;
        if hosts.iter().any(|h| h.certs_d_dir() == host.certs_d_dir()) {
            return Err(Error::invalid(
                "registry host",
                names::printable(text),
                "it is given twice",
            ));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// Reads `--client-cert` and `--client-key`: a certificate (optionally
/// followed by its chain) and the unencrypted PKCS#8 key of its first one.
pub fn read_client(cert: &Path, key: &Path) -> Result<ClientPair> {
    let certs = x509::read_certificates(cert)?;
    let first = certs.first().ok_or_else(|| {
        Error::invalid(
            "--client-cert",
            cert.display().to_string(),
            "it holds no certificate",
        )
    })?;
    let leaf = x509::parse(first)
        .map_err(|why| Error::invalid("--client-cert", cert.display().to_string(), why))?;
    let key_pem = Zeroizing::new(fsutil::read_capped(
        key,
        fsutil::limits::PEM,
        "read",
        "--client-key",
    )?);
    let bad_key = |why: &str| Error::invalid("--client-key", key.display().to_string(), why);
    let block = pem::parse(key_pem.as_slice()).map_err(|_| {
        bad_key("expected an unencrypted PRIVATE KEY PEM (PKCS#8), as uca writes key.pem")
    })?;
    if block.tag() != "PRIVATE KEY" {
        return Err(bad_key(
            "expected an unencrypted PRIVATE KEY PEM (PKCS#8), as uca writes key.pem",
        ));
    }
    let pair = PrivateKey::from_pkcs8_der(block.contents())?.key_pair()?;
    if rcgen::PublicKeyData::subject_public_key_info(&pair).as_slice() != leaf.public_key().raw {
        return Err(bad_key(&format!(
            "it is not the key of {}; give the key.pem beside that cert.pem",
            cert.display()
        )));
    }
    let cert_pem = certs
        .iter()
        .map(|d| x509::pem_certificate(d))
        .collect::<String>();
    Ok(ClientPair {
        cert_pem: cert_pem.into_bytes(),
        key_pem,
    })
}

/// hosts.toml for `host`, as `uca trust bundle` writes it.
pub fn hosts_toml(host: &Host, client: bool) -> String {
    crate::pki::host::containerd_hosts_toml(host, client, "uca trust bundle")
}

/// The files of one host's folder.
fn folder(host: &Host, pem: &str, client: Option<&ClientPair>) -> Vec<RenderedFile> {
    let file = |path: &str, contents: &[u8], mode| RenderedFile {
        path: path.to_string(),
        contents: Zeroizing::new(contents.to_vec()),
        mode,
    };
    let mut files = vec![
        file(
            HOSTS_FILE,
            hosts_toml(host, client.is_some()).as_bytes(),
            Mode::Public,
        ),
        file(CA_FILE, pem.as_bytes(), Mode::Public),
    ];
    if let Some(c) = client {
        files.push(file(CLIENT_CERT_FILE, &c.cert_pem, Mode::Public));
        files.push(file(CLIENT_KEY_FILE, &c.key_pem, Mode::Secret));
    }
    files
}

/// Writes OUT/HOSTDIR for every host. Every folder is checked before the
/// first is written; each appears whole or not at all.
pub fn write(
    out: &Path,
    hosts: &[Host],
    roots: &[TrustedRoot],
    client: Option<&ClientPair>,
    force: bool,
) -> Result<Vec<PathBuf>> {
    if std::fs::symlink_metadata(out).is_ok() && !out.is_dir() {
        return Err(Error::invalid(
            "--out",
            out.display().to_string(),
            "with --format containerd it is the certs.d directory to write HOST:PORT folders into, and it exists as a file",
        ));
    }
    let targets: Vec<PathBuf> = hosts.iter().map(|h| out.join(h.certs_d_dir())).collect();
    for target in &targets {
        output::check_free(target, force)?;
    }
    if !out.is_dir() {
        fsutil::check_file_creatable("--out", out)?;
    } else if !fsutil::is_writable_dir(out) {
        return Err(Error::invalid(
            "--out",
            out.display().to_string(),
            "this user may not write to it",
        ));
    }
    let pem: String = roots.iter().map(TrustedRoot::pem).collect();
    for (host, target) in hosts.iter().zip(&targets) {
        output::publish_dir(target, &folder(host, &pem, client), force, true)?;
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_parses_with_the_documented_keys() {
        let host = Host::parse("registry.internal:5000").unwrap();
        let doc: toml::Table = hosts_toml(&host, true).parse().unwrap();
        assert_eq!(
            doc["server"].as_str(),
            Some("https://registry.internal:5000")
        );
        let h = &doc["host"]["https://registry.internal:5000"];
        assert_eq!(h["ca"].as_str(), Some("ca.crt"));
        assert_eq!(h["client"][0][1].as_str(), Some("client.key"));
        let port_443 = Host::parse("registry.internal:443").unwrap();
        let doc: toml::Table = hosts_toml(&port_443, false).parse().unwrap();
        assert_eq!(doc["server"].as_str(), Some("https://registry.internal"));
        assert!(doc["host"]["https://registry.internal"]
            .get("client")
            .is_none());
    }
}
