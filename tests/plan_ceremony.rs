//! Plans, bulk issuance and the one-shot ceremony through the real binary:
//! validation before anything is written, resuming after SIGKILL, output
//! formats checked by the programs that consume them, and a sealed result
//! with no secret left on disk.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn write(s: &Scratch, name: &str, text: &str) -> PathBuf {
    let p = s.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const CA: &str = "[ca]\nname = \"Plan Root\"\npermit = [\"internal\", \"10.0.0.0/8\"]\n";

fn ledger(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every complete ledger line parses"))
        .collect()
}

fn sha256_of_first_cert(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let block = pem::parse(text).unwrap();
    uca::pki::x509::sha256_hex(block.contents())
}

/// Every ledger entry points at a complete certificate directory whose
/// cert.pem is the recorded certificate; serials and paths are unique.
fn assert_ledger_consistent(ca: &Path) -> usize {
    let count = check_new_ledger_entries(ca, 0, &mut HashSet::new());
    let mut paths = HashSet::new();
    for e in ledger(ca) {
        assert!(
            paths.insert(e["path"].as_str().unwrap().to_string()),
            "path recorded twice: {e}"
        );
    }
    count
}

#[test]
fn a_bad_plan_entry_is_named_and_nothing_is_written() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file();
    let cases = [
        ("[[group]]\nname = \"web\"\nnames = [\"web{1..3}.internal\", \"db\u{2013}1.internal\"]\n", "plan group 'web', name 'db\u{2013}1.internal'"),
        ("[[group]]\nname = \"web\"\nnames = [\"web{1..3}.example.com\"]\n", "outside the CA's name constraints"),
        ("[[group]]\nname = \"web\"\nnames = [\"web{3..1}.internal\"]\n", "runs backwards"),
        ("[[group]]\nname = \"web\"\nnames = [\"a.internal\"]\nprofil = \"server\"\n", "unknown field `profil`"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\n[[group]]\nname = \"b\"\nnames = [\"x.internal\"]\n", "produced twice"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\nout = \"../escape\"\n", "without '..'"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\nformats = [\"pkcs12\"]\n", "pkcs12_password_file"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\nformats = [\"certsd\"]\nprofile = \"server\"\n", "use profile client or both"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\nformats = [\"zip\"]\n", "unknown variant `zip`"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\ndays = 9999\n", "outlive the CA"),
        ("[vault]\naddr = \"https://127.0.0.1:8200\"\n[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\n", "[vault] section is for uca ceremony"),
        ("[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\nsan_rules = [\"{bse}.svc\"]\n", "unknown placeholder"),
        ("[ca]\nname = \"Another Root\"\n[[group]]\nname = \"a\"\nnames = [\"x.internal\"]\n", "holds 'Test Root'"),
        ("[defaults\n", "line 1"),
        // An error at a line's first column names that line, not the one before.
        ("[[group]]\nname = \"web\"\nnames = [\"a.internal\"]\nprofil = \"server\"\n", "line 4: unknown field `profil`"),
        ("", "no [[group]]"),
    ];
    let before = s.files();
    for (i, (text, needle)) in cases.iter().enumerate() {
        let plan = write(&s, "bad.toml", text);
        let o = s.uca(&[
            "issue",
            "--dir",
            "ca",
            "--out",
            "out",
            "--plan",
            plan.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]);
        fails_with(&o, needle);
        let mut after = s.files();
        after.retain(|f| f != "bad.toml");
        let mut expected = before.clone();
        expected.retain(|f| f != "bad.toml");
        assert_eq!(after, expected, "case {i} left files behind");
    }
}

#[test]
fn issue_plan_is_idempotent_and_keeps_finished_files() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let plan = write(
        &s,
        "p.toml",
        "[[group]]\nname = \"svc\"\nnames = [\"svc{1..40}.internal\", \"db.internal\"]\n",
    );
    let pass = s.pass_file();
    let args = [
        "issue",
        "--dir",
        "ca",
        "--out",
        "out",
        "--plan",
        plan.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--json",
    ];
    let o = ok(&s.uca(&args));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["issued"], 41);
    let before = std::fs::read(s.join("out/svc7.internal/cert.pem")).unwrap();
    let o = ok(&s.uca(&args));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["issued"], 0);
    assert_eq!(summary["skipped"], 41);
    assert_eq!(
        std::fs::read(s.join("out/svc7.internal/cert.pem")).unwrap(),
        before
    );
    assert_eq!(assert_ledger_consistent(&s.join("ca")), 41);
    // A foreign directory in the way is refused, not clobbered.
    std::fs::remove_dir_all(s.join("out/svc3.internal")).unwrap();
    std::fs::create_dir(s.join("out/svc3.internal")).unwrap();
    std::fs::write(s.join("out/svc3.internal/notes.txt"), "mine").unwrap();
    fails_with(&s.uca(&args), "svc3.internal already exists");
    assert!(s.join("out/svc3.internal/notes.txt").exists());
}

/// Checks ledger entries from `from` on (each names a complete, matching
/// certificate directory) and returns the number of entries.
fn check_new_ledger_entries(ca: &Path, from: usize, serials: &mut HashSet<String>) -> usize {
    let entries = ledger(ca);
    for e in &entries[from.min(entries.len())..] {
        assert!(
            serials.insert(e["serial"].as_str().unwrap().to_string()),
            "serial reused: {e}"
        );
        let path = PathBuf::from(e["path"].as_str().unwrap());
        assert!(
            path.is_file(),
            "ledger claims {} which is not on disk",
            path.display()
        );
        assert_eq!(
            sha256_of_first_cert(&path),
            e["sha256"].as_str().unwrap(),
            "{}",
            path.display()
        );
    }
    entries.len()
}

#[test]
fn sigkill_at_fifty_points_never_breaks_the_ledger_and_a_rerun_completes() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let total: u64 = 5000;
    let plan = write(
        &s,
        "p.toml",
        &format!("[[group]]\nname = \"svc\"\nnames = [\"svc{{1..{total}}}.internal\"]\n"),
    );
    let pass = s.pass_file();
    let args = [
        "issue",
        "--dir",
        "ca",
        "--out",
        "out",
        "--plan",
        plan.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--json",
    ];
    // Delays that land during start-up (reading the plan, unlocking the key
    // with scrypt), mid-batch, and between a batch's sync and its ledger append.
    let delays: Vec<u64> = (0..56)
        .map(|i| [3u64, 8, 15, 25, 40, 60, 85, 110][i % 8] + (i as u64 % 5))
        .collect();
    let mut kills = 0;
    let mut serials = HashSet::new();
    let mut checked = 0;
    for delay_ms in delays {
        let mut child = Command::new(uca_bin())
            .args(args)
            .current_dir(s.path())
            .env_remove("UCA_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        // The ledger parses, and what it records is on disk.
        checked = check_new_ledger_entries(&s.join("ca"), checked, &mut serials);
        // Every visible certificate directory is complete.
        for e in std::fs::read_dir(s.join("out")).into_iter().flatten() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            for f in ["cert.pem", "key.pem", "chain.pem", "ca.pem"] {
                assert!(
                    e.path().join(f).is_file(),
                    "{name}/{f} missing: a partial directory is visible"
                );
            }
        }
    }
    assert!(
        kills >= 50,
        "only {kills} runs were interrupted; the test needs at least 50"
    );
    let o = ok(&s.uca(&args));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["issued"].as_u64().unwrap() + summary["skipped"].as_u64().unwrap(),
        total
    );
    assert_eq!(assert_ledger_consistent(&s.join("ca")), total as usize);
    let leftovers: Vec<_> = std::fs::read_dir(s.join("out"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary directories left after a completed run: {}",
        leftovers.len()
    );
}

fn ceremony_plan(s: &Scratch) -> PathBuf {
    std::fs::write(s.join("p12.txt"), "bundle password 123\n").unwrap();
    write(
        s,
        "plan.toml",
        &format!(
            "{CA}\n[defaults]\nsan_rules = [\"base\", \"{{hostbase}}.svc.internal\"]\n\
             [[group]]\nname = \"web\"\nnames = [\"web{{1..3}}.internal\"]\nprofile = \"server\"\nsans = [\"IP:10.0.0.10\"]\nformats = [\"pem\", \"combined\", \"k8s\"]\nout = \"web\"\n\
             [[group]]\nname = \"rmq\"\nnames = [\"rmq{{1..3}}.internal\"]\nsan_rules = [\"base\", \"URI:spiffe://acme.internal/sa/{{base}}\"]\n\
             [[group]]\nname = \"workers\"\nnames = [\"worker{{01..04}}.internal\"]\nprofile = \"client\"\nformats = [\"certsd\"]\n\
             [[group]]\nname = \"java\"\nnames = [\"billing.internal\"]\nformats = [\"pem\", \"pkcs12\"]\npkcs12_password_file = \"p12.txt\"\n"
        ),
    )
}

#[test]
fn ceremony_issues_everything_seals_and_leaves_no_secret() {
    let s = Scratch::new();
    let plan = ceremony_plan(&s);
    let o = ok(&s.uca(&[
        "ceremony",
        plan.to_str().unwrap(),
        "--out",
        "out",
        "--escrow-passphrase",
        "escrow.txt",
    ]));
    let text = stdout(&o);
    assert!(
        text.contains("ceremony complete: 11 certificates"),
        "{text}"
    );
    assert!(text.contains("root SHA-256"), "{text}");
    let ca = s.join("out/ca");
    assert!(ca.join("sealed.json").is_file());
    assert_eq!(assert_ledger_consistent(&ca), 11);

    // Every certificate chains to the root, for OpenSSL.
    let certs: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| f.starts_with("out/certs/") && f.ends_with("/cert.pem"))
        .collect();
    assert_eq!(certs.len(), 11);
    let mut args = vec!["verify", "-CAfile", "out/ca/ca.pem"];
    args.extend(certs.iter().map(|c| c.as_str()));
    let (okv, out) = run("openssl", &args, s.path());
    assert!(okv, "{out}");
    assert_eq!(out.matches(": OK").count(), 11, "{out}");
    // ... and for rustls/webpki through uca verify, every one of them for
    // the use its profile allows.
    for c in &certs {
        let client_only = c.contains("worker");
        let mut args = vec!["verify", c.as_str(), "--ca", "out/ca/ca.pem"];
        if client_only {
            args.push("--client");
        }
        let o = ok(&s.uca(&args));
        assert!(stdout(&o).starts_with("OK:"), "{c}: {}", stdout(&o));
    }
    ok(&s.uca(&[
        "verify",
        "out/certs/web/web1.internal/cert.pem",
        "--ca",
        "out/ca/ca.pem",
        "--name",
        "web.svc.internal",
    ]));
    ok(&s.uca(&[
        "verify",
        "out/certs/worker03.internal/cert.pem",
        "--ca",
        "out/ca/ca.pem",
        "--client",
    ]));
    // The manifest verifies with stock OpenSSL and with uca.
    assert_manifest_verifies_with_openssl(&s, "out/ca");
    ok(&s.uca(&["verify", "--manifest", "out/ca/manifest.json"]));
    // Sealed: no more issuance.
    let escrow = std::fs::read_to_string(s.join("escrow.txt"))
        .unwrap()
        .trim_end()
        .to_string();
    let o = s.uca_env(
        &["issue", "--dir", "out/ca", "--out", "more", "late.internal"],
        &[("UCA_PASSPHRASE", &escrow)],
    );
    fails_with(&o, "was sealed at");

    // No file under OUT holds the passphrase or the unencrypted CA key: the
    // escrowed key is decrypted here only to know what to look for.
    let (okk, _) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            "out/ca/private/ca-key.pem",
            "-passin",
            "file:escrow.txt",
            "-outform",
            "DER",
            "-out",
            "ca-key.der",
        ],
        s.path(),
    );
    assert!(okk);
    let key_der = std::fs::read(s.join("ca-key.der")).unwrap();
    let secret = &key_der[key_der.len() - 32..]; // tail of the PKCS#8 carries the EC private scalar region
    let key_b64 = std::fs::read_to_string(s.join("out/ca/private/ca-key.pem")).unwrap();
    for f in s.files().into_iter().filter(|f| f.starts_with("out/")) {
        let p = s.join(&f);
        if !p.is_file() {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(escrow.len()).any(|w| w == escrow.as_bytes()),
            "passphrase found in {f}"
        );
        assert!(
            !bytes
                .windows(key_der.len())
                .any(|w| w == key_der.as_slice()),
            "unencrypted CA key found in {f}"
        );
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "CA key material found in {f}"
        );
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("BEGIN PRIVATE KEY") && f != "out/ca/private/ca-key.pem" {
            // Leaf keys only: none of them is the CA's.
            assert!(!text.contains(&key_b64[40..80]), "{f}");
        }
    }
}

#[test]
fn ceremony_without_escrow_never_writes_the_key_and_refuses_a_busy_out() {
    let s = Scratch::new();
    let plan = ceremony_plan(&s);
    let o = ok(&s.uca(&["ceremony", plan.to_str().unwrap(), "--out", "out", "--json"]));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["issued"], 11);
    assert_eq!(summary["root_sha256"].as_str().unwrap().len(), 64);
    assert!(summary["escrow"].is_null());
    let keys: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| f.starts_with("out/ca/") && f.contains("key"))
        .collect();
    assert!(keys.is_empty(), "{keys:?}");
    let sealed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.join("out/ca/sealed.json")).unwrap()).unwrap();
    assert_eq!(sealed["key_never_stored"], true);
    fails_with(
        &s.uca(&["ceremony", plan.to_str().unwrap(), "--out", "out"]),
        "not empty",
    );
    // An escrow file inside OUT is refused before anything is made.
    fails_with(
        &s.uca(&[
            "ceremony",
            plan.to_str().unwrap(),
            "--out",
            "fresh",
            "--escrow-passphrase",
            "fresh/pass.txt",
        ]),
        "inside OUT",
    );
    assert!(!s.join("fresh").exists());
}

#[test]
fn output_formats_are_accepted_by_their_consumers() {
    let s = Scratch::new();
    let plan = ceremony_plan(&s);
    ok(&s.uca(&["ceremony", plan.to_str().unwrap(), "--out", "out"]));
    let web = "out/certs/web/web2.internal";

    // combined.pem: leaf, CA, key; OpenSSL takes it as both cert and key.
    let combined = std::fs::read_to_string(s.join(&format!("{web}/combined.pem"))).unwrap();
    assert_eq!(combined.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(combined.contains("BEGIN PRIVATE KEY"));
    let c = format!("{web}/combined.pem");
    let (okx, a) = run(
        "openssl",
        &["x509", "-in", &c, "-noout", "-pubkey"],
        s.path(),
    );
    let (okk, b) = run("openssl", &["pkey", "-in", &c, "-pubout"], s.path());
    assert!(
        okx && okk && a == b,
        "combined.pem key does not match its certificate"
    );
    let (okv, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "out/ca/ca.pem",
            "-purpose",
            "sslserver",
            &c,
        ],
        s.path(),
    );
    assert!(okv, "{out}");

    // k8s Secret: YAML with the right keys and base64 contents.
    let yaml = std::fs::read_to_string(s.join(&format!("{web}/secret.yaml"))).unwrap();
    let script = "import sys, yaml, base64, json\nd = yaml.safe_load(open(sys.argv[1]))\nprint(json.dumps({'kind': d['kind'], 'type': d['type'], 'name': d['metadata']['name'], 'data': {k: base64.b64decode(v, validate=True).decode() for k, v in d['data'].items()}}))";
    let (oky, out) = run(
        "python3",
        &["-c", script, &format!("{web}/secret.yaml")],
        s.path(),
    );
    assert!(oky, "the Secret does not parse as YAML (is PyYAML installed? ./test.sh installs it): {out}\n{yaml}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["kind"], "Secret");
    assert_eq!(doc["type"], "kubernetes.io/tls");
    assert_eq!(doc["name"], "web2.internal-tls");
    let mut keys: Vec<&String> = doc["data"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"]);
    assert_eq!(
        doc["data"]["tls.crt"].as_str().unwrap(),
        std::fs::read_to_string(s.join(&format!("{web}/cert.pem"))).unwrap()
    );
    assert_eq!(
        doc["data"]["ca.crt"].as_str().unwrap(),
        std::fs::read_to_string(s.join("out/ca/ca.pem")).unwrap()
    );
    assert!(doc["data"]["tls.key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));

    // certs.d: the names Docker and Podman expect, the key private.
    let d = s.join("out/certs/worker02.internal/certs.d");
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.crt", "client.cert", "client.key"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.join("client.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (okv, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "out/certs/worker02.internal/certs.d/ca.crt",
            "-purpose",
            "sslclient",
            "out/certs/worker02.internal/certs.d/client.cert",
        ],
        s.path(),
    );
    assert!(okv, "{out}");

    // PKCS#12: OpenSSL 3 without -legacy, and Java's keytool.
    let p12 = "out/certs/billing.internal/billing.internal.p12";
    let (okp, out) = run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12,
            "-passin",
            "file:p12.txt",
            "-nodes",
            "-info",
        ],
        s.path(),
    );
    assert!(
        okp && out.contains("BEGIN PRIVATE KEY") && out.matches("BEGIN CERTIFICATE").count() == 2,
        "{out}"
    );
    let (okj, out) = run(
        "keytool",
        &[
            "-list",
            "-v",
            "-keystore",
            p12,
            "-storetype",
            "PKCS12",
            "-storepass",
            "bundle password 123",
        ],
        s.path(),
    );
    assert!(
        okj && out.contains("PrivateKeyEntry") && out.contains("Certificate chain length: 2"),
        "{out}"
    );
}
