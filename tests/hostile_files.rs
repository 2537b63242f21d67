//! Hostile file handling: concurrent `init` on one directory, the modes of
//! the directory `init` claims, output paths checked before any key is made,
//! passphrase files read exactly as OpenSSL reads them, and standard output
//! that cannot be written.

mod common;

use common::*;

/// The passphrase files whose reading must agree with `openssl -passin file:`.
/// Passphrase files whose reading uca and OpenSSL could disagree on: line
/// endings, trailing blanks, and lengths around OpenSSL's 1023-byte limit.
fn passphrase_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = [
        ("lf.txt", "correct horse battery staple\n"),
        ("no-newline.txt", "correct horse battery staple"),
        ("crlf.txt", "correct horse battery staple\r\n"),
        ("trailing-spaces.txt", "correct horse battery staple  \n"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    for len in [1023, 1024, 1501] {
        files.push((format!("long-{len}.txt"), format!("{}\n", "a".repeat(len))));
    }
    files
}

fn openssl_unlocks(s: &Scratch, key: &str, pass_file: &str) -> bool {
    let (ok, _) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            key,
            "-passin",
            &format!("file:{pass_file}"),
            "-noout",
        ],
        s.path(),
    );
    ok
}

fn uca_unlocks(s: &Scratch, ca: &str, pass_file: &str, out: &str) -> bool {
    s.uca(&[
        "issue",
        "--dir",
        ca,
        "--out",
        out,
        "--passphrase-file",
        pass_file,
        "web.internal",
    ])
    .status
    .success()
}

#[test]
fn passphrase_files_unlock_in_uca_iff_they_unlock_in_openssl() {
    let s = Scratch::new();
    s.init_ca(&[]);
    for (i, (name, text)) in passphrase_files().iter().enumerate() {
        let name = name.as_str();
        std::fs::write(s.join(name), text).unwrap();
        // A key made with the bytes of pass.txt: both tools must agree.
        let by_uca = uca_unlocks(&s, "ca", name, &format!("out-{i}"));
        let by_openssl = openssl_unlocks(&s, "ca/private/ca-key.pem", name);
        assert_eq!(
            by_uca, by_openssl,
            "{name:?}: uca {by_uca}, OpenSSL {by_openssl}"
        );
        // A key made from this very file, when uca accepts it for init.
        let ca = format!("ca-{i}");
        let init = s.uca(&[
            "init",
            "--dir",
            &ca,
            "--name",
            "Root",
            "--passphrase-file",
            name,
        ]);
        if init.status.success() {
            let key = format!("{ca}/private/ca-key.pem");
            assert!(
                openssl_unlocks(&s, &key, name),
                "{name:?}: OpenSSL cannot open the key uca made with it"
            );
            assert!(
                uca_unlocks(&s, &ca, name, &format!("out-own-{i}")),
                "{name:?}"
            );
        } else {
            assert!(!s.join(&ca).exists(), "{name:?}: a refused init left {ca}");
        }
    }
}

#[test]
fn crlf_passphrase_file_is_refused_with_one_line_for_init_and_unlock() {
    let s = Scratch::new();
    s.init_ca(&[]);
    std::fs::write(s.join("crlf.txt"), "correct horse battery staple\r\n").unwrap();
    let before = s.files();
    let unlock = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "out",
        "--passphrase-file",
        "crlf.txt",
        "web.internal",
    ]);
    fails_with(&unlock, "crlf.txt ends in CR LF (a Windows line ending)");
    let init = s.uca(&[
        "init",
        "--dir",
        "new",
        "--name",
        "Root",
        "--passphrase-file",
        "crlf.txt",
    ]);
    fails_with(&init, "save it with LF line endings");
    assert_eq!(s.files(), before);
}

/// Runs `count` `uca init --dir DIR` at once; returns their outputs.
fn concurrent_inits(s: &Scratch, dir: &str, count: usize) -> Vec<std::process::Output> {
    let pass = s.pass_file();
    let children: Vec<_> = (0..count)
        .map(|_| {
            std::process::Command::new(uca_bin())
                .args(["init", "--dir", dir, "--name", "Root", "--passphrase-file"])
                .arg(&pass)
                .current_dir(s.path())
                .env_remove("UCA_PASSPHRASE")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn uca")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// The CA in `dir` is complete: its key decrypts with OpenSSL and belongs
/// to ca.pem, and it issues a certificate.
fn assert_complete_ca(s: &Scratch, dir: &str) {
    let (ok_key, key_pub) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            &format!("{dir}/private/ca-key.pem"),
            "-passin",
            "file:pass.txt",
            "-pubout",
        ],
        s.path(),
    );
    assert!(ok_key, "{key_pub}");
    let (ok_cert, cert_pub) = run(
        "openssl",
        &["x509", "-in", &format!("{dir}/ca.pem"), "-pubkey", "-noout"],
        s.path(),
    );
    assert!(ok_cert, "{cert_pub}");
    assert_eq!(
        key_pub, cert_pub,
        "the key in {dir} does not belong to its ca.pem"
    );
    let pass = s.pass_file();
    ok(&s.uca(&[
        "issue",
        "--dir",
        dir,
        "--out",
        &format!("{dir}-certs"),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "web.internal",
    ]));
    let mut entries: Vec<String> = std::fs::read_dir(s.join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            "ca.pem",
            "ca.toml",
            "ledger.jsonl",
            "ledger.lock",
            "private"
        ]
    );
}

fn assert_one_winner(s: &Scratch, dir: &str, outputs: &[std::process::Output], round: usize) {
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "round {round}: {winners} inits succeeded");
    assert_complete_ca(s, dir);
    for o in outputs.iter().filter(|o| !o.status.success()) {
        fails_with(o, &format!("'{dir}'"));
    }
    // No staging directory or claim file is left behind.
    let leftovers: Vec<_> = s
        .files()
        .into_iter()
        .filter(|f| f.contains(".init-") || f.contains(".uca-init"))
        .collect();
    assert!(leftovers.is_empty(), "round {round}: left {leftovers:?}");
}

#[test]
fn concurrent_inits_on_a_new_directory_leave_one_complete_ca() {
    for round in 0..20 {
        let s = Scratch::new();
        let outputs = concurrent_inits(&s, "ca", 2 + round % 7);
        assert_one_winner(&s, "ca", &outputs, round);
    }
}

#[test]
fn concurrent_inits_on_an_existing_empty_directory_leave_one_complete_ca() {
    for round in 0..20 {
        let s = Scratch::new();
        std::fs::create_dir(s.join("ca")).unwrap();
        let outputs = concurrent_inits(&s, "ca", 2 + round % 7);
        assert_one_winner(&s, "ca", &outputs, round);
    }
}

#[test]
fn init_refuses_a_dangling_symlink_and_leaves_it_in_place() {
    let s = Scratch::new();
    std::os::unix::fs::symlink("nowhere", s.join("ca")).unwrap();
    let before = s.files();
    let o = s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Root",
        "--passphrase-file",
        "pass.txt",
    ]);
    fails_with(&o, "it is a symbolic link to nowhere, which does not exist");
    assert_eq!(s.files(), before);
    assert_eq!(
        std::fs::read_link(s.join("ca")).unwrap(),
        std::path::Path::new("nowhere")
    );
}

#[test]
fn init_follows_a_symlink_to_an_empty_directory() {
    let s = Scratch::new();
    std::fs::create_dir(s.join("real")).unwrap();
    std::os::unix::fs::symlink("real", s.join("ca")).unwrap();
    ok(&s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Root",
        "--passphrase-file",
        "pass.txt",
    ]));
    assert!(s.join("real/ca.pem").is_file());
    assert!(std::fs::symlink_metadata(s.join("ca"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_complete_ca(&s, "ca");
}

fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn init_gives_new_and_existing_directories_the_documented_modes() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    std::fs::create_dir(s.join("open")).unwrap();
    std::fs::set_permissions(s.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    for dir in ["fresh", "open"] {
        ok(&s.uca(&[
            "init",
            "--dir",
            dir,
            "--name",
            "Root",
            "--passphrase-file",
            "pass.txt",
        ]));
        assert_eq!(mode_of(&s.join(dir)), 0o755, "{dir}");
        assert_eq!(
            mode_of(&s.join(dir).join("private")),
            0o700,
            "{dir}/private"
        );
        assert_eq!(
            mode_of(&s.join(dir).join("private/ca-key.pem")),
            0o600,
            "{dir} key"
        );
    }
}

const SMALL_PLAN: &str = "[ca]\nname = \"Plan Root\"\npermit = [\"internal\"]\n\
    [registry]\nhosts = [\"registry.internal\"]\n\
    [[group]]\nname = \"web\"\nnames = [\"web1.internal\"]\n";

#[test]
fn ceremony_refuses_an_escrow_file_in_a_missing_directory_before_writing_anything() {
    let s = Scratch::new();
    std::fs::write(s.join("plan.toml"), SMALL_PLAN).unwrap();
    let before = s.files();
    let o = s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "out",
        "--escrow-passphrase",
        "vault/escrow.txt",
    ]);
    fails_with(
        &o,
        "--escrow-passphrase 'vault/escrow.txt': its directory vault does not exist",
    );
    assert_eq!(s.files(), before, "a refused ceremony wrote something");
}

#[test]
fn ceremony_refuses_outputs_under_a_file_before_writing_anything() {
    let s = Scratch::new();
    std::fs::write(s.join("plan.toml"), SMALL_PLAN).unwrap();
    std::fs::write(s.join("afile"), "not a directory").unwrap();
    let before = s.files();
    let o = s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "out",
        "--escrow-passphrase",
        "afile/escrow.txt",
    ]);
    fails_with(&o, "afile is not a directory");
    assert_eq!(s.files(), before);
}

/// A wrong passphrase file: a command that checks its outputs before it
/// unlocks the CA names the output, not the passphrase.
fn wrong_pass(s: &Scratch) -> String {
    std::fs::write(s.join("wrong.txt"), "not the passphrase at all\n").unwrap();
    "wrong.txt".into()
}

#[test]
fn every_output_path_is_checked_before_the_ca_is_unlocked_or_a_key_made() {
    let s = Scratch::new();
    s.init_ca(&[]);
    std::fs::write(s.join("afile"), "not a directory").unwrap();
    let csr_key = s.join("csr-key.pem");
    let (made, out) = run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            csr_key.to_str().unwrap(),
            "-subj",
            "/CN=web.internal",
            "-out",
            "web.csr",
        ],
        s.path(),
    );
    assert!(made, "{out}");
    let pass = wrong_pass(&s);
    let cases: &[(&[&str], &str)] = &[
        (
            &["sign", "--dir", "ca", "web.csr", "--out", "missing/web.pem"],
            "its directory missing does not exist",
        ),
        (
            &["sign", "--dir", "ca", "web.csr", "--out", "afile/web.pem"],
            "afile is not a directory",
        ),
        (
            &[
                "issue",
                "--dir",
                "ca",
                "--out",
                "afile/certs",
                "web.internal",
            ],
            "afile is not a directory",
        ),
        (
            &[
                "registry",
                "--dir",
                "ca",
                "--out",
                "afile/reg",
                "registry.internal",
            ],
            "afile is not a directory",
        ),
        (
            &[
                "vault",
                "tls",
                "--dir",
                "ca",
                "--out",
                "afile/vault",
                "--host",
                "vault.internal",
            ],
            "afile is not a directory",
        ),
    ];
    let before = s.files();
    for (args, needle) in cases {
        let mut args = args.to_vec();
        args.extend(["--passphrase-file", pass.as_str()]);
        fails_with(&s.uca(&args), needle);
        assert_eq!(s.files(), before, "{args:?} wrote something");
    }
}

/// Where standard output goes in the tests below.
#[derive(Clone, Copy, Debug)]
enum Sink {
    /// `> /dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose reader is already gone: every write fails with EPIPE.
    ClosedPipe,
}

impl Sink {
    fn stdio(self) -> std::process::Stdio {
        match self {
            Sink::Full => std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
                .into(),
            Sink::ClosedPipe => {
                use std::os::fd::FromRawFd;
                let mut fds = [0; 2];
                // SAFETY: pipe fills two valid descriptors on success; the
                // read end is closed at once, the write end owned below.
                unsafe {
                    assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
                    libc::close(fds[0]);
                    std::os::fd::OwnedFd::from_raw_fd(fds[1]).into()
                }
            }
        }
    }

    fn cause(self) -> &'static str {
        match self {
            Sink::Full => "No space left on device",
            Sink::ClosedPipe => "Broken pipe",
        }
    }
}

fn uca_into(s: &Scratch, sink: Sink, args: &[&str]) -> std::process::Output {
    std::process::Command::new(uca_bin())
        .args(args)
        .current_dir(s.path())
        .env_remove("UCA_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .stdout(sink.stdio())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run uca")
}

/// Runs `args` with standard output failing; asserts the one error line,
/// which says the work was done when `done` names it, and the exit status.
fn assert_stdout_failure(s: &Scratch, sink: Sink, args: &[&str], done: Option<&str>, status: i32) {
    let o = uca_into(s, sink, args);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(o.status.code(), Some(status), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("uca: error: "), "{args:?}: {err}");
    assert!(err.contains(sink.cause()), "{args:?}: {err}");
    match done {
        Some(what) => assert!(
            err.contains(&format!("the work was done ({what}"))
                && err.contains("standard output could not be written"),
            "{args:?}: {err}"
        ),
        None => assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        ),
    }
}

fn every_command_reports_a_failed_standard_output(sink: Sink) {
    let s = Scratch::new();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let init = [
        "init",
        "--dir",
        "ca",
        "--name",
        "Root",
        "--passphrase-file",
        pass,
    ];
    assert_stdout_failure(&s, sink, &init, Some("the CA was created in ca"), 1);
    assert!(s.join("ca/ca.pem").is_file());

    let issue = [
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass,
        "web1.internal",
    ];
    assert_stdout_failure(&s, sink, &issue, Some("1 certificate issued into certs"), 1);
    assert!(s.join("certs/web1.internal/cert.pem").is_file());

    std::fs::write(
        s.join("group.toml"),
        "[[group]]\nname = \"w\"\nnames = [\"w{1..2}.internal\"]\n",
    )
    .unwrap();
    let plan = [
        "issue",
        "--dir",
        "ca",
        "--out",
        "planned",
        "--passphrase-file",
        pass,
        "--plan",
        "group.toml",
    ];
    assert_stdout_failure(
        &s,
        sink,
        &plan,
        Some("2 certificates issued into planned"),
        1,
    );

    let (made, out) = run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "csr-key.pem",
            "-subj",
            "/CN=api.internal",
            "-out",
            "api.csr",
        ],
        s.path(),
    );
    assert!(made, "{out}");
    let sign_out = [
        "sign",
        "--dir",
        "ca",
        "api.csr",
        "--out",
        "api.pem",
        "--passphrase-file",
        pass,
    ];
    assert_stdout_failure(&s, sink, &sign_out, Some("serial"), 1);
    assert!(s.join("api.pem").is_file());
    let sign_stdout = ["sign", "--dir", "ca", "api.csr", "--passphrase-file", pass];
    assert_stdout_failure(&s, sink, &sign_stdout, Some("serial"), 1);
    assert!(
        stderr(&uca_into(&s, sink, &sign_stdout)).contains("sign the CSR again with --out FILE")
    );

    let registry = [
        "registry",
        "--dir",
        "ca",
        "--out",
        "reg",
        "--passphrase-file",
        pass,
        "registry.internal",
    ];
    assert_stdout_failure(&s, sink, &registry, Some("the registry's certificates"), 1);
    let tls = [
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vt",
        "--host",
        "vault.internal",
        "--passphrase-file",
        pass,
    ];
    assert_stdout_failure(
        &s,
        sink,
        &tls,
        Some("1 certificate and vt/listener.hcl were written"),
        1,
    );

    let read_only: &[&[&str]] = &[
        &[
            "vault",
            "commands",
            "--dir",
            "ca",
            "--allowed-domain",
            "internal",
        ],
        &["inspect", "ca/ca.pem"],
        &["inspect", "--json", "ca/ca.pem"],
        &[
            "verify",
            "certs/web1.internal/chain.pem",
            "--ca",
            "ca/ca.pem",
        ],
        &["completions", "bash"],
    ];
    for args in read_only {
        assert_stdout_failure(&s, sink, args, None, 1);
    }
    // check's own status for "could not check", not 1 (WARN to a monitor).
    assert_stdout_failure(&s, sink, &["check", "certs"], None, 1);

    let seal = ["seal", "--dir", "ca", "--passphrase-file", pass];
    assert_stdout_failure(
        &s,
        sink,
        &seal,
        Some("ca was sealed; the passphrase is still in"),
        1,
    );
    assert!(s.join("ca/sealed.json").is_file());
    assert_stdout_failure(
        &s,
        sink,
        &["verify", "--manifest", "ca/manifest.json"],
        None,
        1,
    );

    std::fs::write(s.join("plan.toml"), SMALL_PLAN).unwrap();
    let ceremony = ["ceremony", "plan.toml", "--out", "cer"];
    assert_stdout_failure(
        &s,
        sink,
        &ceremony,
        Some("the ceremony is complete and cer/ca is sealed"),
        1,
    );
    let ceremony_json = ["ceremony", "plan.toml", "--out", "cer-json", "--json"];
    assert_stdout_failure(
        &s,
        sink,
        &ceremony_json,
        Some("the ceremony is complete"),
        1,
    );
}

#[test]
fn every_command_reports_standard_output_on_a_full_disk() {
    every_command_reports_a_failed_standard_output(Sink::Full);
}

#[test]
fn every_command_reports_standard_output_whose_reader_went_away() {
    every_command_reports_a_failed_standard_output(Sink::ClosedPipe);
}

#[test]
fn help_and_version_report_a_failed_standard_output() {
    let s = Scratch::new();
    for args in [&["--help"][..], &["--version"], &["init", "--help"]] {
        assert_stdout_failure(&s, Sink::Full, args, None, 1);
    }
}

#[test]
fn a_failed_standard_error_does_not_panic() {
    let s = Scratch::new();
    let o = std::process::Command::new(uca_bin())
        .args(["inspect", "no-such-file.pem"])
        .current_dir(s.path())
        .stderr(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    // The error line is lost; the status still says what happened.
    assert_eq!(o.status.code(), Some(1));
}
