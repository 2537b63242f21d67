//! Escrow shares encrypted to custodians' age keys (`--custodian`, the
//! plan's `[escrow] custodians`), checked with the real age tool: each
//! share opens with its own custodian's identity only, decrypted shares
//! recover as plain ones do, an encrypted share given to `uca recover` is
//! named as such, and bad recipients are refused before anything is
//! written.

mod common;

use std::path::Path;

use common::{fails_with, ok, openssl_csr, run, stdout, Scratch};

/// Three custodians' age identities, `k1.txt`..`k3.txt`, made by
/// age-keygen; returns their recipients.
fn custodians(s: &Scratch) -> Vec<String> {
    (1..=3)
        .map(|i| {
            let key = format!("k{i}.txt");
            let (made, out) = run("age-keygen", &["-o", &key], s.path());
            assert!(made, "age-keygen: {out}");
            let (shown, recipient) = run("age-keygen", &["-y", &key], s.path());
            assert!(shown, "age-keygen -y: {recipient}");
            recipient.trim().to_string()
        })
        .collect()
}

fn custodian_args(recipients: &[String]) -> Vec<&str> {
    recipients
        .iter()
        .flat_map(|r| ["--custodian", r.as_str()])
        .collect()
}

/// `age -d -i KEY -o OUT FILE` in the scratch directory.
fn age_decrypt(s: &Scratch, key: &str, file: &str, out: &str) -> (bool, String) {
    run("age", &["-d", "-i", key, "-o", out, file], s.path())
}

/// Every file below the scratch directory with its contents.
fn tree(s: &Scratch) -> Vec<(String, Vec<u8>)> {
    s.files()
        .into_iter()
        .map(|f| {
            let p = s.join(&f);
            let bytes = if p.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (f, bytes)
        })
        .collect()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn serial_of(s: &Scratch, cert: &str) -> String {
    let (done, out) = run(
        "openssl",
        &["x509", "-in", cert, "-noout", "-serial"],
        s.path(),
    );
    assert!(done, "{out}");
    let hex = out
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    hex.trim_start_matches("00").to_string()
}

/// Checks that share `i` of `dir` is armored age, 0600, holds nothing of
/// the share in the clear, opens with custodian i's key only, and
/// decrypts to share i; leaves it decrypted as `plain-i.json`.
fn check_share_opens_for_its_custodian_only(s: &Scratch, dir: &str, i: usize) {
    let file = format!("{dir}/share-{i}-of-3.json.age");
    assert_eq!(mode(&s.join(&file)), 0o600, "{file}");
    let text = std::fs::read_to_string(s.join(&file)).unwrap();
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
        "{text}"
    );
    assert!(!text.contains("uca-escrow-share"), "{text}");
    for other in (1..=3).filter(|&j| j != i) {
        let (opened, out) = age_decrypt(s, &format!("k{other}.txt"), &file, "wrong.json");
        assert!(!opened, "custodian {other}'s key opened share {i}: {out}");
        assert!(out.contains("no identity matched"), "{out}");
    }
    let plain = format!("plain-{i}.json");
    let (opened, out) = age_decrypt(s, &format!("k{i}.txt"), &file, &plain);
    assert!(opened, "custodian {i} cannot open share {i}: {out}");
    let share: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.join(&plain)).unwrap()).unwrap();
    assert_eq!(share["format"], "uca-escrow-share-1");
    assert_eq!(share["index"].as_u64(), Some(i as u64));
    assert_eq!(
        (share["threshold"].as_u64(), share["shares"].as_u64()),
        (Some(2), Some(3))
    );
}

#[test]
fn sealed_shares_open_only_with_their_custodians_key_and_two_decrypted_ones_revoke() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let pass = s.pass_file();
    let csr = openssl_csr(&s, "int", "/CN=Vault Intermediate", &[]);
    ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        &csr,
        "--intermediate",
        "--out",
        "int.pem",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    let serial = serial_of(&s, "int.pem");
    let recipients = custodians(&s);
    let mut args = vec![
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
    ];
    args.extend(custodian_args(&recipients));
    let sealed = stdout(&ok(&s.uca(&args)));
    assert_eq!(mode(&s.join("shares")), 0o700);
    for (i, r) in recipients.iter().enumerate() {
        let line = format!(
            "shares/share-{}-of-3.json.age (encrypted to {r}: give to that custodian)",
            i + 1
        );
        assert!(sealed.contains(&line), "{sealed}");
        check_share_opens_for_its_custodian_only(&s, "shares", i + 1);
    }
    // No share is left in the clear beside the encrypted ones.
    let names: Vec<String> = std::fs::read_dir(s.join("shares"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".json.age")), "{names:?}");
    // The signed manifest says which key each share was encrypted to.
    let manifest = std::fs::read_to_string(s.join("ca/manifest.json")).unwrap();
    let listed = format!(
        "\"custodians\":[\"{}\",\"{}\",\"{}\"]",
        recipients[0], recipients[1], recipients[2]
    );
    assert!(manifest.contains(&listed), "{manifest}");

    // An encrypted share, armored or binary, is named as encrypted, with
    // how to open it, and nothing changes.
    let (done, out) = run(
        "age",
        &[
            "-e",
            "-r",
            &recipients[0],
            "-o",
            "binary.age",
            "plain-1.json",
        ],
        s.path(),
    );
    assert!(done, "{out}");
    let before = tree(&s);
    for encrypted in ["shares/share-1-of-3.json.age", "binary.age"] {
        let err = fails_with(
            &s.uca(&[
                "recover",
                "--dir",
                "ca",
                "--share",
                encrypted,
                "--share",
                "plain-2.json",
                "revoke",
                &serial,
            ]),
            "encrypted to a custodian's age key",
        );
        assert!(
            err.contains(encrypted) && err.contains("age -d -i"),
            "{err}"
        );
        assert!(!err.contains("damaged"), "{err}");
        assert_eq!(tree(&s), before, "{encrypted}");
    }

    // Two decrypted shares recover as plain shares do.
    let revoked = stdout(&ok(&s.uca(&[
        "recover",
        "--dir",
        "ca",
        "--share",
        "plain-1.json",
        "--share",
        "plain-3.json",
        "revoke",
        &serial,
    ])));
    let crl_file = revoked
        .split_whitespace()
        .find(|w| w.starts_with("ca/crl/root-") && w.ends_with(".crl"))
        .unwrap_or_else(|| panic!("no CRL named: {revoked}"));
    let (done, crl) = run(
        "openssl",
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl_file,
            "-noout",
            "-text",
            "-CAfile",
            "ca/ca.pem",
        ],
        s.path(),
    );
    assert!(done, "{crl}");
    assert!(
        crl.contains("verify OK") && crl.contains(&serial.to_ascii_uppercase()),
        "{crl}"
    );
    ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
}

const PLAN: &str =
    "[ca]\nname = \"Ceremony Root\"\n[[group]]\nname = \"web\"\nnames = [\"web1.internal\"]\n";

/// Recovers `out/ca` with decrypted shares 1 and 3, revoking web1's leaf.
fn recover_revokes_the_leaf(s: &Scratch) {
    let serial = serial_of(s, "out/certs/web1.internal/cert.pem");
    ok(&s.uca(&[
        "recover",
        "--dir",
        "out/ca",
        "--share",
        "plain-1.json",
        "--share",
        "plain-3.json",
        "revoke",
        &serial,
    ]));
    ok(&s.uca(&["verify", "--manifest", "out/ca/manifest.json"]));
}

#[test]
fn a_ceremony_encrypts_its_shares_to_custodian_flags() {
    let s = Scratch::new();
    std::fs::write(s.join("plan.toml"), PLAN).unwrap();
    let recipients = custodians(&s);
    let mut args = vec![
        "ceremony",
        "plan.toml",
        "--out",
        "out",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
    ];
    args.extend(custodian_args(&recipients));
    let report = stdout(&ok(&s.uca(&args)));
    assert!(
        report.contains(&format!(
            "shares/share-2-of-3.json.age (encrypted to {}: give to that custodian)",
            recipients[1]
        )),
        "{report}"
    );
    for i in 1..=3 {
        check_share_opens_for_its_custodian_only(&s, "shares", i);
    }
    recover_revokes_the_leaf(&s);
}

#[test]
fn a_plans_escrow_custodians_encrypt_its_shares() {
    let s = Scratch::new();
    let recipients = custodians(&s);
    let plan = format!(
        "{PLAN}[escrow]\nshares = \"2/3\"\ndir = \"custody\"\ncustodians = [\"{}\", \"{}\", \"{}\"]\n",
        recipients[0], recipients[1], recipients[2]
    );
    std::fs::write(s.join("plan.toml"), plan).unwrap();
    ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"]));
    for i in 1..=3 {
        check_share_opens_for_its_custodian_only(&s, "custody", i);
    }
    recover_revokes_the_leaf(&s);
}

/// A recipient with its last character changed: its checksum fails.
fn mistyped(recipient: &str) -> String {
    let mut bad = recipient.to_string();
    let last = bad.pop().unwrap();
    bad.push(if last == 'q' { 'p' } else { 'q' });
    bad
}

#[test]
fn bad_custodians_are_refused_before_the_seal_and_write_nothing() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let recipients = custodians(&s);
    let pass = s.pass_file();
    let seal = |custodians: &[&str]| {
        let mut args = vec![
            "seal",
            "--dir",
            "ca",
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--escrow-shares",
            "2/3",
            "--escrow-dir",
            "shares",
        ];
        for c in custodians {
            args.extend_from_slice(&["--custodian", c]);
        }
        s.uca(&args)
    };
    let (r1, r2, r3) = (
        recipients[0].as_str(),
        recipients[1].as_str(),
        recipients[2].as_str(),
    );
    let bad_checksum = mistyped(r3);
    let upper_r1 = r1.to_ascii_uppercase();
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkzlTEkTnN7Ga4Qc2r6gsjmX9qByN1kOeqpaQzxIz9S";
    let secret = std::fs::read_to_string(s.join("k1.txt")).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let before = tree(&s);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![r1, r2], vec!["2 --custodian", "3 shares"]),
        (vec![r1, r2, r3, r1], vec!["4 --custodian", "3 shares"]),
        (vec![r1], vec!["1 --custodian", "3 shares"]),
        (vec![r1, r2, &bad_checksum], vec![&bad_checksum, "checksum"]),
        (vec![r1, r2, r1], vec!["repeats", r1]),
        (vec![r1, r2, &upper_r1], vec!["repeats", &upper_r1]),
        (vec![r1, ssh, r3], vec![ssh, "age X25519 recipient"]),
        (vec![r1, r2, &secret], vec!["AGE-SECRET-KEY-", "age1"]),
    ];
    for (custodians, needles) in &cases {
        let err = fails_with(&seal(custodians), needles[0]);
        for n in needles {
            assert!(err.contains(n), "{custodians:?}: {err}");
        }
        assert_eq!(tree(&s), before, "{custodians:?}");
    }
    // The CA was never sealed: it still issues.
    s.issue(&["web1.internal"]);

    // The ceremony refuses the same before making anything.
    std::fs::write(s.join("plan.toml"), PLAN).unwrap();
    let before = tree(&s);
    let err = fails_with(
        &s.uca(&[
            "ceremony",
            "plan.toml",
            "--out",
            "out",
            "--escrow-shares",
            "2/3",
            "--escrow-dir",
            "custody",
            "--custodian",
            r1,
            "--custodian",
            &bad_checksum,
            "--custodian",
            r3,
        ]),
        "checksum",
    );
    assert!(err.contains(&bad_checksum), "{err}");
    assert_eq!(tree(&s), before);
    for (custodians, needle) in [
        (format!("[\"{r1}\", \"{r2}\"]"), "2 [escrow] custodians"),
        (format!("[\"{r1}\", \"{r2}\", \"{r2}\"]"), "repeats"),
        (
            format!("[\"{r1}\", \"{r2}\", \"{bad_checksum}\"]"),
            "checksum",
        ),
    ] {
        let plan = format!(
            "{PLAN}[escrow]\nshares = \"2/3\"\ndir = \"custody\"\ncustodians = {custodians}\n"
        );
        std::fs::write(s.join("plan.toml"), plan).unwrap();
        let before = tree(&s);
        let err = fails_with(&s.uca(&["ceremony", "plan.toml", "--out", "out"]), needle);
        assert!(err.contains("[escrow] custodians"), "{err}");
        assert_eq!(tree(&s), before, "{custodians}");
    }
}

/// The payload's chunking against the real age tool: empty, one byte,
/// exactly one 64 KiB chunk (no empty chunk after it), one byte more, and
/// several chunks all decrypt to what was encrypted.
#[test]
fn age_decrypts_payloads_on_every_chunk_boundary() {
    let s = Scratch::new();
    let recipient = custodians(&s).remove(0);
    let recipient = uca::pki::age::Recipient::parse(&recipient, "--custodian").unwrap();
    for len in [0usize, 1, 65536, 65537, 3 * 65536 + 17] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let file = format!("payload-{len}.age");
        let armored = uca::pki::age::encrypt_armored(&recipient, &plain).unwrap();
        std::fs::write(s.join(&file), armored).unwrap();
        let out = format!("payload-{len}.bin");
        let (opened, msg) = age_decrypt(&s, "k1.txt", &file, &out);
        assert!(opened, "{len} bytes: {msg}");
        // age opens its -o file at the first byte it writes: none for an
        // empty payload.
        let decrypted = std::fs::read(s.join(&out)).unwrap_or_default();
        assert!(decrypted == plain, "{len} bytes differ");
    }
}
