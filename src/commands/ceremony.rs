//! `uca ceremony PLAN --out OUT`: create the root, issue every certificate
//! of the plan, write the signed manifest and seal, in one run. The CA key
//! lives only in memory (wiped on drop) unless `--escrow-passphrase` asks for
//! an encrypted copy for offline escrow.
//!
//! ```text
//! OUT/ca/      the sealed CA directory (ca.pem, ledger, manifest; no key)
//! OUT/certs/   every certificate of the plan
//! OUT/registry/  with a [registry] section: what `uca registry` writes
//! ```

use std::path::{Path, PathBuf};

use crate::ca::bulk::{self, Existing, IssuedCert, RunOptions, Summary};
use crate::ca::plan::Plan;
use crate::ca::root;
use crate::ca::seal::{self, SealReport};
use crate::ca::store::{CaStore, Signer};
use crate::pki::passphrase::Passphrase;
use crate::pki::profile::Validity;
use crate::pki::san_rule::SanRule;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};

pub struct CeremonyRequest {
    pub plan: PathBuf,
    pub out: PathBuf,
    pub escrow_passphrase: Option<PathBuf>,
    pub progress: bool,
}

pub struct CeremonyReport {
    pub ca_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub fingerprint: String,
    pub summary: Summary,
    pub seal: SealReport,
    pub escrow: Option<(PathBuf, PathBuf)>,
    pub registry: Option<crate::commands::registry::RegistryReport>,
    /// What the `[vault]` bootstrap did, step by step.
    pub vault_steps: Vec<String>,
}

fn out_is_free(out: &Path) -> Result<()> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if out.join("ca").join(crate::ca::store::CERT_FILE).exists()
                && !out.join("ca").join(crate::ca::store::SEALED_FILE).exists()
            {
                return Err(Error::invalid(
                    "--out",
                    out.display().to_string(),
                    "an earlier ceremony there did not finish; its CA key existed only in memory and is gone: remove the directory and run the ceremony again",
                ));
            }
            if entries.next().is_some() {
                return Err(Error::invalid(
                    "--out",
                    out.display().to_string(),
                    "it is not empty; a ceremony needs a new or empty directory",
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("read", out, e)),
    }
}

/// The escrow passphrase file: outside OUT, new, in a writable directory.
fn check_escrow_file(req: &CeremonyRequest) -> Result<Option<PathBuf>> {
    let Some(f) = &req.escrow_passphrase else {
        return Ok(None);
    };
    let f_abs = fsutil::resolve(f)?;
    if f_abs.starts_with(fsutil::resolve(&req.out)?) {
        return Err(Error::invalid(
            "--escrow-passphrase",
            f.display().to_string(),
            "it is inside OUT; the escrow copy must be kept apart from the certificates",
        ));
    }
    // A ceremony has no --force: never suggest one.
    if std::fs::symlink_metadata(f).is_ok() {
        return Err(Error::invalid(
            "--escrow-passphrase",
            f.display().to_string(),
            "it already exists; give a new file (uca never replaces an escrow copy)",
        ));
    }
    fsutil::check_file_creatable("--escrow-passphrase", f)?;
    Ok(Some(f.clone()))
}

/// The plan's `[registry]`, validated against the CA the ceremony will make.
fn prepare_registry(
    req: &CeremonyRequest,
    plan: &Plan,
    ca: &crate::ca::plan::CaSection,
) -> Result<Option<crate::commands::registry::Prepared>> {
    let Some(spec) = &plan.registry else {
        return Ok(None);
    };
    let ca_not_after = Validity::days_from_now(ca.days)?.not_after;
    let out = req.out.join("registry");
    let c = &plan.ca_constraints;
    let prepared = crate::commands::registry::prepare(c, ca_not_after, spec, &out, false)?;
    Ok(Some(prepared))
}

/// The plan's `[vault]`, validated against the CA the ceremony will make,
/// and the Vault server it names reached.
fn prepare_vault(
    req: &CeremonyRequest,
    plan: &Plan,
    ca: &crate::ca::plan::CaSection,
    ca_dir: &Path,
) -> Result<Option<crate::commands::vault::bootstrap::BootstrapRequest>> {
    let Some(section) = &plan.vault else {
        return Ok(None);
    };
    let ca_not_after = Validity::days_from_now(ca.days)?.not_after;
    let base = fsutil::parent_of(&req.plan);
    let vreq = section.to_request(base, ca_dir.to_path_buf());
    crate::commands::vault::bootstrap::validate(
        &vreq,
        &plan.ca_constraints,
        Some(ca.pathlen),
        ca_not_after,
    )
    .map_err(|e| Error::msg(format!("plan [vault]: {e}")))?;
    // Fail now, not after the root exists, if Vault is unreachable,
    // sealed, or the token or namespace is wrong.
    crate::commands::vault::client::VaultClient::connect(&vreq.conn)
        .and_then(|c| crate::commands::vault::bootstrap::preflight(&c).map(|_| ()))
        .map_err(|e| Error::msg(format!("plan [vault]: {e}")))?;
    Ok(Some(vreq))
}

/// Stores the new root as `ca_dir`; with `--escrow-passphrase`, its key
/// encrypted under a generated passphrase, which is written to
/// `escrow_file` first.
fn store_root(
    req: &CeremonyRequest,
    root: &root::NewRoot,
    escrow_file: Option<&Path>,
    ca_dir: &Path,
) -> Result<()> {
    let escrow = match escrow_file {
        Some(_) => {
            let passphrase = Passphrase::generate();
            let encrypted = root.key.encrypt(&passphrase)?;
            Some((passphrase, encrypted))
        }
        None => None,
    };
    // The escrow passphrase first: a key is never stored without it. If
    // the root cannot be stored, the escrow copy this run made goes again.
    if let (Some(file), Some((passphrase, _))) = (escrow_file, &escrow) {
        let mut line = zeroize::Zeroizing::new(passphrase.as_str().to_string());
        line.push('\n');
        fsutil::write_atomic(file, line.as_bytes(), Mode::ReadOnlySecret, false, true).map_err(
            |e| match e {
                Error::Exists(path) => Error::invalid(
                    "--escrow-passphrase",
                    path.display().to_string(),
                    "it appeared while the ceremony ran; uca never replaces an escrow copy",
                ),
                other => other,
            },
        )?;
    }
    root::store_root(ca_dir, root, escrow.as_ref().map(|(_, k)| k.as_str()), None).map_err(
        |e| {
            if let Some(file) = escrow_file {
                let _ = std::fs::remove_file(file);
            }
            match e {
                // The ceremony's own flag is --out, and it has no --force.
                Error::Invalid {
                    what: "--dir",
                    expected,
                    ..
                } => Error::invalid("--out", req.out.display().to_string(), expected),
                other => other,
            }
        },
    )?;
    Ok(())
}

pub fn run(
    req: &CeremonyRequest,
    on_issued: &mut dyn FnMut(&IssuedCert),
) -> Result<CeremonyReport> {
    // 1. Validate everything: paths, plan, names, SANs, constraints, and
    // only then Vault over the network.
    out_is_free(&req.out)?;
    fsutil::check_dir_creatable("--out", &req.out)?;
    let escrow_file = check_escrow_file(req)?;
    let plan = Plan::load(&req.plan, None)?;
    let ca = plan
        .ca
        .as_ref()
        .expect("Plan::load requires [ca] for a ceremony");
    let ca_dir = req.out.join("ca");
    let certs_dir = req.out.join("certs");
    plan.validate_all(&certs_dir)?;
    let registry = prepare_registry(req, &plan, ca)?;
    let vault = prepare_vault(req, &plan, ca, &ca_dir)?;
    // 2. The root, in memory, stored with its escrow copy if asked.
    let validity = Validity::days_from_now(ca.days)?;
    let root = root::make_root(
        &ca.name,
        ca.key,
        validity,
        ca.pathlen,
        plan.ca_constraints.0.clone(),
        vec![SanRule::Base],
    )?;
    store_root(req, &root, escrow_file.as_deref(), &ca_dir)?;
    let store = CaStore::open(&ca_dir)?;
    let signer = Signer::new(&store, root.key)?;

    // 3. Issue everything, 4. seal.
    let lock = store.ledger().lock()?;
    let opts = RunOptions {
        existing: Existing::Refuse,
        force: false,
        progress: req.progress,
    };
    let summary = bulk::execute(&store, &signer, &plan, &certs_dir, &lock, &opts, on_issued)?;
    let registry = match &registry {
        Some(r) => Some(crate::commands::registry::issue(&store, &signer, &lock, r)?),
        None => None,
    };
    let mut vault_steps = Vec::new();
    if let Some(vreq) = &vault {
        crate::commands::vault::bootstrap::execute(
            vreq,
            &store,
            crate::commands::vault::bootstrap::SignerSource::Held(&signer, &lock),
            &mut |line| vault_steps.push(line.to_string()),
        )
        .map_err(|e| Error::msg(format!("plan [vault] bootstrap failed, the CA was not sealed and its key is gone with this process: {e}")))?;
    }
    let seal = seal::seal_with(&store, signer, &lock, false, escrow_file.is_none())?;
    Ok(CeremonyReport {
        ca_dir: ca_dir.clone(),
        certs_dir,
        fingerprint: store.fingerprint.clone(),
        summary,
        seal,
        escrow: escrow_file.map(|f| (f, ca_dir.join(crate::ca::store::KEY_FILE))),
        registry,
        vault_steps,
    })
}
