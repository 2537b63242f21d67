//! `uca trust`: puts a root into the trust stores that clients read (the
//! system store, a JDK's `cacerts`, NSS databases) and takes it out again,
//! or writes a bundle of roots (PEM, a PKCS#12 truststore, a Kubernetes
//! ConfigMap, a trust-manager Bundle or containerd registry folders).
//!
//! Install and uninstall first plan every change for every chosen store,
//! checking that each tool is present and each store writable, and only
//! then change anything: a missing tool or permission leaves every store
//! as it was. `--dry-run` prints the plan and stops there.

pub mod bundle;
mod containerd;
mod java;
mod nss;
mod system;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use clap::{Args, Subcommand, ValueEnum};

use crate::pki::x509;
use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::stdout::Stdout;

pub use bundle::TrustBundleArgs;

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Add a root to the system, Java or NSS trust store (changing nothing if it is there)
    Install(TrustStoreArgs),
    /// Remove exactly what `uca trust install` added for this root
    Uninstall(TrustStoreArgs),
    /// Write a bundle of roots: PEM, a PKCS#12 truststore, a ConfigMap, a trust-manager Bundle or a containerd hosts.toml folder
    Bundle(TrustBundleArgs),
}

/// Which trust store to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// The distribution's store (update-ca-certificates or update-ca-trust)
    System,
    /// A JDK's cacerts (keytool)
    Java,
    /// NSS databases: ~/.pki/nssdb and Firefox profiles (certutil)
    Nss,
    /// The system store, and the Java and NSS stores that are present or named
    All,
}

#[derive(Debug, Args)]
pub struct TrustStoreArgs {
    /// The root (CA) certificate, PEM or DER: exactly one certificate
    #[arg(value_name = "CA")]
    pub ca: PathBuf,
    /// Which trust store
    #[arg(long, value_enum, default_value_t = Store::System)]
    pub store: Store,
    /// Change the system store of another root file system (a container image being built, a chroot)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The Java keystore to change (default: JAVA_HOME's, else that of `java` on PATH)
    #[arg(long, value_name = "FILE")]
    pub java_cacerts: Option<PathBuf>,
    /// Read the Java keystore's password from FILE (default: the UCA_JAVA_STOREPASS environment variable, else changeit)
    #[arg(long, value_name = "FILE")]
    pub java_storepass_file: Option<PathBuf>,
    /// NSS database directory to change (repeatable; default: ~/.pki/nssdb and Firefox profiles)
    #[arg(long, value_name = "DIR")]
    pub nss_db: Vec<PathBuf>,
    /// Print every change that would be made, and make none
    #[arg(long)]
    pub dry_run: bool,
}

/// The root being installed: its certificate and the names derived from
/// its fingerprint, so two roots with the same name never share an entry.
pub struct TrustedRoot {
    pub der: Vec<u8>,
    pub fingerprint: String,
    /// `uca-<slug of the CN>-<first 16 hex of the SHA-256>`: file name stem and NSS nickname.
    pub stem: String,
    /// `uca-<first 16 hex of the SHA-256>`: the Java alias (keytool lower-cases aliases).
    pub alias: String,
}

impl TrustedRoot {
    pub fn pem(&self) -> String {
        x509::pem_certificate(&self.der)
    }
}

/// Reads the CA file: every certificate in it must be a CA certificate.
pub fn read_roots(path: &Path) -> Result<Vec<TrustedRoot>> {
    let shown = path.display().to_string();
    let ders = x509::read_certificates(path)?;
    let mut roots = Vec::new();
    for der in ders {
        let cert = x509::parse(&der)
            .map_err(|why| Error::invalid("CA certificate", shown.clone(), why))?;
        if !x509::is_ca(&cert) {
            return Err(Error::invalid(
                "CA certificate",
                shown,
                format!(
                    "{} is not a CA certificate (no basicConstraints CA:TRUE); give the root, e.g. ca/ca.pem",
                    cert.subject()
                ),
            ));
        }
        let fingerprint = x509::sha256_hex(&der);
        let slug = slug(&x509::common_name(&cert).unwrap_or_default());
        let short = &fingerprint[..16];
        let stem = if slug.is_empty() {
            format!("uca-{short}")
        } else {
            format!("uca-{slug}-{short}")
        };
        roots.push(TrustedRoot {
            alias: format!("uca-{short}"),
            stem,
            fingerprint,
            der,
        });
    }
    Ok(roots)
}

fn read_one_root(path: &Path) -> Result<TrustedRoot> {
    let mut roots = read_roots(path)?;
    if roots.len() != 1 {
        return Err(Error::invalid(
            "CA certificate",
            path.display().to_string(),
            format!(
                "it holds {} certificates; give one root per install",
                roots.len()
            ),
        ));
    }
    Ok(roots.remove(0))
}

/// The CN as a file-name part: lower-case letters, digits and '-', at most 40.
fn slug(cn: &str) -> String {
    let mapped: String = cn
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let joined = mapped
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    joined
        .chars()
        .take(40)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// One change to one store.
pub enum Action {
    CreateDir(PathBuf),
    Write(PathBuf, Vec<u8>),
    Remove(PathBuf),
    Run(Vec<OsString>),
    /// Runs the command with the root's PEM on standard input, so the tool
    /// imports exactly the certificate uca checked, not whatever the file
    /// holds by then.
    RunWithRoot(Vec<OsString>, String),
}

impl Action {
    fn describe(&self) -> String {
        match self {
            Action::CreateDir(p) => format!("create directory {}", p.display()),
            Action::Write(p, _) => format!("write {} (0644)", p.display()),
            Action::Remove(p) => format!("remove {}", p.display()),
            Action::Run(argv) => format!("run: {}", shell_words(argv)),
            Action::RunWithRoot(argv, _) => format!(
                "run: {} (the root's PEM on standard input)",
                shell_words(argv)
            ),
        }
    }

    fn apply(&self) -> Result<()> {
        match self {
            Action::CreateDir(p) => fsutil::create_dir(p, 0o755),
            Action::Write(p, bytes) => fsutil::write_atomic(p, bytes, Mode::Public, false, true),
            Action::Remove(p) => std::fs::remove_file(p).ctx("remove", p),
            Action::Run(argv) => run_checked(argv, None).map(|_| ()),
            Action::RunWithRoot(argv, pem) => run_checked(argv, Some(pem)).map(|_| ()),
        }
    }
}

fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one store needs: nothing (with the reason), or these actions.
pub struct StorePlan {
    pub store: String,
    pub actions: Vec<Action>,
    /// Printed when there is nothing to do, e.g. "already installed in ...".
    pub unchanged: Option<String>,
    /// Printed after the actions ran, e.g. "installed ... into ...".
    pub done: String,
}

/// `uca trust ...`: makes the changes, then prints what it did; a failed
/// standard output then says the changes were made.
pub fn run_verb(cmd: TrustCommand, out: &mut Stdout) -> Result<u8> {
    let report = run_command(&cmd)?;
    out.work_done(match cmd {
        TrustCommand::Bundle(_) => "the bundle was written",
        _ => "the trust stores were changed as reported",
    });
    out.print(&report)?;
    Ok(0)
}

/// Runs `uca trust ...`; returns what to print.
pub fn run_command(cmd: &TrustCommand) -> Result<String> {
    let lines = match cmd {
        TrustCommand::Install(a) => run(a, true)?,
        TrustCommand::Uninstall(a) => run(a, false)?,
        TrustCommand::Bundle(a) => vec![bundle::run(a)?],
    };
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

/// Plans every chosen store, then (unless a dry run) applies the plans.
/// Returns the report lines.
pub fn run(args: &TrustStoreArgs, install: bool) -> Result<Vec<String>> {
    if args.root.is_some() && matches!(args.store, Store::Java | Store::Nss) {
        return Err(Error::msg(
            "--root applies to the system store; give --java-cacerts FILE or --nss-db DIR inside the tree instead",
        ));
    }
    let root = read_one_root(&args.ca)?;
    let mut plans = Vec::new();
    let all = args.store == Store::All;
    if matches!(args.store, Store::System | Store::All) {
        plans.push(system::plan(&root, args, install)?);
    }
    if matches!(args.store, Store::Java | Store::All) {
        // `all` skips a store that is absent, unless it was named.
        match java::plan(&root, args, install) {
            Err(Skip::Absent(why)) if all && args.java_cacerts.is_none() => {
                plans.push(skipped("java", why))
            }
            other => plans.push(other.map_err(Skip::into_error)?),
        }
    }
    if matches!(args.store, Store::Nss | Store::All) {
        match nss::plan(&root, args, install) {
            Err(Skip::Absent(why)) if all && args.nss_db.is_empty() => {
                plans.push(skipped("nss", why))
            }
            other => plans.extend(other.map_err(Skip::into_error)?),
        }
    }
    let mut lines = Vec::new();
    for plan in &plans {
        if let Some(why) = &plan.unchanged {
            lines.push(format!("{}: {why}", plan.store));
            continue;
        }
        if args.dry_run {
            for action in &plan.actions {
                lines.push(format!("{}: would {}", plan.store, action.describe()));
            }
            continue;
        }
        apply_all(&plan.actions)?;
        lines.push(format!("{}: {}", plan.store, plan.done));
    }
    if args.dry_run {
        lines.push("dry run: nothing was changed".into());
    }
    Ok(lines)
}

/// Applies `actions` in order; if one fails, a file written before it is
/// removed again, so a failed tool run leaves no anchor behind.
fn apply_all(actions: &[Action]) -> Result<()> {
    for (i, action) in actions.iter().enumerate() {
        if let Err(e) = action.apply() {
            for earlier in &actions[..i] {
                if let Action::Write(path, _) = earlier {
                    let _ = std::fs::remove_file(path);
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

fn skipped(store: &str, why: String) -> StorePlan {
    StorePlan {
        store: store.into(),
        actions: Vec::new(),
        unchanged: Some(format!("skipped: {why}")),
        done: String::new(),
    }
}

/// Why a store cannot be planned: absent (which `--store all` skips), or
/// any other error.
pub enum Skip {
    Absent(String),
    Failed(Error),
}

impl Skip {
    fn into_error(self) -> Error {
        match self {
            Skip::Absent(why) => Error::msg(why),
            Skip::Failed(e) => e,
        }
    }
}

impl From<Error> for Skip {
    fn from(e: Error) -> Self {
        Skip::Failed(e)
    }
}

/// The program `name` on PATH, if any.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `argv`, returning its standard output; a failure is one line with
/// the command and the first line it printed on standard error.
pub fn run_checked(argv: &[OsString], input: Option<&str>) -> Result<String> {
    let (ok, stdout, stderr) = run_with_input(argv, input)?;
    if ok {
        return Ok(stdout);
    }
    let why = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    Err(Error::msg(format!(
        "{} failed: {}",
        shell_words(argv),
        crate::pki::names::printable(&why)
    )))
}

/// Runs `argv` with standard input closed: (success, stdout, stderr).
pub fn run_capture(argv: &[OsString]) -> Result<(bool, String, String)> {
    run_with_input(argv, None)
}

/// Runs `argv` with `input` (or nothing) on standard input.
fn run_with_input(argv: &[OsString], input: Option<&str>) -> Result<(bool, String, String)> {
    use std::io::Write;
    let cannot = |e: std::io::Error| {
        Error::msg(format!("cannot run {}: {e}", Path::new(&argv[0]).display()))
    };
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(cannot)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A tool that exits early closes the pipe; its status says why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(cannot)?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Whether this process may write the existing file `path`.
pub fn is_writable_file(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    path.is_file() && crate::support::sys::may_write(&c)
}

/// The certificates in PEM text (e.g. what keytool or certutil printed).
pub fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text.as_bytes())
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect()
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("Acme Internal Root"), "acme-internal-root");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("ÄÖ"), "");
        assert_eq!(slug(&"x".repeat(100)).len(), 40);
    }

    #[test]
    fn commands_are_printed_quoted() {
        let argv = vec![os("certutil"), os("-t"), os("C,,"), os("a b")];
        assert_eq!(shell_words(&argv), "certutil -t C,, 'a b'");
    }
}
