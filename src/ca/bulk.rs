//! The issuing engine behind `uca issue` and `uca ceremony`: streams a
//! validated plan through every core in batches. Within a batch each
//! certificate's directory appears atomically (temporary directory + rename);
//! at the end of a batch one file-system sync makes the batch durable and only
//! then does the ledger record it. So a kill or a power loss never leaves the
//! ledger claiming a file that is not on disk, and memory stays flat however
//! large the plan is.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::ca::archive::{ArchiveSink, Stream, StreamTarget};
use crate::ca::ledger::{self, Ledger, LedgerEntry, LedgerLock};
use crate::ca::plan::{Plan, PlanItem};
use crate::ca::store::{CaStore, Signer};
use crate::pki::formats::{self, CertMaterial};
use crate::pki::profile;
use crate::support::error::{Error, Result};
use crate::support::fsutil::Mode;
use crate::support::hashfilter::HashFilter;
use crate::support::output;
use crate::support::output::RenderedFile;
use crate::{pki::x509, support::timefmt};

/// The file the k8s format writes for each certificate.
const K8S_SECRET: &str = "secret.yaml";

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
    /// A plan, as [`Existing::Resume`], except that a recorded certificate
    /// of this CA that expires within `within` is issued again in place
    /// (`--renew-within`), with a new key unless `reuse_key` (`--reuse-key`:
    /// the key.pem beside it is certified again).
    Renew {
        within: time::Duration,
        reuse_key: bool,
    },
}

pub struct RunOptions {
    pub existing: Existing,
    pub force: bool,
    /// Write one tar stream instead of directories (`--archive`): `out`
    /// is then the members' root, never touched on disk.
    pub archive: Option<StreamTarget>,
    /// Write every Secret of the k8s format into one multi-document
    /// manifest instead of each certificate's secret.yaml (`--k8s-manifest`).
    pub k8s_manifest: Option<StreamTarget>,
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
    /// The serial of the certificate this one renewed, if it did.
    pub renews: Option<String>,
}

/// What a run reports as it goes, for whoever shows its progress.
pub enum Progress<'a> {
    /// Certificates the ledger already records, left in place.
    Skipped(u64),
    /// A certificate, once it is durable and recorded.
    Issued(&'a IssuedCert),
}

#[derive(Debug, Default)]
pub struct Summary {
    pub issued: u64,
    /// Of those issued, how many renewed an expiring certificate.
    pub renewed: u64,
    pub skipped: u64,
    /// Hidden directories named like uca's leftovers beside a certificate
    /// it wrote, left in place because they are not provably uca's.
    pub left_in_place: Vec<PathBuf>,
    pub earliest_expiry: Option<OffsetDateTime>,
    pub elapsed: Duration,
}

impl Summary {
    /// Counts one certificate issued.
    fn count(&mut self, issued: &IssuedCert) {
        self.issued += 1;
        self.renewed += u64::from(issued.renews.is_some());
        if let Some(t) = timefmt::parse(&issued.not_after) {
            self.earliest_expiry = Some(self.earliest_expiry.map_or(t, |e| e.min(t)));
        }
    }
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
        self.absolute(&target.join("cert.pem"))
    }

    /// A path under OUT as the ledger writes it.
    fn absolute(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.out).unwrap_or(path);
        self.out_abs.join(rel).display().to_string()
    }

    /// Refuses to remove `dir` if the ledger records a certificate inside it
    /// other than `except` (its own cert.pem, which a re-issue replaces).
    fn refuse_recorded_inside(
        &self,
        dir: &Path,
        except: Option<&str>,
        recorded: &BTreeSet<String>,
    ) -> Result<()> {
        let prefix = format!("{}/", self.absolute(dir));
        let inside = recorded
            .range(prefix.clone()..)
            .take_while(|p| p.starts_with(&prefix))
            .find(|p| Some(p.as_str()) != except);
        match inside {
            Some(p) => Err(Error::msg(format!(
                "{} holds {p}, a certificate the ledger records; uca never removes one, even with --force: choose another output directory",
                dir.display()
            ))),
            None => Ok(()),
        }
    }
}

/// Whether a directory holds a certificate issued by this run's issuer (a
/// leftover of an interrupted run, safe to replace).
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

/// What happens to the certificate directories that exist when the run
/// starts: kept as they are, or replaced. Any other directory that turns up
/// while the run is writing is never replaced.
#[derive(Default)]
struct ExistingTargets {
    skip: HashSet<PathBuf>,
    /// Each directory to replace, with the serial of the recorded
    /// certificate it renews (`None` for a leftover or `--force`).
    replace: HashMap<PathBuf, Option<String>>,
}

/// The serial of the certificate in `target`, if this CA issued it and it
/// expires before `deadline`.
fn expiring_serial(
    target: &Path,
    ca_subject_raw: &[u8],
    deadline: OffsetDateTime,
) -> Option<String> {
    let certs = x509::read_certificates(&target.join("cert.pem")).ok()?;
    let cert = x509::parse(certs.first()?).ok()?;
    let expiring = cert.issuer().as_raw() == ca_subject_raw
        && cert.validity().not_after.timestamp() <= deadline.unix_timestamp();
    expiring.then(|| x509::serial_hex_of(cert.raw_serial()))
}

/// Decides, before anything is signed and while holding the CA's lock, what
/// happens to each existing target.
fn classify_existing(
    signer: &Signer,
    paths: &Paths,
    existing: Vec<PathBuf>,
    recorded: &BTreeSet<String>,
    opts: &RunOptions,
) -> Result<ExistingTargets> {
    let mut decided = ExistingTargets::default();
    let issuer = x509::parse(&signer.cert_der).map_err(Error::msg)?;
    let ca_subject = issuer.subject().as_raw();
    let now = timefmt::now();
    for target in existing {
        let own = paths.ledger_path(&target);
        if opts.force {
            paths.refuse_recorded_inside(&target, Some(&own), recorded)?;
            crate::support::fsutil::check_replaceable(&target)?;
            decided.replace.insert(target, None);
            continue;
        }
        let renew_before = match opts.existing {
            Existing::Refuse => return Err(Error::Exists(target)),
            Existing::Resume => None,
            Existing::Renew { within, .. } => Some(now + within),
        };
        if recorded.contains(&own) && target.join("cert.pem").is_file() {
            match renew_before.and_then(|d| expiring_serial(&target, ca_subject, d)) {
                Some(old) => {
                    let key = target.join("key.pem");
                    if matches!(
                        opts.existing,
                        Existing::Renew {
                            reuse_key: true,
                            ..
                        }
                    ) && !key.is_file()
                    {
                        return Err(Error::invalid(
                            "--reuse-key",
                            key.display().to_string(),
                            "there is no key.pem to reuse (a group without the pem format); renew without --reuse-key",
                        ));
                    }
                    paths.refuse_recorded_inside(&target, Some(&own), recorded)?;
                    crate::support::fsutil::check_replaceable(&target)?;
                    decided.replace.insert(target, Some(old));
                }
                None => {
                    decided.skip.insert(target);
                }
            }
        } else if is_ours(&target, ca_subject) {
            // Published by a run that was killed before recording it.
            paths.refuse_recorded_inside(&target, None, recorded)?;
            crate::support::fsutil::check_replaceable(&target)?;
            decided.replace.insert(target, None);
        } else {
            return Err(Error::Exists(target));
        }
    }
    Ok(decided)
}

/// Removes what killed runs left beside the certificate directories this
/// run is about to write, when it is provably theirs
/// ([`output::remove_leftover`]); returns the look-alikes left in place.
fn clear_leftovers(
    plan: &Plan,
    paths: &Paths,
    skip: &HashSet<PathBuf>,
    recorded: &BTreeSet<String>,
) -> Result<Vec<PathBuf>> {
    let out = paths.out.as_path();
    let mut candidates: HashMap<(PathBuf, String), Vec<PathBuf>> = HashMap::new();
    let mut listed = HashSet::new();
    for g in &plan.groups {
        let dir = out.join(&g.out);
        if listed.insert(dir.clone()) {
            for (head, path) in output::leftover_candidates(&dir)? {
                candidates
                    .entry((dir.clone(), head))
                    .or_default()
                    .push(path);
            }
        }
    }
    let mut left = Vec::new();
    if candidates.is_empty() {
        return Ok(left);
    }
    for t in plan.targets(out) {
        let (_, name, target) = t?;
        if skip.contains(&target) {
            continue;
        }
        let component = target.file_name().unwrap_or_default().to_string_lossy();
        let key = (
            crate::support::fsutil::parent_of(&target).to_path_buf(),
            crate::support::fsutil::hidden_head(&component).to_string(),
        );
        let Some(found) = candidates.remove(&key) else {
            continue;
        };
        let allowed = formats::file_paths(&formats::ALL, &name);
        for leftover in found {
            let holds_recorded = paths
                .refuse_recorded_inside(&leftover, None, recorded)
                .is_err();
            if holds_recorded || !output::remove_leftover(&leftover, &allowed)? {
                left.push(leftover);
            }
        }
    }
    Ok(left)
}

/// The key of the certificate a renewal replaces (`--reuse-key`): its
/// key.pem, of the group's key type.
fn existing_key(item: &PlanItem<'_>) -> Result<(crate::pki::keys::PrivateKey, rcgen::KeyPair)> {
    let path = item.target.join("key.pem");
    let text = zeroize::Zeroizing::new(crate::support::fsutil::read_capped_text(
        &path,
        crate::support::fsutil::limits::SECRET,
        "read the key to reuse",
        "key file",
    )?);
    let der = pem::parse(text.as_bytes())
        .ok()
        .filter(|p| p.tag() == "PRIVATE KEY")
        .ok_or_else(|| {
            Error::invalid(
                "--reuse-key",
                path.display().to_string(),
                "expected the PKCS#8 PRIVATE KEY uca wrote",
            )
        })?;
    let key = crate::pki::keys::PrivateKey::from_pkcs8_der(der.contents())?;
    if key.key_type() != item.group.key {
        return Err(Error::invalid(
            "--reuse-key",
            path.display().to_string(),
            format!("it is a {} key and the plan asks for {}; renew without --reuse-key to change the key type", key.key_type(), item.group.key),
        ));
    }
    let pair = key.key_pair()?;
    Ok((key, pair))
}

/// The root and the issuing chain in the forms every issued directory needs.
struct CaMaterial {
    der: Vec<u8>,
    pem: String,
    /// The intermediates between a leaf and the root (none when the root signs).
    intermediates_der: Vec<Vec<u8>>,
    intermediates_pem: String,
    /// The issuer's name constraints, as its certificate states them.
    constraints: crate::pki::constraints::NameConstraints,
}

/// A certificate signed and rendered, not yet written anywhere.
struct Signed {
    files: Vec<RenderedFile>,
    /// Its Kubernetes Secret, when it goes into the run's one multi-document
    /// manifest (`--k8s-manifest`) rather than beside its files.
    secret: Option<RenderedFile>,
    issued: IssuedCert,
    /// Its ledger entry, without where it was written.
    entry: LedgerEntry,
}

fn sign_item(
    signer: &Signer,
    ca: &CaMaterial,
    item: &PlanItem<'_>,
    serial: [u8; 20],
    replace: Option<&Option<String>>,
    reuse_key: bool,
) -> Result<Signed> {
    let g = item.group;
    let (key, public_key) = match (replace, reuse_key) {
        (Some(Some(_)), true) => {
            let (key, pair) = existing_key(item)?;
            (key, crate::pki::keys::PublicKey::of(&pair))
        }
        _ => g.key.generate_for_leaf()?,
    };
    let cannot_issue = |e: Error| Error::msg(format!("cannot issue '{}': {e}", item.name));
    // Checked again against the constraints of the issuer's certificate.
    let names =
        profile::LeafNames::checked(item.subject.clone(), item.sans.clone(), &ca.constraints)
            .map_err(cannot_issue)?;
    let mut params = profile::leaf_params(&names, g.profile, &g.extra_usages, g.key, g.validity)?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params
        .signed_by(&public_key, &signer.issuer)
        .map_err(|e| Error::msg(format!("cannot sign '{}': {e}", item.name)))?;
    // A subject rcgen cannot write (an attribute type given twice) is put
    // in by uca and signed again; the ledger reads the names back below.
    let resubjected = match &g.subject {
        Some(template) if template.repeats() => {
            let name = template.render_der(&crate::pki::subject::SubjectValues {
                name: &item.name,
                group: g.plan_group_name(),
            })?;
            Some(x509::with_subject(cert.der(), &name, |tbs| {
                signer.sign_bytes(tbs)
            })?)
        }
        _ => None,
    };
    let der = resubjected.as_deref().unwrap_or(cert.der().as_ref());
    let cert_pem = x509::pem_certificate(der);
    let material = CertMaterial {
        name: &item.name,
        cert_der: der,
        cert_pem: &cert_pem,
        key: &key,
        intermediates_der: &ca.intermediates_der,
        intermediates_pem: &ca.intermediates_pem,
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
    let sha256 = x509::sha256_hex(der);
    let serial_hex = x509::serial_hex_of(&serial);
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
        path: None,
        issued_at: timefmt::rfc3339(timefmt::now()),
        replaces: replace.cloned().flatten(),
        archive: None,
        member: None,
        member_sha256: None,
    };
    let issued = IssuedCert {
        name: item.name.clone(),
        target: item.target.clone(),
        serial: serial_hex,
        not_after,
        sans,
        sha256,
        renews: entry.replaces.clone(),
    };
    Ok(Signed {
        files,
        secret: None,
        issued,
        entry,
    })
}

/// Moves the Secret out of the certificate's files (`--k8s-manifest`).
fn set_secret_aside(signed: &mut Signed) {
    if let Some(i) = signed.files.iter().position(|f| f.path == K8S_SECRET) {
        signed.secret = Some(signed.files.remove(i));
    }
}

/// Writes one signed certificate into the archive and says where in the
/// ledger entry.
fn archive_item(sink: &mut ArchiveSink, signed: &mut Signed) -> Result<()> {
    sink.write_dir(&signed.issued.target, &signed.files)?;
    let cert = signed
        .files
        .iter()
        .find(|f| f.path == "cert.pem")
        .expect("every certificate directory holds cert.pem");
    signed.entry.archive = Some(sink.recorded_name().to_string());
    signed.entry.member = Some(ArchiveSink::member(&signed.issued.target, "cert.pem"));
    signed.entry.member_sha256 = Some(x509::sha256_hex(&cert.contents));
    signed.files = Vec::new();
    Ok(())
}

/// What the ledger records before a run: the certificate directories and
/// the archives.
struct LedgerView {
    recorded: BTreeSet<String>,
    archives: HashSet<String>,
}

/// The serials the ledger has used, with room for `more`, and what it
/// records.
fn read_ledger(store: &CaStore, more: u64) -> Result<(HashFilter, LedgerView)> {
    let ledger = store.ledger();
    let mut used_serials =
        ledger::used_serials_with_room(ledger.most_entries().saturating_add(more));
    let mut view = LedgerView {
        recorded: BTreeSet::new(),
        archives: HashSet::new(),
    };
    ledger.scan(|e| {
        used_serials.insert(e.serial.as_str());
        if let Some(p) = e.path {
            view.recorded.insert(p);
        }
        if let Some(a) = e.archive {
            view.archives.insert(a);
        }
    })?;
    Ok((used_serials, view))
}

/// The next (at most [`BATCH`]) certificates to issue, each with a serial
/// neither the ledger nor this run has used. Those whose directory is to be
/// left in place are counted in `skipped` instead.
fn next_batch<'a>(
    items: &mut impl Iterator<Item = Result<PlanItem<'a>>>,
    skip: &HashSet<PathBuf>,
    used_serials: &mut HashFilter,
    skipped: &mut u64,
) -> Result<Vec<(PlanItem<'a>, [u8; 20])>> {
    let mut batch = Vec::with_capacity(BATCH);
    for item in items.by_ref() {
        let item = item?;
        if skip.contains(&item.target) {
            *skipped += 1;
            continue;
        }
        let serial = loop {
            let s = profile::random_serial_bytes();
            if used_serials.insert(x509::serial_hex_of(&s).as_str()) {
                break s;
            }
        };
        batch.push((item, serial));
        if batch.len() == BATCH {
            break;
        }
    }
    Ok(batch)
}

/// What the issuing side hands the recording side: a signed batch (with
/// how many certificates were skipped before it), or the plan's error.
type Handed = Result<(Vec<Issued>, u64)>;

/// What every certificate of one [`execute`] run shares.
struct Run<'a> {
    signer: &'a Signer,
    ca: CaMaterial,
    paths: Paths,
    /// Directories a crashed run published but never recorded, renewed
    /// ones (with the serial they renew), or `--force`.
    replace: HashMap<PathBuf, Option<String>>,
    /// Small runs sync each certificate; larger ones sync once per batch.
    sync_each: bool,
    /// Renewals keep their key (`--reuse-key`).
    reuse_key: bool,
    /// Directories are published by the issuing threads; an archive is
    /// written by the recording thread, in plan order, after them.
    to_archive: bool,
    /// Secrets go into one manifest (`--k8s-manifest`), in plan order.
    k8s_manifest: bool,
    threads: usize,
}

type Issued = Result<Signed>;

impl<'a> Run<'a> {
    fn new(
        store: &CaStore,
        signer: &'a Signer,
        total: u64,
        opts: &RunOptions,
        paths: Paths,
        replace: HashMap<PathBuf, Option<String>>,
        streams: &Streams,
    ) -> Run<'a> {
        Run {
            signer,
            ca: CaMaterial {
                der: store.anchor_der().to_vec(),
                pem: x509::pem_certificate(store.anchor_der()),
                intermediates_pem: signer
                    .intermediates
                    .iter()
                    .map(|d| x509::pem_certificate(d))
                    .collect(),
                intermediates_der: signer.intermediates.clone(),
                constraints: signer.constraints.clone(),
            },
            paths,
            replace,
            sync_each: total <= 16,
            reuse_key: matches!(
                opts.existing,
                Existing::Renew {
                    reuse_key: true,
                    ..
                }
            ),
            to_archive: streams.archive.is_some(),
            k8s_manifest: streams.k8s_manifest.is_some(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

impl Run<'_> {
    /// Issues `batch` on every core; the results keep the batch's order.
    /// Each thread takes the batch's next certificate as it finishes one,
    /// so a thread held up by the file system never leaves another idle
    /// at the end of the batch.
    fn issue_batch(&self, batch: &[(PlanItem<'_>, [u8; 20])]) -> Vec<Issued> {
        let claimed = std::sync::atomic::AtomicUsize::new(0);
        let mut slots: Vec<Option<Issued>> =
            std::iter::repeat_with(|| None).take(batch.len()).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.threads.min(batch.len()))
                .map(|_| {
                    scope.spawn(|| {
                        // The CA certificate, written once per thread and
                        // batch, then linked (see the README).
                        let mut shared = output::SharedCopies::new(self.ca.pem.as_bytes());
                        let mut done = Vec::new();
                        loop {
                            let i = claimed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((item, serial)) = batch.get(i) else {
                                break done;
                            };
                            done.push((i, self.issue_item(item, *serial, &mut shared)));
                        }
                    })
                })
                .collect();
            for handle in handles {
                for (i, issued) in handle.join().expect("an issuing thread panicked") {
                    slots[i] = Some(issued);
                }
            }
        });
        slots
            .into_iter()
            .map(|s| s.expect("every certificate of the batch was claimed"))
            .collect()
    }

    /// The issuing side of [`execute`]'s pipeline: signs each batch on
    /// every core while expanding the next, and hands it over. It stops
    /// after the batch in hand once `stop` is set, or when the recording
    /// side is gone.
    fn issue_ahead<'a>(
        &self,
        mut items: impl Iterator<Item = Result<PlanItem<'a>>>,
        skip: &HashSet<PathBuf>,
        mut used_serials: HashFilter,
        stop: &AtomicBool,
        hand: SyncSender<Handed>,
    ) {
        let mut skipped = 0;
        let mut expanded = next_batch(&mut items, skip, &mut used_serials, &mut skipped);
        loop {
            let batch = match expanded {
                Ok(batch) if batch.is_empty() => {
                    if skipped > 0 {
                        let _ = hand.send(Ok((Vec::new(), skipped)));
                    }
                    return;
                }
                Ok(batch) => batch,
                Err(e) => {
                    let _ = hand.send(Err(e));
                    return;
                }
            };
            let mut skipped_next = 0;
            let (signed, following) = std::thread::scope(|scope| {
                let signing = scope.spawn(|| self.issue_batch(&batch));
                let following = next_batch(&mut items, skip, &mut used_serials, &mut skipped_next);
                (
                    signing.join().expect("an issuing thread panicked"),
                    following,
                )
            });
            expanded = following;
            if hand.send(Ok((signed, skipped))).is_err() || stop.load(Ordering::Relaxed) {
                return;
            }
            skipped = skipped_next;
        }
    }

    /// Signs one certificate; for directories, also publishes it (an
    /// archive is written by the recording thread).
    fn issue_item(
        &self,
        item: &PlanItem<'_>,
        serial: [u8; 20],
        shared: &mut output::SharedCopies<'_>,
    ) -> Issued {
        let replace = self.replace.get(&item.target);
        let mut signed = sign_item(self.signer, &self.ca, item, serial, replace, self.reuse_key)?;
        if self.k8s_manifest {
            set_secret_aside(&mut signed);
        }
        if self.to_archive {
            return Ok(signed);
        }
        output::publish_checked(
            &item.target,
            &signed.files,
            replace.is_some(),
            self.sync_each,
            Some(shared),
        )?;
        signed.entry.path = Some(self.paths.ledger_path(&item.target));
        // Written: the key material need not wait for the batch in memory.
        signed.files = Vec::new();
        Ok(signed)
    }

    /// Makes a batch's certificates durable (writing them into the archive
    /// first, if there is one), then records them in the ledger. Returns
    /// them with the batch's first error, if any, which the caller reports
    /// after the certificates that did succeed.
    fn record_batch(
        &self,
        ledger: &Ledger,
        lock: &LedgerLock,
        streams: &mut Streams,
        results: Vec<Issued>,
    ) -> Result<(Vec<IssuedCert>, Option<Error>)> {
        let mut entries = Vec::with_capacity(results.len());
        let mut done = Vec::with_capacity(results.len());
        let mut first_error = None;
        for r in results {
            match r {
                Ok(mut signed) => {
                    if let Some(sink) = streams.archive.as_mut() {
                        archive_item(sink, &mut signed)?;
                    }
                    if let (Some(manifest), Some(secret)) =
                        (streams.k8s_manifest.as_mut(), signed.secret.take())
                    {
                        manifest.write_document(&secret.contents)?;
                    }
                    done.push(signed.issued);
                    entries.push(signed.entry);
                }
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(_) => {}
            }
        }
        // Durable first, recorded second: the ledger never claims a file
        // that a power loss could take away.
        if !entries.is_empty() {
            match streams.archive.as_mut() {
                Some(sink) => sink.flush()?,
                None if !self.sync_each => output::sync_filesystem(&self.paths.out_abs)?,
                None => {}
            }
            if let Some(manifest) = streams.k8s_manifest.as_mut() {
                manifest.flush()?;
            }
            ledger.append(lock, &entries)?;
        }
        Ok((done, first_error))
    }
}

/// The stream outputs of a run, written by the recording thread.
#[derive(Default)]
struct Streams {
    archive: Option<ArchiveSink>,
    k8s_manifest: Option<Stream>,
}

impl Streams {
    /// Ends them: the archive's end marker, everything flushed and synced.
    fn finish(self) -> Result<()> {
        if let Some(sink) = self.archive {
            sink.finish()?;
        }
        if let Some(mut manifest) = self.k8s_manifest {
            manifest.flush()?;
        }
        Ok(())
    }
}

/// The certificate directories that exist as the run starts, decided under
/// the lock (none for an archive: it is new, or replaced with `--force`),
/// and the stream outputs opened.
struct Prepared {
    skip: HashSet<PathBuf>,
    replace: HashMap<PathBuf, Option<String>>,
    streams: Streams,
}

fn prepare_output(
    ledger: LedgerView,
    signer: &Signer,
    plan: &Plan,
    paths: &Paths,
    opts: &RunOptions,
    summary: &mut Summary,
) -> Result<Prepared> {
    let mut prepared = match &opts.archive {
        Some(target) => {
            let mtime = timefmt::now().unix_timestamp().max(0) as u64;
            let sink = ArchiveSink::open(target, opts.force, &ledger.archives, mtime)?;
            Prepared {
                skip: HashSet::new(),
                replace: HashMap::new(),
                streams: Streams {
                    archive: Some(sink),
                    k8s_manifest: None,
                },
            }
        }
        None => prepare_directories(ledger, signer, plan, paths, opts, summary)?,
    };
    if let Some(target) = &opts.k8s_manifest {
        match Stream::open(target, opts.force, false) {
            Ok(manifest) => prepared.streams.k8s_manifest = Some(manifest),
            Err(e) => {
                // Nothing is left behind: the archive this run just made goes.
                if let Some(archive) = prepared.streams.archive.take() {
                    archive.discard();
                }
                return Err(e);
            }
        }
    }
    Ok(prepared)
}

fn prepare_directories(
    ledger: LedgerView,
    signer: &Signer,
    plan: &Plan,
    paths: &Paths,
    opts: &RunOptions,
    summary: &mut Summary,
) -> Result<Prepared> {
    let recorded = ledger.recorded;
    let existing = plan.existing_targets(&paths.out)?;
    let ExistingTargets { skip, replace } =
        classify_existing(signer, paths, existing, &recorded, opts)?;
    // Before anything is made: the manifest must list the whole plan.
    if let (Some(target), Some(kept)) = (&opts.k8s_manifest, skip.iter().next()) {
        return Err(Error::invalid(
            "--k8s-manifest",
            target.shown(),
            format!("it holds every Secret of the plan, but {} was issued by an earlier run and would be missing: issue into a new OUT, or with --force to issue everything again", kept.display()),
        ));
    }
    if opts.existing != Existing::Refuse {
        summary.left_in_place = clear_leftovers(plan, paths, &skip, &recorded)?;
    }
    for g in &plan.groups {
        crate::support::fsutil::create_dir(&paths.out.join(&g.out), 0o755)?;
    }
    Ok(Prepared {
        skip,
        replace,
        streams: Streams::default(),
    })
}

/// Issues every certificate of `plan` under `out` (or into the archive of
/// `opts`), while holding the CA lock. Every caller has validated the whole
/// plan ([`Plan::validate_all`]) before unlocking the key; which
/// certificate directories exist is decided again here, under the lock, so
/// that two runs of one plan never issue the same certificate twice. A
/// directory that was not there then is never replaced.
/// `on_progress` hears of each certificate once it is durable and recorded,
/// and of those left in place.
pub fn execute(
    store: &CaStore,
    signer: &Signer,
    plan: &Plan,
    out: &Path,
    lock: &LedgerLock,
    opts: &RunOptions,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Summary> {
    let started = Instant::now();
    // The CA may have been sealed while we waited for the lock.
    store.ensure_unsealed()?;
    let (used_serials, ledger_view) = read_ledger(store, plan.total)?;
    let paths = Paths {
        out: out.to_path_buf(),
        out_abs: match opts.archive {
            Some(_) => out.to_path_buf(),
            None => crate::support::fsutil::resolve(out)?,
        },
    };
    let mut summary = Summary::default();
    let Prepared {
        skip,
        replace,
        mut streams,
    } = prepare_output(ledger_view, signer, plan, &paths, opts, &mut summary)?;
    let run = Run::new(store, signer, plan.total, opts, paths, replace, &streams);
    let ledger = store.ledger();
    let items = plan.items(out);
    // A pipeline: one thread expands the plan and signs (for directories,
    // also writes) batch after batch on every core, while this thread makes
    // each finished batch durable (one sync, or the archive written and
    // synced) and records it. The issuing side may run one batch ahead, so
    // a slow sync does not stop it.
    let stop = AtomicBool::new(false);
    let (hand, handed) = std::sync::mpsc::sync_channel::<Handed>(1);
    std::thread::scope(|scope| -> Result<()> {
        let (run, skip, stop) = (&run, &skip, &stop);
        scope.spawn(move || run.issue_ahead(items, skip, used_serials, stop, hand));
        // The first error in plan order, reported once every batch the
        // issuing side finished is recorded: for directories they are
        // already published. If recording itself fails, the receiver goes
        // with this closure and the issuing side stops at its next hand-over.
        let mut failure = None;
        for received in handed {
            let (signed, skipped) = match received {
                Ok(handed) => handed,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            };
            if skipped > 0 {
                summary.skipped += skipped;
                on_progress(Progress::Skipped(skipped));
            }
            let recorded = run.record_batch(&ledger, lock, &mut streams, signed);
            let (done, first_error) =
                recorded.inspect_err(|_| stop.store(true, Ordering::Relaxed))?;
            for issued in &done {
                summary.count(issued);
                on_progress(Progress::Issued(issued));
            }
            if let Some(e) = first_error {
                failure.get_or_insert(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
        failure.map_or(Ok(()), Err)
    })?;
    streams.finish()?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}
