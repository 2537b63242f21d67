//! The issuing engine behind `uca issue` and `uca ceremony`: streams a
//! validated plan through every core in batches. Within a batch each
//! certificate's directory appears atomically (temporary directory + rename);
//! at the end of a batch one file-system sync makes the batch durable and only
//! then does the ledger record it. So a kill or a power loss never leaves the
//! ledger claiming a file that is not on disk, and memory stays flat however
//! large the plan is.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::formats::{self, CertMaterial, RenderedFile};
use crate::fsutil::Mode;
use crate::ledger::{LedgerEntry, LedgerLock};
use crate::output;
use crate::plan::{Plan, PlanItem};
use crate::profile;
use crate::store::{CaStore, Signer};
use crate::{timefmt, x509};

/// Certificates per batch: one file-system sync and one ledger append each.
const BATCH: usize = 1024;

/// What to do with an output directory that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// `uca issue NAME`: refuse unless `--force`.
    Refuse,
    /// A plan: skip certificates the ledger already records, re-issue ones a
    /// crashed run published but never recorded, refuse anything else
    /// unless `--force`.
    Resume,
}

pub struct RunOptions {
    pub existing: Existing,
    pub force: bool,
    pub progress: bool,
}

/// What was written for one certificate.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    pub name: String,
    pub target: PathBuf,
    pub serial: String,
    pub not_after: String,
    pub sans: Vec<String>,
    pub sha256: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub issued: u64,
    pub skipped: u64,
    pub earliest_expiry: Option<OffsetDateTime>,
    pub elapsed: Duration,
}

/// Maps output paths as given to the absolute paths the ledger records.
struct Paths {
    out: PathBuf,
    out_abs: PathBuf,
}

impl Paths {
    /// The ledger path of a certificate directory: its cert.pem (every
    /// format writes one), absolute.
    fn ledger_path(&self, target: &Path) -> String {
        let rel = target.strip_prefix(&self.out).unwrap_or(target);
        self.out_abs
            .join(rel)
            .join("cert.pem")
            .display()
            .to_string()
    }
}

/// Whether a directory holds a certificate issued by this CA (a leftover of
/// an interrupted run, safe to replace).
fn is_ours(target: &Path, ca_subject_raw: &[u8]) -> bool {
    let Ok(certs) = x509::read_certificates(&target.join("cert.pem")) else {
        return false;
    };
    certs
        .first()
        .and_then(|der| {
            x509::parse(der)
                .ok()
                .map(|c| c.issuer().as_raw() == ca_subject_raw)
        })
        .unwrap_or(false)
}

/// Decides, before anything is signed, what happens to each existing target.
/// Returns the targets to skip.
fn classify_existing(
    store: &CaStore,
    paths: &Paths,
    existing: &[PathBuf],
    recorded: &HashSet<String>,
    opts: &RunOptions,
) -> Result<HashSet<PathBuf>> {
    let mut skip = HashSet::new();
    let ca = x509::parse(&store.cert_der).map_err(Error::msg)?;
    let ca_subject = ca.subject().as_raw();
    for target in existing {
        match opts.existing {
            Existing::Refuse if !opts.force => return Err(Error::Exists(target.clone())),
            Existing::Refuse => {}
            Existing::Resume => {
                if opts.force {
                    continue;
                }
                if recorded.contains(&paths.ledger_path(target))
                    && target.join("cert.pem").is_file()
                {
                    skip.insert(target.clone());
                } else if !is_ours(target, ca_subject) {
                    return Err(Error::Exists(target.clone()));
                }
            }
        }
    }
    Ok(skip)
}

/// The CA's certificate in the forms every issued directory needs.
struct CaMaterial {
    der: Vec<u8>,
    pem: String,
    /// The issuer's name constraints, as its certificate states them.
    constraints: crate::constraints::NameConstraints,
}

fn issue_item(
    signer: &Signer,
    ca: &CaMaterial,
    paths: &Paths,
    item: &PlanItem<'_>,
    serial: [u8; 20],
    replace: bool,
    sync: bool,
) -> Result<(IssuedCert, LedgerEntry)> {
    let g = item.group;
    let (key, key_pair) = g.key.generate_with_pair()?;
    // The CN repeats NAME for humans. It is left out when NAME is an IP
    // address (OpenSSL and curl check a CN as a DNS name against the CA's
    // DNS name constraints and would refuse it) or longer than a CN may be;
    // the SANs then carry the identity and are marked critical.
    let is_ip = item.name.parse::<std::net::IpAddr>().is_ok();
    let subject = if !is_ip && item.name.len() <= 64 {
        profile::subject_cn(&item.name)
    } else {
        rcgen::DistinguishedName::new()
    };
    let names = profile::LeafNames::checked(subject, item.sans.clone(), &ca.constraints)
        .map_err(|e| Error::msg(format!("cannot issue '{}': {e}", item.name)))?;
    let mut params = profile::leaf_params(&names, g.profile, g.key, g.validity)?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params
        .signed_by(&key_pair, &signer.issuer)
        .map_err(|e| Error::msg(format!("cannot sign '{}': {e}", item.name)))?;
    let der = cert.der().as_ref();
    let cert_pem = x509::pem_certificate(der);
    let material = CertMaterial {
        name: &item.name,
        cert_der: der,
        cert_pem: &cert_pem,
        key: &key,
        ca_der: &ca.der,
        ca_pem: &ca.pem,
        pkcs12_password: g.pkcs12_password.as_ref(),
        k8s_namespace: &g.k8s_namespace,
    };
    let mut files = formats::render(&g.formats, &material)?;
    if !files.iter().any(|f| f.path == "cert.pem") {
        // Every directory has its leaf as cert.pem: the ledger and
        // `uca verify --manifest` find it there whatever the formats.
        files.push(RenderedFile {
            path: "cert.pem".into(),
            contents: cert_pem.clone().into_bytes().into(),
            mode: Mode::Public,
        });
    }
    output::publish_checked(&item.target, &files, replace, sync)?;
    let sha256 = x509::sha256_hex(der);
    let serial_hex = profile::serial_hex(&serial);
    let (subject, sans) = x509::recorded_names(der)?;
    let not_after = timefmt::rfc3339(g.validity.not_after);
    let entry = LedgerEntry {
        serial: serial_hex.clone(),
        subject,
        sans: sans.clone(),
        profile: g.profile.to_string(),
        key: g.key.to_string(),
        not_before: timefmt::rfc3339(g.validity.not_before),
        not_after: not_after.clone(),
        sha256: sha256.clone(),
        path: Some(paths.ledger_path(&item.target)),
        issued_at: timefmt::rfc3339(timefmt::now()),
    };
    let issued = IssuedCert {
        name: item.name.clone(),
        target: item.target.clone(),
        serial: serial_hex,
        not_after,
        sans,
        sha256,
    };
    Ok((issued, entry))
}

fn progress_bar(total: u64, enabled: bool) -> Option<indicatif::ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() || total < 2 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} certificates {per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Issues every certificate of `plan` under `out`, while holding the CA
/// lock. `existing` is what [`Plan::validate_all`] returned: every caller
/// validates the whole plan before unlocking the key, so it is not walked
/// twice. (A directory that appears in between is still never clobbered:
/// publishing refuses a non-empty target unless replacing is allowed.)
/// `on_issued` sees each certificate once it is durable and recorded.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    store: &CaStore,
    signer: &Signer,
    plan: &Plan,
    out: &Path,
    existing: &[PathBuf],
    lock: &LedgerLock,
    opts: &RunOptions,
    on_issued: &mut dyn FnMut(&IssuedCert),
) -> Result<Summary> {
    let started = Instant::now();
    // The CA may have been sealed while we waited for the lock.
    store.ensure_unsealed()?;
    let ledger = store.ledger();
    let mut used_serials = HashSet::new();
    let mut recorded = HashSet::new();
    ledger.scan(|e| {
        used_serials.insert(e.serial);
        if let Some(p) = e.path {
            recorded.insert(p);
        }
    })?;
    let paths = Paths {
        out: out.to_path_buf(),
        out_abs: crate::fsutil::resolve(out)?,
    };
    let skip = classify_existing(store, &paths, existing, &recorded, opts)?;
    for g in &plan.groups {
        let dir = out.join(&g.out);
        crate::fsutil::create_dir(&dir, 0o755)?;
        if opts.existing == Existing::Resume {
            output::remove_leftovers(&dir)?;
        }
    }
    drop(recorded);
    let replace = opts.force || opts.existing == Existing::Resume;
    let sync_each = plan.total <= 16;
    let ca = CaMaterial {
        der: store.cert_der.clone(),
        pem: store.cert_pem(),
        constraints: store.constraints.clone(),
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let bar = progress_bar(plan.total, opts.progress);
    let mut summary = Summary::default();
    let mut items = plan.items(out);
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for item in items.by_ref() {
            let item = item?;
            if skip.contains(&item.target) {
                summary.skipped += 1;
                if let Some(b) = &bar {
                    b.inc(1);
                }
                continue;
            }
            let serial = loop {
                let s = profile::random_serial_bytes();
                if used_serials.insert(profile::serial_hex(&s)) {
                    break s;
                }
            };
            batch.push((item, serial));
            if batch.len() == BATCH {
                break;
            }
        }
        if batch.is_empty() {
            break;
        }
        let chunk = batch.len().div_ceil(threads);
        let results: Vec<Result<(IssuedCert, LedgerEntry)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .chunks(chunk)
                .map(|part| {
                    let (ca, paths) = (&ca, &paths);
                    scope.spawn(move || {
                        part.iter()
                            .map(|(item, serial)| {
                                issue_item(signer, ca, paths, item, *serial, replace, sync_each)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("an issuing thread panicked"))
                .collect()
        });
        let mut entries = Vec::with_capacity(results.len());
        let mut done = Vec::with_capacity(results.len());
        let mut first_error = None;
        for r in results {
            match r {
                Ok((issued, entry)) => {
                    done.push(issued);
                    entries.push(entry);
                }
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(_) => {}
            }
        }
        // Durable first, recorded second: the ledger never claims a file
        // that a power loss could take away.
        if !entries.is_empty() {
            if !sync_each {
                output::sync_filesystem(&paths.out_abs)?;
            }
            ledger.append(lock, &entries)?;
        }
        for issued in &done {
            summary.issued += 1;
            if let Some(t) = timefmt::parse(&issued.not_after) {
                summary.earliest_expiry = Some(summary.earliest_expiry.map_or(t, |e| e.min(t)));
            }
            on_issued(issued);
        }
        if let Some(b) = &bar {
            b.inc(done.len() as u64);
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
