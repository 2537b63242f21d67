//! `uca recover`: the recovery ceremony of a root sealed with escrow. A
//! quorum of custodians' shares unlocks the escrowed key in memory for
//! exactly one operation: `revoke` (a CRL of the root with the next number),
//! `sign --intermediate` (a new intermediate through the signing pipeline
//! every CSR takes) or `cross-sign` (a successor root's key as a CA of this
//! root). Each is recorded, signed, beside the
//! manifest; the CA stays sealed. The checks and the log are
//! `ca::escrow`'s and `ca::recovery`'s.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::ca::escrow;
use crate::ca::recovery::{self, RecoveredCertificate};
use crate::ca::revocation::{self, CrlRecord};
use crate::ca::signing::{self, SignOptions};
use crate::ca::store::CaStore;
use crate::pki::profile::Profile;
use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::stdout::Stdout;

// `uca recover`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The sealed CA directory (sealed with --escrow-shares)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// A custodian's share file (repeat: as many as the escrow's threshold); without any, each custodian is asked in turn at the terminal
    #[arg(long = "share", value_name = "FILE")]
    pub shares: Vec<PathBuf>,
    #[command(subcommand)]
    pub operation: RecoverOperation,
}

#[derive(Debug, Subcommand)]
pub enum RecoverOperation {
    /// Sign a CRL of the root, with the next CRL number, revoking these certificates (and every one revoked by an earlier recovery)
    Revoke(RecoverRevokeArgs),
    /// Sign a new intermediate CA from a CSR (e.g. for a fresh Vault/OpenBao mount)
    Sign(RecoverSignArgs),
    /// Sign a successor root's subject and key as a cross-certificate, so clients that trust only this root reach chains under the successor
    CrossSign(RecoverCrossSignArgs),
}

#[derive(Debug, Args)]
pub struct RecoverCrossSignArgs {
    /// The successor root's certificate (self-signed, PEM or DER)
    #[arg(value_name = "CERT")]
    pub cert: PathBuf,
    /// Write the cross-certificate to FILE
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace an existing --out file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RecoverRevokeArgs {
    /// Certificate file, or serial number in hex, of a certificate this root issued (repeatable)
    #[arg(value_name = "CERT_OR_SERIAL", required = true)]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RecoverSignArgs {
    /// The intermediate's certificate signing request (PEM or DER)
    #[arg(value_name = "CSR")]
    pub csr: PathBuf,
    /// Sign as an intermediate CA (the only certificate a recovery signs)
    #[arg(long, required = true)]
    pub intermediate: bool,
    /// Path length of the intermediate
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub pathlen: u8,
    /// Narrow the intermediate's name constraints (repeatable; each within the root's)
    #[arg(long, value_name = "SUFFIX_OR_CIDR")]
    pub permit: Vec<String>,
    /// Validity in days (default 1825)
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// CRL distribution point to put into the intermediate (default: the CA's)
    #[arg(long, value_name = "URL")]
    pub crl_url: Option<String>,
    /// Write the certificate to FILE
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Append the CA certificate after the new certificate
    #[arg(long)]
    pub chain: bool,
    /// Replace an existing --out file
    #[arg(long)]
    pub force: bool,
}

/// `uca recover`: one operation with a quorum, then what was done.
pub fn run(args: RecoverArgs, out: &mut Stdout) -> Result<u8> {
    let store = CaStore::open(&args.dir)?;
    recovery::require_escrow(&store)?;
    let d = args.dir.display().to_string();
    match args.operation {
        RecoverOperation::Revoke(r) => {
            let crl = revoke(&store, &args.shares, &r.targets)?;
            out.work_done(format!(
                "{}/{} was signed and recorded in {d}/{}",
                d,
                crl.path,
                recovery::LOG_FILE
            ));
            writeln!(
                out,
                "signed CRL number {} of {d}: {d}/{} revokes {}",
                crl.number,
                crl.path,
                crl.revokes.join(", ")
            )?;
            writeln!(
                out,
                "  publish it at the root's CRL URL, replacing root.crl; {d} stays sealed"
            )?;
        }
        RecoverOperation::CrossSign(c) => {
            let cert = cross_sign(&store, &args.shares, &c)?;
            report_certificate(out, "cross-signed", &cert, &c.out, &d)?;
            writeln!(
                out,
                "  give it to servers to send after their chain: clients that trust only {d}'s root then reach the successor's"
            )?;
        }
        RecoverOperation::Sign(s) => {
            let cert = sign(&store, &args.shares, &s)?;
            report_certificate(out, "signed", &cert, &s.out, &d)?;
        }
    }
    if let Some((n, sha256)) = recovery::head(store.dir())? {
        writeln!(
            out,
            "  recovery entry {n}, SHA-256 {sha256}: note both in the ceremony's record; 'uca verify --manifest' prints the same for a log that was not cut short"
        )?;
    }
    Ok(0)
}

/// What a recovery that signed a certificate says: where it is, its serial,
/// that the act is logged and the CA still sealed.
fn report_certificate(
    out: &mut Stdout,
    done: &str,
    cert: &RecoveredCertificate,
    file: &Path,
    d: &str,
) -> Result<()> {
    out.work_done(format!(
        "serial {} was signed and written to {}",
        cert.serial,
        file.display()
    ));
    writeln!(
        out,
        "{done} {}: {}  serial {}; recorded in {d}/{}; {d} stays sealed",
        cert.subject,
        file.display(),
        cert.serial,
        recovery::LOG_FILE
    )
}

/// The escrowed key, from the `--share` files, or, without any, from
/// shares the custodians enter one at a time at the terminal (a path or the
/// share itself, not echoed) until the threshold is reached. Each is
/// checked as it comes; a bad one ends the ceremony with nothing changed.
fn unlock(store: &CaStore, share_files: &[PathBuf]) -> Result<recovery::Recovery> {
    if !share_files.is_empty() {
        return recovery::unlock(store, share_files);
    }
    recovery::require_escrow(store)?;
    if !crate::pki::passphrase::interactive() {
        return Err(Error::msg(
            "no --share given and no terminal to ask the custodians at: pass --share FILE once per custodian",
        ));
    }
    let mut shares: Vec<escrow::Share> = Vec::new();
    loop {
        let needed = shares.first().map(|s| s.file.threshold as usize);
        if needed.is_some_and(|n| shares.len() >= n) {
            break;
        }
        let number = shares.len() + 1;
        let of = needed.map_or(String::new(), |n| format!(" of {n}"));
        let question = format!(
            "custodian {number}{of}: the path of your share file, or the share itself (not shown): "
        );
        let entered = read_entry(question)?;
        let entered = entered.trim();
        let share = if entered.starts_with('{') {
            escrow::parse_share(
                entered,
                Path::new(&format!("entered by custodian {number}")),
            )?
        } else if entered.starts_with(crate::pki::age::ARMOR_BEGIN) {
            return Err(Error::msg(format!(
                "custodian {number} pasted a share still encrypted to their age key: decrypt it first (age -d -i KEY_FILE -o share.json SHARE.json.age), then enter the decrypted share or its path: nothing was decrypted"
            )));
        } else if Path::new(entered).is_file() {
            escrow::read_share(Path::new(entered))?
        } else {
            // Entered unseen, and perhaps a share's bare hex: never echoed.
            return Err(Error::msg(format!(
                "custodian {number} entered neither the path of a share file nor a share file's text (which starts with '{{'); what was entered is not shown, since it may be secret: nothing was decrypted"
            )));
        };
        shares.push(share);
    }
    recovery::unlock_shares(store, shares)
}

/// The most lines a share pasted at the terminal may take: a share file
/// is ten.
const PASTED_SHARE_LINES: usize = 64;

/// What a custodian enters, not echoed: one line (a path, or a share on
/// one line), or a share file's JSON pasted as it is printed, over several
/// lines, read until its braces close.
fn read_entry(question: String) -> Result<zeroize::Zeroizing<String>> {
    let failed =
        |e: std::io::Error| Error::msg(format!("cannot read a share from the terminal: {e}"));
    let mut text = zeroize::Zeroizing::new(rpassword::prompt_password(question).map_err(failed)?);
    let mut lines = 1;
    // A share holds no brace inside its strings (hex and plain names).
    let open = |t: &str| t.matches('{').count() > t.matches('}').count();
    while text.trim_start().starts_with('{') && open(&text) {
        if lines == PASTED_SHARE_LINES {
            return Err(Error::msg(format!(
                "the share pasted at the terminal has no closing '}}' within {PASTED_SHARE_LINES} lines; paste the whole share file, or give its path"
            )));
        }
        let line = zeroize::Zeroizing::new(rpassword::read_password().map_err(failed)?);
        text.push('\n');
        text.push_str(&line);
        lines += 1;
    }
    Ok(text)
}

/// The serial of each target: a certificate file this root issued, or a
/// serial in its ledger. The ledger is streamed once, looking for these
/// serials only, so a large ledger costs no memory.
fn target_serials(store: &CaStore, targets: &[String]) -> Result<Vec<String>> {
    let wanted = targets
        .iter()
        .map(|t| Ok((t, target_serial(t)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut issued = std::collections::HashSet::new();
    store.ledger().scan(|e| {
        if wanted.iter().any(|(_, s)| *s == e.serial) {
            issued.insert(e.serial);
        }
    })?;
    let mut serials: Vec<String> = Vec::new();
    for (target, serial) in wanted {
        if !issued.contains(&serial) {
            return Err(Error::invalid(
                "CERT_OR_SERIAL",
                target.clone(),
                format!(
                    "serial {serial} is not in the ledger of {}: this root did not issue it",
                    store.dir().display()
                ),
            ));
        }
        if !serials.contains(&serial) {
            serials.push(serial);
        }
    }
    Ok(serials)
}

/// The serial a target names: a certificate file's, or a serial in hex.
fn target_serial(target: &str) -> Result<String> {
    if Path::new(target).is_file() {
        let der = x509::read_certificates(Path::new(target))?.remove(0);
        let cert = x509::parse(&der)
            .map_err(|why| Error::invalid("certificate", target.to_string(), why))?;
        return Ok(x509::serial_hex(&cert));
    }
    revocation::normalize_serial(target).map_err(|_| {
        Error::invalid(
            "CERT_OR_SERIAL",
            target.to_string(),
            "neither a certificate file nor a serial number in hex",
        )
    })
}

/// Signs the next CRL, revoking `targets` and every earlier recovery's.
fn revoke(store: &CaStore, shares: &[PathBuf], targets: &[String]) -> Result<CrlRecord> {
    let serials = target_serials(store, targets)?;
    let recovery = unlock(store, shares)?;
    let number = recovery.next_crl_number();
    let path = format!("{}/root-{number}.crl", revocation::CRL_DIR);
    crate::support::output::check_free(&store.path(&path), false)?;
    let mut revoked = recovery.revoked_so_far();
    for s in serials {
        if !revoked.contains(&s) {
            revoked.push(s);
        }
    }
    let crl = revocation::sign(
        store,
        &recovery.signer,
        &path,
        number,
        &revoked,
        revocation::now(),
    )?;
    // The act is recorded before its result is published.
    recovery.record(store, "revoke", Some(crl.record.clone()), None)?;
    revocation::write(store, std::slice::from_ref(&crl), false)?;
    Ok(crl.record)
}

/// Signs a cross-certificate for a successor root, recorded in the ledger
/// and the recovery log.
fn cross_sign(
    store: &CaStore,
    shares: &[PathBuf],
    a: &RecoverCrossSignArgs,
) -> Result<RecoveredCertificate> {
    let shown = a.cert.display().to_string();
    let der = x509::read_certificates(&a.cert)?.remove(0);
    let prepared = signing::prepare_cross_sign(store, &der, &shown)?;
    publish_recovered(
        store,
        shares,
        prepared,
        "cross-sign",
        &a.out,
        a.force,
        false,
    )
}

/// Cross-signs `successor_der` with an already unlocked recovery of the
/// old root (`uca ceremony --successor-of`), writing it to `out`.
pub fn cross_sign_unlocked(
    store: &CaStore,
    recovery: &recovery::Recovery,
    successor_der: &[u8],
    out: &Path,
) -> Result<RecoveredCertificate> {
    let prepared = signing::prepare_cross_sign(store, successor_der, "the new root")?;
    store.refuse_private_output(out)?;
    crate::support::output::check_free(out, false)?;
    sign_with(store, recovery, prepared, "cross-sign", out, false, false)
}

/// Signs a new intermediate, recorded in the ledger and the recovery log.
fn sign(store: &CaStore, shares: &[PathBuf], a: &RecoverSignArgs) -> Result<RecoveredCertificate> {
    let csr = signing::read_csr(&a.csr)?;
    let options = SignOptions {
        profile: Profile::Both,
        intermediate: a.intermediate,
        pathlen: a.pathlen,
        permits: a.permit.clone(),
        sans: Vec::new(),
        days: a.days,
        ends_with_issuer: false,
        crl_url: a.crl_url.clone(),
    };
    let prepared = signing::prepare(store, &csr, &a.csr.display().to_string(), &options)?;
    publish_recovered(
        store,
        shares,
        prepared,
        "sign-intermediate",
        &a.out,
        a.force,
        a.chain,
    )
}

/// Checks `out`, unlocks the escrowed key with the shares, signs, records
/// the act in the recovery log (before the result is published) and writes
/// the certificate (with the CA's chain after it when `chain`).
fn publish_recovered(
    store: &CaStore,
    shares: &[PathBuf],
    prepared: signing::PreparedSign,
    operation: &str,
    out: &Path,
    force: bool,
    chain: bool,
) -> Result<RecoveredCertificate> {
    store.refuse_private_output(out)?;
    store.refuse_ca_path(out)?;
    crate::support::output::check_free(out, force)?;
    fsutil::check_file_creatable("--out", out)?;
    let recovery = unlock(store, shares)?;
    sign_with(store, &recovery, prepared, operation, out, force, chain)
}

/// Signs with the unlocked key, records the act (before the result is
/// published) and writes the certificate.
fn sign_with(
    store: &CaStore,
    recovery: &recovery::Recovery,
    prepared: signing::PreparedSign,
    operation: &str,
    out: &Path,
    force: bool,
    chain: bool,
) -> Result<RecoveredCertificate> {
    let path = fsutil::absolute(out).display().to_string();
    let mut recorded = None;
    signing::sign_prepared_recovered(
        store,
        &recovery.signer,
        &recovery.lock,
        prepared,
        Some(path.clone()),
        |der| {
            let (subject, _) = x509::recorded_names(der)?;
            let cert = RecoveredCertificate {
                serial: x509::serial_hex(&x509::parse(der).map_err(Error::msg)?),
                subject,
                sha256: x509::sha256_hex(der),
                path: Some(path.clone()),
            };
            recovery.record(store, operation, None, Some(cert.clone()))?;
            let mut pem = x509::pem_certificate(der);
            if chain {
                pem.push_str(&store.chain_pem());
            }
            fsutil::write_atomic(out, pem.as_bytes(), Mode::Public, force, true)?;
            recorded = Some(cert);
            Ok(())
        },
        &recovery.quorum,
    )?;
    recorded.ok_or_else(|| Error::msg("the certificate was not recorded"))
}
