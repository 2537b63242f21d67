//! Plans that try to make uca destroy or duplicate what it issued: outputs
//! inside one another, concurrent runs of one plan, paths too long for the
//! file system, output directories named like uca's temporary ones. Every
//! refusal happens before the first key: the ledger is unchanged and
//! nothing new exists under OUT.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{fails_with, ok, stderr, stdout, uca_bin, Scratch};

/// A scratch directory with an unconstrained CA in `ca`.
fn scratch_with_ca() -> Scratch {
    let s = Scratch::new();
    s.init_ca(&[]);
    s
}

fn write_plan(s: &Scratch, file: &str, text: &str) -> String {
    std::fs::write(s.join(file), text).unwrap();
    file.to_string()
}

fn issue_plan_args<'a>(plan: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "issue",
        "--dir",
        "ca",
        "--out",
        out,
        "--passphrase-file",
        "pass.txt",
        "--plan",
        plan,
    ];
    args.extend_from_slice(extra);
    args
}

fn ledger_text(s: &Scratch) -> String {
    std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap_or_default()
}

/// Every path below `dir` (relative), sorted; empty if `dir` is absent.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs a plan that must be refused with every fragment of `needles` in its
/// one-line error, and checks that nothing was written: ledger unchanged,
/// OUT exactly as before.
fn refused_before_anything(s: &Scratch, plan: &str, out: &str, needles: &[&str]) -> String {
    let ledger = ledger_text(s);
    let before = tree(&s.join(out));
    let o = s.uca(&issue_plan_args(plan, out, &[]));
    let message = fails_with(&o, needles[0]);
    for n in &needles[1..] {
        assert!(message.contains(n), "'{n}' missing from: {message}");
    }
    assert_eq!(ledger_text(s), ledger, "the ledger changed: {message}");
    assert_eq!(tree(&s.join(out)), before, "OUT changed: {message}");
    message
}

/// (path, sha256) of every ledger entry.
fn ledger_entries(s: &Scratch) -> Vec<(String, String)> {
    ledger_text(s)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["path"].as_str().unwrap_or_default().to_string(),
                v["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every recorded certificate's cert.pem and chain.pem hold the certificate
/// the ledger records for that path.
fn assert_files_match_ledger(s: &Scratch) {
    for (path, sha) in ledger_entries(s) {
        let cert = Path::new(&path);
        for file in [cert.to_path_buf(), cert.with_file_name("chain.pem")] {
            let der = uca::pki::x509::read_certificates(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(
                uca::pki::x509::sha256_hex(&der[0]),
                sha,
                "{}",
                file.display()
            );
        }
    }
}

// Defect class: one output of a plan inside (or equal to) another.

#[test]
fn a_certificate_directory_that_is_another_groups_out_is_refused_before_anything() {
    let s = scratch_with_ca();
    // Both orders: the name first, or the group directory first.
    for (i, plan) in [
        "[[group]]\nname = \"farm\"\nnames = [\"web{1..99}\"]\nout = \"web\"\n\n[[group]]\nname = \"misc\"\nnames = [\"web\"]\n",
        "[[group]]\nname = \"misc\"\nnames = [\"web\"]\n\n[[group]]\nname = \"farm\"\nnames = [\"web{1..99}\"]\nout = \"web\"\n",
    ]
    .iter()
    .enumerate()
    {
        let file = write_plan(&s, &format!("overlap{i}.toml"), plan);
        refused_before_anything(&s, &file, "certs", &["'misc', name 'web'", "certs/web", "'farm'"]);
    }
}

#[test]
fn every_kind_of_nested_output_is_refused_before_anything() {
    let s = scratch_with_ca();
    let cases = [
        // A group directory inside a certificate directory.
        ("[[group]]\nname = \"a\"\nnames = [\"db\"]\n\n[[group]]\nname = \"b\"\nnames = [\"x\"]\nout = \"db/certs.d\"\n", "certs/db"),
        // A certificate directory that is a group directory's parent.
        ("[[group]]\nname = \"a\"\nnames = [\"b\"]\nout = \"a\"\n\n[[group]]\nname = \"b\"\nnames = [\"x\"]\nout = \"a/b/c\"\n", "certs/a/b"),
        // Into the directory of a format's own files.
        ("[[group]]\nname = \"a\"\nnames = [\"web\"]\nformats = [\"certsd\"]\n\n[[group]]\nname = \"b\"\nnames = [\"ca.crt\"]\nout = \"web/certs.d\"\n", "certs/web"),
    ];
    for (i, (plan, shown)) in cases.iter().enumerate() {
        let file = write_plan(&s, &format!("nested{i}.toml"), plan);
        refused_before_anything(&s, &file, "certs", &[shown, "one would replace the other"]);
    }
    // Groups sharing a directory, or one directory inside another, are fine.
    let file = write_plan(
        &s,
        "fine.toml",
        "[[group]]\nname = \"a\"\nnames = [\"x\"]\nout = \"a\"\n\n[[group]]\nname = \"b\"\nnames = [\"y\"]\nout = \"a\"\n\n[[group]]\nname = \"c\"\nnames = [\"z\"]\nout = \"a/deeper\"\n",
    );
    ok(&s.uca(&issue_plan_args(&file, "certs", &[])));
    assert_files_match_ledger(&s);
}

#[test]
fn recorded_certificates_are_never_removed_even_with_force() {
    let s = scratch_with_ca();
    let farm = write_plan(
        &s,
        "farm.toml",
        "[[group]]\nname = \"farm\"\nnames = [\"web{1..5}\"]\nout = \"web\"\n",
    );
    ok(&s.uca(&issue_plan_args(&farm, "certs", &[])));
    let misc = write_plan(
        &s,
        "misc.toml",
        "[[group]]\nname = \"misc\"\nnames = [\"web\"]\n",
    );
    let files = tree(&s.join("certs"));
    let ledger = ledger_text(&s);
    fails_with(&s.uca(&issue_plan_args(&misc, "certs", &[])), "certs/web");
    let o = s.uca(&issue_plan_args(&misc, "certs", &["--force"]));
    fails_with(&o, "the ledger records");
    assert_eq!(tree(&s.join("certs")), files);
    assert_eq!(ledger_text(&s), ledger);
    assert_files_match_ledger(&s);
    // --force still re-issues a certificate directory itself.
    ok(&s.uca(&issue_plan_args(&farm, "certs", &["--force"])));
    assert_eq!(ledger_entries(&s).len(), 10);
    assert_eq!(tree(&s.join("certs")), files);
}

// Defect class: concurrent runs of one plan.

#[test]
fn concurrent_runs_of_one_plan_issue_each_certificate_once() {
    let s = scratch_with_ca();
    let plan = write_plan(
        &s,
        "sixty.toml",
        "[[group]]\nname = \"nodes\"\nnames = [\"node{1..60}\"]\nformats = [\"pem\", \"combined\"]\n",
    );
    for (round, runs) in [2usize, 3, 4].into_iter().enumerate() {
        let out = format!("certs{round}");
        let children: Vec<_> = (0..runs)
            .map(|_| {
                Command::new(uca_bin())
                    .args(issue_plan_args(&plan, &out, &["--json"]))
                    .current_dir(s.path())
                    .env_remove("UCA_PASSPHRASE")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut issued = Vec::new();
        for child in children {
            let o = ok(&child.wait_with_output().unwrap());
            let summary: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
            issued.push((summary["issued"].as_u64(), summary["skipped"].as_u64()));
        }
        issued.sort();
        let mut expected = vec![(Some(0), Some(60)); runs - 1];
        expected.push((Some(60), Some(0)));
        assert_eq!(issued, expected, "round {round}: (issued, kept) per run");
        let out_abs = s.path().canonicalize().unwrap().join(&out);
        let in_out = ledger_entries(&s)
            .into_iter()
            .filter(|(p, _)| Path::new(p).starts_with(&out_abs))
            .count();
        assert_eq!(in_out, 60, "round {round}: ledger entries for {out}");
        assert_eq!(ledger_entries(&s).len(), 60 * (round + 1));
        assert_files_match_ledger(&s);
    }
}

// Defect class: output paths over the file system's limits.

/// A DNS name of exactly `len` characters (labels of at most 63).
fn long_name(len: usize) -> String {
    let mut labels = Vec::new();
    let mut left = len;
    while left > 63 {
        // Leave at least one character after the next dot.
        let take = 63.min(left - 2);
        labels.push("a".repeat(take));
        left -= take + 1;
    }
    labels.push("a".repeat(left));
    let name = labels.join(".");
    assert_eq!(name.len(), len);
    name
}

#[test]
fn names_too_long_for_a_format_are_refused_before_the_first_key() {
    let s = scratch_with_ca();
    std::fs::write(s.join("p12.txt"), "bundle password\n").unwrap();
    let plan = |name: &str, formats: &str| {
        format!(
            "[defaults]\npkcs12_password_file = \"p12.txt\"\n\n[[group]]\nname = \"first\"\nnames = [\"first\"]\n\n[[group]]\nname = \"long\"\nnames = [\"{name}\"]\nformats = [{formats}]\n"
        )
    };
    let n253 = long_name(253);
    let file = write_plan(&s, "p12.toml", &plan(&n253, "\"pem\", \"pkcs12\", \"k8s\""));
    refused_before_anything(&s, &file, "certs", &["plan group 'long'", ".p12", "255"]);
    // A k8s Secret name never limits a name: one too long for NAME-tls is
    // cut and keeps a hash (tests/hostile_names.rs checks the names).
    // A path over PATH_MAX: a deep out of long but valid components.
    let deep = vec!["d".repeat(200); 20].join("/");
    let file = write_plan(
        &s,
        "deep.toml",
        &format!("[[group]]\nname = \"first\"\nnames = [\"first\"]\n\n[[group]]\nname = \"deep\"\nnames = [\"{}\"]\nout = \"{deep}\"\n", long_name(200)),
    );
    refused_before_anything(&s, &file, "certs", &["plan group 'deep'", "4095"]);
    // The longest name every format accepts works, with all its files.
    let n249 = long_name(249);
    let file = write_plan(
        &s,
        "fits.toml",
        &plan(&n249, "\"pem\", \"pkcs12\", \"k8s\", \"combined\""),
    );
    ok(&s.uca(&issue_plan_args(&file, "certs", &[])));
    for f in [
        "cert.pem",
        "key.pem",
        "secret.yaml",
        "combined.pem",
        &format!("{n249}.p12"),
    ] {
        assert!(s.join("certs").join(&n249).join(f).is_file(), "{f}");
    }
    assert_files_match_ledger(&s);
}

// Defect class: clean-up of what looks like uca's temporary directories.

#[test]
fn hidden_group_outs_are_refused_before_anything() {
    let s = scratch_with_ca();
    for (i, out) in [
        ".b.tmp-0123456789abcdef",
        "x/.hidden",
        ".web1.old-0000000100000000",
    ]
    .iter()
    .enumerate()
    {
        let file = write_plan(
            &s,
            &format!("hidden{i}.toml"),
            &format!("[[group]]\nname = \"first\"\nnames = [\"first\"]\n\n[[group]]\nname = \"g\"\nnames = [\"web1\"]\nout = \"{out}\"\n"),
        );
        refused_before_anything(&s, &file, "certs", &["group 'g'", "starts with '.'"]);
    }
}

/// A process id that is not running: a child that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn only_provable_leftovers_are_cleared() {
    let s = scratch_with_ca();
    let plan = write_plan(
        &s,
        "web.toml",
        "[[group]]\nname = \"web\"\nnames = [\"web{1..3}\"]\n",
    );
    let certs = s.join("certs");
    let plant = |name: &str, files: &[&str]| {
        let dir = certs.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "mine\n").unwrap();
        }
        dir
    };
    let tag = |pid: u32| format!("{:016x}", (u64::from(pid) << 32) | 7);
    let pid = dead_pid();
    // Kept: a tag that no process id can have; a user's file among uca's;
    // beside no target of the plan; a file, not a directory.
    let impossible = plant(".web1.tmp-0123456789abcdef", &["notes.txt"]);
    let users = plant(
        &format!(".web2.tmp-{}", tag(pid)),
        &["cert.pem", "notes.txt"],
    );
    let elsewhere = plant(&format!(".b.tmp-{}", tag(pid)), &["cert.pem"]);
    let group_like = plant(".b.tmp-0123456789abcdef", &["keep.txt"]);
    // Removed: what a killed run leaves beside a target it was writing.
    let leftover = plant(&format!(".web3.tmp-{}", tag(pid)), &["cert.pem", "key.pem"]);
    std::fs::create_dir_all(leftover.join("certs.d")).unwrap();
    std::fs::write(leftover.join("certs.d/ca.crt"), "x").unwrap();
    let ledger = ledger_text(&s);
    let o = ok(&s.uca(&issue_plan_args(&plan, "certs", &[])));
    for kept in [&impossible, &users, &elsewhere, &group_like] {
        assert!(kept.is_dir(), "{} was removed", kept.display());
    }
    assert!(impossible.join("notes.txt").is_file());
    assert!(group_like.join("keep.txt").is_file());
    assert!(!leftover.exists(), "the leftover is still there");
    let note = stderr(&o);
    assert!(
        note.contains(".web1.tmp-0123456789abcdef") && note.contains("in place"),
        "{note}"
    );
    assert_ne!(ledger_text(&s), ledger);
    assert_eq!(ledger_entries(&s).len(), 3);
    // A re-run keeps everything and says so.
    let o = ok(&s.uca(&issue_plan_args(&plan, "certs", &[])));
    assert!(
        stdout(&o).contains("3 already issued, kept"),
        "{}",
        stdout(&o)
    );
    assert!(group_like.join("keep.txt").is_file());
    assert_files_match_ledger(&s);
}

// Defect class: a failed run removing what it did not make.

#[test]
fn a_ceremony_that_loses_a_race_for_out_removes_nothing_of_the_winner() {
    let s = Scratch::new();
    let plan = write_plan(
        &s,
        "ceremony.toml",
        "[ca]\nname = \"Race Root\"\n\n[[group]]\nname = \"nodes\"\nnames = [\"node{1..20}.internal\"]\n",
    );
    for round in 0..4 {
        let out = format!("out{round}");
        let children: Vec<_> = (0..3)
            .map(|_| {
                Command::new(uca_bin())
                    .args(["ceremony", &plan, "--out", &out])
                    .current_dir(s.path())
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
        let winners = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            winners,
            1,
            "round {round}: {:?}",
            outputs.iter().map(stderr).collect::<Vec<_>>()
        );
        for o in outputs.iter().filter(|o| !o.status.success()) {
            assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
            assert_eq!(stderr(o).trim_end().lines().count(), 1, "{}", stderr(o));
        }
        let manifest = format!("{out}/ca/manifest.json");
        ok(&s.uca(&["verify", "--manifest", &manifest]));
        assert_eq!(tree(&s.join(&out).join("certs")).len(), 20 * 5);
    }
}

#[test]
fn registry_client_folders_too_long_are_refused_before_the_first_key() {
    let s = scratch_with_ca();
    let host = format!("{}:5001", long_name(253));
    let args = |host: &str| {
        vec![
            "registry".to_string(),
            "--dir".into(),
            "ca".into(),
            "--out".into(),
            "reg".into(),
            "--passphrase-file".into(),
            "pass.txt".into(),
            "--client".into(),
            "ci1".into(),
            host.to_string(),
        ]
    };
    let run = |host: &str| {
        let a = args(host);
        s.uca(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let ledger = ledger_text(&s);
    fails_with(&run(&host), "over the 255 a file name may have");
    assert_eq!(ledger_text(&s), ledger);
    assert!(!s.join("reg").exists());
    // The same host on the default port (folder named after the host alone) fits.
    ok(&run(&long_name(253)));
    assert_files_match_ledger(&s);
}
