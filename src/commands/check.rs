//! `uca check PATH...`: which certificates expire soon, for people and for
//! monitoring. The exit status follows the Nagios convention: 0 all OK,
//! 1 some WARN, 2 some EXPIRED, 3 could not check (a path is missing, a file
//! is unreadable, or there was nothing to check). Problems are reported on
//! stderr, but every certificate that could be read is still reported.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::pki::x509;
use crate::support::error::{Error, Result};
use crate::support::stdout::Stdout;
use crate::support::timefmt::{self, compact_span, rfc3339};

/// Files considered when walking a directory. Files named on the command
/// line are read whatever their name.
const EXTENSIONS: [&str; 4] = ["pem", "crt", "cert", "crl"];

pub const EXIT_UNCHECKED: u8 = 3;

/// Files read in parallel before their results are recorded.
const READ_BATCH: usize = 4096;

// `uca check`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Certificate or CRL files, or directories (searched for .pem, .crt, .cert and .crl files; a CRL is due at its next update)
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Warn when a certificate expires within this period (e.g. 30d, 12h, 2w)
    #[arg(long, value_name = "PERIOD", default_value = "30d")]
    pub within: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// The plan issued into the first PATH (its OUT): its certificates due within the period come first, marked RENEW, as `uca issue --plan PLAN --renew-within PERIOD` would renew them
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
}

/// `uca check`: prints the report and returns the monitoring status.
pub fn run(args: CheckArgs, out: &mut Stdout) -> Result<u8> {
    let renewal = match args
        .plan
        .as_ref()
        .map(|p| plan_certificates(p, &args.paths[0]))
    {
        Some(Ok(r)) => Some(r),
        // Not exit 1: that would read as WARN to a monitoring system.
        Some(Err(e)) => {
            crate::support::stdout::to_stderr(&format!("uca: error: {e}"));
            return Ok(EXIT_UNCHECKED);
        }
        None => None,
    };
    let (status, report) = execute_with(&args.paths, &args.within, args.json, renewal.as_ref())?;
    out.print(&report)?;
    Ok(status)
}

/// The cert.pem of every certificate `plan` issues into `out`, as check
/// finds them there. The plan is read for its layout only: the names and
/// lifetimes were the issuing CA's to check.
fn plan_certificates(plan: &Path, out: &Path) -> Result<(PathBuf, HashSet<String>)> {
    let unbounded = crate::pki::constraints::NameConstraints::default();
    let far = OffsetDateTime::now_utc() + Duration::days(36_600);
    let plan_file = crate::ca::plan::Plan::load(plan, Some((&unbounded, far)))?;
    let mut files = HashSet::new();
    for target in plan_file.targets(out) {
        let (_, _, dir) = target?;
        files.insert(dir.join("cert.pem").display().to_string());
    }
    Ok((plan.to_path_buf(), files))
}

/// Checks `paths`; returns the exit status and the report for standard
/// output. Problems go to standard error as they are found.
pub fn execute(paths: &[PathBuf], within: &str, json: bool) -> Result<(u8, String)> {
    execute_with(paths, within, json, None)
}

/// [`execute`], with the certificates of a plan (`--plan`) listed first
/// when due, marked RENEW.
fn execute_with(
    paths: &[PathBuf],
    within: &str,
    json: bool,
    renewal: Option<&(PathBuf, HashSet<String>)>,
) -> Result<(u8, String)> {
    let period = match timefmt::parse_period("--within value", within) {
        Ok(p) => p,
        Err(e) => {
            // Not exit 1: that would read as WARN to a monitoring system.
            crate::support::stdout::to_stderr(&format!("uca: error: {e}"));
            return Ok((EXIT_UNCHECKED, String::new()));
        }
    };
    // Whole seconds, like certificate times: days_left then rounds exactly.
    let now = crate::support::timefmt::now()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    let mut scan = Scan::of(paths, READ_BATCH);
    if scan.found.is_empty() && scan.errors.is_empty() {
        let list = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        scan.errors.push(format!("no certificate found in {list}"));
    }
    for e in &scan.errors {
        crate::support::stdout::to_stderr(&format!("uca: error: {e}"));
    }

    let mut rows: Vec<Row> = scan
        .found
        .iter()
        .map(|f| Row::new(f, now, period))
        .collect();
    flag_outliving_intermediates(&scan.found, &mut rows);
    if let Some((_, plan_files)) = renewal {
        for r in rows.iter_mut() {
            r.renew = r.status != Status::Ok
                && r.reason != Some("outlives_issuer")
                && plan_files.contains(&r.path);
        }
    }
    // The renewal set, then most urgent first: the lines an operator needs.
    rows.sort_by(|a, b| {
        b.renew
            .cmp(&a.renew)
            .then_with(|| a.not_after_t.cmp(&b.not_after_t))
            .then_with(|| a.path.cmp(&b.path))
    });
    let summary = Summary::new(&rows, &scan.errors, within, now);

    let out = if json {
        let doc = JsonReport {
            certificates: &rows,
            errors: &scan.errors,
            summary: &summary,
        };
        let mut s = serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::msg(format!("cannot encode JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        let mut text = String::new();
        if let Some((plan, _)) = renewal {
            let n = rows.iter().filter(|r| r.renew).count();
            // The whole command: issue needs the CA and the plan's OUT too.
            text = format!(
                "RENEW: {n} certificate{} of {} due within {within}: uca issue --dir CA_DIR --out {} --plan {} --renew-within {within} (CA_DIR: the CA that issued them; a sealed root's are re-issued from its Vault/OpenBao intermediate)\n",
                if n == 1 { "" } else { "s" },
                plan.display(),
                paths[0].display(),
                plan.display()
            );
        }
        text + &render_text(&rows, &summary)
    };
    Ok((summary.exit_code, out))
}

struct Found {
    sha256: String,
    path: PathBuf,
    subject: String,
    /// The raw subject and issuer names, to find a CA's issuer among the
    /// certificates checked.
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    is_ca: bool,
    serial: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

/// What the walk met, in walk order: a file to read (and whether the user
/// named it) or a problem to report.
enum Visit {
    File(PathBuf, bool),
    Problem(String),
}

/// One PEM block of a file, as a reading thread saw it.
enum Block {
    /// A certificate, read for the first time by this thread.
    Certificate(Found),
    /// A certificate this thread already read (a chain repeats the leaf and
    /// the CA), so not parsed again.
    Repeated,
    /// A certificate block that does not parse.
    Malformed(String),
}

/// What reading the files found, in walk order.
#[derive(Default)]
struct Scan {
    found: Vec<Found>,
    seen: HashSet<String>,
    errors: Vec<String>,
}

/// Lists the files to read, a batch at a time: each full batch goes to the
/// readers while the walk goes on.
struct Walk {
    visits: Vec<Visit>,
    batch: usize,
    to_readers: std::sync::mpsc::SyncSender<Vec<Visit>>,
}

impl Scan {
    /// Walks `paths` in one thread while the files it lists are read, a
    /// batch at a time, on every core: the same report as walking first
    /// and reading one file at a time.
    fn of(paths: &[PathBuf], batch: usize) -> Scan {
        let mut scan = Scan::default();
        let (to_readers, batches) = std::sync::mpsc::sync_channel(2);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut walk = Walk {
                    visits: Vec::new(),
                    batch,
                    to_readers,
                };
                for p in paths {
                    walk.visit(p, true);
                }
                walk.send();
            });
            for part in batches {
                scan.read_files(part);
            }
        });
        scan
    }
}

impl Walk {
    /// Hands the batch so far to the readers (a closed channel means the
    /// reading side is gone: nothing left to do).
    fn send(&mut self) {
        if !self.visits.is_empty() {
            let _ = self.to_readers.send(std::mem::take(&mut self.visits));
        }
    }

    fn push(&mut self, visit: Visit) {
        self.visits.push(visit);
        if self.visits.len() >= self.batch {
            self.send();
        }
    }

    /// `explicit` paths were named by the user: they may be symlinks to
    /// directories and any file name; below them, directory symlinks are
    /// not followed (no loops, no escaping the tree) and only certificate
    /// file names are read.
    fn visit(&mut self, path: &Path, explicit: bool) {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit => {
                return self.problem(format!("{} does not exist", path.display()));
            }
            Err(e) => return self.problem(Error::io("read", path, e).to_string()),
        };
        if meta.is_dir() {
            if explicit || !is_symlink(path) {
                self.walk(path);
            }
        } else if explicit || (meta.is_file() && has_cert_extension(path)) {
            // Below a named directory only regular files are read: opening
            // a FIFO there would wait for a writer forever.
            self.push(Visit::File(path.to_path_buf(), explicit));
        }
    }

    fn problem(&mut self, message: String) {
        self.push(Visit::Problem(message));
    }

    fn walk(&mut self, dir: &Path) {
        let entries = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => return self.problem(Error::io("read the directory", dir, e).to_string()),
        };
        // Sorted, so "the first path it was found at" is the same every run.
        let mut listed: Vec<(PathBuf, Option<fs::FileType>)> = entries
            .filter_map(|e| e.ok().map(|e| (e.path(), e.file_type().ok())))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, kind) in listed {
            match kind {
                // The directory entry's own type (not following a symlink)
                // settles the common cases without a stat of every file.
                Some(k) if k.is_dir() => self.walk(&path),
                Some(k) if k.is_file() => {
                    if has_cert_extension(&path) {
                        self.push(Visit::File(path, false));
                    }
                }
                _ => self.visit(&path, false),
            }
        }
    }
}

impl Scan {
    /// Reads one batch of the walk's files on every core and records the
    /// results in walk order: the same report as reading them one by one.
    fn read_files(&mut self, part: Vec<Visit>) {
        // CRLs are few and read here, in order; certificates in parallel.
        let files: Vec<&Path> = part
            .iter()
            .filter_map(|v| match v {
                Visit::File(path, _) if !is_crl(path) => Some(path.as_path()),
                _ => None,
            })
            .collect();
        let mut read = read_in_parallel(&files).into_iter();
        for visit in &part {
            match visit {
                Visit::Problem(message) => self.errors.push(message.clone()),
                Visit::File(path, _) if is_crl(path) => self.crl_file(path),
                Visit::File(path, explicit) => {
                    let blocks = read.next().expect("one result per file");
                    self.record(path, *explicit, blocks);
                }
            }
        }
    }

    fn record(&mut self, path: &Path, explicit: bool, blocks: Result<Vec<Block>>) {
        let blocks = match blocks {
            Ok(b) => b,
            Err(e) => return self.errors.push(e.to_string()),
        };
        let mut certificates = 0;
        for b in blocks {
            match b {
                Block::Certificate(found) => {
                    certificates += 1;
                    if self.seen.insert(found.sha256.clone()) {
                        self.found.push(found);
                    }
                }
                // Its first reading came earlier in walk order, so it is
                // already in `seen`.
                Block::Repeated => certificates += 1,
                Block::Malformed(message) => self.errors.push(message),
            }
        }
        if certificates == 0 && explicit {
            self.errors
                .push(format!("no certificate in {}", path.display()));
        }
    }
}

impl Scan {
    /// A CRL is due at its nextUpdate: after it, verifiers that check
    /// revocation reject every certificate it covers.
    fn crl_file(&mut self, path: &Path) {
        let limit = crate::support::fsutil::limits::PEM;
        let read = crate::support::fsutil::read_capped(path, limit, "read", "CRL file").and_then(
            |bytes| {
                let facts = crate::pki::crl::read(&bytes)
                    .map_err(|why| Error::invalid("CRL file", path.display().to_string(), why))?;
                Ok((x509::sha256_hex(&bytes), facts))
            },
        );
        let (sha256, facts) = match read {
            Ok(f) => f,
            Err(e) => return self.errors.push(e.to_string()),
        };
        let Some(next_update) = facts.next_update else {
            return self.errors.push(format!(
                "{}: the CRL has no next update, so no verifier can tell when it is stale",
                path.display()
            ));
        };
        let number = facts.number.map_or(String::new(), |n| format!(" #{n}"));
        self.found.push(Found {
            sha256,
            path: path.to_path_buf(),
            subject: format!("CRL{number} of {}", facts.issuer),
            subject_raw: Vec::new(),
            issuer_raw: Vec::new(),
            is_ca: false,
            serial: String::new(),
            not_before: facts.this_update,
            not_after: next_update,
        });
    }
}

/// Reads `files` on every core, each thread a contiguous share, and returns
/// their blocks in the order of `files`.
fn read_in_parallel(files: &[&Path]) -> Vec<Result<Vec<Block>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut parsed = HashSet::new();
                    part.iter()
                        .map(|path| read_file(path, &mut parsed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a certificate-reading thread panicked"))
            .collect()
    })
}

/// The blocks of one file; `parsed` holds the SHA-256 of every certificate
/// this thread has already parsed, which are not parsed again.
fn read_file(path: &Path, parsed: &mut HashSet<String>) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    for (i, b) in x509::read_blocks(path)?.iter().enumerate() {
        if !matches!(b.tag(), "CERTIFICATE" | "DER") {
            continue; // keys, CSRs: nothing expires
        }
        let sha256 = x509::sha256_hex(b.contents());
        if parsed.contains(&sha256) {
            blocks.push(Block::Repeated);
            continue;
        }
        match x509::parse(b.contents()) {
            Ok(cert) => {
                parsed.insert(sha256.clone());
                blocks.push(Block::Certificate(Found {
                    sha256,
                    path: path.to_path_buf(),
                    subject: subject_or_san(&cert),
                    subject_raw: cert.subject().as_raw().to_vec(),
                    issuer_raw: cert.issuer().as_raw().to_vec(),
                    is_ca: x509::is_ca(&cert),
                    serial: x509::serial_hex(&cert),
                    not_before: x509::not_before(&cert),
                    not_after: x509::not_after(&cert),
                }));
            }
            Err(why) => blocks.push(Block::Malformed(
                Error::invalid(
                    "certificate file",
                    path.display().to_string(),
                    format!("block {}: {why}", i + 1),
                )
                .to_string(),
            )),
        }
    }
    Ok(blocks)
}

fn is_crl(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("crl"))
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

fn has_cert_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// A certificate with an empty subject (SANs only) is named by its first SAN.
fn subject_or_san(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let subject = cert.subject().to_string();
    if !subject.is_empty() {
        return subject;
    }
    x509::sans(cert)
        .into_iter()
        .next()
        .unwrap_or_else(|| "(no subject)".into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum Status {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "EXPIRED")]
    Expired,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Expired => "EXPIRED",
        }
    }
}

#[derive(Serialize)]
struct Row {
    status: Status,
    /// Why a WARN is a WARN: `expires_soon`, `not_yet_valid` or
    /// `outlives_issuer` (a CA certificate that expires after its issuer).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    subject: String,
    serial: String,
    not_before: String,
    not_after: String,
    /// Whole days left, rounded down: -1 just after expiry.
    days_left: i64,
    seconds_left: i64,
    path: String,
    sha256: String,
    /// With `--plan`: due and one of the plan's, so a renewal run renews it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    renew: bool,
    #[serde(skip)]
    not_after_t: OffsetDateTime,
    #[serde(skip)]
    when: String,
}

impl Row {
    fn new(f: &Found, now: OffsetDateTime, period: Duration) -> Row {
        let left = f.not_after - now;
        let (status, reason, when) = if now > f.not_after {
            (Status::Expired, None, format!("{} ago", compact_span(left)))
        } else if now < f.not_before {
            (
                Status::Warn,
                Some("not_yet_valid"),
                format!("starts in {}", compact_span(f.not_before - now)),
            )
        } else if left < period {
            (
                Status::Warn,
                Some("expires_soon"),
                format!("{} left", compact_span(left)),
            )
        } else {
            (Status::Ok, None, format!("{} left", compact_span(left)))
        };
        Row {
            status,
            reason,
            subject: f.subject.clone(),
            serial: f.serial.clone(),
            not_before: rfc3339(f.not_before),
            not_after: rfc3339(f.not_after),
            days_left: left.whole_seconds().div_euclid(86_400),
            seconds_left: left.whole_seconds(),
            path: f.path.display().to_string(),
            sha256: f.sha256.clone(),
            not_after_t: f.not_after,
            renew: false,
            when,
        }
    }
}

/// A CA certificate that expires after the CA that issued it (both among
/// the certificates checked) is a WARN: from its issuer's expiry on, every
/// chain through it fails, whatever its own date says.
fn flag_outliving_intermediates(found: &[Found], rows: &mut [Row]) {
    for (i, f) in found.iter().enumerate() {
        if !f.is_ca || f.subject_raw == f.issuer_raw || rows[i].status != Status::Ok {
            continue;
        }
        let issuer = found
            .iter()
            .filter(|g| g.is_ca && g.subject_raw == f.issuer_raw)
            .map(|g| g.not_after)
            .max();
        if let Some(issuer_end) = issuer.filter(|end| *end < f.not_after) {
            rows[i].status = Status::Warn;
            rows[i].reason = Some("outlives_issuer");
            rows[i].when = format!("outlives its issuer, which expires {}", rfc3339(issuer_end));
        }
    }
}

#[derive(Serialize)]
struct Summary {
    total: usize,
    ok: usize,
    warn: usize,
    expired: usize,
    errors: usize,
    within: String,
    checked_at: String,
    exit_code: u8,
}

impl Summary {
    fn new(rows: &[Row], errors: &[String], within: &str, now: OffsetDateTime) -> Summary {
        let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
        let (ok, warn, expired) = (
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Expired),
        );
        // "Could not check" wins: a missing file may hide the worst certificate.
        let exit_code = if !errors.is_empty() {
            EXIT_UNCHECKED
        } else if expired > 0 {
            2
        } else if warn > 0 {
            1
        } else {
            0
        };
        Summary {
            total: rows.len(),
            ok,
            warn,
            expired,
            errors: errors.len(),
            within: within.to_string(),
            checked_at: rfc3339(now),
            exit_code,
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    certificates: &'a [Row],
    errors: &'a [String],
    summary: &'a Summary,
}

fn render_text(rows: &[Row], s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let when_w = rows.iter().map(|r| r.when.len()).max().unwrap_or(0);
    let subject_w = rows
        .iter()
        .map(|r| r.subject.chars().count())
        .max()
        .unwrap_or(0);
    for r in rows {
        let _ = writeln!(
            out,
            "{:<8} {}  {:<when_w$}  {:<subject_w$}  {}",
            if r.renew { "RENEW" } else { r.status.label() },
            r.not_after,
            r.when,
            r.subject,
            r.path
        );
    }
    let plural = if s.total == 1 { "" } else { "s" };
    let _ = write!(
        out,
        "{} certificate{plural}: {} OK, {} WARN, {} EXPIRED (warning within {})",
        s.total, s.ok, s.warn, s.expired, s.within
    );
    if s.errors > 0 {
        let _ = write!(
            out,
            "; {} problem{} reported above",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificate_names_are_walked() {
        assert!(has_cert_extension(Path::new("a/cert.pem")));
        assert!(has_cert_extension(Path::new("a/ca.CRT")));
        assert!(has_cert_extension(Path::new("a/x.cert")));
        assert!(!has_cert_extension(Path::new("a/x.der")));
        assert!(!has_cert_extension(Path::new("a/pem")));
    }

    /// Good, repeated and malformed certificates: the findings and the
    /// problems, in order, do not depend on how the files are batched.
    #[test]
    fn batches_do_not_change_the_report() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad/pem");
        let scan_in = |batch| {
            let scan = Scan::of(std::slice::from_ref(&corpus), batch);
            let found: Vec<_> = scan
                .found
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect();
            (found, scan.errors)
        };
        let whole = scan_in(READ_BATCH);
        assert!(!whole.0.is_empty() && !whole.1.is_empty(), "{whole:?}");
        for batch in [1, 2, 3] {
            assert_eq!(scan_in(batch), whole, "batches of {batch}");
        }
    }
}
