//! `uca trust bundle`: one or more roots in the form a consumer reads: a
//! PEM bundle, a PKCS#12 truststore (trusted certificate entries, no key),
//! a Kubernetes ConfigMap (`ca.crt`), a cert-manager trust-manager
//! `Bundle`, or containerd `hosts.toml` folders for a registry.
//!
//! A ConfigMap lives in a namespace (`--namespace`). A trust-manager Bundle
//! is cluster-scoped: it has no namespace of its own, and writes its
//! ConfigMap into every namespace its target selects; `--namespace NS`
//! selects that one namespace by its `kubernetes.io/metadata.name` label,
//! which Kubernetes sets on every namespace.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{containerd, TrustedRoot};
use crate::pki::formats::{is_rfc1123_label, is_rfc1123_subdomain, k8s_configmap, yaml_literal};
use crate::pki::passphrase::Passphrase;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BundleFormat {
    /// Concatenated PEM certificates
    Pem,
    /// PKCS#12 truststore of trusted certificate entries (Java, keytool), no key
    P12,
    /// Kubernetes ConfigMap with the PEM bundle under data key ca.crt
    Configmap,
    /// cert-manager trust-manager Bundle (trust.cert-manager.io/v1alpha1)
    TrustManager,
    /// containerd registry folder OUT/HOST:PORT/{hosts.toml,ca.crt} (needs --host)
    Containerd,
}

#[derive(Debug, Args)]
pub struct TrustBundleArgs {
    /// Root (CA) certificates, PEM or DER; each file may hold several
    #[arg(value_name = "CA", required = true)]
    pub cas: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = BundleFormat::Pem)]
    pub format: BundleFormat,
    /// File to write (with --format containerd: the certs.d directory to write HOST:PORT folders into)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Name of the ConfigMap or Bundle (an RFC 1123 subdomain)
    #[arg(long, value_name = "NAME", default_value = "uca-roots")]
    pub name: String,
    /// Namespace of the ConfigMap; for a trust-manager Bundle, the one namespace it targets (an RFC 1123 label)
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Registry host for --format containerd (repeatable): host name or IP address, optional port
    #[arg(long = "host", value_name = "HOST[:PORT]")]
    pub hosts: Vec<String>,
    /// Client certificate (and chain) the registry requires, for --format containerd
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's unencrypted key, for --format containerd
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Read the PKCS#12 password from FILE (--format p12 needs this or --no-password)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// A PKCS#12 truststore without a password or MAC, as Java reads with no trustStorePassword (and writes since Java 18)
    #[arg(long, conflicts_with = "password_file")]
    pub no_password: bool,
    /// Replace an existing --out file
    #[arg(long)]
    pub force: bool,
}

/// Writes the bundle; returns the report line.
pub fn run(args: &TrustBundleArgs) -> Result<String> {
    let mut roots: Vec<TrustedRoot> = Vec::new();
    for path in &args.cas {
        for root in super::read_roots(path)? {
            if !roots.iter().any(|r| r.der == root.der) {
                roots.push(root);
            }
        }
    }
    check_flags(args)?;
    let written = if args.format == BundleFormat::Containerd {
        write_containerd(args, &roots)?
    } else {
        write_file(args, &roots)?;
        args.out.display().to_string()
    };
    Ok(format!(
        "wrote {written} with {} root{} ({})",
        roots.len(),
        if roots.len() == 1 { "" } else { "s" },
        roots
            .iter()
            .map(|r| r.alias.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Each flag applies to some formats only; one given to another format is
/// refused rather than ignored. Names are checked before anything is read.
fn check_flags(args: &TrustBundleArgs) -> Result<()> {
    use BundleFormat::*;
    let only = |given: bool, flag: &str, formats: &[BundleFormat], which: &str| {
        if given && !formats.contains(&args.format) {
            return Err(Error::msg(format!(
                "{flag} applies to --format {which} only; leave it out"
            )));
        }
        Ok(())
    };
    only(
        args.password_file.is_some(),
        "--password-file",
        &[P12],
        "p12",
    )?;
    only(args.no_password, "--no-password", &[P12], "p12")?;
    if args.format == P12 && args.password_file.is_none() && !args.no_password {
        return Err(Error::msg(
            "--format p12 needs --password-file FILE (the truststore's password) or --no-password (a password-less truststore, which Java reads without trustStorePassword)",
        ));
    }
    only(
        args.namespace.is_some(),
        "--namespace",
        &[Configmap, TrustManager],
        "configmap or trust-manager",
    )?;
    only(
        !args.hosts.is_empty(),
        "--host",
        &[Containerd],
        "containerd",
    )?;
    only(
        args.client_cert.is_some(),
        "--client-cert",
        &[Containerd],
        "containerd",
    )?;
    if matches!(args.format, Configmap | TrustManager) && !is_rfc1123_subdomain(&args.name) {
        return Err(Error::invalid(
            "--name",
            crate::pki::names::printable(&args.name),
            "a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters",
        ));
    }
    if let Some(ns) = &args.namespace {
        if !is_rfc1123_label(ns) {
            return Err(Error::invalid(
                "--namespace",
                crate::pki::names::printable(ns),
                "a Kubernetes namespace: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
            ));
        }
    }
    Ok(())
}

/// One file: PEM, PKCS#12, ConfigMap or Bundle.
fn write_file(args: &TrustBundleArgs, roots: &[TrustedRoot]) -> Result<()> {
    if !args.force && std::fs::symlink_metadata(&args.out).is_ok() {
        return Err(Error::Exists(args.out.clone()));
    }
    fsutil::check_file_creatable("--out", &args.out)?;
    let pem: String = roots.iter().map(TrustedRoot::pem).collect();
    let ns = args.namespace.as_deref();
    let contents = match args.format {
        BundleFormat::Pem => pem.into_bytes(),
        BundleFormat::Configmap => k8s_configmap(&args.name, ns, &pem).into_bytes(),
        BundleFormat::TrustManager => trust_manager(&args.name, ns, &pem).into_bytes(),
        BundleFormat::P12 => p12(args, roots)?,
        BundleFormat::Containerd => unreachable!("containerd writes folders"),
    };
    fsutil::write_atomic(&args.out, &contents, Mode::Public, args.force, true)
}

/// The containerd folders; returns them for the report.
fn write_containerd(args: &TrustBundleArgs, roots: &[TrustedRoot]) -> Result<String> {
    let hosts = containerd::parse_hosts(&args.hosts)?;
    let client = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => Some(containerd::read_client(cert, key)?),
        _ => None,
    };
    let written = containerd::write(&args.out, &hosts, roots, client.as_ref(), args.force)?;
    Ok(written
        .iter()
        .map(|d| format!("{}/{{{}}}", d.display(), folder_files(client.is_some())))
        .collect::<Vec<_>>()
        .join(", "))
}

fn folder_files(client: bool) -> String {
    let mut files = vec![containerd::HOSTS_FILE, containerd::CA_FILE];
    if client {
        files.extend([containerd::CLIENT_CERT_FILE, containerd::CLIENT_KEY_FILE]);
    }
    files.join(",")
}

/// The truststore: protected by the password file's password, or, with
/// --no-password (which [`check_flags`] requires otherwise), without one.
fn p12(args: &TrustBundleArgs, roots: &[TrustedRoot]) -> Result<Vec<u8>> {
    let password = match &args.password_file {
        Some(file) => Some(Passphrase::from_file(file)?),
        None => None,
    };
    let entries: Vec<(&[u8], &str)> = roots
        .iter()
        .map(|r| (r.der.as_slice(), r.alias.as_str()))
        .collect();
    crate::pki::pkcs12::build_truststore(&entries, password.as_ref())
}

/// A Bundle is cluster-scoped: no metadata.namespace; a namespace given
/// narrows where trust-manager writes the ConfigMap.
pub fn trust_manager(name: &str, namespace: Option<&str>, pem: &str) -> String {
    let selector = namespace.map_or(String::new(), |ns| {
        format!("    namespaceSelector:\n      matchLabels:\n        kubernetes.io/metadata.name: {ns}\n")
    });
    format!(
        "apiVersion: trust.cert-manager.io/v1alpha1\nkind: Bundle\nmetadata:\n  name: {name}\nspec:\n  sources:\n    - inLine: |\n{}  target:\n    configMap:\n      key: ca.crt\n{selector}",
        yaml_literal(pem, 8)
    )
}
