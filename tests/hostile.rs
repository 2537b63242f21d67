//! The hostile input corpus: every case of every manifest in fixtures/bad/
//! runs the real `uca` in a fresh scratch directory and must be refused with
//! the expected exit status (1 for uca's own errors, 2 for usage errors), a
//! single line `uca: error: ...` naming the problem, and NOTHING written:
//! the scratch directory is listed and hashed before and after. The few
//! cases that must succeed (--force over a symbolic
//! link) say what they create and what must stay untouched.
//!
//! All cases run, and every failure is reported together at the end.
//! Manifest format: fixtures/bad/README.md.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use common::{uca_bin, PASSPHRASE};

/// The corpus must not shrink below this.
const MIN_CASES: usize = 100;
/// No single case may take longer (uca must never hang on bad input).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    #[serde(default)]
    #[allow(dead_code)]
    about: String,
    /// Arguments to uca. `@REL` copies fixtures/bad/REL into the scratch
    /// directory and passes REL; `{scratch}` is the scratch directory.
    args: Vec<String>,
    /// Operations run after the template is copied, before the snapshot.
    #[serde(default)]
    setup: Vec<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Fixtures copied although no argument names them.
    #[serde(default)]
    files: Vec<String>,
    expect_exit: i32,
    expect_message: Option<OneOrMany>,
    /// Absolute paths that must not exist afterwards (outside the scratch).
    #[serde(default)]
    absent: Vec<String>,
    /// Success only: files that must exist afterwards.
    #[serde(default)]
    expect_created: Vec<String>,
    /// Success only: subtrees that must be exactly as before.
    #[serde(default)]
    unchanged: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad")
}

/// Two CAs shared by every case (copied, never used in place): `ca`,
/// constrained to `internal` and 10.0.0.0/8, and `open`, unconstrained, both
/// encrypted with PASSPHRASE (pass.txt), each with one certificate issued so
/// that their ledger and lock file exist; certs/seed.internal is a leaf of
/// `ca`.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let p = dir.path();
            std::fs::write(p.join("pass.txt"), format!("{PASSPHRASE}\n")).unwrap();
            let run = |args: &[&str]| {
                let o = Command::new(uca_bin())
                    .args(args)
                    .current_dir(p)
                    .env_remove("UCA_PASSPHRASE")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "template: uca {args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            };
            let pass = ["--passphrase-file", "pass.txt"];
            run(&[
                &["init", "--dir", "ca", "--name", "Test Root"][..],
                &pass,
                &["--permit", "internal", "--permit", "10.0.0.0/8"],
            ]
            .concat());
            run(&[&["init", "--dir", "open", "--name", "Open Root"][..], &pass].concat());
            run(&[
                &["issue", "--dir", "ca", "--out", "certs"][..],
                &pass,
                &["seed.internal"],
            ]
            .concat());
            run(&[
                &["issue", "--dir", "open", "--out", "seed"][..],
                &pass,
                &["seed.internal"],
            ]
            .concat());
            std::fs::remove_dir_all(p.join("seed")).unwrap();
            dir
        })
        .path()
}

/// Copies a tree, keeping modes and symbolic links.
fn copy_tree(from: &Path, to: &Path) {
    let meta = std::fs::symlink_metadata(from).unwrap();
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from).unwrap(), to).unwrap();
    } else if meta.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
        std::fs::set_permissions(to, meta.permissions()).unwrap();
    } else {
        std::fs::copy(from, to).unwrap();
        std::fs::set_permissions(to, meta.permissions()).unwrap();
    }
}

/// path -> kind, mode and content hash (or link target) of every entry.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let desc = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o}")
            } else if !meta.is_file() {
                // A FIFO a case planted: reading it would block.
                format!("special {mode:o}")
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                format!("file {mode:o} {}", uca::pki::x509::sha256_hex(&bytes))
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    under: Option<&str>,
) -> Vec<String> {
    let keep = |k: &String| under.is_none_or(|u| k == u || k.starts_with(&format!("{u}/")));
    let mut out = Vec::new();
    for (k, v) in before.iter().filter(|(k, _)| keep(k)) {
        match after.get(k) {
            None => out.push(format!("removed {k}")),
            Some(w) if w != v => out.push(format!("changed {k} ({v} -> {w})")),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| keep(k)) {
        if !before.contains_key(k) {
            out.push(format!("created {k}"));
        }
    }
    out
}

fn copy_fixture(rel: &str, scratch: &Path, dest: &str) -> Result<(), String> {
    let from = corpus_dir().join(rel);
    if !from.is_file() {
        return Err(format!("fixture {rel} does not exist"));
    }
    let to = scratch.join(dest);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(&from, &to).map_err(|e| format!("copy {rel}: {e}"))?;
    Ok(())
}

fn apply(op: &[String], scratch: &Path) -> Result<(), String> {
    let p = |s: &str| scratch.join(s);
    let parent = |s: &str| std::fs::create_dir_all(p(s).parent().unwrap()).unwrap();
    match op.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", path, text] => {
            parent(path);
            std::fs::write(p(path), text).map_err(|e| e.to_string())
        }
        ["copy", fixture, dest] => copy_fixture(fixture, scratch, dest),
        ["cp", from, to] => std::fs::copy(p(from), p(to))
            .map(|_| ())
            .map_err(|e| format!("cp {from} {to}: {e}")),
        ["rm", path] => {
            let path = p(path);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .map_err(|e| format!("rm {}: {e}", path.display()))
        }
        ["mkdir", path] => std::fs::create_dir_all(p(path)).map_err(|e| e.to_string()),
        ["symlink", target, link] => {
            parent(link);
            std::os::unix::fs::symlink(target, p(link)).map_err(|e| e.to_string())
        }
        ["mkfifo", path] => {
            parent(path);
            let status = Command::new("mkfifo").arg(p(path)).status();
            match status {
                Ok(s) if s.success() => Ok(()),
                other => Err(format!("mkfifo {path}: {other:?}")),
            }
        }
        ["replace", path, from, to] => {
            let text =
                std::fs::read_to_string(p(path)).map_err(|e| format!("replace in {path}: {e}"))?;
            if !text.contains(from) {
                return Err(format!("replace: {from:?} is not in {path}"));
            }
            std::fs::write(p(path), text.replacen(from, to, 1)).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown setup operation {other:?}")),
    }
}

/// Runs uca, killing it if it takes longer than CASE_TIMEOUT.
fn run_uca(
    args: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<std::process::Output, String> {
    let mut cmd = Command::new(uca_bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("UCA_PASSPHRASE")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run uca: {e}"))?;
    let started = Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        if started.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("uca did not finish within {CASE_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs one case; returns its problems (empty: passed) and what uca said.
fn run_case(case: &Case, used: &Mutex<BTreeSet<String>>) -> (Vec<String>, String) {
    match try_case(case, used) {
        Ok(result) => result,
        Err(problem) => (vec![problem], String::new()),
    }
}

fn try_case(case: &Case, used: &Mutex<BTreeSet<String>>) -> Result<(Vec<String>, String), String> {
    let scratch = tempfile::tempdir().expect("tempdir");
    let s = scratch.path();
    copy_tree(template(), s);
    let mut problems = Vec::new();
    let mut args = Vec::new();
    for a in &case.args {
        match a.strip_prefix('@') {
            Some(rel) => {
                copy_fixture(rel, s, rel)?;
                used.lock().unwrap().insert(rel.to_string());
                args.push(rel.to_string());
            }
            None => args.push(a.replace("{scratch}", &s.display().to_string())),
        }
    }
    for rel in &case.files {
        copy_fixture(rel, s, rel)?;
        used.lock().unwrap().insert(rel.clone());
    }
    for op in &case.setup {
        apply(op, s).map_err(|e| format!("setup {op:?}: {e}"))?;
        if op.first().map(String::as_str) == Some("copy") {
            used.lock().unwrap().insert(op[1].clone());
        }
    }
    for a in &case.absent {
        if Path::new(a).exists() {
            return Err(format!("{a} exists before the case ran; remove it"));
        }
    }
    let before = snapshot(s);
    let out = run_uca(&args, s, &case.env)?;
    let after = snapshot(s);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code();
    if stderr.contains("panicked") || code == Some(101) || code.is_none() {
        problems.push(format!("crashed ({:?}): {stderr}", out.status));
    }
    if code != Some(case.expect_exit) {
        problems.push(format!(
            "exit status {code:?}, expected {}",
            case.expect_exit
        ));
    }
    let fragments = match &case.expect_message {
        None => Vec::new(),
        Some(OneOrMany::One(m)) => vec![m.clone()],
        Some(OneOrMany::Many(m)) => m.clone(),
    };
    match case.expect_exit {
        1 => {
            if fragments.is_empty() {
                problems
                    .push("an error case must say what its message names (expect_message)".into());
            }
            if !stderr.starts_with("uca: error: ") {
                problems.push("the error does not start with 'uca: error: '".into());
            }
            if stderr.trim_end().lines().count() != 1 || stderr.trim_end().contains('\r') {
                problems.push("the error is not a single line".into());
            }
        }
        2 if !stderr.starts_with("error: ") => {
            problems.push("a usage error must start with clap's 'error: '".into());
        }
        _ => {}
    }
    let shown = if case.expect_exit == 1 || case.expect_exit == 2 {
        stderr.clone()
    } else {
        format!("{stdout}{stderr}")
    };
    for f in &fragments {
        if !shown.contains(f.as_str()) {
            problems.push(format!("the output does not contain {f:?}"));
        }
    }
    if case.expect_exit == 0 {
        for f in &case.expect_created {
            if !s.join(f).is_file() {
                problems.push(format!("{f} was not created"));
            }
        }
        for u in &case.unchanged {
            problems.extend(diff(&before, &after, Some(u)));
        }
    } else {
        if !case.expect_created.is_empty() || !case.unchanged.is_empty() {
            problems.push("expect_created/unchanged are for cases that succeed".into());
        }
        problems.extend(
            diff(&before, &after, None)
                .into_iter()
                .map(|d| format!("wrote: {d}")),
        );
    }
    for a in &case.absent {
        let p = Path::new(a);
        if std::fs::symlink_metadata(p).is_ok() {
            problems.push(format!("wrote outside the scratch directory: {a}"));
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("uca {args:?}\n      stderr: {}", stderr.trim_end()));
    }
    Ok((problems, format!("exit {code:?}: {}", shown.trim_end())))
}

/// Every file under fixtures/bad that a case can use (manifests, the README
/// and the generator excepted).
fn fixture_files() -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.parent() != Some(root) {
                out.insert(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&corpus_dir(), &corpus_dir(), &mut out);
    out
}

#[test]
fn every_hostile_input_is_refused_cleanly_and_writes_nothing() {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    manifests.sort();
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    let mut ids = BTreeSet::new();
    for m in &manifests {
        let category = m.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(m).unwrap();
        let manifest: Manifest = match toml::from_str(&text) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}: {e}", m.display()));
                continue;
            }
        };
        eprintln!("{category}: {} cases", manifest.cases.len());
        for c in manifest.cases {
            if !ids.insert(format!("{category}/{}", c.id)) {
                failures.push(format!("{category}/{}: duplicate id", c.id));
            }
            cases.push((format!("{category}/{}", c.id), c));
        }
    }
    template();
    let used = Mutex::new(BTreeSet::new());
    let failed = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some((name, case)) = cases.get(i) else {
                    break;
                };
                let (problems, shown) = run_case(case, &used);
                if std::env::var_os("UCA_HOSTILE_SHOW").is_some() {
                    eprintln!("{name}: {shown}");
                }
                if !problems.is_empty() {
                    failed
                        .lock()
                        .unwrap()
                        .push(format!("{name}:\n    - {}", problems.join("\n    - ")));
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap();
    failed.sort();
    failures.extend(failed);
    let unused: Vec<String> = fixture_files()
        .difference(&used.into_inner().unwrap())
        .cloned()
        .collect();
    if !unused.is_empty() {
        failures.push(format!("fixtures no case uses: {unused:?}"));
    }
    if cases.len() < MIN_CASES {
        failures.push(format!(
            "only {} cases; the corpus must hold at least {MIN_CASES}",
            cases.len()
        ));
    }
    eprintln!(
        "hostile corpus: {} cases in {} manifests, {} failed, {:.1}s",
        cases.len(),
        manifests.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} hostile-input cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
