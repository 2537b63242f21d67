//! `uca issue`: plan every certificate (names, SANs, constraints, output
//! paths) before the first key is made, then sign and publish them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::Mode;
use crate::keys::KeyType;
use crate::ledger::{LedgerEntry, LedgerLock};
use crate::names::San;
use crate::output::{self, OutputFile};
use crate::profile::{self, Profile, Validity};
use crate::san_rule::{self, SanRule};
use crate::store::{CaStore, Signer};
use crate::{timefmt, x509};

pub struct IssueRequest {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub names: Vec<String>,
    pub profile: Profile,
    pub sans: Vec<String>,
    pub san_rules: Vec<String>,
    pub key: KeyType,
    pub days: u32,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

/// One certificate to issue, fully validated.
#[derive(Clone, Debug)]
pub struct PlannedCert {
    pub name: String,
    pub sans: Vec<San>,
    pub profile: Profile,
    pub key: KeyType,
    pub validity: Validity,
    pub days: u32,
    pub target: PathBuf,
}

/// Every certificate of one run, validated as a whole.
pub struct IssuePlan {
    pub certs: Vec<PlannedCert>,
    pub force: bool,
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

/// Reads `--san-rule` values, falling back to the CA's own rules.
pub fn rules_or_default(store: &CaStore, given: &[String]) -> Result<Vec<SanRule>> {
    if given.is_empty() {
        Ok(store.settings.san_rules.clone())
    } else {
        given.iter().map(|r| SanRule::parse(r)).collect()
    }
}

impl IssuePlan {
    pub fn from_request(store: &CaStore, req: &IssueRequest) -> Result<IssuePlan> {
        if req.names.is_empty() {
            return Err(Error::msg("no NAME given; usage: uca issue --dir DIR --out OUT NAME..."));
        }
        let rules = rules_or_default(store, &req.san_rules)?;
        let extras = req.sans.iter().map(|s| San::parse(s)).collect::<Result<Vec<_>>>()?;
        let validity = Validity::days_from_now(req.days)?.within(store.not_after, req.days)?;
        store.refuse_private_output(&req.out)?;
        let mut seen = HashSet::new();
        let mut certs = Vec::with_capacity(req.names.len());
        for name in &req.names {
            let own = San::for_name(name)?;
            let normalized = match &own {
                San::Dns(d) => d.clone(),
                San::Ip(ip) => ip.to_string(),
                _ => unreachable!("for_name yields DNS or IP"),
            };
            if !seen.insert(normalized.clone()) {
                return Err(Error::invalid("name", name.as_str(), "it is given twice"));
            }
            let sans = san_rule::sans_for(&normalized, &rules, &extras)?;
            for san in &sans {
                store.constraints.check(san).map_err(|e| Error::msg(format!("certificate '{normalized}': {e}")))?;
            }
            let target = req.out.join(&normalized);
            output::check_free(&target, req.force)?;
            certs.push(PlannedCert {
                name: normalized,
                sans,
                profile: req.profile,
                key: req.key,
                validity,
                days: req.days,
                target,
            });
        }
        Ok(IssuePlan { certs, force: req.force })
    }
}

/// Signs one planned certificate and publishes its files.
pub fn issue_one(
    signer: &Signer,
    ca_pem: &str,
    cert: &PlannedCert,
    force: bool,
    sync: bool,
    used_serials: &mut HashSet<String>,
) -> Result<(IssuedCert, LedgerEntry)> {
    let key = cert.key.generate()?;
    let key_pair = key.key_pair()?;
    let subject = if cert.name.len() <= 64 { profile::subject_cn(&cert.name) } else { rcgen::DistinguishedName::new() };
    let (der, serial) = loop {
        let params = profile::leaf_params(subject.clone(), &cert.sans, cert.profile, cert.key, cert.validity)?;
        let serial = x509::hex(params.serial_number.as_ref().expect("profile sets a serial").as_ref());
        let serial = serial.trim_start_matches("00").to_string();
        if !used_serials.insert(serial.clone()) {
            continue; // 2^-159: never, but never reuse a serial.
        }
        let signed = params
            .signed_by(&key_pair, &signer.issuer)
            .map_err(|e| Error::msg(format!("cannot sign '{}': {e}", cert.name)))?;
        break (signed.der().to_vec(), serial);
    };
    let cert_pem = x509::pem_certificate(&der);
    let chain = format!("{cert_pem}{ca_pem}");
    let key_pem = key.to_pem();
    output::publish_dir(
        &cert.target,
        &[
            OutputFile { name: "cert.pem", contents: cert_pem.as_bytes(), mode: Mode::Public },
            OutputFile { name: "key.pem", contents: key_pem.as_bytes(), mode: Mode::Secret },
            OutputFile { name: "chain.pem", contents: chain.as_bytes(), mode: Mode::Public },
            OutputFile { name: "ca.pem", contents: ca_pem.as_bytes(), mode: Mode::Public },
        ],
        force,
        sync,
    )?;
    let sha256 = x509::sha256_hex(&der);
    let sans: Vec<String> = cert.sans.iter().map(|s| s.to_string()).collect();
    let cert_path = absolute(&cert.target.join("cert.pem"));
    let entry = LedgerEntry {
        serial: serial.clone(),
        subject: format!("CN={}", cert.name),
        sans: sans.clone(),
        profile: cert.profile.to_string(),
        key: cert.key.to_string(),
        not_before: timefmt::rfc3339(cert.validity.not_before),
        not_after: timefmt::rfc3339(cert.validity.not_after),
        sha256: sha256.clone(),
        path: Some(cert_path.display().to_string()),
        issued_at: timefmt::rfc3339(timefmt::now()),
    };
    Ok((
        IssuedCert {
            name: cert.name.clone(),
            target: cert.target.clone(),
            serial,
            not_after: entry.not_after.clone(),
            sans,
            sha256,
        },
        entry,
    ))
}

pub fn absolute(p: &Path) -> PathBuf {
    crate::fsutil::resolve(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Issues every certificate of a plan while holding the CA lock; the ledger
/// records each certificate only after its files are on disk.
pub fn execute(store: &CaStore, signer: &Signer, plan: &IssuePlan, lock: &LedgerLock) -> Result<Vec<IssuedCert>> {
    // The CA may have been sealed while we waited for the lock.
    store.ensure_unsealed()?;
    let ledger = store.ledger();
    let mut used = ledger.serials()?;
    let ca_pem = store.cert_pem();
    let mut issued = Vec::with_capacity(plan.certs.len());
    for cert in &plan.certs {
        let (done, entry) = issue_one(signer, &ca_pem, cert, plan.force, true, &mut used)?;
        ledger.append(lock, std::slice::from_ref(&entry))?;
        issued.push(done);
    }
    Ok(issued)
}

pub fn run(req: &IssueRequest) -> Result<Vec<IssuedCert>> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    let plan = IssuePlan::from_request(&store, req)?;
    let signer = store.unlock(req.passphrase_file.as_ref())?;
    let lock = store.ledger().lock()?;
    execute(&store, &signer, &plan, &lock)
}
