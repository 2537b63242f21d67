//! `uca trust`: each store is checked with its real consumer. The system
//! store is a scratch Debian tree rebuilt by the real
//! `update-ca-certificates` and read by `openssl verify`; the Java store is
//! a copy of the JDK's cacerts read by `keytool`; the NSS store a fresh
//! database read by `certutil`; bundles are read by keytool, openssl and
//! PyYAML. Over real TLS (openssl s_server on loopback), the installed
//! system bundle is trusted by openssl s_client, curl and Python's ssl, and
//! the PKCS#12 truststore by a Java client.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{fails_with, ok, run, stdout, Scratch};

/// A scratch directory with a CA (`ca/ca.pem`, "Test Root") and a leaf it
/// issued (`certs/web.internal/cert.pem`), readable by every user so the
/// refusal tests can run uca as another one.
fn with_ca() -> Scratch {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    s.issue(&["web.internal"]);
    open_up(s.path());
    s
}

/// `other.pem`: another root with the same name ("Test Root").
fn other_root(s: &Scratch) {
    let other = Scratch::new();
    other.init_ca(&[]);
    std::fs::copy(other.join("ca/ca.pem"), s.join("other.pem")).unwrap();
}

fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A Debian trust store tree: the host's CA list and config, rebuilt once
/// by update-ca-certificates with every directory inside the tree.
fn debian_tree(s: &Scratch) -> PathBuf {
    let tree = s.join("tree");
    for dir in [
        "etc/ssl/certs",
        "usr/share",
        "usr/local/share/ca-certificates",
    ] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    let (copied, out) = run(
        "cp",
        &[
            "-a",
            "/usr/share/ca-certificates",
            p(&tree.join("usr/share")),
        ],
        s.path(),
    );
    assert!(copied, "{out}");
    std::fs::copy(
        "/etc/ca-certificates.conf",
        tree.join("etc/ca-certificates.conf"),
    )
    .unwrap();
    let inside = |d: &str| tree.join(d).to_str().unwrap().to_string();
    let (built, out) = run(
        "update-ca-certificates",
        &[
            "--certsconf",
            &inside("etc/ca-certificates.conf"),
            "--certsdir",
            &inside("usr/share/ca-certificates"),
            "--localcertsdir",
            &inside("usr/local/share/ca-certificates"),
            "--etccertsdir",
            &inside("etc/ssl/certs"),
            "--hooksdir",
            "/nonexistent",
        ],
        s.path(),
    );
    assert!(built, "{out}");
    tree
}

/// Every entry below `dir`: its type and its bytes or link target.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let value = if meta.file_type().is_symlink() {
                let mut v = b"link:".to_vec();
                v.extend(std::fs::read_link(&path).unwrap().to_str().unwrap().bytes());
                v
            } else if meta.is_dir() {
                stack.push(path);
                b"dir".to_vec()
            } else {
                std::fs::read(&path).unwrap()
            };
            out.insert(key, value);
        }
    }
    out
}

/// Asserts two snapshots are equal, naming only the entries that differ.
fn assert_same_tree(now: &BTreeMap<String, Vec<u8>>, then: &BTreeMap<String, Vec<u8>>, what: &str) {
    let differ: Vec<&String> = now
        .keys()
        .chain(then.keys())
        .filter(|k| now.get(*k) != then.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:?}");
}

fn bundle_verifies(s: &Scratch, tree: &Path) -> bool {
    run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            p(&tree.join("etc/ssl/certs/ca-certificates.crt")),
            "certs/web.internal/cert.pem",
        ],
        s.path(),
    )
    .0
}

#[test]
fn system_install_is_trusted_by_openssl_idempotent_and_undone_exactly() {
    let s = with_ca();
    let tree = debian_tree(&s);
    let before = snapshot(&tree);
    assert!(!bundle_verifies(&s, &tree));

    let dry = ok(&s.uca(&[
        "trust",
        "install",
        "ca/ca.pem",
        "--root",
        "tree",
        "--dry-run",
    ]));
    assert!(stdout(&dry).contains("would run:"), "{}", stdout(&dry));
    assert_same_tree(&snapshot(&tree), &before, "--dry-run changed the tree");

    ok(&s.uca(&["trust", "install", "ca/ca.pem", "--root", "tree"]));
    assert!(
        bundle_verifies(&s, &tree),
        "openssl does not trust the installed root"
    );
    let installed = snapshot(&tree);

    let again = ok(&s.uca(&["trust", "install", "ca/ca.pem", "--root", "tree"]));
    assert!(
        stdout(&again).contains("already installed"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        snapshot(&tree),
        installed,
        "a second install changed the tree"
    );

    ok(&s.uca(&["trust", "uninstall", "ca/ca.pem", "--root", "tree"]));
    assert!(!bundle_verifies(&s, &tree));
    assert_eq!(
        snapshot(&tree),
        before,
        "uninstall did not restore the tree"
    );

    let again = ok(&s.uca(&["trust", "uninstall", "ca/ca.pem", "--root", "tree"]));
    assert!(
        stdout(&again).contains("not installed"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn system_uninstall_keeps_another_root_with_the_same_name() {
    let s = with_ca();
    other_root(&s);
    let tree = debian_tree(&s);
    ok(&s.uca(&["trust", "install", "other.pem", "--root", "tree"]));
    let with_other = snapshot(&tree);
    ok(&s.uca(&["trust", "install", "ca/ca.pem", "--root", "tree"]));
    ok(&s.uca(&["trust", "uninstall", "ca/ca.pem", "--root", "tree"]));
    assert_same_tree(&snapshot(&tree), &with_other, "the tree changed");
}

/// The JDK's cacerts, as the `java` on PATH finds it.
fn jdk_cacerts() -> PathBuf {
    let java = std::fs::canonicalize(which("java")).unwrap();
    java.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("lib/security/cacerts")
}

fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH (./test.sh installs it)"))
}

fn keytool_list(s: &Scratch, store: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["-list", "-keystore", store, "-storepass", "changeit"];
    args.extend_from_slice(extra);
    run("keytool", &args, s.path())
}

/// The Java alias uca gives the root: `uca-` and the first 16 hex digits
/// of the SHA-256 fingerprint, as openssl computes it.
fn alias_of(s: &Scratch) -> String {
    let (ran, out) = run(
        "openssl",
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            "ca/ca.pem",
        ],
        s.path(),
    );
    assert!(ran, "{out}");
    let hex: String = out.split('=').nth(1).unwrap().trim().replace(':', "");
    format!("uca-{}", &hex[..16].to_ascii_lowercase())
}

#[test]
fn java_install_is_a_trusted_cert_entry_and_uninstall_restores_the_entries() {
    let s = with_ca();
    std::fs::copy(jdk_cacerts(), s.join("cacerts")).unwrap();
    let alias = alias_of(&s);
    let args = ["--store", "java", "--java-cacerts", "cacerts"];
    // Another root with the same name stays when this one is removed.
    other_root(&s);
    ok(&s.uca(&[&["trust", "install", "other.pem"][..], &args].concat()));
    let (_, before) = keytool_list(&s, "cacerts", &[]);

    ok(&s.uca(&[&["trust", "install", "ca/ca.pem"][..], &args].concat()));
    let (found, listed) = keytool_list(&s, "cacerts", &["-alias", &alias]);
    assert!(found && listed.contains("trustedCertEntry"), "{listed}");

    let again = ok(&s.uca(&[&["trust", "install", "ca/ca.pem"][..], &args].concat()));
    assert!(stdout(&again).contains("already installed"));

    ok(&s.uca(&[&["trust", "uninstall", "ca/ca.pem"][..], &args].concat()));
    let (_, after) = keytool_list(&s, "cacerts", &[]);
    assert_eq!(after, before, "uninstall did not restore the entry set");
}

#[test]
fn java_refuses_a_wrong_store_password_before_changing_anything() {
    let s = with_ca();
    std::fs::copy(jdk_cacerts(), s.join("cacerts")).unwrap();
    std::fs::write(s.join("storepass"), "wrong-password\n").unwrap();
    let bytes = std::fs::read(s.join("cacerts")).unwrap();
    let out = s.uca(&[
        "trust",
        "install",
        "ca/ca.pem",
        "--store",
        "java",
        "--java-cacerts",
        "cacerts",
        "--java-storepass-file",
        "storepass",
    ]);
    fails_with(&out, "--java-storepass-file");
    assert_eq!(std::fs::read(s.join("cacerts")).unwrap(), bytes);
}

/// A keystore whose password is not `changeit`: given in
/// UCA_JAVA_STOREPASS, keytool reads it from the environment (never argv);
/// a wrong one changes nothing.
#[test]
fn java_takes_the_store_password_from_the_environment() {
    let s = with_ca();
    std::fs::copy(jdk_cacerts(), s.join("cacerts")).unwrap();
    let (changed, out) = run(
        "keytool",
        &[
            "-storepasswd",
            "-keystore",
            "cacerts",
            "-storepass",
            "changeit",
            "-new",
            "s3cret-pass",
        ],
        s.path(),
    );
    assert!(changed, "{out}");
    let bytes = std::fs::read(s.join("cacerts")).unwrap();
    let install = [
        "trust",
        "install",
        "ca/ca.pem",
        "--store",
        "java",
        "--java-cacerts",
        "cacerts",
    ];
    let out = s.uca_env(&install, &[("UCA_JAVA_STOREPASS", "wrong-pass")]);
    fails_with(&out, "UCA_JAVA_STOREPASS");
    assert_eq!(std::fs::read(s.join("cacerts")).unwrap(), bytes);
    ok(&s.uca_env(&install, &[("UCA_JAVA_STOREPASS", "s3cret-pass")]));
    let (listed, out) = run(
        "keytool",
        &[
            "-list",
            "-keystore",
            "cacerts",
            "-storepass",
            "s3cret-pass",
            "-alias",
            &alias_of(&s),
        ],
        s.path(),
    );
    assert!(listed && out.contains("trustedCertEntry"), "{out}");
}

fn nss_db(s: &Scratch) -> String {
    std::fs::create_dir(s.join("nssdb")).unwrap();
    let db = format!("sql:{}", p(&s.join("nssdb")));
    let (made, out) = run("certutil", &["-N", "--empty-password", "-d", &db], s.path());
    assert!(made, "{out}");
    db
}

#[test]
fn nss_install_is_listed_by_certutil_and_uninstall_removes_it() {
    let s = with_ca();
    let db = nss_db(&s);
    let args = ["--store", "nss", "--nss-db", "nssdb"];
    // Another root with the same name stays when this one is removed.
    other_root(&s);
    ok(&s.uca(&[&["trust", "install", "other.pem"][..], &args].concat()));
    let (_, before) = run("certutil", &["-L", "-d", &db], s.path());
    ok(&s.uca(&[&["trust", "install", "ca/ca.pem"][..], &args].concat()));
    let (_, listed) = run("certutil", &["-L", "-d", &db], s.path());
    let nick = alias_of(&s).replace("uca-", "uca-test-root-");
    let line = listed
        .lines()
        .find(|l| l.starts_with(&nick))
        .unwrap_or_else(|| panic!("{nick} not listed: {listed}"));
    assert!(line.trim_end().ends_with("C,,"), "{line}");

    let again = ok(&s.uca(&[&["trust", "install", "ca/ca.pem"][..], &args].concat()));
    assert!(stdout(&again).contains("already installed"));

    ok(&s.uca(&[&["trust", "uninstall", "ca/ca.pem"][..], &args].concat()));
    let (_, after) = run("certutil", &["-L", "-d", &db], s.path());
    assert_eq!(
        after, before,
        "uninstall did not restore the database's entries"
    );
}

/// PATH holding every program of /usr/bin and /usr/sbin except `missing`.
fn path_without(s: &Scratch, missing: &str) -> String {
    let bin = s.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for dir in ["/usr/bin", "/usr/sbin"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let link = bin.join(e.file_name());
            if e.file_name() != missing && !link.exists() {
                std::os::unix::fs::symlink(e.path(), link).unwrap();
            }
        }
    }
    p(&bin).to_string()
}

#[test]
fn a_missing_tool_is_one_line_naming_the_package_and_no_store_changes() {
    let s = with_ca();
    let tree = debian_tree(&s);
    std::fs::copy(jdk_cacerts(), s.join("cacerts")).unwrap();
    nss_db(&s);
    let path = path_without(&s, "certutil");
    let (tree_before, java_before) = (snapshot(&tree), std::fs::read(s.join("cacerts")).unwrap());
    let args = [
        "trust",
        "install",
        "ca/ca.pem",
        "--store",
        "all",
        "--root",
        "tree",
        "--java-cacerts",
        "cacerts",
        "--nss-db",
        "nssdb",
    ];
    fails_with(
        &s.uca_env(&args, &[("PATH", &path)]),
        "install libnss3-tools",
    );
    assert_same_tree(&snapshot(&tree), &tree_before, "the tree changed");
    assert_eq!(std::fs::read(s.join("cacerts")).unwrap(), java_before);
}

#[test]
fn not_a_ca_certificate_is_refused() {
    let s = with_ca();
    let tree = debian_tree(&s);
    let before = snapshot(&tree);
    std::fs::write(s.join("junk.pem"), "hello\n").unwrap();
    fails_with(
        &s.uca(&["trust", "install", "junk.pem", "--root", "tree"]),
        "junk.pem",
    );
    fails_with(
        &s.uca(&[
            "trust",
            "install",
            "certs/web.internal/cert.pem",
            "--root",
            "tree",
        ]),
        "is not a CA certificate",
    );
    assert_same_tree(&snapshot(&tree), &before, "the tree changed");
}

/// Runs uca as user nobody when this is root (root writes through modes).
fn uca_as_other_user(s: &Scratch, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::uca_bin());
        c
    } else {
        Command::new(common::uca_bin())
    };
    cmd.args(args)
        .current_dir(s.path())
        .stdin(Stdio::null())
        .output()
        .expect("run uca")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn an_unwritable_store_is_refused_before_anything_changes() {
    use std::os::unix::fs::PermissionsExt;
    let s = with_ca();
    let tree = debian_tree(&s);
    for dir in ["", "etc", "etc/ssl", "usr", "usr/local", "usr/local/share"] {
        open_up(&tree.join(dir));
    }
    let anchors = tree.join("usr/local/share/ca-certificates");
    std::fs::set_permissions(&anchors, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = snapshot(&tree);
    fails_with(
        &uca_as_other_user(&s, &["trust", "install", "ca/ca.pem", "--root", "tree"]),
        "may not write to",
    );
    assert_same_tree(&snapshot(&tree), &before, "the tree changed");
}

#[test]
fn pem_bundle_holds_every_root() {
    let s = with_ca();
    other_root(&s);
    ok(&s.uca(&[
        "trust",
        "bundle",
        "ca/ca.pem",
        "other.pem",
        "--out",
        "roots.pem",
    ]));
    let pem = std::fs::read_to_string(s.join("roots.pem")).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2);
    let (verifies, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "roots.pem",
            "certs/web.internal/cert.pem",
        ],
        s.path(),
    );
    assert!(verifies, "{out}");
}

#[test]
fn p12_truststore_is_read_by_keytool_as_trusted_entries_and_by_openssl() {
    let s = with_ca();
    other_root(&s);
    std::fs::write(s.join("p12pass"), "truststore-pass\n").unwrap();
    let bundle = [
        "trust",
        "bundle",
        "ca/ca.pem",
        "other.pem",
        "--format",
        "p12",
        "--out",
        "trust.p12",
    ];
    fails_with(&s.uca(&bundle), "--password-file");
    ok(&s.uca(&[&bundle[..], &["--password-file", "p12pass"]].concat()));
    let (listed, out) = run(
        "keytool",
        &[
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            "trust.p12",
            "-storepass",
            "truststore-pass",
        ],
        s.path(),
    );
    assert!(listed, "{out}");
    assert_eq!(out.matches("trustedCertEntry").count(), 2, "{out}");
    assert!(out.contains(&alias_of(&s)), "{out}");
    let (parsed, out) = run(
        "openssl",
        &[
            "pkcs12",
            "-info",
            "-nokeys",
            "-in",
            "trust.p12",
            "-passin",
            "pass:truststore-pass",
        ],
        s.path(),
    );
    assert!(parsed, "{out}");
    assert_eq!(out.matches("BEGIN CERTIFICATE").count(), 2, "{out}");
}

fn yaml(s: &Scratch, file: &str, expr: &str) -> String {
    let script = format!("import yaml,sys\nd=yaml.safe_load(open(sys.argv[1]))\nprint({expr})");
    let (ran, out) = run("python3", &["-c", &script, file], s.path());
    assert!(ran, "{out}");
    out
}

#[test]
fn configmap_and_trust_manager_bundles_parse_with_the_right_keys() {
    let s = with_ca();
    let pem = std::fs::read_to_string(s.join("ca/ca.pem")).unwrap();
    ok(&s.uca(&[
        "trust",
        "bundle",
        "ca/ca.pem",
        "--format",
        "configmap",
        "--name",
        "acme-roots",
        "--out",
        "cm.yaml",
    ]));
    assert_eq!(
        yaml(
            &s,
            "cm.yaml",
            "d['kind'], d['apiVersion'], d['metadata']['name']"
        )
        .trim(),
        "ConfigMap v1 acme-roots"
    );
    assert_eq!(
        yaml(&s, "cm.yaml", "d['data']['ca.crt']").trim(),
        pem.trim()
    );

    ok(&s.uca(&[
        "trust",
        "bundle",
        "ca/ca.pem",
        "--format",
        "trust-manager",
        "--out",
        "bundle.yaml",
    ]));
    assert_eq!(
        yaml(
            &s,
            "bundle.yaml",
            "d['kind'], d['apiVersion'], d['spec']['target']['configMap']['key']"
        )
        .trim(),
        "Bundle trust.cert-manager.io/v1alpha1 ca.crt"
    );
    assert_eq!(
        yaml(&s, "bundle.yaml", "d['spec']['sources'][0]['inLine']").trim(),
        pem.trim()
    );
    fails_with(
        &s.uca(&[
            "trust",
            "bundle",
            "ca/ca.pem",
            "--format",
            "configmap",
            "--name",
            "Bad_Name",
            "--out",
            "bad.yaml",
        ]),
        "Bad_Name",
    );
    assert!(!s.join("bad.yaml").exists());
}

#[test]
fn bad_arguments_are_one_line_and_write_nothing() {
    let s = with_ca();
    other_root(&s);
    let two = [
        std::fs::read_to_string(s.join("ca/ca.pem")).unwrap(),
        std::fs::read_to_string(s.join("other.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(s.join("two.pem"), two).unwrap();
    std::fs::write(s.join("empty-pass"), "\n").unwrap();
    std::fs::create_dir(s.join("home")).unwrap();
    let before = s.files();
    let home = s.join("home");
    let cases: &[(&[&str], &str)] = &[
        (
            &["install", "two.pem", "--root", "."],
            "give one root per install",
        ),
        (&["install", "ca/ca.pem", "--root", "missing"], "--root"),
        (
            &["install", "ca/ca.pem", "--root", "."],
            "no system trust store found",
        ),
        (
            &["install", "ca/ca.pem", "--store", "nss", "--nss-db", "home"],
            "cert9.db",
        ),
        (
            &["install", "ca/ca.pem", "--store", "nss"],
            "no NSS database found",
        ),
        (
            &["install", "ca/ca.pem", "--store", "java", "--root", "."],
            "--java-cacerts",
        ),
        (
            &[
                "install",
                "ca/ca.pem",
                "--store",
                "java",
                "--java-cacerts",
                "missing",
            ],
            "missing",
        ),
        (
            &["install", "ca/private/ca-key.pem", "--root", "."],
            "expected CERTIFICATE",
        ),
        (
            &["bundle", "certs/web.internal/cert.pem", "--out", "x.pem"],
            "not a CA certificate",
        ),
        (&["bundle", "ca/ca.pem", "--out", "ca/ca.pem"], "--force"),
        (
            &["bundle", "ca/ca.pem", "--out", "no/dir/x.pem"],
            "does not exist",
        ),
        (
            &[
                "bundle",
                "ca/ca.pem",
                "--format",
                "p12",
                "--password-file",
                "empty-pass",
                "--out",
                "x.p12",
            ],
            "empty",
        ),
        (
            &[
                "bundle",
                "ca/ca.pem",
                "--password-file",
                "empty-pass",
                "--out",
                "x.pem",
            ],
            "--format p12 only",
        ),
    ];
    for (args, needle) in cases {
        let args = [&["trust"][..], args].concat();
        fails_with(&s.uca_env(&args, &[("HOME", p(&home))]), needle);
    }
    assert_eq!(s.files(), before);
}

#[test]
fn a_link_leading_out_of_the_root_is_refused_and_nothing_outside_changes() {
    let s = with_ca();
    let tree = debian_tree(&s);
    let anchors = tree.join("usr/local/share/ca-certificates");
    std::fs::remove_dir(&anchors).unwrap();
    std::fs::create_dir(s.join("outside")).unwrap();
    std::os::unix::fs::symlink(s.join("outside"), &anchors).unwrap();
    let before = snapshot(&tree);
    fails_with(
        &s.uca(&["trust", "install", "ca/ca.pem", "--root", "tree"]),
        "outside --root",
    );
    assert_same_tree(&snapshot(&tree), &before, "the tree changed");
    assert_eq!(std::fs::read_dir(s.join("outside")).unwrap().count(), 0);
}

#[test]
fn nss_db_may_be_given_in_certutils_own_spelling() {
    let s = with_ca();
    let db = nss_db(&s);
    let args = ["--store", "nss", "--nss-db", &db];
    ok(&s.uca(&[&["trust", "install", "ca/ca.pem"][..], &args].concat()));
    let (_, listed) = run("certutil", &["-L", "-d", &db], s.path());
    assert!(listed.contains("uca-test-root-"), "{listed}");
}

fn toml_of(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}\n{text}", path.display()))
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The folder of one host: hosts.toml with containerd's documented keys,
/// whose `ca` and `client` name files in the folder itself (containerd
/// resolves relative paths against it).
fn check_containerd_folder(dir: &Path, host_url: &str, ca_pem: &str, client: Option<&str>) {
    let doc = toml_of(&dir.join("hosts.toml"));
    assert_eq!(doc["server"].as_str(), Some(host_url), "{doc}");
    let host = doc["host"][host_url]
        .as_table()
        .expect("[host.\"https://...\"]");
    let caps: Vec<&str> = host["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(caps, ["pull", "resolve"], "{doc}");
    let ca = host["ca"].as_str().expect("ca is a path");
    assert_eq!(std::fs::read_to_string(dir.join(ca)).unwrap(), ca_pem);
    assert_eq!(file_mode(&dir.join(ca)), 0o644);
    match client {
        None => assert!(host.get("client").is_none(), "{doc}"),
        Some(cert_pem) => {
            let pair = host["client"].as_array().unwrap()[0].as_array().unwrap();
            let (cert, key) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            assert_eq!(std::fs::read_to_string(dir.join(cert)).unwrap(), cert_pem);
            assert_eq!(file_mode(&dir.join(key)), 0o600);
            let from_cert = run("openssl", &["x509", "-noout", "-pubkey", "-in", cert], dir);
            let from_key = run("openssl", &["pkey", "-pubout", "-in", key], dir);
            assert!(from_cert.0 && from_key.0, "{from_cert:?} {from_key:?}");
            assert_eq!(from_cert.1, from_key.1, "the client key is not the cert's");
        }
    }
}

#[test]
fn containerd_folders_parse_as_toml_with_the_documented_keys_and_paths() {
    let s = with_ca();
    let ca_pem = std::fs::read_to_string(s.join("ca/ca.pem")).unwrap();
    let out = ok(&s.uca(&[
        "trust",
        "bundle",
        "ca/ca.pem",
        "--format",
        "containerd",
        "--host",
        "registry.internal:5000",
        "--host",
        "mirror.internal:443",
        "--host",
        "[fd00::5]:5000",
        "--out",
        "certs.d",
    ]));
    assert!(
        stdout(&out).contains("certs.d/registry.internal:5000/{hosts.toml,ca.crt}"),
        "{}",
        stdout(&out)
    );
    let certs_d = s.join("certs.d");
    let mut dirs: Vec<String> = std::fs::read_dir(&certs_d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    // Port 443 is the image reference without a port, as containerd looks it up.
    assert_eq!(
        dirs,
        [
            "[fd00::5]:5000",
            "mirror.internal",
            "registry.internal:5000"
        ]
    );
    for (dir, url) in [
        ("registry.internal:5000", "https://registry.internal:5000"),
        ("mirror.internal", "https://mirror.internal"),
        ("[fd00::5]:5000", "https://[fd00::5]:5000"),
    ] {
        let folder = certs_d.join(dir);
        let mut files: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["ca.crt", "hosts.toml"], "{dir}");
        check_containerd_folder(&folder, url, &ca_pem, None);
    }

    // With a client identity: cert and key, checked to belong together.
    let cert_pem = std::fs::read_to_string(s.join("certs/web.internal/cert.pem")).unwrap();
    let with_client = [
        "trust",
        "bundle",
        "ca/ca.pem",
        "--format",
        "containerd",
        "--host",
        "registry.internal:5000",
        "--client-cert",
        "certs/web.internal/cert.pem",
        "--client-key",
        "certs/web.internal/key.pem",
        "--out",
        "certs.d",
    ];
    fails_with(&s.uca(&with_client), "already exists");
    ok(&s.uca(&[&with_client[..], &["--force"]].concat()));
    check_containerd_folder(
        &certs_d.join("registry.internal:5000"),
        "https://registry.internal:5000",
        &ca_pem,
        Some(&cert_pem),
    );
    // The other hosts' folders are left as they were.
    assert!(certs_d.join("mirror.internal/hosts.toml").is_file());
}

#[test]
fn containerd_and_namespace_arguments_are_checked_and_write_nothing() {
    let s = with_ca();
    other_root(&s);
    std::fs::create_dir(s.join("certs.d")).unwrap();
    std::fs::create_dir(s.join("certs.d/registry.internal:5000")).unwrap();
    let before = s.files();
    let bundle = ["trust", "bundle", "ca/ca.pem"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--format", "containerd", "--out", "c.d"],
            "--host HOST[:PORT]",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "bad_host",
                "--out",
                "c.d",
            ],
            "invalid registry host 'bad_host'",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "r.internal:99999",
                "--out",
                "c.d",
            ],
            "1 to 65535",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "r.internal",
                "--host",
                "R.internal:443",
                "--out",
                "c.d",
            ],
            "given twice",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "registry.internal:5000",
                "--out",
                "certs.d",
            ],
            "already exists",
        ),
        (
            &["--format", "pem", "--host", "r.internal", "--out", "x.pem"],
            "--host applies to --format containerd only",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "r.internal",
                "--out",
                "c.d",
                "--client-cert",
                "certs/web.internal/cert.pem",
                "--client-key",
                "ca/private/ca-key.pem",
            ],
            "--client-key",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "r.internal",
                "--out",
                "c.d",
                "--client-cert",
                "other.pem",
                "--client-key",
                "certs/web.internal/key.pem",
            ],
            "is not the key of other.pem",
        ),
        (
            &[
                "--format",
                "containerd",
                "--host",
                "r.internal",
                "--out",
                "ca/ca.pem",
            ],
            "exists as a file",
        ),
        (
            &[
                "--format",
                "configmap",
                "--namespace",
                "Prod",
                "--out",
                "x.yaml",
            ],
            "invalid --namespace 'Prod'",
        ),
        (
            &[
                "--format",
                "configmap",
                "--namespace",
                "a.b",
                "--out",
                "x.yaml",
            ],
            "invalid --namespace 'a.b'",
        ),
        (
            &[
                "--format",
                "trust-manager",
                "--namespace",
                &"n".repeat(64),
                "--out",
                "x.yaml",
            ],
            "at most 63",
        ),
        (
            &["--format", "pem", "--namespace", "prod", "--out", "x.pem"],
            "--namespace applies to --format configmap or trust-manager only",
        ),
    ];
    for (args, needle) in cases {
        let err = fails_with(&s.uca(&[&bundle[..], args].concat()), needle);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(s.files(), before);
}

#[test]
fn a_namespaced_configmap_and_a_cluster_scoped_bundle_aimed_at_one_namespace() {
    let s = with_ca();
    for format in ["configmap", "trust-manager"] {
        ok(&s.uca(&[
            "trust",
            "bundle",
            "ca/ca.pem",
            "--format",
            format,
            "--namespace",
            "prod-apps",
            "--out",
            &format!("{format}.yaml"),
        ]));
    }
    assert_eq!(
        yaml(&s, "configmap.yaml", "d['metadata']['namespace']").trim(),
        "prod-apps"
    );
    // A Bundle is cluster-scoped: no namespace of its own; the namespace
    // given selects where trust-manager writes its ConfigMap.
    assert_eq!(
        yaml(&s, "trust-manager.yaml", "'namespace' in d['metadata']").trim(),
        "False"
    );
    assert_eq!(
        yaml(
            &s,
            "trust-manager.yaml",
            "d['spec']['target']['namespaceSelector']['matchLabels']['kubernetes.io/metadata.name']"
        )
        .trim(),
        "prod-apps"
    );
    assert_eq!(
        yaml(
            &s,
            "trust-manager.yaml",
            "d['spec']['target']['configMap']['key']"
        )
        .trim(),
        "ca.crt"
    );
}

/// A scratch tree of another distribution: its os-release (if any) and,
/// if `tool` is given, an executable of that name where the distribution
/// keeps it. The file stands in for the tool's presence only: a dry run
/// never runs it, and no test here runs it.
fn distro_tree(s: &Scratch, name: &str, os_release: Option<&str>, tool: Option<&str>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tree = s.join(name);
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    if let Some(text) = os_release {
        std::fs::write(tree.join("etc/os-release"), text).unwrap();
    }
    if let Some(tool) = tool {
        let file = tree.join(tool);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "#!/bin/sh\necho 'not the real tool' >&2\nexit 1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    tree
}

fn stem_of(s: &Scratch) -> String {
    let o = ok(&s.uca(&[
        "trust",
        "install",
        "ca/ca.pem",
        "--root",
        "probe",
        "--dry-run",
    ]));
    let text = stdout(&o);
    let start = text.find("uca-test-root-").expect("the anchor's name");
    text[start..].split(".crt").next().unwrap().to_string()
}

#[test]
fn rhel_and_alpine_trees_are_detected_from_os_release_and_a_dry_run_names_anchor_and_tool() {
    let s = with_ca();
    distro_tree(&s, "probe", Some("ID=debian\n"), None);
    std::fs::write(s.join("probe/etc/ca-certificates.conf"), "").unwrap();
    let stem = stem_of(&s);
    let abs = std::fs::canonicalize(s.path()).unwrap();
    let cases = [
        (
            "rhel",
            Some("NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\n"),
            "usr/bin/update-ca-trust",
            "etc/pki/ca-trust/source/anchors",
            "/usr/bin/update-ca-trust extract",
        ),
        (
            "clone",
            Some("ID=someclone\nID_LIKE=\"rhel centos fedora\"\n"),
            "usr/bin/update-ca-trust",
            "etc/pki/ca-trust/source/anchors",
            "/usr/bin/update-ca-trust extract",
        ),
        (
            "alpine",
            Some("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.0\n"),
            "usr/sbin/update-ca-certificates",
            "usr/local/share/ca-certificates",
            "/usr/sbin/update-ca-certificates",
        ),
        (
            "alpine-no-os-release",
            None,
            "usr/sbin/update-ca-certificates",
            "usr/local/share/ca-certificates",
            "/usr/sbin/update-ca-certificates",
        ),
    ];
    for (name, os_release, tool, anchors, command) in cases {
        let tree = distro_tree(&s, name, os_release, Some(tool));
        if os_release.is_none() {
            std::fs::write(tree.join("etc/alpine-release"), "3.20.0\n").unwrap();
        }
        let before = snapshot(&tree);
        let o = ok(&s.uca(&["trust", "install", "ca/ca.pem", "--root", name, "--dry-run"]));
        let text = stdout(&o);
        let anchor = abs.join(name).join(anchors).join(format!("{stem}.crt"));
        for needle in [
            format!("system: would write {} (0644)", anchor.display()),
            format!(
                "system: would run: chroot {} {command}",
                abs.join(name).display()
            ),
            "dry run: nothing was changed".to_string(),
        ] {
            assert!(text.contains(&needle), "{name}: no {needle:?} in:\n{text}");
        }
        assert_same_tree(&snapshot(&tree), &before, name);
    }
}

#[test]
fn a_missing_rhel_or_alpine_tool_is_one_line_naming_the_package() {
    let s = with_ca();
    let cases = [
        (
            "rhel",
            "ID=\"rhel\"\n",
            "update-ca-trust is not in",
            "p11-kit",
        ),
        (
            "fedora",
            "ID=fedora\n",
            "update-ca-trust is not in",
            "ca-certificates package",
        ),
        (
            "alpine",
            "ID=alpine\n",
            "update-ca-certificates is not in",
            "ca-certificates package",
        ),
    ];
    for (name, os_release, first, package) in cases {
        let tree = distro_tree(&s, name, Some(os_release), None);
        let before = snapshot(&tree);
        for dry in [&[][..], &["--dry-run"][..]] {
            let args = [&["trust", "install", "ca/ca.pem", "--root", name][..], dry].concat();
            let err = fails_with(&s.uca(&args), first);
            assert!(err.contains(package), "{name}: {err}");
            assert!(err.contains("install"), "{name}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
        }
        assert_same_tree(&snapshot(&tree), &before, name);
    }
    // A Debian tree is rebuilt by this machine's tool from the tree's own
    // list of CAs: without it, nothing is planned.
    let tree = distro_tree(&s, "ubuntu", Some("ID=ubuntu\nID_LIKE=debian\n"), None);
    let before = snapshot(&tree);
    let err = fails_with(
        &s.uca(&[
            "trust",
            "install",
            "ca/ca.pem",
            "--root",
            "ubuntu",
            "--dry-run",
        ]),
        "etc/ca-certificates.conf is missing",
    );
    assert!(err.contains("install the ca-certificates package"), "{err}");
    assert_same_tree(&snapshot(&tree), &before, "ubuntu");
    // On this machine (no --root) the tool is looked for on PATH.
    let path = path_without(&s, "update-ca-certificates");
    let err = fails_with(
        &s.uca_env(
            &["trust", "install", "ca/ca.pem", "--dry-run"],
            &[("PATH", &path)],
        ),
        "update-ca-certificates is not on PATH; install the ca-certificates package",
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn running_a_trees_own_tool_needs_root_and_is_refused_before_any_change() {
    let s = with_ca();
    let tree = distro_tree(
        &s,
        "rhel",
        Some("ID=rhel\n"),
        Some("usr/bin/update-ca-trust"),
    );
    let before = snapshot(&tree);
    let o = uca_as_other_user(&s, &["trust", "install", "ca/ca.pem", "--root", "rhel"]);
    let err = fails_with(&o, "needs root");
    assert!(err.contains("chroot"), "{err}");
    assert_same_tree(&snapshot(&tree), &before, "the tree changed");
}

// ------------------------------------------- real clients over real TLS --

/// `openssl s_server` on 127.0.0.1 serving `certs/web.internal` (no client
/// certificate asked for); killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(s: &Scratch) -> TlsServer {
        let port = common::free_port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                "certs/web.internal/cert.pem",
                "-key",
                "certs/web.internal/key.pem",
                "-www",
            ])
            .current_dir(s.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "openssl s_server did not listen on {port} within 15 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether OpenSSL's s_client, curl and Python's ssl, each given only
/// `bundle` as trust, complete a verified TLS handshake with the server as
/// `web.internal`. Returns each client's verdict.
fn clients_trust(s: &Scratch, server: &TlsServer, bundle: &Path) -> [(bool, String); 3] {
    let port = server.port.to_string();
    let openssl = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "web.internal",
            "-verify_hostname",
            "web.internal",
            "-verify_return_error",
            "-CAfile",
            p(bundle),
        ],
        s.path(),
    );
    let curl = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "--max-time",
            "20",
            "--cacert",
            p(bundle),
            "--resolve",
            &format!("web.internal:{port}:127.0.0.1"),
            &format!("https://web.internal:{port}/"),
        ],
        s.path(),
    );
    let script = "import socket, ssl, sys\n\
        ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
        with socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=20) as raw:\n\
        \x20   with ctx.wrap_socket(raw, server_hostname='web.internal') as tls:\n\
        \x20       print('verified', tls.version())\n";
    let python = run("python3", &["-c", script, p(bundle), &port], s.path());
    [openssl, curl, python]
}

#[test]
fn the_installed_system_bundle_is_trusted_by_openssl_curl_and_python_over_tls() {
    let s = with_ca();
    let tree = debian_tree(&s);
    let bundle = tree.join("etc/ssl/certs/ca-certificates.crt");
    let server = TlsServer::start(&s);
    let names = ["openssl s_client", "curl", "python ssl"];
    for (name, (trusted, out)) in names.iter().zip(clients_trust(&s, &server, &bundle)) {
        assert!(!trusted, "{name} trusted the server before install: {out}");
    }
    ok(&s.uca(&["trust", "install", "ca/ca.pem", "--root", "tree"]));
    for (name, (trusted, out)) in names.iter().zip(clients_trust(&s, &server, &bundle)) {
        assert!(trusted, "{name} does not trust the installed root: {out}");
    }
    ok(&s.uca(&["trust", "uninstall", "ca/ca.pem", "--root", "tree"]));
    for (name, (trusted, out)) in names.iter().zip(clients_trust(&s, &server, &bundle)) {
        assert!(
            !trusted,
            "{name} still trusts the server after uninstall: {out}"
        );
    }
}

/// A Java 17 client whose only trust is the JVM's default trust store
/// settings (`javax.net.ssl.trustStore*`): connects to 127.0.0.1 as
/// `web.internal` with host name checking, completes the handshake.
const JAVA_CLIENT: &str = r#"
import java.net.Socket;
import javax.net.ssl.*;

public class TrustClient {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        SSLSocketFactory factory = (SSLSocketFactory) SSLSocketFactory.getDefault();
        Socket raw = new Socket("127.0.0.1", port);
        raw.setSoTimeout(20000);
        SSLSocket tls = (SSLSocket) factory.createSocket(raw, "web.internal", port, true);
        SSLParameters params = tls.getSSLParameters();
        params.setEndpointIdentificationAlgorithm("HTTPS");
        params.setServerNames(java.util.List.of(new SNIHostName("web.internal")));
        tls.setSSLParameters(params);
        tls.startHandshake();
        System.out.println("verified " + tls.getSession().getProtocol());
        tls.close();
    }
}
"#;

fn java_trusts(s: &Scratch, server: &TlsServer, truststore: &str) -> (bool, String) {
    java_trusts_with(s, server, truststore, Some("truststore-pass"))
}

/// A Java client given only the truststore, and its password if any (none:
/// no trustStorePassword property at all).
fn java_trusts_with(
    s: &Scratch,
    server: &TlsServer,
    truststore: &str,
    password: Option<&str>,
) -> (bool, String) {
    let mut args = vec![
        format!("-Djavax.net.ssl.trustStore={truststore}"),
        "-Djavax.net.ssl.trustStoreType=PKCS12".to_string(),
    ];
    args.extend(password.map(|p| format!("-Djavax.net.ssl.trustStorePassword={p}")));
    args.extend(["TrustClient.java".to_string(), server.port.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("java", &args, s.path())
}

#[test]
fn a_java_client_trusts_a_uca_server_with_only_the_p12_truststore() {
    let s = with_ca();
    other_root(&s);
    std::fs::write(s.join("p12pass"), "truststore-pass\n").unwrap();
    std::fs::write(s.join("TrustClient.java"), JAVA_CLIENT).unwrap();
    for (out, roots) in [
        ("ours.p12", vec!["ca/ca.pem", "other.pem"]),
        ("others.p12", vec!["other.pem"]),
    ] {
        let mut args = vec!["trust", "bundle"];
        args.extend(roots);
        args.extend([
            "--format",
            "p12",
            "--password-file",
            "p12pass",
            "--out",
            out,
        ]);
        ok(&s.uca(&args));
    }
    let server = TlsServer::start(&s);
    let (trusted, out) = java_trusts(&s, &server, "ours.p12");
    assert!(
        trusted && out.contains("verified"),
        "Java with uca's truststore: {out}"
    );
    // The other root has the same name as ours: Java finds it and fails
    // the path's signature check ("PKIX path validation failed").
    let (trusted, out) = java_trusts(&s, &server, "others.p12");
    assert!(
        !trusted && out.contains("PKIX path"),
        "Java trusted the server without its root: {out}"
    );
}

/// The issue's "optionally password-less": `--no-password` writes a
/// truststore without a password or MAC, which keytool lists without being
/// given a password and a Java client uses with no trustStorePassword;
/// p12 without either password option is refused naming both.
#[test]
fn a_password_less_p12_truststore_is_trusted_by_java_without_a_password() {
    let s = with_ca();
    std::fs::write(s.join("TrustClient.java"), JAVA_CLIENT).unwrap();
    let bundle = [
        "trust",
        "bundle",
        "ca/ca.pem",
        "--format",
        "p12",
        "--out",
        "open.p12",
    ];
    let refused = fails_with(&s.uca(&bundle), "--no-password");
    assert!(refused.contains("--password-file"), "{refused}");
    assert!(!s.join("open.p12").exists());
    fails_with(
        &s.uca(&[
            "trust",
            "bundle",
            "ca/ca.pem",
            "--no-password",
            "--out",
            "x.pem",
        ]),
        "--no-password",
    );
    assert!(!s.join("x.pem").exists());
    ok(&s.uca(&[&bundle[..], &["--no-password"]].concat()));
    let listed = Command::new("keytool")
        .args(["-list", "-storetype", "PKCS12", "-keystore", "open.p12"])
        .current_dir(s.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.status.success(), "{out}");
    assert_eq!(out.matches("trustedCertEntry").count(), 1, "{out}");
    assert!(out.contains(&alias_of(&s)), "{out}");
    let server = TlsServer::start(&s);
    let (trusted, out) = java_trusts_with(&s, &server, "open.p12", None);
    assert!(
        trusted && out.contains("verified"),
        "Java with the password-less truststore: {out}"
    );
}

/// Ubuntu's Firefox is a snap and Flathub's a Flatpak: their profiles live
/// under ~/snap and ~/.var, and `--store nss` without `--nss-db` finds
/// them as it finds ~/.mozilla's (as mkcert does).
#[test]
fn nss_finds_the_snap_and_flatpak_firefox_profiles() {
    let s = with_ca();
    let profiles = [
        "home/snap/firefox/common/.mozilla/firefox/a1b2.default",
        "home/.var/app/org.mozilla.firefox/.mozilla/firefox/c3d4.default-release",
    ];
    for profile in profiles {
        std::fs::create_dir_all(s.join(profile)).unwrap();
        let db = format!("sql:{}", p(&s.join(profile)));
        let (made, out) = run("certutil", &["-N", "--empty-password", "-d", &db], s.path());
        assert!(made, "{out}");
    }
    let home = s.join("home");
    let env = [("HOME", p(&home))];
    let done = ok(&s.uca_env(&["trust", "install", "ca/ca.pem", "--store", "nss"], &env));
    let nick = alias_of(&s).replace("uca-", "uca-test-root-");
    for profile in profiles {
        let db = format!("sql:{}", p(&s.join(profile)));
        let (_, listed) = run("certutil", &["-L", "-d", &db], s.path());
        assert!(
            listed.contains(&nick),
            "{profile}: {listed}\n{}",
            stdout(&done)
        );
    }
    ok(&s.uca_env(&["trust", "uninstall", "ca/ca.pem", "--store", "nss"], &env));
    for profile in profiles {
        let db = format!("sql:{}", p(&s.join(profile)));
        let (_, listed) = run("certutil", &["-L", "-d", &db], s.path());
        assert!(!listed.contains(&nick), "{profile}: {listed}");
    }
}
