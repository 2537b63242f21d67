//! `uca trust bundle`: one or more roots in the form a consumer reads: a
//! PEM bundle, a PKCS#12 truststore (trusted certificate entries, no key),
//! a Kubernetes ConfigMap (`ca.crt`) or a cert-manager trust-manager
//! `Bundle`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::TrustedRoot;
use crate::pki::formats::{is_rfc1123_subdomain, k8s_configmap, yaml_literal};
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
}

#[derive(Debug, Args)]
pub struct TrustBundleArgs {
    /// Root (CA) certificates, PEM or DER; each file may hold several
    #[arg(value_name = "CA", required = true)]
    pub cas: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = BundleFormat::Pem)]
    pub format: BundleFormat,
    /// File to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Name of the ConfigMap or Bundle (an RFC 1123 subdomain)
    #[arg(long, value_name = "NAME", default_value = "uca-roots")]
    pub name: String,
    /// Read the PKCS#12 password from FILE (required with --format p12)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
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
    if args.format != BundleFormat::P12 && args.password_file.is_some() {
        return Err(Error::msg(
            "--password-file applies to --format p12 only; leave it out",
        ));
    }
    if matches!(
        args.format,
        BundleFormat::Configmap | BundleFormat::TrustManager
    ) && !is_rfc1123_subdomain(&args.name)
    {
        return Err(Error::invalid(
            "--name",
            crate::pki::names::printable(&args.name),
            "a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters",
        ));
    }
    if !args.force && std::fs::symlink_metadata(&args.out).is_ok() {
        return Err(Error::Exists(args.out.clone()));
    }
    fsutil::check_file_creatable("--out", &args.out)?;
    let pem: String = roots.iter().map(TrustedRoot::pem).collect();
    let contents = match args.format {
        BundleFormat::Pem => pem.into_bytes(),
        BundleFormat::Configmap => k8s_configmap(&args.name, &pem).into_bytes(),
        BundleFormat::TrustManager => trust_manager(&args.name, &pem).into_bytes(),
        BundleFormat::P12 => p12(args, &roots)?,
    };
    fsutil::write_atomic(&args.out, &contents, Mode::Public, args.force, true)?;
    Ok(format!(
        "wrote {} with {} root{} ({})",
        args.out.display(),
        roots.len(),
        if roots.len() == 1 { "" } else { "s" },
        roots
            .iter()
            .map(|r| r.alias.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn p12(args: &TrustBundleArgs, roots: &[TrustedRoot]) -> Result<Vec<u8>> {
    let Some(file) = &args.password_file else {
        return Err(Error::msg(
            "--format p12 needs --password-file FILE: the truststore's password (Java requires one)",
        ));
    };
    let password = Passphrase::from_file(file)?;
    let entries: Vec<(&[u8], &str)> = roots
        .iter()
        .map(|r| (r.der.as_slice(), r.alias.as_str()))
        .collect();
    crate::pki::pkcs12::build_truststore(&entries, &password)
}

fn trust_manager(name: &str, pem: &str) -> String {
    format!(
        "apiVersion: trust.cert-manager.io/v1alpha1\nkind: Bundle\nmetadata:\n  name: {name}\nspec:\n  sources:\n    - inLine: |\n{}  target:\n    configMap:\n      key: ca.crt\n",
        yaml_literal(pem, 8)
    )
}
