//! `uca sign`: certificates for keys uca never sees (a component that keeps
//! its own key, a Vault/OpenBao intermediate), written to `--out` or
//! standard output. The checks and the signing are `ca::signing`'s.

use std::path::PathBuf;

use clap::Args;

use crate::ca::signing::{prepare, read_csr, sign_prepared, SignOptions};
use crate::ca::store::CaStore;
use crate::commands::args::PassphraseArgs;
use crate::pki::profile::Profile;
use crate::support::error::Result;
use crate::support::fsutil::{self, Mode};
use crate::support::stdout::Stdout;
use crate::{pki::x509, support::timefmt};

// `uca sign`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The certificate signing request (PEM or DER)
    #[arg(value_name = "CSR")]
    pub csr: PathBuf,
    /// What a leaf certificate may be used for (ignored with --intermediate)
    #[arg(long, value_enum, default_value_t = Profile::Both)]
    pub profile: Profile,
    /// Sign as an intermediate CA (e.g. for Vault/OpenBao)
    #[arg(long)]
    pub intermediate: bool,
    /// Path length of the intermediate
    #[arg(long, value_name = "N", default_value_t = 0, requires = "intermediate")]
    pub pathlen: u8,
    /// Narrow the intermediate's name constraints (repeatable; each within the root's)
    #[arg(long, value_name = "SUFFIX_OR_CIDR", requires = "intermediate")]
    pub permit: Vec<String>,
    /// CRL distribution point to put into the intermediate (default: the CA's, from uca init --crl-url)
    #[arg(long, value_name = "URL", requires = "intermediate")]
    pub crl_url: Option<String>,
    /// Extra SAN for a leaf (repeatable)
    #[arg(long, value_name = "KIND:VALUE", conflicts_with = "intermediate")]
    pub san: Vec<String>,
    /// Validity in days (default 397 for leaves, 1825 for intermediates)
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Write the certificate to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Append the CA certificate after the new certificate
    #[arg(long)]
    pub chain: bool,
    /// Replace an existing --out file
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

pub struct SignRequest {
    pub dir: PathBuf,
    pub csr: PathBuf,
    pub options: SignOptions,
    pub out: Option<PathBuf>,
    pub chain: bool,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

pub struct SignReport {
    pub pem: String,
    pub out: Option<PathBuf>,
    pub serial: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub not_after: String,
}

/// `uca sign`: signs the CSR, then prints where the certificate went, or
/// the certificate itself.
pub fn run(args: SignArgs, out: &mut Stdout) -> Result<u8> {
    let report = execute(&SignRequest {
        dir: args.dir,
        csr: args.csr,
        options: SignOptions {
            profile: args.profile,
            intermediate: args.intermediate,
            pathlen: args.pathlen,
            permits: args.permit,
            sans: args.san,
            days: args.days,
            ends_with_issuer: false,
            crl_url: args.crl_url,
        },
        out: args.out,
        chain: args.chain,
        force: args.force,
        passphrase_file: args.passphrase.passphrase_file,
    })?;
    out.work_done(match &report.out {
        Some(path) => format!(
            "serial {} was signed and written to {}",
            report.serial,
            path.display()
        ),
        None => format!(
            "serial {} was signed and recorded in the ledger; it was only to be printed, so sign the CSR again with --out FILE",
            report.serial
        ),
    });
    report.render(out)?;
    Ok(0)
}

impl SignReport {
    fn render(&self, out: &mut Stdout) -> Result<()> {
        match &self.out {
            Some(path) => writeln!(
                out,
                "signed {}: {}  serial {}  expires {}{}",
                self.subject,
                path.display(),
                self.serial,
                self.not_after,
                if self.sans.is_empty() {
                    String::new()
                } else {
                    format!("  SANs {}", self.sans.join(", "))
                }
            ),
            None => write!(out, "{}", self.pem),
        }
    }
}

/// Checks the CSR and every output, unlocks the CA and signs.
pub fn execute(req: &SignRequest) -> Result<SignReport> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    let csr = read_csr(&req.csr)?;
    let shown = req.csr.display().to_string();
    let prepared = prepare(&store, &csr, &shown, &req.options)?;
    if let Some(out) = &req.out {
        store.refuse_private_output(out)?;
        store.refuse_ca_path(out)?;
        crate::support::output::check_free(out, req.force)?;
        fsutil::check_file_creatable("--out", out)?;
    }
    let not_after = timefmt::rfc3339(prepared.validity.not_after);
    let signer = store.unlock(req.passphrase_file.as_ref())?;
    let lock = store.ledger().lock()?;
    let path = req
        .out
        .as_ref()
        .map(|p| fsutil::absolute(p).display().to_string());
    let with_chain = |der: &[u8]| {
        let mut pem = x509::pem_certificate(der);
        if req.chain {
            pem.push_str(&store.chain_pem());
        }
        pem
    };
    let (der, serial) = sign_prepared(&store, &signer, &lock, prepared, path, |der| {
        match &req.out {
            Some(out) => fsutil::write_atomic(
                out,
                with_chain(der).as_bytes(),
                Mode::Public,
                req.force,
                true,
            ),
            None => Ok(()),
        }
    })?;
    let pem = with_chain(&der);
    let (subject, sans) = x509::recorded_names(&der)?;
    Ok(SignReport {
        pem,
        out: req.out.clone(),
        serial,
        subject,
        sans,
        not_after,
    })
}
