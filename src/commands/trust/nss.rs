//! NSS databases (Chromium and other NSS programs read `~/.pki/nssdb`,
//! Firefox its profile's), changed with `certutil`: the root becomes the
//! entry `uca-<name>-<first 16 hex of its SHA-256>` trusted to issue
//! server certificates (`-t C,,`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{find_program, os, Action, Skip, StorePlan, TrustStoreArgs, TrustedRoot};
use crate::support::error::Error;
use crate::support::fsutil;

/// Where Firefox keeps its profiles: the Debian/Fedora package's, the
/// snap's (Ubuntu's default Firefox) and the Flatpak's.
const FIREFOX_PROFILE_DIRS: [&str; 3] = [
    ".mozilla/firefox",
    "snap/firefox/common/.mozilla/firefox",
    ".var/app/org.mozilla.firefox/.mozilla/firefox",
];

/// The databases: `--nss-db`, else `~/.pki/nssdb` (and the snap
/// Chromium's) and each Firefox profile that has a database.
fn databases(args: &TrustStoreArgs) -> Result<Vec<PathBuf>, Skip> {
    if !args.nss_db.is_empty() {
        // certutil's own spelling, sql:DIR, names the same directory.
        let strip = |d: &PathBuf| match d.to_str().and_then(|s| s.strip_prefix("sql:")) {
            Some(rest) => PathBuf::from(rest),
            None => d.clone(),
        };
        return Ok(args.nss_db.iter().map(strip).collect());
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut dbs = vec![
        home.join(".pki/nssdb"),
        home.join("snap/chromium/current/.pki/nssdb"),
    ];
    for dir in FIREFOX_PROFILE_DIRS {
        if let Ok(entries) = std::fs::read_dir(home.join(dir)) {
            let mut profiles: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            profiles.sort();
            dbs.extend(profiles);
        }
    }
    dbs.retain(|d| d.join("cert9.db").is_file());
    if dbs.is_empty() {
        return Err(Skip::Absent(format!(
            "no NSS database found ({}/.pki/nssdb or a Firefox profile); create one with certutil -N --empty-password -d sql:{}/.pki/nssdb, or give --nss-db DIR",
            home.display(),
            home.display()
        )));
    }
    Ok(dbs)
}

pub fn plan(
    root: &TrustedRoot,
    args: &TrustStoreArgs,
    install: bool,
) -> Result<Vec<StorePlan>, Skip> {
    let Some(certutil) = find_program("certutil") else {
        return Err(Skip::Absent(
            "certutil is not on PATH; install libnss3-tools (Debian, Ubuntu) or nss-tools (RHEL, Fedora)"
                .into(),
        ));
    };
    let mut plans = Vec::new();
    for db in databases(args)? {
        plans.push(plan_one(root, &certutil, &db, install)?);
    }
    Ok(plans)
}

fn plan_one(
    root: &TrustedRoot,
    certutil: &Path,
    db: &Path,
    install: bool,
) -> Result<StorePlan, Skip> {
    if !db.join("cert9.db").is_file() {
        return Err(Skip::Failed(Error::invalid(
            "--nss-db",
            db.display().to_string(),
            "a directory with an NSS sql database (cert9.db); create one with certutil -N --empty-password -d sql:DIR",
        )));
    }
    let dbarg = {
        let mut s = OsString::from("sql:");
        s.push(fsutil::absolute(db));
        s
    };
    let nick = root.stem.as_str();
    let base = [certutil.as_os_str().to_owned(), os("-d"), dbarg];
    let with = |rest: &[&str]| -> Vec<OsString> {
        let mut v = base.to_vec();
        v.extend(rest.iter().map(os));
        v
    };
    let (has, listed, _) = super::run_capture(&with(&["-L", "-n", nick, "-a"]))?;
    if has && !super::pem_certificates(&listed).contains(&root.der) {
        return Err(Skip::Failed(Error::msg(format!(
            "the NSS database {} has a certificate nicknamed {nick} that is not this root; remove it with certutil -D -n {nick} -d sql:{}",
            db.display(),
            db.display()
        ))));
    }
    let store = format!("nss {}", db.display());
    if install == has {
        let state = if has {
            "already installed"
        } else {
            "not installed"
        };
        return Ok(StorePlan {
            store,
            actions: Vec::new(),
            unchanged: Some(format!("{state} (nickname {nick})")),
            done: String::new(),
        });
    }
    let writable = fsutil::is_writable_dir(db)
        && ["cert9.db", "key4.db"]
            .iter()
            .all(|f| !db.join(f).exists() || super::is_writable_file(&db.join(f)));
    if !writable {
        return Err(Skip::Failed(Error::msg(format!(
            "cannot change the NSS database {}: this user may not write to it; run as the user who owns it",
            db.display()
        ))));
    }
    let action = if install {
        let add = ["-A", "-n", nick, "-t", "C,,", "-a"];
        Action::RunWithRoot(with(&add), root.pem())
    } else {
        Action::Run(with(&["-D", "-n", nick]))
    };
    let verb = if install { "added" } else { "removed" };
    Ok(StorePlan {
        store,
        actions: vec![action],
        unchanged: None,
        done: format!("{verb} {nick}"),
    })
}
