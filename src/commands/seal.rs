//! `uca seal`: writes the signed manifest and destroys the passphrase (and,
//! if asked, the key), so the CA never issues or signs again. The sealing
//! itself, and completing an interrupted one, is `ca::seal`'s.

use std::path::PathBuf;

use clap::Args;

use crate::ca::escrow;
use crate::ca::seal::{self, SealReport};
use crate::commands::args::PassphraseArgs;
use crate::support::error::Result;
use crate::support::stdout::{self, Stdout};

// `uca seal`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Also destroy the encrypted CA key
    #[arg(long, conflicts_with = "escrow_shares")]
    pub destroy_key: bool,
    /// Keep the key for recovery by any M of N custodians: split its new passphrase into N Shamir shares (e.g. 3/5)
    #[arg(long, value_name = "M/N", requires = "escrow_dir")]
    pub escrow_shares: Option<String>,
    /// Where to write the N share files (one per custodian, 0600), outside the CA directory
    #[arg(long, value_name = "DIR", requires = "escrow_shares")]
    pub escrow_dir: Option<PathBuf>,
    /// Encrypt share i to the i-th custodian's age public key (age1...; repeat once per share, in order)
    #[arg(
        long = "custodian",
        value_name = "RECIPIENT",
        requires = "escrow_shares"
    )]
    pub custodians: Vec<String>,
    /// Replace existing share files in --escrow-dir
    #[arg(long, requires = "escrow_shares")]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// `uca seal`: seals, says what is gone and how to check the manifest, and
/// reminds the user of a passphrase file that uca cannot destroy.
pub fn run(args: SealArgs, out: &mut Stdout) -> Result<u8> {
    let used_file = args.passphrase.passphrase_file;
    let escrow = escrow::spec(
        args.escrow_shares.as_deref(),
        args.escrow_dir,
        &args.custodians,
        escrow::CustodianSource::Flag,
        args.force,
    )?;
    let report = seal::run(
        &args.dir,
        used_file.as_ref(),
        args.destroy_key,
        escrow.as_ref(),
    )?;
    let d = report.dir.display();
    out.work_done(match &used_file {
        Some(f) => format!(
            "{d} was sealed; the passphrase is still in {}: destroy that copy too",
            f.display()
        ),
        None => format!("{d} was sealed"),
    });
    render(&report, out)?;
    if let Some(f) = used_file {
        stdout::to_stderr(&format!(
            "uca: note: the passphrase is still in {}; destroy that copy too",
            f.display()
        ));
    }
    Ok(0)
}

fn render(r: &SealReport, out: &mut Stdout) -> Result<()> {
    let d = r.dir.display();
    if r.resumed {
        writeln!(out, "completed the interrupted seal of {d}")?;
    }
    match &r.escrow {
        None => writeln!(
            out,
            "sealed {d} at {}: it will never issue or sign again",
            r.sealed_at
        )?,
        Some((e, _)) => writeln!(
            out,
            "sealed {d} at {}: it signs again only when {} of its {} custodians bring their shares to uca recover",
            r.sealed_at, e.threshold, e.shares
        )?,
    }
    writeln!(
        out,
        "  manifest     {d}/manifest.json ({} certificates)",
        r.certificates
    )?;
    writeln!(
        out,
        "  signature    {d}/manifest.sig over {d}/manifest.sha256 (the manifest's SHA-256)"
    )?;
    writeln!(
        out,
        "  passphrase   {}",
        if r.passphrase_destroyed {
            "stored copy overwritten and removed"
        } else {
            "none was stored in the CA directory"
        }
    )?;
    match &r.escrow {
        Some((e, files)) => {
            writeln!(
                out,
                "  key          {d}/{} (encrypted under the escrowed secret; the copy under your passphrase was removed)",
                e.key_file
            )?;
            for (i, f) in files.iter().enumerate() {
                writeln!(out, "  share        {} ({})", f.display(), e.holder(i))?;
            }
        }
        None if r.key_destroyed => writeln!(out, "  key          overwritten and removed")?,
        None => {}
    }
    writeln!(
        out,
        "  CRLs         {d}/crl/ (publish root.crl at the CRL URL; keep the revoke-*.crl offline)"
    )?;
    writeln!(out, "  check with   cd {d} && {}", r.verify_command)?;
    Ok(())
}
