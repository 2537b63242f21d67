//! Secret hygiene: the passphrase never comes from argv, does not outlive
//! its reading in the environment, core dumps are off while the CA key is in
//! memory, and after seal no file holds the passphrase or the plain key.

mod common;

use std::fs::OpenOptions;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn no_command_accepts_a_passphrase_on_the_command_line() {
    let s = Scratch::new();
    for sub in ["init", "issue", "sign", "seal", "ceremony", "registry"] {
        let o = s.uca(&[sub, "--help"]);
        let help = stdout(&o);
        assert!(o.status.success(), "{sub} --help failed");
        for line in help.lines() {
            let l = line.trim_start();
            if l.starts_with("--passphrase") {
                assert!(
                    l.starts_with("--passphrase-file"),
                    "{sub} has a passphrase option other than a file: {l}"
                );
            }
        }
    }
    for flag in ["--passphrase", "--password", "--pass"] {
        let o = s.uca(&[
            "init",
            "--dir",
            "ca",
            "--name",
            "Root",
            flag,
            "correct horse battery staple",
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag} was accepted");
        assert!(!s.join("ca").exists());
    }
}

#[test]
fn the_environment_variable_is_removed_once_read() {
    // The mechanism, in this process: after taking the passphrase, a child
    // process started from here does not inherit it.
    std::env::set_var("UCA_PASSPHRASE", "correct horse battery staple");
    let p = uca::pki::passphrase::Passphrase::take_from_env()
        .unwrap()
        .unwrap();
    assert_eq!(p.as_str(), "correct horse battery staple");
    assert!(std::env::var_os("UCA_PASSPHRASE").is_none());
    let env = Command::new("env").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&env.stdout).contains("correct horse"),
        "a child inherited the passphrase"
    );
}

/// Core dumps are off while uca holds the CA key: an `issue` that has
/// unlocked the key waits for the CA lock we hold, and its limits show a core
/// size of 0.
#[test]
fn core_dumps_are_disabled_while_the_key_is_in_memory() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(s.join("ca/ledger.lock"))
        .unwrap();
    lock.lock().unwrap();
    let pass = s.pass_file();
    let mut child = Command::new(uca_bin())
        .args([
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "--passphrase-file",
            pass.to_str().unwrap(),
            "web1",
        ])
        .current_dir(s.path())
        .env_remove("UCA_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until it has unlocked the key and blocks on the CA lock.
    let start = Instant::now();
    let limits = loop {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        if wchan.contains("lock")
            || wchan.contains("flock")
            || start.elapsed() > Duration::from_secs(10)
        {
            break limits;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or("")
        .to_string();
    drop(lock);
    let status = child.wait().unwrap();
    assert!(status.success());
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(
        &fields[4..6],
        ["0", "0"],
        "core dumps are not disabled: {core}"
    );
}

#[test]
fn after_seal_no_file_holds_the_passphrase_or_the_plain_ca_key() {
    let s = Scratch::new();
    let passphrase = s.init_ca_generating_passphrase();
    // Decrypt the key out of the tree, only to know what to look for.
    let key_der = std::env::temp_dir().join(format!("uca-test-key-{}.der", std::process::id()));
    let (okk, out) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            "file:ca/private/passphrase",
            "-outform",
            "DER",
            "-out",
            key_der.to_str().unwrap(),
        ],
        s.path(),
    );
    assert!(okk, "{out}");
    let key = std::fs::read(&key_der).unwrap();
    std::fs::remove_file(&key_der).unwrap();
    let scalar = &key[key.len() - 32..];
    ok(&s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1", "rmq1"]));
    ok(&s.uca(&["seal", "--dir", "ca"]));
    let mut scanned = 0;
    for f in s.files() {
        let p = s.join(&f);
        if !p.is_file() {
            continue;
        }
        scanned += 1;
        let bytes = std::fs::read(&p).unwrap();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!has(passphrase.as_bytes()), "the passphrase is in {f}");
        assert!(!has(&key), "the plain CA key is in {f}");
        assert!(!has(scalar), "CA key material is in {f}");
    }
    assert!(scanned >= 12, "scanned only {scanned} files");
}

#[test]
fn a_closed_output_pipe_ends_uca_with_one_line_without_a_panic() {
    use std::io::Read;
    let s = Scratch::new();
    let pass = s.pass_file();
    // `uca init ... | head -0`: the reader is gone before uca writes a line.
    let mut child = Command::new(uca_bin())
        .args([
            "init",
            "--dir",
            "ca",
            "--name",
            "Root",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ])
        .current_dir(s.path())
        .env_remove("UCA_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        !err.contains("panicked"),
        "uca panicked on a closed pipe: {err}"
    );
    // Not a silent kill by SIGPIPE: one line that says the CA was made.
    assert_eq!(status.code(), Some(1), "{status:?} {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("the work was done (the CA was created in ca)"),
        "{err}"
    );
    // The CA was complete before the first line was printed.
    assert!(s.join("ca/ca.pem").is_file() && s.join("ca/private/ca-key.pem").is_file());
}
