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

use clap::Args;

use crate::ca::bulk::{Existing, IssuedCert, Summary};
use crate::ca::issuance::{Issuance, Key};
use crate::ca::plan::{CaSection, Plan};
use crate::ca::root;
use crate::ca::seal::{self, SealReport};
use crate::ca::store::{CaStore, Signer};
use crate::commands::args::{flag_as_key, flags_as_keys};
use crate::commands::vault::bootstrap::BootstrapRequest;
use crate::pki::passphrase::Passphrase;
use crate::pki::profile::Validity;
use crate::pki::san_rule::SanRule;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::stdout::Stdout;
use crate::support::timefmt;

/// OUT's folder for the plan's certificates (and their members' root in an
/// archive).
const CERTS_DIR: &str = "certs";

// `uca ceremony`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct CeremonyArgs {
    /// The plan file (TOML) with a [ca] section and certificate groups
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// New or empty output directory: OUT/ca (sealed CA) and OUT/certs
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Write the plan's certificates as one tar archive (- for standard output) instead of OUT/certs, members named certs/... as under OUT (keys 0600 inside)
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// Write the Secrets of the plan's k8s-format groups as one multi-document manifest (- for standard output) instead of each NAME/secret.yaml
    #[arg(long, value_name = "FILE")]
    pub k8s_manifest: Option<PathBuf>,
    /// Keep an encrypted copy of the CA key in OUT/ca/private and write its passphrase to FILE (outside OUT) for offline escrow
    #[arg(long, value_name = "FILE")]
    pub escrow_passphrase: Option<PathBuf>,
    /// Seal with M-of-N escrow: keep the key for recovery by any M of N custodians (e.g. 3/5)
    #[arg(
        long,
        value_name = "M/N",
        requires = "escrow_dir",
        conflicts_with = "escrow_passphrase"
    )]
    pub escrow_shares: Option<String>,
    /// Where to write the N share files (one per custodian, 0600), outside OUT/ca
    #[arg(long, value_name = "DIR", requires = "escrow_shares")]
    pub escrow_dir: Option<PathBuf>,
    /// Encrypt share i to the i-th custodian's age public key (age1...; repeat once per share, in order)
    #[arg(
        long = "custodian",
        value_name = "RECIPIENT",
        requires = "escrow_shares"
    )]
    pub custodians: Vec<String>,
    /// Succeed the root in OLD_DIR (sealed with escrow): its quorum cross-signs the new root, and OUT/succession gets the cross-certificate, the old+new trust bundles and the steps
    #[arg(long, value_name = "OLD_DIR", requires = "shares")]
    pub successor_of: Option<PathBuf>,
    /// With --successor-of: a custodian's share file of the old root (repeat up to its threshold)
    #[arg(long = "share", value_name = "FILE", requires = "successor_of")]
    pub shares: Vec<PathBuf>,
    /// Print a JSON summary
    #[arg(long)]
    pub json: bool,
}

pub struct CeremonyRequest {
    pub plan: PathBuf,
    pub out: PathBuf,
    /// `--archive`: the certificates as one tar stream instead of OUT/certs.
    pub archive: Option<crate::ca::archive::StreamTarget>,
    /// `--k8s-manifest`: every Secret in one multi-document manifest.
    pub k8s_manifest: Option<crate::ca::archive::StreamTarget>,
    /// `--successor-of` and its `--share` files.
    pub successor_of: Option<(PathBuf, Vec<PathBuf>)>,
    pub escrow_passphrase: Option<PathBuf>,
    pub escrow_shares: Option<crate::ca::escrow::EscrowSpec>,
    pub progress: bool,
}

pub struct CeremonyReport {
    /// The issuing CA: the root, or with `[intermediate]` the intermediate.
    pub ca_dir: PathBuf,
    pub certs_dir: PathBuf,
    /// The root's SHA-256.
    pub fingerprint: String,
    pub summary: Summary,
    pub seal: SealReport,
    /// With `[intermediate]`: the root's directory and its seal, made right
    /// after it signed the intermediate.
    pub root: Option<(PathBuf, SealReport)>,
    /// With `--successor-of`: what succession wrote.
    pub succession: Option<Succession>,
    pub escrow: Option<(PathBuf, PathBuf)>,
    pub registry: Option<crate::commands::registry::RegistryReport>,
    /// What the `[vault]` bootstrap did, step by step.
    pub vault_steps: Vec<String>,
}

/// What `--successor-of` wrote into OUT/succession.
pub struct Succession {
    pub old_dir: PathBuf,
    pub cross: PathBuf,
    pub bundle: PathBuf,
    pub configmap: PathBuf,
    /// The cert-manager trust-manager `Bundle` of the same roots.
    pub trust_manager: PathBuf,
    /// The same roots as a password-less PKCS#12 truststore, for Java.
    pub p12: PathBuf,
}

/// `uca ceremony`: runs it, then says where everything is (or prints it as
/// JSON).
pub fn run(args: CeremonyArgs, out: &mut Stdout) -> Result<u8> {
    let archive = args
        .archive
        .as_deref()
        .map(crate::ca::archive::StreamTarget::from_arg);
    let k8s_manifest = args
        .k8s_manifest
        .as_deref()
        .map(crate::ca::archive::StreamTarget::from_arg);
    let stdout = Some(crate::ca::archive::StreamTarget::Stdout);
    if archive == stdout || k8s_manifest == stdout {
        out.report_on_stderr();
    }
    let report = execute(
        &CeremonyRequest {
            plan: args.plan,
            out: args.out,
            archive,
            k8s_manifest,
            successor_of: args.successor_of.map(|d| (d, args.shares)),
            escrow_passphrase: args.escrow_passphrase,
            escrow_shares: crate::ca::escrow::spec(
                args.escrow_shares.as_deref(),
                args.escrow_dir,
                &args.custodians,
                crate::ca::escrow::CustodianSource::Flag,
                false,
            )?,
            progress: !args.json,
        },
        &mut |_| {},
    )?;
    out.work_done(format!(
        "the ceremony is complete and {} is sealed",
        report.ca_dir.display()
    ));
    if args.json {
        report.render_json(out)?;
    } else {
        report.render_text(out)?;
    }
    Ok(0)
}

impl CeremonyReport {
    fn earliest_expiry(&self) -> Option<String> {
        self.summary.earliest_expiry.map(timefmt::rfc3339)
    }

    fn render_json(&self, out: &mut Stdout) -> Result<()> {
        let s = &self.summary;
        let doc = serde_json::json!({
            "ca": self.ca_dir.display().to_string(),
            "certs": self.certs_dir.display().to_string(),
            "issued": s.issued,
            "manifest_certificates": self.seal.certificates,
            "earliest_expiry": self.earliest_expiry(),
            "root_sha256": self.fingerprint,
            "sealed_at": self.seal.sealed_at,
            "seconds": s.elapsed.as_secs_f64(),
            "escrow": self.escrow.as_ref().map(|(p, k)| serde_json::json!({"passphrase": p.display().to_string(), "key": k.display().to_string()})),
            "root": self.root.as_ref().map(|(d, s)| serde_json::json!({"dir": d.display().to_string(), "sealed_at": s.sealed_at})),
            "succession": self.succession.as_ref().map(|sc| serde_json::json!({"old": sc.old_dir.display().to_string(), "cross_certificate": sc.cross.display().to_string(), "trust_bundle": sc.bundle.display().to_string(), "configmap": sc.configmap.display().to_string(), "trust_manager": sc.trust_manager.display().to_string(), "p12": sc.p12.display().to_string()})),
            "escrow_shares": self.root.as_ref().map_or(&self.seal, |(_, s)| s).escrow.as_ref().map(|(e, files)| serde_json::json!({"threshold": e.threshold, "shares": e.shares, "key": self.root.as_ref().map_or(&self.ca_dir, |(d, _)| d).join(&e.key_file).display().to_string(), "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(), "custodians": e.custodians})),
            "registry": self.registry.as_ref().map(|r| r.out.display().to_string()),
            "vault": self.vault_steps,
        });
        writeln!(out, "{doc}")
    }

    fn render_text(&self, out: &mut Stdout) -> Result<()> {
        let s = &self.summary;
        // The manifest also lists what [registry] and [vault] issued.
        let total = self.seal.certificates as u64;
        let sections = match total.saturating_sub(s.issued) {
            0 => String::new(),
            n => format!(
                " ({} from the plan's groups, {n} for its [registry]/[vault] sections)",
                s.issued
            ),
        };
        writeln!(
            out,
            "ceremony complete: {total} certificates{sections} in {:.2}s",
            s.elapsed.as_secs_f64()
        )?;
        writeln!(out, "  certificates   {}", self.certs_dir.display())?;
        writeln!(
            out,
            "  sealed CA      {} (sealed at {})",
            self.ca_dir.display(),
            self.seal.sealed_at
        )?;
        writeln!(
            out,
            "  manifest       {}/manifest.json + manifest.sha256 + manifest.sig",
            self.ca_dir.display()
        )?;
        if let Some(e) = self.earliest_expiry() {
            writeln!(out, "  earliest expiry {e}")?;
        }
        if let Some((dir, sealed)) = &self.root {
            writeln!(
                out,
                "  sealed root    {} (sealed at {} right after it signed {}: its only act)",
                dir.display(),
                sealed.sealed_at,
                self.ca_dir.display()
            )?;
        }
        writeln!(out, "  root SHA-256   {}", self.fingerprint)?;
        for step in &self.vault_steps {
            writeln!(out, "  vault          {step}")?;
        }
        // Escrow is the root's, wherever the root is.
        let (escrow_dir, escrow_seal) = match &self.root {
            Some((dir, sealed)) => (dir, sealed),
            None => (&self.ca_dir, &self.seal),
        };
        match (&self.escrow, &escrow_seal.escrow) {
            (Some((p, k)), _) => writeln!(
                out,
                "  escrow         key {} with passphrase in {}: move both offline now",
                k.display(),
                p.display()
            )?,
            (None, Some((e, files))) => {
                writeln!(
                    out,
                    "  escrow         key {}/{}, recoverable by any {} of {} custodians (uca recover):",
                    escrow_dir.display(),
                    e.key_file,
                    e.threshold,
                    e.shares
                )?;
                for (i, f) in files.iter().enumerate() {
                    writeln!(out, "  share          {} ({})", f.display(), e.holder(i))?;
                }
            }
            (None, None) => writeln!(out, "  CA key         existed only in memory and is gone")?,
        }
        if let Some(r) = &self.registry {
            r.print(out).map_err(|_| out.error())?;
        }
        if let Some(sc) = &self.succession {
            sc.print(out, &self.certs_dir)?;
        }
        Ok(())
    }
}

impl Succession {
    /// What was written, and the migration steps in order.
    fn print(&self, out: &mut Stdout, certs: &Path) -> Result<()> {
        let old = self.old_dir.display();
        writeln!(
            out,
            "  succession     {} cross-signed the new root: {}",
            old,
            self.cross.display()
        )?;
        writeln!(
            out,
            "  trust bundle   {} (old + new roots), {}, {}, {}",
            self.bundle.display(),
            self.configmap.display(),
            self.trust_manager.display(),
            self.p12.display()
        )?;
        writeln!(out, "migration, in order:")?;
        writeln!(out, "  1. distribute the bundle to every client: uca trust install for each root, or {} / the ConfigMap / the trust-manager Bundle; for Java, {} (a truststore without a password)", self.bundle.display(), self.p12.display())?;
        writeln!(out, "  2. deploy the certificates in {}; until every client has the new root, servers send {} after their chain.pem", certs.display(), self.cross.display())?;
        writeln!(out, "  3. re-bootstrap Vault/OpenBao under the new root (uca vault bootstrap --dir NEW_CA --mount NEW_MOUNT, or --force) and move its roles")?;
        writeln!(
            out,
            "  4. re-issue what the old root's CAs issued, from the new hierarchy"
        )?;
        writeln!(out, "  5. remove the old root from every trust store: uca trust uninstall {old}/ca.pem --store all; then stop sending the cross-certificate")?;
        Ok(())
    }
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

/// An archive or manifest file (`flag`) may go in OUT (which the ceremony
/// makes), but not where the ceremony writes its own directories, and it
/// must be new: a ceremony has no --force.
fn check_stream_file(
    req: &CeremonyRequest,
    flag: &'static str,
    stream: &crate::ca::archive::StreamTarget,
) -> Result<()> {
    let crate::ca::archive::StreamTarget::File(file) = stream else {
        return Ok(());
    };
    let refuse = |why: String| Err(Error::invalid(flag, file.display().to_string(), why));
    if std::fs::symlink_metadata(file).is_ok() {
        return refuse(
            "it already exists; a ceremony writes only new files: give another name".into(),
        );
    }
    let file_abs = fsutil::resolve(file)?;
    for dir in ["ca", "root", "certs", "succession", "registry"] {
        if file_abs.starts_with(fsutil::resolve(&req.out.join(dir))?) {
            return refuse(format!("it would be inside OUT/{dir}, which the ceremony writes; put it in OUT itself or elsewhere"));
        }
    }
    Ok(())
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

/// The plan's `[vault]` section as a bootstrap request, checked against the
/// root to be made, and Vault reached: all before the root exists.
/// An error about the plan's `[vault]`, naming its keys rather than the
/// flags of `uca vault bootstrap`, whose checks it shares.
fn vault_section_error(e: Error) -> Error {
    let text = flags_as_keys::<crate::ca::sections::VaultSettings>(&e.to_string());
    Error::msg(format!("plan [vault]: {text}"))
}

/// An error about the plan's `[registry]`, naming its keys rather than the
/// flags of `uca registry`, whose checks it shares.
fn registry_section_error(e: Error) -> Error {
    let mut text = e.to_string();
    for (flag, key) in [
        ("--client-auth", "client_auth"),
        ("--client", "clients"),
        ("--listen", "listen"),
        ("--san", "sans"),
        ("--key", "key"),
        ("--days", "days"),
    ] {
        text = flag_as_key(&text, flag, key);
    }
    Error::msg(format!("plan [registry]: {text}"))
}

fn check_vault_section(
    req: &CeremonyRequest,
    plan: &Plan,
    ca: &CaSection,
    ca_dir: &Path,
) -> Result<Option<BootstrapRequest>> {
    let Some(section) = &plan.vault else {
        return Ok(None);
    };
    let ca_not_after = Validity::days_from_now(ca.days)?.not_after;
    let base = fsutil::parent_of(&req.plan);
    let mut vault = section.clone();
    vault.resolve_paths(base);
    let vreq = BootstrapRequest {
        dir: ca_dir.to_path_buf(),
        vault,
        force: false,
        passphrase_file: None,
    };
    crate::commands::vault::bootstrap::validate(
        &vreq,
        &plan.ca_constraints,
        Some(ca.pathlen),
        ca_not_after,
    )
    .map_err(vault_section_error)?;
    if let Some(out) = vreq
        .vault
        .acme
        .k8s_out
        .as_deref()
        .filter(|_| vreq.vault.acme.acme)
    {
        crate::commands::vault::acme::check_k8s_for_new_root(out).map_err(vault_section_error)?;
    }
    // Fail now, not after the root exists, if Vault is unreachable,
    // sealed, or the token or namespace is wrong.
    crate::commands::vault::client::VaultClient::connect(&vreq.vault.conn)
        .and_then(|c| crate::commands::vault::bootstrap::preflight(&c).map(|_| ()))
        .map_err(vault_section_error)?;
    Ok(Some(vreq))
}

/// Stores the root in `ca_dir`: with `--escrow-passphrase`, the key
/// encrypted under a new passphrase written to that file first (a key is
/// never stored without it); without it, no key at all.
fn store_with_escrow(
    req: &CeremonyRequest,
    root: &root::NewRoot,
    ca_dir: &Path,
    escrow_file: Option<&PathBuf>,
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

/// The old root cross-signs the new one (recorded in the old root's
/// recovery log), and OUT/succession gets the cross-certificate and the
/// old+new trust bundles.
fn succeed(
    req: &CeremonyRequest,
    old: &CaStore,
    recovery: &crate::ca::recovery::Recovery,
    new_root: &CaStore,
) -> Result<Succession> {
    let dir = req.out.join("succession");
    fsutil::create_dir(&dir, 0o755)?;
    let cross = dir.join("cross.pem");
    crate::commands::recover::cross_sign_unlocked(old, recovery, &new_root.cert_der, &cross)?;
    let roots = [old.anchor_der(), new_root.anchor_der()]
        .iter()
        .map(|d| crate::pki::x509::pem_certificate(d))
        .collect::<String>();
    let bundle = dir.join("trust-bundle.pem");
    fsutil::write_atomic(&bundle, roots.as_bytes(), Mode::Public, false, true)?;
    let configmap = dir.join("trust-bundle-configmap.yaml");
    let yaml = crate::pki::formats::k8s_configmap("uca-roots", None, &roots);
    fsutil::write_atomic(&configmap, yaml.as_bytes(), Mode::Public, false, true)?;
    let trust_manager = dir.join("trust-bundle-trust-manager.yaml");
    let yaml = crate::commands::trust::bundle::trust_manager("uca-roots", None, &roots);
    fsutil::write_atomic(&trust_manager, yaml.as_bytes(), Mode::Public, false, true)?;
    // For Java: a truststore holds no secret, so it has no password, as
    // `uca trust bundle --format p12 --no-password` writes it.
    let p12 = dir.join("trust-bundle.p12");
    let trusted = crate::commands::trust::read_roots(&bundle)?;
    let entries: Vec<(&[u8], &str)> = trusted
        .iter()
        .map(|r| (r.der.as_slice(), r.alias.as_str()))
        .collect();
    let store = crate::pki::pkcs12::build_truststore(&entries, None)?;
    fsutil::write_atomic(&p12, &store, Mode::Public, false, true)?;
    Ok(Succession {
        old_dir: old.dir().to_path_buf(),
        cross,
        bundle,
        configmap,
        trust_manager,
        p12,
    })
}

/// The plan's `[intermediate]`: a new key whose CSR the root signs as an
/// issuing CA (path length 0, the plan's narrowed constraints), stored in
/// `ca_dir` with ca.pem = intermediate + root and no key on disk (the
/// ceremony holds it until the seal). Returns its store and signer.
fn make_intermediate(
    root_store: &CaStore,
    root_signer: &Signer,
    int: &crate::ca::plan::IntermediateSection,
    ca_dir: &Path,
) -> Result<(CaStore, Signer)> {
    use crate::ca::subordinate;
    let request = subordinate::make_request(&int.name, int.key, 0, vec![SanRule::Base])?;
    let prepared = subordinate::prepare_under(root_store, &request, &int.permit, int.days)?;
    let lock = root_store.ledger().lock()?;
    let never_stored = subordinate::StoredKey {
        encrypted: None,
        passphrase: None,
    };
    subordinate::sign_under(
        root_store,
        root_signer,
        &lock,
        prepared,
        &request,
        ca_dir,
        never_stored,
    )?;
    drop(lock);
    let store = CaStore::open(ca_dir)?;
    let signer = Signer::new(&store, request.key)?;
    Ok((store, signer))
}

/// The M-of-N escrow asked for by `--escrow-shares` or the plan's
/// `[escrow]` (not both, and neither with `--escrow-passphrase`).
fn escrow_shares(
    req: &CeremonyRequest,
    plan: &Plan,
) -> Result<Option<crate::ca::escrow::EscrowSpec>> {
    let Some(section) = &plan.escrow else {
        return Ok(req.escrow_shares.clone());
    };
    let conflict = if req.escrow_shares.is_some() {
        Some("--escrow-shares")
    } else if req.escrow_passphrase.is_some() {
        Some("--escrow-passphrase")
    } else {
        None
    };
    if let Some(flag) = conflict {
        return Err(Error::msg(format!(
            "{flag} and the plan's [escrow] section both say how to escrow the key; keep one"
        )));
    }
    crate::ca::escrow::spec(
        Some(&section.shares),
        Some(section.dir.clone()),
        &section.custodians,
        crate::ca::escrow::CustodianSource::Plan,
        false,
    )
}

/// The plan's certificates, every output checked (OUT is new or empty: no
/// target exists, and the CA is made later), and where the report says
/// they are.
fn validated_issuance(req: &CeremonyRequest, plan: Plan) -> Result<(Issuance, PathBuf)> {
    let certs_dir = req.out.join(CERTS_DIR);
    let issuance = match &req.archive {
        Some(archive) => {
            check_stream_file(req, "--archive", archive)?;
            Issuance::validate_archive(plan, Path::new(CERTS_DIR), archive.clone(), false)?
        }
        None => Issuance::validate(plan, &certs_dir, Existing::Refuse, false)?,
    };
    let issuance = match &req.k8s_manifest {
        Some(manifest) => {
            check_stream_file(req, "--k8s-manifest", manifest)?;
            issuance.with_k8s_manifest(manifest.clone())?
        }
        None => issuance,
    };
    let certs_dir = match &req.archive {
        Some(archive) => PathBuf::from(archive.shown()),
        None => certs_dir,
    };
    Ok((issuance, certs_dir))
}

/// The plan's `[registry]`, validated as `uca registry` would.
fn prepared_registry(
    req: &CeremonyRequest,
    plan: &Plan,
    ca: &CaSection,
) -> Result<Option<crate::commands::registry::Prepared>> {
    let Some(spec) = &plan.registry else {
        return Ok(None);
    };
    let ca_not_after = Validity::days_from_now(ca.days)?.not_after;
    let out = req.out.join("registry");
    let c = &plan.ca_constraints;
    let pathlen = Some(ca.pathlen);
    crate::commands::registry::prepare(c, ca_not_after, pathlen, spec, &out, false)
        .map(Some)
        .map_err(registry_section_error)
}

/// The old root's quorum, checked (and its key unlocked) before the new
/// root exists; the new root must lie within the old one's constraints.
fn unlocked_predecessor(
    req: &CeremonyRequest,
    ca: &CaSection,
) -> Result<Option<(CaStore, crate::ca::recovery::Recovery)>> {
    let Some((old_dir, shares)) = &req.successor_of else {
        return Ok(None);
    };
    let old = CaStore::open(old_dir)?;
    crate::ca::signing::intermediate_constraints(&old.constraints, &ca.permit).map_err(|e| {
        Error::msg(format!(
            "--successor-of {}: the new root's [ca] permit must lie within the old root's: {e}",
            old_dir.display()
        ))
    })?;
    let recovery = crate::ca::recovery::unlock(&old, shares)?;
    Ok(Some((old, recovery)))
}

/// The root the plan's `[ca]` describes, in memory.
fn new_root(plan: &Plan, ca: &CaSection) -> Result<root::NewRoot> {
    let validity = Validity::days_from_now(ca.days)?;
    if let Some(url) = &ca.crl_url {
        crate::pki::crl::check_url(url)?;
    }
    let mut root = root::make_root(
        &ca.name,
        ca.key,
        validity,
        ca.pathlen,
        plan.ca_constraints.0.clone(),
        vec![SanRule::Base],
    )?;
    root.settings.crl_url = ca.crl_url.clone();
    Ok(root)
}

/// Validates everything, then creates the root, issues the plan and seals.
pub fn execute(
    req: &CeremonyRequest,
    on_issued: &mut dyn FnMut(&IssuedCert),
) -> Result<CeremonyReport> {
    // 1. Validate everything: paths, plan, names, SANs, constraints, and
    // only then Vault over the network.
    out_is_free(&req.out)?;
    fsutil::check_dir_creatable("--out", &req.out)?;
    let escrow_file = check_escrow_file(req)?;
    let plan = Plan::load(&req.plan, None)?;
    let ca_dir = req.out.join("ca");
    let escrow_shares = escrow_shares(req, &plan)?;
    if let Some(spec) = &escrow_shares {
        crate::ca::escrow::check_spec(spec, &ca_dir)?;
        crate::ca::escrow::check_spec(spec, &req.out.join("root"))?;
    }
    let (issuance, certs_dir) = validated_issuance(req, plan)?;
    let plan = issuance.plan();
    let ca = plan
        .ca
        .as_ref()
        .expect("Plan::load requires [ca] for a ceremony");
    let registry = prepared_registry(req, plan, ca)?;
    let vault = check_vault_section(req, plan, ca, &ca_dir)?;
    let predecessor = unlocked_predecessor(req, ca)?;
    // 2. The root, in memory.
    let root = new_root(plan, ca)?;
    let never_stored = escrow_file.is_none() && escrow_shares.is_none();
    let escrow = escrow_shares.as_ref();
    let root_dir = match &plan.intermediate {
        Some(_) => req.out.join("root"),
        None => ca_dir.clone(),
    };
    store_with_escrow(req, &root, &root_dir, escrow_file.as_ref())?;
    let root_store = CaStore::open(&root_dir)?;
    let root_signer = Signer::new(&root_store, root.key)?;
    // Two tiers: the root signs the issuing CA, and is sealed at once.
    let (store, signer, root_sealed) = match &plan.intermediate {
        Some(int) => {
            let (store, signer) = make_intermediate(&root_store, &root_signer, int, &ca_dir)?;
            let lock = root_store.ledger().lock()?;
            let sealed =
                seal::seal_with(&root_store, root_signer, &lock, false, never_stored, escrow)?;
            (store, signer, Some((root_dir.clone(), sealed)))
        }
        None => (root_store, root_signer, None),
    };

    // 3. Issue everything, 4. seal.
    let lock = store.ledger().lock()?;
    let key = Key::Held(&signer, &lock);
    let summary =
        crate::commands::progress::issue(&issuance, &store, key, req.progress, on_issued)?;
    let registry = match &registry {
        Some(r) => Some(crate::commands::registry::issue(
            &store,
            Key::Held(&signer, &lock),
            r,
        )?),
        None => None,
    };
    let mut vault_steps = Vec::new();
    if let Some(vreq) = &vault {
        crate::commands::vault::bootstrap::execute(
            vreq,
            &store,
            Key::Held(&signer, &lock),
            &mut |line| vault_steps.push(line.to_string()),
        )
        .map_err(|e| Error::msg(format!("plan [vault] bootstrap failed, the CA was not sealed and its key is gone with this process: {e}")))?;
    }
    // The issuing intermediate's key was never stored, and its escrow, if
    // any, is the root's.
    let seal = match root_sealed {
        Some(_) => seal::seal_with(&store, signer, &lock, false, true, None)?,
        None => seal::seal_with(&store, signer, &lock, false, never_stored, escrow)?,
    };
    let new_root = CaStore::open(&root_dir)?;
    let fingerprint = new_root.fingerprint.clone();
    let succession = match &predecessor {
        Some((old, recovery)) => Some(succeed(req, old, recovery, &new_root)?),
        None => None,
    };
    Ok(CeremonyReport {
        ca_dir: ca_dir.clone(),
        certs_dir,
        fingerprint,
        summary,
        seal,
        escrow: escrow_file.map(|f| (f, root_dir.join(crate::ca::store::KEY_FILE))),
        root: root_sealed,
        succession,
        registry,
        vault_steps,
    })
}
