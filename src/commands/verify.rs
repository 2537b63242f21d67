//! `uca verify`: checks a certificate (or chain) the way a TLS peer will
//! (`pki::verify`), or a sealed CA's signed manifest and the files it lists
//! (`ca::seal`).

use std::path::{Path, PathBuf};

use clap::Args;
use rustls_pki_types::UnixTime;

use crate::ca::{manifest, recovery, store};
use crate::pki::verify::{verify_files, Purpose};
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::stdout::Stdout;

// `uca verify`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Certificate (or chain: leaf first, then intermediates) to verify
    #[arg(
        value_name = "CERT",
        required_unless_present = "manifest",
        conflicts_with = "manifest"
    )]
    pub cert: Option<PathBuf>,
    /// Trusted CA certificate(s); defaults to ca.pem beside the manifest with --manifest
    #[arg(long, value_name = "CA")]
    pub ca: Option<PathBuf>,
    /// The DNS name or IP address a server certificate must be valid for
    #[arg(long, value_name = "DNS_OR_IP", conflicts_with = "client")]
    pub name: Option<String>,
    /// Verify for TLS client use instead of server use
    #[arg(long)]
    pub client: bool,
    /// Verify a sealed CA's manifest.json (signature and file fingerprints)
    #[arg(long, value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
}

/// `uca verify`: prints the success line; anything that does not verify
/// is the error.
pub fn run(args: VerifyArgs, out: &mut Stdout) -> Result<u8> {
    writeln!(out, "{}", execute(&args)?)?;
    Ok(0)
}

/// Verifies; returns the success line for standard output.
pub fn execute(args: &VerifyArgs) -> Result<String> {
    if let Some(manifest) = &args.manifest {
        if args.name.is_some() || args.client {
            return Err(Error::msg(
                "--name and --client apply to verifying a certificate, not to --manifest; run them separately",
            ));
        }
        return verify_manifest_files(manifest, args.ca.as_deref());
    }
    let Some(cert) = &args.cert else {
        return Err(Error::msg("give a CERT to verify, or --manifest MANIFEST; e.g. uca verify certs/web1/chain.pem --ca ca/ca.pem"));
    };
    let Some(ca) = &args.ca else {
        return Err(Error::msg(format!(
            "--ca is required to verify a certificate: the CA certificate(s) to trust, e.g. uca verify {} --ca ca/ca.pem",
            cert.display()
        )));
    };
    let purpose = if args.client {
        Purpose::Client
    } else {
        Purpose::Server(args.name.clone())
    };
    verify_files(cert, ca, &purpose, UnixTime::now())
}

/// Verifies a sealed CA's manifest: `CA` defaults to `ca.pem` beside the
/// manifest, the signature is `manifest.sig` beside it, over
/// `manifest.sha256` beside it. Returns the success
/// line; any missing or altered listed file makes it an error.
pub fn verify_manifest_files(manifest: &Path, ca: Option<&Path>) -> Result<String> {
    let dir = match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let ca: PathBuf = ca.map_or_else(|| dir.join(store::CERT_FILE), Path::to_path_buf);
    let sig = dir.join(store::MANIFEST_SIG_FILE);
    let mut check = manifest::verify_manifest(manifest, &sig, &ca)?;
    // Recovery entries follow the manifest, each signed by the same root.
    let ca_der = x509::read_certificates(&ca)?.remove(0);
    let recoveries = recovery::verify_log(&dir, &check.sha256, &ca_der)?;
    check
        .problems
        .extend(recovery::check_outputs(&dir, &recoveries));
    check.problems.extend(recovery::unrecorded_acts(
        &dir,
        check.certificates,
        &check.crl_paths,
        &recoveries,
    )?);
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut summary = format!(
        "manifest signature verifies with {}; {}, {}",
        ca.display(),
        plural(check.certificates, "certificate", "certificates"),
        plural(check.files_ok, "file matches", "files match")
    );
    if check.crls > 0 {
        summary.push_str(&format!(
            ", {} of the root checked",
            plural(check.crls, "CRL", "CRLs")
        ));
    }
    if let Some((_, last)) = recoveries.last() {
        summary.push_str(&format!(
            ", {} signed by the root (the last: SHA-256 {last})",
            plural(recoveries.len(), "recovery entry", "recovery entries")
        ));
    }
    if check.unchecked > 0 {
        summary.push_str(&format!(
            "; {} written to standard output as an archive, not checkable here",
            plural(check.unchecked, "certificate was", "certificates were")
        ));
    }
    if check.replaced > 0 {
        summary.push_str(&format!(
            " ({} later re-issued at the same path)",
            plural(check.replaced, "entry was", "entries were")
        ));
    }
    if check.problems.is_empty() {
        return Ok(format!("OK: {summary}"));
    }
    Err(Error::Verification(format!(
        "{summary}, but {} listed {} not: {}",
        check.problems.len(),
        if check.problems.len() == 1 {
            "file does"
        } else {
            "files do"
        },
        check.problems.join("; ")
    )))
}
