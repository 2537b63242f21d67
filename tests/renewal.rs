//! `uca issue --plan PLAN --renew-within PERIOD`: the plan's recorded
//! certificates that expire within the period are issued again in place,
//! with new keys, each recorded as replacing the old serial; everything
//! else stays byte for byte, and the sealed manifest still verifies.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Every file under `dir` with its contents.
fn snapshot(s: &Scratch, dir: &str) -> BTreeMap<String, Vec<u8>> {
    s.files()
        .into_iter()
        .filter(|f| f.starts_with(&format!("{dir}/")))
        .filter_map(|f| std::fs::read(s.join(&f)).ok().map(|b| (f, b)))
        .collect()
}

fn issue_plan(s: &Scratch, extra: &[&str]) -> String {
    stdout(&s.issue(&[&["--plan", "plan.toml"], extra].concat()))
}

fn ledger(s: &Scratch) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.join("ca/ledger.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn renew_within_reissues_exactly_the_expiring_set() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(
        s.join("plan.toml"),
        r#"
[[group]]
name = "short"
names = ["s{1..3}.internal"]
valid_for = "10d"

[[group]]
name = "medium"
names = ["m1.internal"]
valid_for = "40d"

[[group]]
name = "long"
names = ["l{1..2}.internal"]
formats = ["pem", "combined"]
"#,
    )
    .unwrap();
    issue_plan(&s, &[]);
    let before = snapshot(&s, "certs");
    let old_serials: BTreeMap<String, String> = ledger(&s)
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["serial"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    // Nothing expires within a day: nothing changes.
    let out = issue_plan(&s, &["--renew-within", "1d"]);
    assert!(out.contains("issued 0 certificates"), "{out}");
    assert_eq!(snapshot(&s, "certs"), before);

    // check --plan lists exactly the set a 30-day renewal will renew, first.
    let o = s.uca(&["check", "certs", "--plan", "plan.toml", "--within", "30d"]);
    let listing = stdout(&o);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("RENEW: 3 certificates"), "{listing}");
    for (i, n) in ["s1", "s2", "s3"].iter().enumerate() {
        assert!(
            lines[i + 1].starts_with("RENEW") && lines[i + 1].contains(n),
            "{listing}"
        );
    }
    assert_eq!(listing.matches("\nRENEW ").count(), 3, "{listing}");
    // A plan check cannot read is "could not check" (3), never WARN (1).
    let o = s.uca(&["check", "certs", "--plan", "missing.toml"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
    let out = issue_plan(&s, &["--renew-within", "30d"]);
    assert!(
        out.contains("issued 3 certificates") && out.contains("3 of them renewed"),
        "{out}"
    );
    let after = snapshot(&s, "certs");
    let changed: Vec<&String> = before
        .keys()
        .filter(|f| before.get(*f) != after.get(*f))
        .collect();
    let mut expected = Vec::new();
    for n in ["s1", "s2", "s3"] {
        for f in ["ca.pem", "cert.pem", "chain.pem", "key.pem"] {
            expected.push(format!("certs/{n}.internal/{f}"));
        }
    }
    // ca.pem is the same CA: unchanged bytes; the rest are new.
    expected.retain(|f| !f.ends_with("ca.pem"));
    assert_eq!(changed, expected.iter().collect::<Vec<_>>());
    assert_eq!(before.len(), after.len(), "no file appeared or went");

    // The ledger records each renewal as replacing the old serial.
    let entries = ledger(&s);
    let renewals: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e.get("replaces").is_some())
        .collect();
    assert_eq!(renewals.len(), 3);
    for e in renewals {
        let path = e["path"].as_str().unwrap();
        assert_eq!(e["replaces"].as_str().unwrap(), old_serials[path], "{path}");
        assert_ne!(e["serial"], e["replaces"]);
    }

    // The renewed certificates verify, and the sealed manifest accounts for
    // the replaced entries.
    let (good, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "certs/s1.internal/cert.pem",
        ],
        s.path(),
    );
    assert!(good, "{out}");
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        s.pass_file().to_str().unwrap(),
    ]));
    let out = stdout(&ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"])));
    assert!(
        out.contains("3 entries were later re-issued at the same path"),
        "{out}"
    );
}

#[test]
fn renew_within_needs_a_plan_and_a_period() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass,
        "--renew-within",
        "30d",
        "a.internal",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    std::fs::write(
        s.join("plan.toml"),
        "[[group]]\nname = \"a\"\nnames = [\"a.internal\"]\n",
    )
    .unwrap();
    let before = s.files();
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass,
        "--plan",
        "plan.toml",
        "--renew-within",
        "30days",
    ]);
    fails_with(&o, "invalid --renew-within '30days'");
    assert_eq!(s.files(), before);
}

/// `--reuse-key` certifies each renewed certificate's key.pem again: the
/// certificate changes, its key does not; a group without key.pem (no pem
/// format) is refused before anything is renewed.
#[test]
fn reuse_key_keeps_the_key_and_changes_the_certificate() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(
        s.join("plan.toml"),
        "[[group]]\nname = \"short\"\nnames = [\"s1.internal\"]\nvalid_for = \"10d\"\n",
    )
    .unwrap();
    issue_plan(&s, &[]);
    let key_before = std::fs::read(s.join("certs/s1.internal/key.pem")).unwrap();
    let cert_before = std::fs::read(s.join("certs/s1.internal/cert.pem")).unwrap();
    let out = issue_plan(&s, &["--renew-within", "30d", "--reuse-key"]);
    assert!(out.contains("1 of them renewed"), "{out}");
    assert_eq!(
        std::fs::read(s.join("certs/s1.internal/key.pem")).unwrap(),
        key_before
    );
    assert_ne!(
        std::fs::read(s.join("certs/s1.internal/cert.pem")).unwrap(),
        cert_before
    );
    let pubkey = |args: &[&str]| {
        let (good, out) = run("openssl", args, s.path());
        assert!(good, "{out}");
        out
    };
    let from_cert = pubkey(&[
        "x509",
        "-in",
        "certs/s1.internal/cert.pem",
        "-noout",
        "-pubkey",
    ]);
    let from_key = pubkey(&["pkey", "-in", "certs/s1.internal/key.pem", "-pubout"]);
    let good = from_cert == from_key;
    let out = format!("{from_cert} vs {from_key}");
    assert!(
        good,
        "the renewed certificate is not for the kept key: {out}"
    );

    std::fs::write(
        s.join("p12.toml"),
        "[[group]]\nname = \"p\"\nnames = [\"p1.internal\"]\nvalid_for = \"10d\"\nformats = [\"pkcs12\"]\npkcs12_password_file = \"pw\"\n",
    )
    .unwrap();
    std::fs::write(s.join("pw"), "bundle-password\n").unwrap();
    stdout(&s.issue(&["--plan", "p12.toml"]));
    let before = s.files();
    let pass = s.pass_file();
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--plan",
        "p12.toml",
        "--renew-within",
        "30d",
        "--reuse-key",
    ]);
    fails_with(&o, "no key.pem to reuse");
    assert_eq!(s.files(), before);
}
