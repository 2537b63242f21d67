//! `--archive FILE|-` on `uca ceremony` and `uca issue --plan`: the whole
//! layout as one tar stream. Unpacked by GNU tar and read by Python's
//! tarfile, it holds exactly the files a directory run writes (same names,
//! same modes, keys 0600), with contents that fit together byte for byte;
//! every certificate verifies and the ledger names its member.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const PLAN: &str = r#"
[ca]
name = "Archive Root"
permit = ["internal"]

[[group]]
name = "web"
names = ["web{1..3}.internal"]
formats = ["pem", "combined", "k8s", "certsd"]
out = "web"

[[group]]
name = "billing"
names = ["billing.internal"]
formats = ["pem", "pkcs12"]
pkcs12_password_file = "p12-password.txt"

[[group]]
name = "deep"
names = ["a-rather-long-host-name-that-makes-the-member-path-long-enough.internal"]
out = "a/very/deep/output/directory/for/the/archive/to/need/a/pax/header"
"#;

fn scratch_with_plan() -> Scratch {
    let s = Scratch::new();
    std::fs::write(s.join("plan.toml"), PLAN).unwrap();
    std::fs::write(s.join("p12-password.txt"), "changeit-but-longer\n").unwrap();
    s
}

/// Every entry under `root`: relative path -> (mode, contents; `None` for a
/// directory).
fn tree(root: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                stack.push(p);
                out.insert(rel, (mode, None));
            } else {
                out.insert(rel, (mode, Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    out
}

/// What Python's tarfile reads: member name -> (mode, type).
fn tarfile_listing(s: &Scratch, archive: &str) -> BTreeMap<String, (u32, String)> {
    let (ok_run, out) = run(
        "python3",
        &[
            "-c",
            "import sys, tarfile\nfor m in tarfile.open(sys.argv[1]):\n    print(m.name, oct(m.mode), 'dir' if m.isdir() else 'file' if m.isfile() else 'other')",
            archive,
        ],
        s.path(),
    );
    assert!(ok_run, "{out}");
    out.lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next().unwrap().to_string();
            let mode =
                u32::from_str_radix(parts.next().unwrap().trim_start_matches("0o"), 8).unwrap();
            (name, (mode, parts.next().unwrap().to_string()))
        })
        .collect()
}

fn untar(s: &Scratch, archive: &str, into: &str) {
    std::fs::create_dir_all(s.join(into)).unwrap();
    let (ok_run, out) = run("tar", &["-xf", archive, "-C", into], s.path());
    assert!(ok_run, "GNU tar cannot extract {archive}: {out}");
}

fn is_secret(path: &str) -> bool {
    [
        "key.pem",
        "combined.pem",
        "secret.yaml",
        "client.key",
        ".p12",
    ]
    .iter()
    .any(|s| path.ends_with(s))
}

fn ledger(s: &Scratch, ca: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.join(&format!("{ca}/ledger.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_ceremony_archive_unpacks_to_the_layout_a_directory_run_writes() {
    let s = scratch_with_plan();
    let o = ok(&s.uca(&["ceremony", "plan.toml", "--out", "o", "--archive", "o.tar"]));
    assert!(stdout(&o).contains("o.tar"), "{}", stdout(&o));
    assert!(
        !s.join("o/certs").exists(),
        "the archive replaces OUT/certs"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.join("o.tar"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the archive holds private keys");

    // The same plan as directories, for the names and modes to compare.
    ok(&s.uca(&["ceremony", "plan.toml", "--out", "d"]));
    untar(&s, "o.tar", "x");
    let from_archive = tree(&s.join("x/certs"));
    let from_dirs = tree(&s.join("d/certs"));
    let shape = |t: &BTreeMap<String, (u32, Option<Vec<u8>>)>| -> Vec<(String, u32, bool)> {
        t.iter()
            .map(|(p, (m, c))| (p.clone(), *m, c.is_some()))
            .collect()
    };
    assert_eq!(shape(&from_archive), shape(&from_dirs));
    for (path, (mode, contents)) in &from_archive {
        if contents.is_some() {
            let want = if is_secret(path) { 0o600 } else { 0o644 };
            assert_eq!(*mode, want, "{path}");
        }
    }

    // Contents fit together exactly as the directory writer puts them.
    let ca_pem = std::fs::read(s.join("o/ca/ca.pem")).unwrap();
    let web1 = |f: &str| {
        from_archive[&format!("web/web1.internal/{f}")]
            .1
            .clone()
            .unwrap()
    };
    let cert = web1("cert.pem");
    let key = web1("key.pem");
    assert_eq!(web1("ca.pem"), ca_pem);
    assert_eq!(web1("chain.pem"), [cert.clone(), ca_pem.clone()].concat());
    assert_eq!(
        web1("combined.pem"),
        [cert.clone(), ca_pem.clone(), key.clone()].concat()
    );
    assert_eq!(web1("certs.d/ca.crt"), ca_pem);
    assert_eq!(web1("certs.d/client.cert"), cert);
    assert_eq!(web1("certs.d/client.key"), key);
    let yaml = String::from_utf8(web1("secret.yaml")).unwrap();
    assert!(yaml.contains("name: web1.internal-tls"), "{yaml}");
    // The trust anchor is the same bytes in every directory.
    for (path, (_, bytes)) in &from_archive {
        if path.ends_with("/ca.pem") || path.ends_with("/ca.crt") {
            assert_eq!(bytes.as_ref(), Some(&ca_pem), "{path}");
        }
    }

    // Every certificate verifies against the root and matches its key.
    for (path, _) in from_archive
        .iter()
        .filter(|(p, _)| p.ends_with("/cert.pem"))
    {
        let dir = path.trim_end_matches("/cert.pem");
        ok(&s.uca(&["verify", &format!("x/certs/{path}"), "--ca", "o/ca/ca.pem"]));
        let (same, out) = run(
            "sh",
            &[
                "-c",
                &format!(
                    "test \"$(openssl x509 -in x/certs/{path} -pubkey -noout)\" = \"$(openssl pkey -in x/certs/{dir}/key.pem -pubout)\""
                ),
            ],
            s.path(),
        );
        assert!(same, "{dir}: key and certificate differ: {out}");
    }
    // The PKCS#12 opens with its password and holds the same certificate.
    let (p12_ok, out) = run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            "x/certs/billing.internal/billing.internal.p12",
            "-passin",
            "file:p12-password.txt",
            "-nokeys",
            "-clcerts",
        ],
        s.path(),
    );
    assert!(p12_ok, "{out}");

    // Python's tarfile reads the same members, with the same modes.
    let listing = tarfile_listing(&s, "o.tar");
    for (path, (mode, contents)) in &from_archive {
        let (m, kind) = &listing[&format!("certs/{path}")];
        assert_eq!(m, mode, "{path}");
        assert_eq!(
            kind,
            if contents.is_some() { "file" } else { "dir" },
            "{path}"
        );
    }
    assert!(
        listing.keys().any(|k| k.len() > 100),
        "the plan has a member path over 100 bytes (pax)"
    );

    // The ledger names each certificate's member and its bytes' SHA-256.
    let archive_abs = std::fs::canonicalize(s.join("o.tar")).unwrap();
    let entries = ledger(&s, "o/ca");
    assert_eq!(entries.len(), 5);
    for e in &entries {
        assert_eq!(e["archive"], archive_abs.display().to_string());
        assert!(e["path"].is_null());
        let member = e["member"].as_str().unwrap();
        let rel = member.strip_prefix("certs/").unwrap();
        let bytes = from_archive[rel].1.as_ref().unwrap();
        assert_eq!(e["member_sha256"], sha256_hex(bytes));
        let der = pem::parse(bytes).unwrap();
        assert_eq!(e["sha256"], sha256_hex(der.contents()));
    }
}

#[test]
fn issue_streams_an_archive_to_standard_output_and_reports_on_standard_error() {
    let s = scratch_with_plan();
    s.init_ca(&["--permit", "internal"]);
    let plan = PLAN
        .split("[[group]]")
        .skip(1)
        .collect::<Vec<_>>()
        .join("[[group]]");
    std::fs::write(s.join("issue.toml"), format!("[[group]]{plan}")).unwrap();
    let pass = s.pass_file();
    let child = Command::new(uca_bin())
        .args([
            "issue",
            "--dir",
            "ca",
            "--plan",
            "issue.toml",
            "--archive",
            "-",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ])
        .current_dir(s.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("issued 5 certificates"),
        "{}",
        stderr(&o)
    );
    std::fs::write(s.join("piped.tar"), &o.stdout).unwrap();
    untar(&s, "piped.tar", "y");
    for name in [
        "web/web2.internal/combined.pem",
        "billing.internal/billing.internal.p12",
    ] {
        assert!(s.join("y").join(name).is_file(), "{name}");
    }
    ok(&s.uca(&[
        "verify",
        "y/web/web2.internal/chain.pem",
        "--ca",
        "ca/ca.pem",
    ]));
    let entries = ledger(&s, "ca");
    assert!(entries.iter().all(|e| e["archive"] == "-"), "{entries:?}");
    assert!(!s.join("certs").exists());
}

#[test]
fn an_existing_archive_is_refused_and_a_recorded_one_is_never_replaced() {
    let s = scratch_with_plan();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(
        s.join("small.toml"),
        "[[group]]\nname = \"a\"\nnames = [\"a.internal\"]\n",
    )
    .unwrap();
    std::fs::write(s.join("taken.tar"), b"not uca's").unwrap();
    let pass = s.pass_file();
    let issue = |archive: &str, force: bool| {
        let mut args = vec![
            "issue",
            "--dir",
            "ca",
            "--plan",
            "small.toml",
            "--archive",
            archive,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        s.uca(&args)
    };
    fails_with(&issue("taken.tar", false), "taken.tar");
    assert_eq!(std::fs::read(s.join("taken.tar")).unwrap(), b"not uca's");
    assert!(!s.join("ca/ledger.jsonl").exists(), "nothing was issued");
    // --force replaces a file the ledger knows nothing of...
    ok(&issue("taken.tar", true));
    untar(&s, "taken.tar", "t");
    assert!(s.join("t/a.internal/key.pem").is_file());
    // ...but never an archive whose certificates the ledger records.
    let before = std::fs::read(s.join("taken.tar")).unwrap();
    fails_with(&issue("taken.tar", true), "ledger records");
    assert_eq!(std::fs::read(s.join("taken.tar")).unwrap(), before);
    // Never inside the CA directory, never without --plan, never with --out.
    fails_with(&issue("ca/private/x.tar", true), "x.tar");
    fails_with(&issue("ca/ca.pem", true), "ca.pem");
    let o = s.uca(&["issue", "--dir", "ca", "--archive", "n.tar", "a.internal"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--plan",
        "small.toml",
        "--out",
        "c",
        "--archive",
        "n.tar",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!s.join("n.tar").exists() && !s.join("c").exists());
}

#[test]
fn a_ceremony_archive_cannot_go_where_the_ca_will_be() {
    let s = scratch_with_plan();
    let o = s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "o",
        "--archive",
        "o/ca/certs.tar",
    ]);
    fails_with(&o, "o/ca/certs.tar");
    assert!(!s.join("o").exists(), "nothing was written");
    // A ceremony has no --force: an existing file is refused without
    // suggesting one, for either stream.
    std::fs::write(s.join("taken"), b"x").unwrap();
    for flag in ["--archive", "--k8s-manifest"] {
        let err = fails_with(
            &s.uca(&["ceremony", "plan.toml", "--out", "o", flag, "taken"]),
            "a ceremony writes only new files",
        );
        assert!(err.contains(flag) && !err.contains("--force"), "{err}");
    }
    assert!(!s.join("o").exists(), "nothing was written");
}

/// The documents of a multi-document manifest, as PyYAML reads them:
/// (kind, name, namespace, tls.crt decoded) each.
fn secrets_of(s: &Scratch, manifest: &str) -> Vec<(String, String, String, Vec<u8>)> {
    let (ok_run, out) = run(
        "python3",
        &[
            "-c",
            "import sys, yaml\nfor d in yaml.safe_load_all(open(sys.argv[1])):\n    print(d['kind'], d['metadata']['name'], d['metadata']['namespace'], d['data']['tls.crt'])",
            manifest,
        ],
        s.path(),
    );
    assert!(ok_run, "{out}");
    use base64::Engine;
    out.lines()
        .map(|l| {
            let p: Vec<&str> = l.split(' ').collect();
            let crt = base64::engine::general_purpose::STANDARD
                .decode(p[3])
                .unwrap();
            (p[0].into(), p[1].into(), p[2].into(), crt)
        })
        .collect()
}

#[test]
fn the_k8s_format_writes_one_multi_document_manifest_for_the_whole_plan() {
    use std::os::unix::fs::PermissionsExt;
    let s = scratch_with_plan();
    // Directories, the Secrets gathered into one manifest.
    ok(&s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "d",
        "--k8s-manifest",
        "secrets.yaml",
    ]));
    let mode = std::fs::metadata(s.join("secrets.yaml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the manifest holds private keys");
    let secrets = secrets_of(&s, "secrets.yaml");
    let names: Vec<&str> = secrets.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(
        names,
        [
            "web1.internal-tls",
            "web2.internal-tls",
            "web3.internal-tls"
        ]
    );
    for (kind, name, namespace, crt) in &secrets {
        assert_eq!((kind.as_str(), namespace.as_str()), ("Secret", "default"));
        let dir = s.join("d/certs/web").join(name.trim_end_matches("-tls"));
        assert_eq!(crt, &std::fs::read(dir.join("cert.pem")).unwrap(), "{name}");
        assert!(
            !dir.join("secret.yaml").exists(),
            "{name}: the Secret is in the manifest only"
        );
        assert!(dir.join("combined.pem").is_file());
    }

    // With an archive: the Secrets leave the archive for the manifest.
    ok(&s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "a",
        "--archive",
        "a.tar",
        "--k8s-manifest",
        "a.yaml",
    ]));
    untar(&s, "a.tar", "ax");
    let secrets = secrets_of(&s, "a.yaml");
    assert_eq!(secrets.len(), 3);
    for (_, name, _, crt) in &secrets {
        let dir = s.join("ax/certs/web").join(name.trim_end_matches("-tls"));
        assert_eq!(crt, &std::fs::read(dir.join("cert.pem")).unwrap(), "{name}");
        assert!(!dir.join("secret.yaml").exists());
    }
}

#[test]
fn a_k8s_manifest_is_refused_where_it_could_not_hold_the_whole_plan() {
    let s = scratch_with_plan();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file();
    let issue = |plan: &str, extra: &[&str]| {
        let mut args = vec![
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "--plan",
            plan,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        s.uca(&args)
    };
    std::fs::write(
        s.join("pem.toml"),
        "[[group]]\nname = \"a\"\nnames = [\"a.internal\"]\n",
    )
    .unwrap();
    fails_with(
        &issue("pem.toml", &["--k8s-manifest", "m.yaml"]),
        "no group of the plan has the k8s format",
    );
    std::fs::write(
        s.join("k8s.toml"),
        "[[group]]\nname = \"a\"\nnames = [\"a{1..2}.internal\"]\nformats = [\"k8s\"]\n",
    )
    .unwrap();
    // A run that would skip what an earlier run issued cannot list it all.
    ok(&issue("k8s.toml", &[]));
    fails_with(
        &issue("k8s.toml", &["--k8s-manifest", "m.yaml"]),
        "issued by an earlier run",
    );
    assert!(!s.join("m.yaml").exists());
    // Both on standard output, or one file for both: refused.
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--plan",
        "k8s.toml",
        "--archive",
        "-",
        "--k8s-manifest",
        "-",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    fails_with(&o, "--k8s-manifest");
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--plan",
        "k8s.toml",
        "--archive",
        "x.tar",
        "--k8s-manifest",
        "x.tar",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    fails_with(&o, "x.tar");
    assert!(!s.join("x.tar").exists());
}

#[test]
fn each_directory_s_ca_copy_is_a_hard_link_and_force_still_replaces_it() {
    use std::os::unix::fs::MetadataExt;
    let s = scratch_with_plan();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(
        s.join("many.toml"),
        "[[group]]\nname = \"a\"\nnames = [\"a{1..40}.internal\"]\nformats = [\"pem\", \"certsd\"]\n",
    )
    .unwrap();
    s.issue(&["--plan", "many.toml"]);
    let ca = std::fs::read(s.join("ca/ca.pem")).unwrap();
    let mut inodes = std::collections::HashSet::new();
    for i in 1..=40 {
        for f in ["ca.pem", "certs.d/ca.crt"] {
            let p = s.join(&format!("certs/a{i}.internal/{f}"));
            assert_eq!(std::fs::read(&p).unwrap(), ca, "{}", p.display());
            let m = std::fs::metadata(&p).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o644);
            inodes.insert(m.ino());
        }
        // The key is never shared.
        assert_eq!(
            std::fs::metadata(s.join(&format!("certs/a{i}.internal/key.pem")))
                .unwrap()
                .nlink(),
            1
        );
    }
    // One file per issuing thread and batch, not one per directory.
    assert!(
        inodes.len() <= 2 * std::thread::available_parallelism().unwrap().get(),
        "{inodes:?}"
    );
    // --force issues again in place; every copy is still the CA.
    s.issue(&["--plan", "many.toml", "--force"]);
    for i in 1..=40 {
        let p = s.join(&format!("certs/a{i}.internal/ca.pem"));
        assert_eq!(std::fs::read(&p).unwrap(), ca);
        ok(&s.uca(&[
            "verify",
            &format!("certs/a{i}.internal/chain.pem"),
            "--ca",
            "ca/ca.pem",
        ]));
    }
}

#[test]
fn verify_manifest_checks_each_certificate_in_its_archive() {
    let s = scratch_with_plan();
    ok(&s.uca(&["ceremony", "plan.toml", "--out", "o", "--archive", "o.tar"]));
    let o = ok(&s.uca(&["verify", "--manifest", "o/ca/manifest.json"]));
    assert!(
        stdout(&o).contains("5 certificates, 5 files match"),
        "{}",
        stdout(&o)
    );
    // One altered certificate inside the archive is named.
    let tar = std::fs::read(s.join("o.tar")).unwrap();
    let cert = std::fs::read(s.join("o/ca/ca.pem")).unwrap();
    let mut altered = tar.clone();
    let web2 = tar
        .windows(28)
        .position(|w| w == b"web/web2.internal/cert.pem\0\0")
        .unwrap();
    // The member's data starts at the next block; change one base64 digit.
    let data = (web2 / 512 + 1) * 512 + 100;
    altered[data] = if altered[data] == b'A' { b'B' } else { b'A' };
    std::fs::write(s.join("o.tar"), &altered).unwrap();
    let o = s.uca(&["verify", "--manifest", "o/ca/manifest.json"]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err.contains("web/web2.internal/cert.pem") && err.contains("differs"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // A missing archive is named too.
    std::fs::remove_file(s.join("o.tar")).unwrap();
    let o = s.uca(&["verify", "--manifest", "o/ca/manifest.json"]);
    assert!(stderr(&o).contains("o.tar: missing"), "{}", stderr(&o));
    assert!(!cert.is_empty());
}
