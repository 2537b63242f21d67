//! Sealing is a recorded, resumable transition. `uca seal` is killed with
//! SIGKILL at every file-system system call it makes (strace's fault
//! injection, counted per call), with and without `--destroy-key`; after
//! each kill the CA is either untouched and still issues, or its seal is
//! recorded and `uca seal` run again completes it with a manifest that
//! verifies. Planted seal artefacts stop issuance; a planted symbolic link
//! never makes seal destroy the passphrase.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{fails_with, ok, stdout, uca_bin, Scratch};

/// The system calls through which seal changes or reads its files.
const CALLS: &str = "openat,write,fsync,fdatasync,link,linkat,rename,renameat,renameat2,unlink,unlinkat,chmod,fchmod,fchmodat,mkdir,mkdirat,flock,ftruncate";

/// A CA with a generated passphrase and two certificates.
fn template() -> (Scratch, String) {
    let s = Scratch::new();
    let passphrase = s.init_ca_generating_passphrase();
    ok(&s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1", "rmq1"]));
    (s, passphrase)
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

fn strace(cwd: &Path, trace: &str, extra: &[&str], seal_args: &[&str]) -> std::process::Output {
    Command::new("strace")
        .args(["-f", "-qq", "-e", &format!("trace={trace}")])
        .args(extra)
        .arg("--")
        .arg(uca_bin())
        .args(seal_args)
        .current_dir(cwd)
        .env_remove("UCA_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("strace must be installed (test.sh installs it)")
}

/// How often an undisturbed `uca seal` makes each call in CALLS.
fn count_calls(template: &Path, seal_args: &[&str]) -> BTreeMap<String, usize> {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("t");
    copy_tree(template, &dir);
    let log = work.path().join("calls.log");
    let out = strace(&dir, CALLS, &["-o", log.to_str().unwrap()], seal_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        // "PID name(args..." with -f.
        let call = line.split_whitespace().nth(1).unwrap_or("");
        let name = call.split('(').next().unwrap_or("");
        if !name.is_empty() && CALLS.split(',').any(|c| c == name) {
            *counts.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    assert!(counts.values().sum::<usize>() > 20, "{counts:?}");
    counts
}

fn sealed_state(ca: &Path) -> Option<String> {
    let text = std::fs::read_to_string(ca.join("sealed.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).expect("sealed.json parses");
    Some(v["state"].as_str().unwrap_or("sealed").to_string())
}

fn uca_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(uca_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("UCA_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Kills seal at the `nth` call of `call` in a copy of `template` and
/// checks what is left. Returns a description of a broken promise, if any.
fn kill_and_check(
    template: &Path,
    passphrase: &str,
    destroy_key: bool,
    call: &str,
    nth: usize,
) -> Result<&'static str, String> {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("t");
    copy_tree(template, &dir);
    let ca = dir.join("ca");
    let mut seal = vec!["seal", "--dir", "ca"];
    if destroy_key {
        seal.push("--destroy-key");
    }
    let at = format!("{call}#{nth}");
    let out = strace(
        &dir,
        call,
        &["-e", &format!("inject={call}:signal=SIGKILL:when={nth}")],
        &seal,
    );
    if out.status.signal() != Some(9) && out.status.code() != Some(137) {
        return Err(format!("{at}: seal was not killed ({:?})", out.status));
    }
    let stored = std::fs::read_to_string(ca.join("private/passphrase")).ok();
    let untouched = stored.as_deref().map(str::trim_end) == Some(passphrase);
    let state = sealed_state(&ca);
    if !untouched && state.is_none() {
        return Err(format!(
            "{at}: the passphrase was touched but the seal is not recorded"
        ));
    }
    let outcome = if state.is_none()
        && !ca.join("manifest.json").exists()
        && !ca.join("manifest.sha256").exists()
        && !ca.join("manifest.sig").exists()
    {
        // Nothing of the seal happened: the CA still issues.
        let issued = uca_in(&dir, &["issue", "--dir", "ca", "--out", "certs", "late1"]);
        if !issued.status.success() {
            return Err(format!(
                "{at}: unsealed CA no longer issues: {}",
                String::from_utf8_lossy(&issued.stderr)
            ));
        }
        "untouched"
    } else {
        // Some of the seal happened: uca refuses to issue.
        let refused = uca_in(&dir, &["issue", "--dir", "ca", "--out", "certs", "late2"]);
        if refused.status.success() {
            return Err(format!("{at}: a CA with seal artefacts issued"));
        }
        "recorded"
    };
    let again = uca_in(&dir, &seal);
    let already = state.as_deref() == Some("sealed");
    if !again.status.success() && !already {
        return Err(format!(
            "{at}: seal run again failed: {}",
            String::from_utf8_lossy(&again.stderr)
        ));
    }
    if sealed_state(&ca).as_deref() != Some("sealed") {
        return Err(format!("{at}: not sealed after the second run"));
    }
    if ca.join("private/passphrase").exists() {
        return Err(format!("{at}: the passphrase survived the seal"));
    }
    if destroy_key && ca.join("private/ca-key.pem").exists() {
        return Err(format!("{at}: the key survived --destroy-key"));
    }
    let verified = uca_in(&dir, &["verify", "--manifest", "ca/manifest.json"]);
    if !verified.status.success() {
        return Err(format!(
            "{at}: the manifest does not verify: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        ));
    }
    Ok(outcome)
}

fn kill_at_every_call(destroy_key: bool) {
    let (s, passphrase) = template();
    let mut seal = vec!["seal", "--dir", "ca"];
    if destroy_key {
        seal.push("--destroy-key");
    }
    let counts = count_calls(s.path(), &seal);
    let points: Vec<(String, usize)> = counts
        .iter()
        .flat_map(|(call, n)| (1..=*n).map(move |k| (call.clone(), k)))
        .collect();
    // Two workers: each point is independent.
    let failures = std::sync::Mutex::new(Vec::new());
    let outcomes = std::sync::Mutex::new(BTreeMap::<&str, usize>::new());
    std::thread::scope(|scope| {
        for part in points.chunks(points.len().div_ceil(2)) {
            let (failures, outcomes, passphrase, s) = (&failures, &outcomes, &passphrase, &s);
            scope.spawn(move || {
                for (call, k) in part {
                    match kill_and_check(s.path(), passphrase, destroy_key, call, *k) {
                        Ok(o) => *outcomes.lock().unwrap().entry(o).or_insert(0) += 1,
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let outcomes = outcomes.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} kill points broke a promise:\n{}",
        failures.len(),
        points.len(),
        failures.join("\n")
    );
    // Both halves of the transition were hit, or the test proves nothing.
    assert!(
        outcomes.get("untouched").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("recorded").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
}

#[test]
fn a_kill_at_any_system_call_of_seal_is_recoverable() {
    kill_at_every_call(false);
}

#[test]
fn a_kill_at_any_system_call_of_seal_destroy_key_is_recoverable() {
    kill_at_every_call(true);
}

#[test]
fn a_dangling_symlink_at_sealed_json_stops_seal_before_anything_is_destroyed() {
    let s = Scratch::new();
    let passphrase = s.init_ca_generating_passphrase();
    std::os::unix::fs::symlink("nowhere", s.join("ca/sealed.json")).unwrap();
    let err = fails_with(&s.uca(&["seal", "--dir", "ca"]), "sealed.json");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(!err.contains("--force"), "{err}");
    let stored = std::fs::read_to_string(s.join("ca/private/passphrase")).unwrap();
    assert_eq!(stored.trim_end(), passphrase);
    fails_with(
        &s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1"]),
        "sealed.json",
    );
    // Removing the planted link restores the CA.
    std::fs::remove_file(s.join("ca/sealed.json")).unwrap();
    ok(&s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1"]));
}

#[test]
fn any_seal_artefact_stops_issue_and_sign() {
    for artefact in [
        "sealed.json",
        "manifest.json",
        "manifest.sha256",
        "manifest.sig",
    ] {
        let s = Scratch::new();
        s.init_ca_generating_passphrase();
        std::fs::write(s.join("ca").join(artefact), b"{}").unwrap();
        fails_with(
            &s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1"]),
            artefact,
        );
        assert!(!s.join("certs").exists(), "{artefact}: issue wrote output");
    }
}

#[test]
fn an_interrupted_recorded_seal_is_completed_without_the_passphrase() {
    let (s, _) = template();
    ok(&s.uca(&["seal", "--dir", "ca"]));
    // Rewind the record to the moment after the manifest and before the
    // secrets went: put a passphrase back and mark the seal unfinished.
    std::fs::write(s.join("ca/private/passphrase"), "restored\n").unwrap();
    let record = std::fs::read_to_string(s.join("ca/sealed.json")).unwrap();
    let sealing = record.replace("\"state\": \"sealed\"", "\"state\": \"sealing\"");
    assert_ne!(record, sealing, "{record}");
    std::fs::write(s.join("ca/sealed.json"), sealing).unwrap();
    fails_with(
        &s.uca(&["issue", "--dir", "ca", "--out", "certs", "late"]),
        "was interrupted",
    );
    let o = ok(&s.uca(&["seal", "--dir", "ca", "--destroy-key"]));
    assert!(
        stdout(&o).contains("completed the interrupted seal"),
        "{}",
        stdout(&o)
    );
    assert!(!s.join("ca/private/passphrase").exists());
    assert!(!s.join("ca/private/ca-key.pem").exists());
    // A manifest altered after the record stops the completion.
    let (s, _) = template();
    ok(&s.uca(&["seal", "--dir", "ca"]));
    let record = std::fs::read_to_string(s.join("ca/sealed.json")).unwrap();
    std::fs::write(
        s.join("ca/sealed.json"),
        record.replace("\"state\": \"sealed\"", "\"state\": \"sealing\""),
    )
    .unwrap();
    let mut manifest = std::fs::read(s.join("ca/manifest.json")).unwrap();
    manifest.extend_from_slice(b" ");
    std::fs::write(s.join("ca/manifest.json"), manifest).unwrap();
    fails_with(&s.uca(&["seal", "--dir", "ca"]), "altered");
}

#[test]
fn concurrent_seals_end_with_one_seal_and_clear_refusals() {
    for round in 0..5 {
        let (s, _) = template();
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(uca_bin())
                    .args(["seal", "--dir", "ca"])
                    .current_dir(s.path())
                    .env_remove("UCA_PASSPHRASE")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let sealed = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(sealed, 1, "round {round}: {sealed} seals succeeded");
        for o in outputs.iter().filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "round {round}: {err}");
            assert_eq!(err.lines().count(), 1, "round {round}: {err}");
            assert!(err.contains("was sealed at"), "round {round}: {err}");
        }
        assert_eq!(sealed_state(&s.join("ca")).as_deref(), Some("sealed"));
        ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
    }
}

#[test]
fn verify_manifest_refuses_a_stream_instead_of_buffering_it() {
    let s = Scratch::new();
    // An endless FIFO: a writer thread keeps it full until uca gives up.
    let fifo = s.join("manifest.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer_path = fifo.clone();
    std::thread::spawn(move || {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(writer_path) {
            let block = vec![b'{'; 1 << 16];
            while f.write_all(&block).is_ok() {}
        }
    });
    for manifest in ["/dev/zero", fifo.to_str().unwrap()] {
        let started = std::time::Instant::now();
        let err = fails_with(
            &s.uca(&["verify", "--manifest", manifest, "--ca", "ca.pem"]),
            "not a regular file",
        );
        assert!(err.contains(manifest), "{err}");
        assert!(
            started.elapsed().as_secs() < 10,
            "{manifest}: took too long"
        );
    }
}
