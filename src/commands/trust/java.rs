//! A JDK's `cacerts`, changed with `keytool`: the root becomes the trusted
//! certificate entry `uca-<first 16 hex of its SHA-256>`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{find_program, os, Action, Skip, StorePlan, TrustStoreArgs, TrustedRoot};
use crate::support::error::Error;
use crate::support::fsutil;

const DEFAULT_STOREPASS: &str = "changeit";

/// `JAVA_HOME/bin/keytool`, else `keytool` on PATH.
fn keytool() -> Option<PathBuf> {
    let from_home = std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/keytool"))
        .filter(|p| p.is_file());
    from_home.or_else(|| find_program("keytool"))
}

/// `--java-cacerts`, else JAVA_HOME's, else that of the `java` on PATH.
fn cacerts(args: &TrustStoreArgs) -> Result<PathBuf, Skip> {
    if let Some(p) = &args.java_cacerts {
        return Ok(p.clone());
    }
    let home = std::env::var_os("JAVA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            let java = std::fs::canonicalize(find_program("java")?).ok()?;
            Some(java.parent()?.parent()?.to_path_buf())
        });
    let Some(home) = home else {
        return Err(Skip::Absent(
            "no JDK found (no JAVA_HOME, no java on PATH); give --java-cacerts FILE".into(),
        ));
    };
    let file = home.join("lib/security/cacerts");
    if !file.exists() {
        return Err(Skip::Absent(format!(
            "the JDK at {} has no lib/security/cacerts; give --java-cacerts FILE",
            home.display()
        )));
    }
    Ok(file)
}

pub fn plan(root: &TrustedRoot, args: &TrustStoreArgs, install: bool) -> Result<StorePlan, Skip> {
    let Some(keytool) = keytool() else {
        return Err(Skip::Absent(
            "keytool is not on PATH; install a JDK (e.g. openjdk-17-jdk-headless) or set JAVA_HOME"
                .into(),
        ));
    };
    let file = cacerts(args)?;
    // keytool follows a link to the real file (Debian links cacerts into /etc).
    let file = std::fs::canonicalize(&file).map_err(|e| {
        Error::msg(format!(
            "cannot open the Java keystore {}: {e}",
            file.display()
        ))
    })?;
    let base = vec![keytool.into_os_string()];
    let store_args = store_args(&file, args.java_storepass_file.as_deref());
    // Reading the store proves the password before anything is changed.
    let (ok, stdout, stderr) = super::run_capture(&argv(&base, &["-list"], &store_args, &[]))?;
    if !ok {
        let why = stderr.lines().chain(stdout.lines()).next().unwrap_or("");
        return Err(Skip::Failed(Error::msg(format!(
            "keytool cannot read {}: {}; give its password with --java-storepass-file FILE or UCA_JAVA_STOREPASS",
            file.display(),
            crate::pki::names::printable(why.trim())
        ))));
    }
    let alias = root.alias.as_str();
    let (has, held) = entry(&base, &store_args, alias)?;
    if has && held.as_deref() != Some(&root.der[..]) {
        return Err(Skip::Failed(Error::msg(format!(
            "{} already has an entry '{alias}' holding another certificate; remove it with keytool -delete -alias {alias}",
            file.display()
        ))));
    }
    let store = "java".to_string();
    let unchanged = |why: String| StorePlan {
        store: store.clone(),
        actions: Vec::new(),
        unchanged: Some(why),
        done: String::new(),
    };
    if install == has {
        let state = if has {
            "already installed"
        } else {
            "not installed"
        };
        return Ok(unchanged(format!(
            "{state} (alias {alias} in {})",
            file.display()
        )));
    }
    check_writable(&file, install)?;
    let alias_args = [os("-alias"), os(alias)];
    let action = if install {
        let import = ["-importcert", "-noprompt", "-trustcacerts"];
        Action::RunWithRoot(argv(&base, &import, &store_args, &alias_args), root.pem())
    } else {
        Action::Run(argv(&base, &["-delete"], &store_args, &alias_args))
    };
    let verb = if install { "added" } else { "removed" };
    Ok(StorePlan {
        store,
        actions: vec![action],
        unchanged: None,
        done: format!(
            "{verb} trusted certificate entry {alias} in {}",
            file.display()
        ),
    })
}

/// The environment variable that may hold the keystore's password when
/// no `--java-storepass-file` is given.
pub const STOREPASS_ENV: &str = "UCA_JAVA_STOREPASS";

fn store_args(file: &Path, storepass_file: Option<&Path>) -> Vec<OsString> {
    let mut out = vec![os("-keystore"), file.as_os_str().to_owned()];
    // keytool reads the password from the file or the variable itself: it
    // never appears in ps.
    match storepass_file {
        Some(p) => out.extend([os("-storepass:file"), fsutil::absolute(p).into_os_string()]),
        None if std::env::var_os(STOREPASS_ENV).is_some_and(|v| !v.is_empty()) => {
            out.extend([os("-storepass:env"), os(STOREPASS_ENV)])
        }
        None => out.extend([os("-storepass"), os(DEFAULT_STOREPASS)]),
    }
    out
}

fn argv(base: &[OsString], verb: &[&str], store: &[OsString], rest: &[OsString]) -> Vec<OsString> {
    let mut out = base.to_vec();
    out.extend(verb.iter().map(os));
    out.extend_from_slice(store);
    out.extend_from_slice(rest);
    out
}

/// Whether the store has `alias`, and the certificate it holds.
fn entry(
    base: &[OsString],
    store: &[OsString],
    alias: &str,
) -> Result<(bool, Option<Vec<u8>>), Skip> {
    let rest = [os("-alias"), os(alias), os("-rfc")];
    let (ok, stdout, _) = super::run_capture(&argv(base, &["-exportcert"], store, &rest))?;
    if !ok {
        return Ok((false, None));
    }
    Ok((true, super::pem_certificates(&stdout).into_iter().next()))
}

fn check_writable(file: &Path, install: bool) -> Result<(), Skip> {
    // keytool rewrites the file in place.
    if super::is_writable_file(file) {
        return Ok(());
    }
    let verb = if install { "install" } else { "uninstall" };
    Err(Skip::Failed(Error::msg(format!(
        "cannot change the Java keystore: this user may not write to {}; run as root (sudo uca trust {verb} ...) or give a copy with --java-cacerts FILE",
        file.display()
    ))))
}
