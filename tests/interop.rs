//! The interop matrix: certificates made by the real `uca` binary, for every
//! profile (server, client, both, and an intermediate CA signed with
//! `uca sign --intermediate` with a leaf below it) and every key type
//! (P-256, P-384, Ed25519, RSA-2048, RSA-4096), checked by every verifier
//! uca's users run:
//!
//! * chain verification by OpenSSL (`openssl verify -x509_strict -purpose`),
//!   rustls/webpki (`uca verify`), Go's crypto/x509 (`Certificate.Verify`),
//!   Java 17's PKIX (`CertPathValidator` plus JSSE's trust manager, which
//!   adds the TLS key-usage checks) and Python's `ssl` (a handshake over
//!   memory BIOs, with `VERIFY_X509_STRICT`);
//! * real mutual-TLS handshakes over 127.0.0.1 between Go (crypto/tls),
//!   Java (JSSE), Python (ssl), OpenSSL (s_server/s_client) and rustls (in
//!   this process), each stack with itself (TLS 1.3 and 1.2) and with every
//!   other stack;
//! * refusals that prove each verifier really checks: wrong EKU, wrong
//!   name, unknown issuer, missing intermediate, a name outside the CA's
//!   name constraints, no client certificate.
//!
//! The programs are in tests/interop/ (the Go one built and the Java one
//! compiled once per run, into the scratch directory). Go, Java, Python 3
//! and OpenSSL are required: this test fails, it does not skip, when one is
//! missing (./test.sh installs them). Key types a stack does not support
//! belong in [`unsupported`] with the error they were observed to fail
//! with, and refusals a verifier does not make in [`accepts_anyway`]; both
//! are mirrored in tests/interop/SUPPORT.md, and an entry that stops being
//! true fails the test, so the lists stay true. All failures are collected
//! into one assertion message, after the whole matrix (printed with
//! `--nocapture`).

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
    SupportedProtocolVersion,
};

/// No single process may run longer than this.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);
/// How long a server may take to start listening (a JVM on a busy machine).
const LISTEN_LIMIT: Duration = Duration::from_secs(40);
/// The socket timeout handed to the programs, in seconds.
const IO_SECS: &str = "20";
/// Handshakes running at once.
const WORKERS: usize = 3;

// ---------------------------------------------------------------------------
// Key types and the rows of the matrix

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    P256,
    P384,
    Ed25519,
    Rsa2048,
    Rsa4096,
}

impl Key {
    fn uca(self) -> &'static str {
        match self {
            Key::P256 => "ec-p256",
            Key::P384 => "ec-p384",
            Key::Ed25519 => "ed25519",
            Key::Rsa2048 => "rsa-2048",
            Key::Rsa4096 => "rsa-4096",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Key::P256 => "P-256",
            Key::P384 => "P-384",
            Key::Ed25519 => "Ed25519",
            Key::Rsa2048 => "RSA-2048",
            Key::Rsa4096 => "RSA-4096",
        }
    }

    fn genpkey(self) -> &'static [&'static str] {
        match self {
            Key::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Key::P384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Key::Ed25519 => &["-algorithm", "ED25519"],
            Key::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Key::Rsa4096 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
        }
    }

    /// The digest `openssl x509 -req` signs with under a CA key of this type.
    fn digest(self) -> &'static [&'static str] {
        match self {
            Key::Ed25519 => &[],
            Key::P384 => &["-sha384"],
            _ => &["-sha256"],
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, Key::Rsa2048 | Key::Rsa4096)
    }
}

/// One row: a root of one key type, and certificates of the same type.
#[derive(Clone, Copy)]
struct RowSpec {
    id: &'static str,
    key: Key,
    /// `uca init --permit internal`: the root (and so the intermediate)
    /// carry critical name constraints.
    constrained: bool,
}

const ROWS: [RowSpec; 6] = [
    RowSpec {
        id: "p256",
        key: Key::P256,
        constrained: false,
    },
    RowSpec {
        id: "p384",
        key: Key::P384,
        constrained: false,
    },
    RowSpec {
        id: "ed25519",
        key: Key::Ed25519,
        constrained: false,
    },
    RowSpec {
        id: "rsa2048",
        key: Key::Rsa2048,
        constrained: false,
    },
    RowSpec {
        id: "rsa4096",
        key: Key::Rsa4096,
        constrained: false,
    },
    RowSpec {
        id: "p256-nc",
        key: Key::P256,
        constrained: true,
    },
];

impl RowSpec {
    fn label(&self) -> String {
        if self.constrained {
            format!("{} name-constrained", self.key.label())
        } else {
            self.key.label().to_string()
        }
    }
}

/// A certificate (chain file: leaf first, then any intermediate) and its key.
#[derive(Clone, Debug)]
struct Identity {
    chain: PathBuf,
    key: PathBuf,
    /// The leaf's CN, which is also its DNS SAN.
    name: String,
}

/// Everything made for one row.
struct Pki {
    spec: RowSpec,
    ca: PathBuf,
    server: Identity,
    client: Identity,
    both: Identity,
    /// A leaf (serverAuth + clientAuth) signed by OpenSSL with the
    /// intermediate uca signed; its chain file holds leaf + intermediate.
    int_leaf: Identity,
    /// The same leaf without the intermediate.
    int_leaf_alone: PathBuf,
    /// Only in constrained rows: a leaf for evil.example.com that the
    /// intermediate signed although its name constraints forbid it.
    outside: Option<Identity>,
    /// Only in constrained rows: the same, signed with the root's key.
    outside_root: Option<Identity>,
}

// ---------------------------------------------------------------------------
// Running programs, always bounded

struct Ran {
    /// None if killed at the time limit.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn spawn(cmd: &mut Command, stdin: Stdio) -> Child {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (is it installed? ./test.sh installs Go, Java, Python 3 and OpenSSL)")
        })
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` until `limit`, killing it then.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status.code().unwrap_or(-1));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` with `input` on standard input, killed after `limit`.
fn run_bounded(mut cmd: Command, input: Option<String>, limit: Duration) -> Ran {
    let mut child = spawn(
        &mut cmd,
        if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        },
    );
    let feeder = input.map(|text| {
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        })
    });
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let code = wait_bounded(&mut child, limit);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Ran {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn openssl(cwd: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(cwd);
    run_bounded(cmd, None, PROCESS_LIMIT)
}

fn openssl_ok(cwd: &Path, args: &[&str]) -> String {
    let r = openssl(cwd, args);
    assert!(r.ok(), "openssl {} failed:\n{}", args.join(" "), r.all());
    r.stdout
}

/// One line, whitespace collapsed, at most `max` characters.
fn squash(text: &str, max: usize) -> String {
    let s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// `text` from `needle` on (all of it if `needle` is not in it), short.
fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    squash(&text[at..], needle.len() + 60)
}

/// `CN = a.internal` and `CN=a.internal` alike.
fn normalize_subject(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

// ---------------------------------------------------------------------------
// The programs

struct Tools {
    go: PathBuf,
    java_classes: PathBuf,
    python_script: PathBuf,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the Go program and compiles the Java one into `into`.
fn build_tools(into: &Path) -> Tools {
    let go = into.join("interop-go");
    let go_dir = manifest_dir().join("tests/interop/go");
    let mut cmd = Command::new("go");
    cmd.args(["build", "-buildvcs=false", "-o"])
        .arg(&go)
        .arg(".")
        .current_dir(&go_dir)
        // Only the local toolchain and the standard library: no downloads.
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off");
    if std::env::var_os("GOCACHE").is_none() {
        cmd.env(
            "GOCACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-build"),
        );
    }
    let java_classes = into.join("java");
    let mut javac = Command::new("javac");
    javac
        .args(["-Xlint:all", "-Werror", "-d"])
        .arg(&java_classes)
        .arg(manifest_dir().join("tests/interop/java/Interop.java"));
    let (go_run, javac_run) = thread::scope(|s| {
        let g = s.spawn(|| run_bounded(cmd, None, Duration::from_secs(300)));
        let j = s.spawn(|| run_bounded(javac, None, Duration::from_secs(300)));
        (g.join().unwrap(), j.join().unwrap())
    });
    assert!(
        go_run.ok(),
        "go build of tests/interop/go failed:\n{}",
        go_run.all()
    );
    assert!(
        javac_run.ok(),
        "javac of tests/interop/java/Interop.java failed:\n{}",
        javac_run.all()
    );
    let python_script = manifest_dir().join("tests/interop/python/interop.py");
    assert!(
        python_script.is_file(),
        "{} is missing",
        python_script.display()
    );
    Tools {
        go,
        java_classes,
        python_script,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Stack {
    Go,
    Java,
    Python,
    OpenSsl,
    /// rustls in this test process (the TLS library uca itself uses).
    Rustls,
}

const STACKS: [Stack; 5] = [
    Stack::Go,
    Stack::Java,
    Stack::Python,
    Stack::OpenSsl,
    Stack::Rustls,
];

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Stack::Go => "go",
            Stack::Java => "java",
            Stack::Python => "python",
            Stack::OpenSsl => "openssl",
            Stack::Rustls => "rustls",
        }
    }
}

impl Tools {
    /// The command that runs one of the three programs (not OpenSSL).
    fn program(&self, stack: Stack) -> Command {
        match stack {
            Stack::Go => Command::new(&self.go),
            Stack::Java => {
                let mut c = Command::new("java");
                // Quick start-up: many short JVMs run in this test.
                c.args([
                    "-XX:TieredStopAtLevel=1",
                    "-XX:+UseSerialGC",
                    "-XX:-UsePerfData",
                    "-cp",
                ])
                .arg(&self.java_classes)
                .arg("Interop");
                c
            }
            Stack::Python => {
                let mut c = Command::new("python3");
                c.env("PYTHONDONTWRITEBYTECODE", "1")
                    .arg(&self.python_script);
                c
            }
            Stack::OpenSsl | Stack::Rustls => unreachable!("not one of the programs"),
        }
    }
}

// ---------------------------------------------------------------------------
// Making the certificates

fn pass_arg(s: &Scratch) -> String {
    s.pass_file().to_str().unwrap().to_string()
}

fn genkey(s: &Scratch, key: Key, out: &str) {
    let mut args = vec!["genpkey"];
    args.extend_from_slice(key.genpkey());
    args.extend_from_slice(&["-out", out]);
    openssl_ok(s.path(), &args);
}

fn csr(s: &Scratch, key_file: &str, cn: &str, san: bool, out: &str) {
    let subj = format!("/CN={cn}");
    let ext = format!("subjectAltName=DNS:{cn}");
    let mut args = vec!["req", "-new", "-key", key_file, "-subj", &subj, "-out", out];
    if san {
        args.extend_from_slice(&["-addext", &ext]);
    }
    openssl_ok(s.path(), &args);
}

fn random_serial() -> String {
    let bytes = uca::pki::profile::random_serial_bytes();
    format!("0x{}", uca::pki::x509::hex(&bytes))
}

/// Signs `csr_file` with OpenSSL (not uca) as a leaf for both TLS roles
/// named `name`, issued by `issuer` (certificate and key file) of type `key`.
fn openssl_leaf(s: &Scratch, key: Key, csr_file: &str, name: &str, out: &str, issuer: [&str; 2]) {
    let ext_file = format!("{out}.ext");
    let key_usage = if key.is_rsa() {
        "critical,digitalSignature,keyEncipherment"
    } else {
        "critical,digitalSignature"
    };
    std::fs::write(
        s.join(&ext_file),
        format!(
            "[v3]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = {key_usage}\n\
             extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = DNS:{name}\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
        ),
    )
    .unwrap();
    let [ca, ca_key] = issuer;
    let serial = random_serial();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        csr_file,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-set_serial",
        &serial,
        "-days",
        "30",
        "-extfile",
        &ext_file,
        "-extensions",
        "v3",
        "-out",
        out,
    ];
    args.extend_from_slice(key.digest());
    openssl_ok(s.path(), &args);
}

fn concat(s: &Scratch, parts: &[&str], out: &str) {
    let mut text = String::new();
    for p in parts {
        text.push_str(&std::fs::read_to_string(s.join(p)).unwrap());
    }
    std::fs::write(s.join(out), text).unwrap();
}

fn uca_ok(s: &Scratch, args: &[&str]) -> String {
    let o = s.uca(args);
    assert!(
        o.status.success(),
        "uca {} failed: {}{}",
        args.join(" "),
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// Makes one row's CA, leaves, intermediate and the leaf below it.
fn make_row(s: &Scratch, spec: RowSpec) -> Pki {
    let row = spec.id;
    let key = spec.key;
    std::fs::create_dir_all(s.join(row)).unwrap();
    let pass = pass_arg(s);
    let ca_dir = format!("{row}/ca");
    let root_name = format!("Interop Root {}", spec.label());
    let mut init = vec![
        "init",
        "--dir",
        &ca_dir,
        "--name",
        &root_name,
        "--key",
        key.uca(),
        "--passphrase-file",
        &pass,
    ];
    if spec.constrained {
        init.extend_from_slice(&["--permit", "internal"]);
    }
    uca_ok(s, &init);

    let out_dir = format!("{row}/certs");
    let mut leaves = HashMap::new();
    if key == Key::Rsa4096 {
        // uca's own RSA-4096 key generation is slow; one OpenSSL key goes
        // through `uca sign` with each profile instead (uca-made RSA key
        // files are covered by the RSA-2048 row).
        let key_file = format!("{row}/leaf.key");
        genkey(s, key, &key_file);
        for profile in ["server", "client", "both"] {
            let name = format!("{profile}.{row}.internal");
            let csr_file = format!("{row}/{profile}.csr");
            csr(s, &key_file, &name, true, &csr_file);
            let cert = format!("{row}/{profile}.pem");
            uca_ok(
                s,
                &[
                    "sign",
                    "--dir",
                    &ca_dir,
                    "--profile",
                    profile,
                    "--out",
                    &cert,
                    "--passphrase-file",
                    &pass,
                    &csr_file,
                ],
            );
            leaves.insert(
                profile,
                Identity {
                    chain: s.join(&cert),
                    key: s.join(&key_file),
                    name,
                },
            );
        }
    } else {
        for profile in ["server", "client", "both"] {
            let name = format!("{profile}.{row}.internal");
            uca_ok(
                s,
                &[
                    "issue",
                    "--dir",
                    &ca_dir,
                    "--out",
                    &out_dir,
                    "--key",
                    key.uca(),
                    "--profile",
                    profile,
                    "--passphrase-file",
                    &pass,
                    &name,
                ],
            );
            leaves.insert(
                profile,
                Identity {
                    chain: s.join(&format!("{out_dir}/{name}/cert.pem")),
                    key: s.join(&format!("{out_dir}/{name}/key.pem")),
                    name,
                },
            );
        }
    }

    // The intermediate: an OpenSSL key and CSR, signed by uca.
    let int_key = format!("{row}/int.key");
    genkey(s, key, &int_key);
    let int_csr = format!("{row}/int.csr");
    csr(
        s,
        &int_key,
        &format!("Interop Intermediate {}", spec.label()),
        false,
        &int_csr,
    );
    let int_pem = format!("{row}/int.pem");
    uca_ok(
        s,
        &[
            "sign",
            "--dir",
            &ca_dir,
            "--intermediate",
            "--out",
            &int_pem,
            "--passphrase-file",
            &pass,
            &int_csr,
        ],
    );

    // A leaf below it, signed by OpenSSL.
    let leaf_key = if key == Key::Rsa4096 {
        format!("{row}/leaf.key")
    } else {
        let k = format!("{row}/ileaf.key");
        genkey(s, key, &k);
        k
    };
    let name = format!("ileaf.{row}.internal");
    let leaf_csr = format!("{row}/ileaf.csr");
    csr(s, &leaf_key, &name, true, &leaf_csr);
    openssl_leaf(
        s,
        key,
        &leaf_csr,
        &name,
        &format!("{row}/ileaf.pem"),
        [&int_pem, &int_key],
    );
    concat(
        s,
        &[&format!("{row}/ileaf.pem"), &int_pem],
        &format!("{row}/ileaf-chain.pem"),
    );
    let int_leaf = Identity {
        chain: s.join(&format!("{row}/ileaf-chain.pem")),
        key: s.join(&leaf_key),
        name,
    };

    // Leaves for a name outside the constraints, which uca refuses to
    // issue: one signed by the intermediate (which carries the root's
    // constraints), one signed with the root's own key (so only the trust
    // anchor's constraints forbid it).
    let (outside, outside_root) = if spec.constrained {
        let name = "evil.example.com";
        let csr_file = format!("{row}/outside.csr");
        csr(s, &leaf_key, name, true, &csr_file);
        openssl_leaf(
            s,
            key,
            &csr_file,
            name,
            &format!("{row}/outside.pem"),
            [&int_pem, &int_key],
        );
        concat(
            s,
            &[&format!("{row}/outside.pem"), &int_pem],
            &format!("{row}/outside-chain.pem"),
        );
        let root_key = format!("{row}/root.key");
        let pass_in = format!("file:{pass}");
        openssl_ok(
            s.path(),
            &[
                "pkey",
                "-in",
                &format!("{ca_dir}/private/ca-key.pem"),
                "-passin",
                &pass_in,
                "-out",
                &root_key,
            ],
        );
        openssl_leaf(
            s,
            key,
            &csr_file,
            name,
            &format!("{row}/outside-root.pem"),
            [&format!("{ca_dir}/ca.pem"), &root_key],
        );
        let ident = |chain: &str| Identity {
            chain: s.join(chain),
            key: s.join(&leaf_key),
            name: name.to_string(),
        };
        (
            Some(ident(&format!("{row}/outside-chain.pem"))),
            Some(ident(&format!("{row}/outside-root.pem"))),
        )
    } else {
        (None, None)
    };

    Pki {
        spec,
        ca: s.join(&format!("{ca_dir}/ca.pem")),
        server: leaves.remove("server").unwrap(),
        client: leaves.remove("client").unwrap(),
        both: leaves.remove("both").unwrap(),
        int_leaf,
        int_leaf_alone: s.join(&format!("{row}/ileaf.pem")),
        outside,
        outside_root,
    }
}

// ---------------------------------------------------------------------------
// Chain verification

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Verifier {
    OpenSsl,
    Webpki,
    Go,
    Java,
    Python,
}

const VERIFIERS: [Verifier; 5] = [
    Verifier::OpenSsl,
    Verifier::Webpki,
    Verifier::Go,
    Verifier::Java,
    Verifier::Python,
];

impl Verifier {
    fn name(self) -> &'static str {
        match self {
            Verifier::OpenSsl => "openssl",
            Verifier::Webpki => "webpki",
            Verifier::Go => "go",
            Verifier::Java => "java",
            Verifier::Python => "python",
        }
    }
}

/// Why a check must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The leaf lacks the EKU for this use.
    Eku,
    /// The leaf is not valid for the name asked for.
    Name,
    /// The chain does not lead to the trusted CA.
    UnknownIssuer,
    /// A name outside the CA's name constraints.
    Constraint,
    /// (handshakes) The client sent no certificate.
    NoClientCert,
}

/// What each verifier says when it refuses, for each reason.
fn refusal_text(v: Verifier, r: Refusal, usage: &str) -> &'static str {
    use Refusal::*;
    match (v, r) {
        (Verifier::OpenSsl | Verifier::Python, Eku) => "unsuitable certificate purpose",
        (Verifier::OpenSsl, Name) => "hostname mismatch",
        (Verifier::Python, Name) => "Hostname mismatch",
        (Verifier::OpenSsl | Verifier::Python, UnknownIssuer) => {
            "unable to get local issuer certificate"
        }
        (Verifier::OpenSsl | Verifier::Python, Constraint) => "permitted subtree violation",
        (Verifier::Webpki, Eku) if usage == "server" => "cannot be used by a TLS server",
        (Verifier::Webpki, Eku) => "cannot be used as a TLS client certificate",
        (Verifier::Webpki, Name) => "is not valid for",
        (Verifier::Webpki, UnknownIssuer) => "which is not in",
        (Verifier::Webpki, Constraint) => "name constraints",
        (Verifier::Go, Eku) => "x509: certificate specifies an incompatible key usage",
        (Verifier::Go, Name) => "x509: certificate is valid for",
        (Verifier::Go, UnknownIssuer) => "x509: certificate signed by unknown authority",
        (Verifier::Go, Constraint) => "is not permitted by any constraint",
        (Verifier::Java, Eku) if usage == "server" => {
            "Extended key usage does not permit use for TLS server authentication"
        }
        (Verifier::Java, Eku) => {
            "Extended key usage does not permit use for TLS client authentication"
        }
        (Verifier::Java, UnknownIssuer) => "Path does not chain with any of the trust anchors",
        (Verifier::Java, Constraint) => "name constraints",
        (Verifier::Java, Name) | (_, NoClientCert) => unreachable!("not a chain check"),
    }
}

struct Check {
    id: String,
    row: usize,
    what: &'static str,
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
    usage: &'static str,
    name: Option<String>,
    /// For Python's client checks: the server identity of the handshake.
    helper: Identity,
    expect: Option<Refusal>,
}

fn checks(rows: &[Pki]) -> Vec<Check> {
    let mut out = Vec::new();
    for (i, p) in rows.iter().enumerate() {
        let other_ca = rows[(i + 1) % rows.len()].ca.clone();
        let mut add = |what: &'static str,
                       ident: &Identity,
                       chain: Option<&Path>,
                       usage: &'static str,
                       name: Option<&str>,
                       ca: Option<&Path>,
                       expect: Option<Refusal>| {
            out.push(Check {
                id: format!("{}:{}", p.spec.id, out.len()),
                row: i,
                what,
                ca: ca.map_or_else(|| p.ca.clone(), Path::to_path_buf),
                chain: chain.map_or_else(|| ident.chain.clone(), Path::to_path_buf),
                key: ident.key.clone(),
                usage,
                name: name.map(str::to_string),
                helper: p.server.clone(),
                expect,
            });
        };
        add(
            "server leaf as server",
            &p.server,
            None,
            "server",
            Some(&p.server.name),
            None,
            None,
        );
        add(
            "client leaf as client",
            &p.client,
            None,
            "client",
            None,
            None,
            None,
        );
        add(
            "both leaf as server",
            &p.both,
            None,
            "server",
            Some(&p.both.name),
            None,
            None,
        );
        add(
            "both leaf as client",
            &p.both,
            None,
            "client",
            None,
            None,
            None,
        );
        add(
            "leaf+intermediate as server",
            &p.int_leaf,
            None,
            "server",
            Some(&p.int_leaf.name),
            None,
            None,
        );
        add(
            "leaf+intermediate as client",
            &p.int_leaf,
            None,
            "client",
            None,
            None,
            None,
        );
        add(
            "client leaf as server",
            &p.client,
            None,
            "server",
            Some(&p.client.name),
            None,
            Some(Refusal::Eku),
        );
        add(
            "server leaf as client",
            &p.server,
            None,
            "client",
            None,
            None,
            Some(Refusal::Eku),
        );
        add(
            "server leaf, wrong name",
            &p.server,
            None,
            "server",
            Some("wrong.internal"),
            None,
            Some(Refusal::Name),
        );
        add(
            "intermediate's leaf without the intermediate",
            &p.int_leaf,
            Some(&p.int_leaf_alone),
            "server",
            Some(&p.int_leaf.name),
            None,
            Some(Refusal::UnknownIssuer),
        );
        add(
            "server leaf, another root",
            &p.server,
            None,
            "server",
            Some(&p.server.name),
            Some(&other_ca),
            Some(Refusal::UnknownIssuer),
        );
        if let Some(outside) = &p.outside {
            add(
                "leaf outside the name constraints",
                outside,
                None,
                "server",
                Some(&outside.name),
                None,
                Some(Refusal::Constraint),
            );
        }
        if let Some(outside) = &p.outside_root {
            add(
                ROOT_SIGNED_OUTSIDE,
                outside,
                None,
                "server",
                Some(&outside.name),
                None,
                Some(Refusal::Constraint),
            );
        }
    }
    out
}

/// The verdict of one verifier on one check: Ok(detail) or Err(error).
type Verdict = Result<String, String>;

fn verify_openssl(c: &Check) -> Verdict {
    let purpose = if c.usage == "server" {
        "sslserver"
    } else {
        "sslclient"
    };
    let mut args: Vec<String> = vec![
        "verify".into(),
        "-x509_strict".into(),
        "-CAfile".into(),
        c.ca.display().to_string(),
        "-untrusted".into(),
        c.chain.display().to_string(),
        "-purpose".into(),
        purpose.into(),
    ];
    if let Some(n) = &c.name {
        args.extend(["-verify_hostname".into(), n.clone()]);
    }
    args.push(c.chain.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = openssl(Path::new("/"), &args);
    if r.ok() && r.stdout.trim_end().ends_with(": OK") {
        Ok("OK".into())
    } else {
        Err(squash(&r.all(), 400))
    }
}

fn verify_webpki(c: &Check) -> Verdict {
    let mut cmd = Command::new(uca_bin());
    cmd.arg("verify")
        .arg(&c.chain)
        .arg("--ca")
        .arg(&c.ca)
        .env_remove("UCA_PASSPHRASE");
    if c.usage == "client" {
        cmd.arg("--client");
    } else if let Some(n) = &c.name {
        cmd.args(["--name", n]);
    }
    let r = run_bounded(cmd, None, PROCESS_LIMIT);
    if r.ok() && r.stdout.starts_with("OK: ") {
        Ok(squash(&r.stdout, 800))
    } else {
        Err(squash(&r.all(), 400))
    }
}

/// Runs one of the three programs in verify mode over all `checks` it
/// takes, returning the verdict per check id.
fn verify_batch(
    tools: &Tools,
    stack: Stack,
    checks: &[&Check],
    dir: &Path,
) -> HashMap<String, Verdict> {
    let mut jobs = String::new();
    for c in checks {
        writeln!(
            jobs,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.id,
            c.ca.display(),
            c.chain.display(),
            c.key.display(),
            c.usage,
            c.name.as_deref().unwrap_or("-"),
            c.helper.chain.display(),
            c.helper.key.display()
        )
        .unwrap();
    }
    let file = dir.join(format!("verify-{}.tsv", stack.name()));
    std::fs::write(&file, jobs).unwrap();
    let mut cmd = tools.program(stack);
    cmd.arg("verify").arg(&file);
    let r = run_bounded(cmd, None, Duration::from_secs(180));
    let mut out = HashMap::new();
    for line in r.stdout.lines() {
        let (verdict, rest) = match line.split_once(' ') {
            Some(("OK", rest)) => (true, rest),
            Some(("FAIL", rest)) => (false, rest),
            _ => continue,
        };
        let (id, detail) = rest.split_once(' ').unwrap_or((rest, ""));
        let detail = squash(detail, 600);
        out.insert(
            id.to_string(),
            if verdict { Ok(detail) } else { Err(detail) },
        );
    }
    for c in checks {
        out.entry(c.id.clone()).or_insert_with(|| {
            Err(format!(
                "no verdict from the {} program (exit {:?}): {}",
                stack.name(),
                r.code,
                squash(&r.all(), 600)
            ))
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Mutual TLS

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tls {
    Any,
    V12,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HsExpect {
    Ok,
    /// The server must refuse the client for this reason.
    ServerRefuses(Refusal),
    /// The client must refuse the server for this reason.
    ClientRefuses(Refusal),
}

struct Handshake {
    row: usize,
    kind: &'static str,
    server_stack: Stack,
    client_stack: Stack,
    server: Identity,
    client: Option<Identity>,
    ca: PathBuf,
    name: String,
    tls: Tls,
    expect: HsExpect,
}

/// What each stack says when it refuses a peer in a handshake.
fn hs_refusal_text(stack: Stack, r: Refusal) -> &'static str {
    use Refusal::*;
    match (stack, r) {
        (Stack::Go, Eku) => "x509: certificate specifies an incompatible key usage",
        (Stack::Go, Name) => "x509: certificate is valid for",
        (Stack::Go, UnknownIssuer) => "x509: certificate signed by unknown authority",
        (Stack::Go, NoClientCert) => "tls: client didn't provide a certificate",
        (Stack::Java, Eku) => {
            "Extended key usage does not permit use for TLS client authentication"
        }
        (Stack::Java, Name) => "No subject alternative DNS name matching",
        (Stack::Java, UnknownIssuer) => {
            "unable to find valid certification path to requested target"
        }
        (Stack::Java, NoClientCert) => "Empty client certificate chain",
        (Stack::Python | Stack::OpenSsl, Eku) => "unsuitable certificate purpose",
        (Stack::Python, Name) => "Hostname mismatch",
        (Stack::OpenSsl, Name) => "hostname mismatch",
        (Stack::Python | Stack::OpenSsl, UnknownIssuer) => "unable to get local issuer certificate",
        (Stack::Python | Stack::OpenSsl, NoClientCert) => "peer did not return a certificate",
        (Stack::Rustls, Eku) => {
            "certificate does not allow extended key usage for client authentication"
        }
        (Stack::Rustls, Name) => "certificate not valid for name",
        (Stack::Rustls, UnknownIssuer) => "invalid peer certificate: UnknownIssuer",
        (Stack::Rustls, NoClientCert) => "peer sent no certificates",
        (Stack::Go, Constraint) => "is not permitted by any constraint",
        (Stack::Java, Constraint) => "name constraints",
        (Stack::Python | Stack::OpenSsl, Constraint) => "permitted subtree violation",
        (Stack::Rustls, Constraint) => "OtherError(NameConstraintViolation)",
    }
}

/// One side's outcome: Ok((peer subject, data)) or Err(output).
type Side = Result<(String, String), String>;

struct HsResult {
    server: Side,
    client: Side,
    protocol: String,
}

/// A running server, killed when dropped.
struct Server {
    child: Child,
    _stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a stream into `output`, reporting the port once ready.
fn collect<R: Read + Send + 'static>(
    stream: R,
    output: Arc<Mutex<String>>,
    ready: mpsc::Sender<u16>,
    fixed_port: Option<u16>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let t = line.trim();
            if let Some(p) = t.strip_prefix("LISTENING ") {
                if let Ok(p) = p.parse() {
                    let _ = ready.send(p);
                }
            }
            if t == "ACCEPT" {
                if let Some(p) = fixed_port {
                    let _ = ready.send(p);
                }
            }
            let mut out = output.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    })
}

impl Server {
    fn start(tools: &Tools, h: &Handshake) -> Result<Server, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let (mut cmd, port) = match h.server_stack {
                Stack::OpenSsl => {
                    let port = free_port();
                    let mut c = Command::new("openssl");
                    c.args(["s_server", "-accept"])
                        .arg(format!("127.0.0.1:{port}"))
                        .args(["-naccept", "1", "-rev", "-Verify", "4"])
                        .args(["-verify_return_error", "-x509_strict", "-CAfile"])
                        .arg(&h.ca)
                        .arg("-cert")
                        .arg(&h.server.chain)
                        .arg("-cert_chain")
                        .arg(&h.server.chain)
                        .arg("-key")
                        .arg(&h.server.key);
                    if h.tls == Tls::V12 {
                        c.arg("-tls1_2");
                    }
                    (c, Some(port))
                }
                stack => {
                    let mut c = tools.program(stack);
                    c.arg("server")
                        .arg("--ca")
                        .arg(&h.ca)
                        .arg("--cert")
                        .arg(&h.server.chain)
                        .arg("--key")
                        .arg(&h.server.key)
                        .args(["--tls", tls_arg(h.tls), "--timeout", IO_SECS]);
                    (c, None)
                }
            };
            // s_server stops at the end of its input, so stdin stays open.
            let mut child = spawn(&mut cmd, Stdio::piped());
            let output = Arc::new(Mutex::new(String::new()));
            let (tx, rx) = mpsc::channel();
            let readers = vec![
                collect(
                    child.stdout.take().unwrap(),
                    output.clone(),
                    tx.clone(),
                    port,
                ),
                collect(child.stderr.take().unwrap(), output.clone(), tx, port),
            ];
            let mut server = Server {
                _stdin: child.stdin.take(),
                child,
                output,
                readers,
                port: 0,
            };
            match rx.recv_timeout(LISTEN_LIMIT) {
                Ok(p) => {
                    server.port = p;
                    return Ok(server);
                }
                Err(_) => {
                    last = server.finish(Duration::from_secs(1)).1;
                    if !last.contains("ddress already in use") {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// Waits (bounded) for the server to exit; returns its exit code and
    /// everything it printed.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let code = wait_bounded(&mut self.child, limit);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.output.lock().unwrap().clone();
        (code, out)
    }
}

fn tls_arg(t: Tls) -> &'static str {
    match t {
        Tls::Any => "any",
        Tls::V12 => "1.2",
    }
}

fn ping(stack: Stack) -> String {
    format!("ping from {}", stack.name())
}

/// Parses `OK server: peer=X ... got=Y` / `OK client: peer=X ... reply=Y`.
fn program_side(out: &str, role: &str, data_key: &str) -> (Side, String) {
    let prefix = format!("OK {role}: ");
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let field = |k: &str| {
                rest.split(' ')
                    .find_map(|f| f.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            let data = rest
                .split_once(&format!(" {data_key}="))
                .map(|(_, d)| d.to_string())
                .unwrap_or_default();
            return (
                Ok((normalize_subject(&field("peer")), data)),
                field("protocol"),
            );
        }
    }
    (Err(squash(out, 700)), String::new())
}

/// The `Peer certificate: CN = x` line of s_server/s_client -brief output.
fn openssl_peer(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Peer certificate: "))
        .map(normalize_subject)
        .unwrap_or_default()
}

fn openssl_protocol(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Protocol version: "))
        .unwrap_or_default()
        .to_string()
}

/// A server being run: a process, or rustls in a thread of this test.
enum Running {
    Process(Server),
    InProcess(u16, thread::JoinHandle<(Side, String)>),
}

impl Running {
    fn port(&self) -> u16 {
        match self {
            Running::Process(s) => s.port,
            Running::InProcess(port, _) => *port,
        }
    }
}

fn run_handshake(tools: &Tools, h: &Handshake) -> HsResult {
    let started = if h.server_stack == Stack::Rustls {
        rustls_server(h)
    } else {
        Server::start(tools, h).map(Running::Process)
    };
    let server = match started {
        Ok(s) => s,
        Err(out) => {
            return HsResult {
                server: Err(format!("server did not start: {}", squash(&out, 700))),
                client: Err("not run".into()),
                protocol: String::new(),
            }
        }
    };
    let port = server.port();
    let (client, client_protocol) = match h.client_stack {
        Stack::Rustls => rustls_client(h, port),
        Stack::OpenSsl => {
            let mut c = Command::new("openssl");
            c.args(["s_client", "-brief", "-ign_eof", "-connect"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-verify_return_error", "-x509_strict", "-CAfile"])
                .arg(&h.ca)
                .args(["-servername", &h.name, "-verify_hostname", &h.name]);
            if let Some(id) = &h.client {
                c.arg("-cert")
                    .arg(&id.chain)
                    .arg("-cert_chain")
                    .arg(&id.chain)
                    .arg("-key")
                    .arg(&id.key);
            }
            if h.tls == Tls::V12 {
                c.arg("-tls1_2");
            }
            // s_server -rev closes the connection on CLOSE; the programs
            // close it after their answer.
            let mut input = format!("{}\n", ping(Stack::OpenSsl));
            if h.server_stack == Stack::OpenSsl {
                input.push_str("CLOSE\n");
            }
            let r = run_bounded(c, Some(input), PROCESS_LIMIT);
            let reply = r.stdout.lines().next().unwrap_or_default().to_string();
            if r.ok() && r.stderr.contains("Verification: OK") && !reply.is_empty() {
                (
                    Ok((openssl_peer(&r.stderr), reply)),
                    openssl_protocol(&r.stderr),
                )
            } else {
                (Err(squash(&r.all(), 700)), String::new())
            }
        }
        stack => {
            let mut c = tools.program(stack);
            c.arg("client").arg("--ca").arg(&h.ca);
            match &h.client {
                Some(id) => c.arg("--cert").arg(&id.chain).arg("--key").arg(&id.key),
                None => c.args(["--cert", "-"]),
            };
            c.args(["--port", &port.to_string(), "--name", &h.name])
                .args(["--tls", tls_arg(h.tls), "--timeout", IO_SECS]);
            let r = run_bounded(c, None, PROCESS_LIMIT);
            if r.code.is_none() {
                (
                    Err(format!("timed out: {}", squash(&r.all(), 700))),
                    String::new(),
                )
            } else {
                program_side(&r.all(), "client", "reply")
            }
        }
    };
    let server = match server {
        Running::Process(server) => server,
        Running::InProcess(_, thread) => {
            let (server, protocol) = thread.join().expect("rustls server thread");
            return HsResult {
                server,
                client,
                protocol: if protocol.is_empty() {
                    client_protocol
                } else {
                    protocol
                },
            };
        }
    };
    let (code, out) = server.finish(Duration::from_secs(30));
    let (server_side, server_protocol) = match h.server_stack {
        Stack::OpenSsl => {
            if out.contains("CONNECTION ESTABLISHED")
                && out.contains("Verification: OK")
                && !out.contains("verify error")
            {
                (
                    Ok((openssl_peer(&out), String::new())),
                    openssl_protocol(&out),
                )
            } else {
                (Err(squash(&out, 700)), String::new())
            }
        }
        _ if code.is_none() => (
            Err(format!("timed out: {}", squash(&out, 700))),
            String::new(),
        ),
        _ => program_side(&out, "server", "got"),
    };
    let protocol = if server_protocol.is_empty() {
        client_protocol
    } else {
        server_protocol
    };
    HsResult {
        server: server_side,
        client,
        protocol,
    }
}

// ---------------------------------------------------------------------------
// rustls, in this process

fn rustls_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn rustls_versions(t: Tls) -> &'static [&'static SupportedProtocolVersion] {
    match t {
        Tls::Any => rustls::DEFAULT_VERSIONS,
        Tls::V12 => TLS12_ONLY,
    }
}

fn rustls_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn rustls_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn rustls_roots(ca: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for c in rustls_certs(ca)? {
        store.add(c).map_err(|e| e.to_string())?;
    }
    Ok(Arc::new(store))
}

fn rustls_protocol(v: Option<rustls::ProtocolVersion>) -> String {
    v.map(|v| format!("{v:?}").replace('_', "."))
        .unwrap_or_default()
}

fn rustls_peer(certs: Option<&[CertificateDer<'_>]>) -> String {
    certs
        .and_then(|c| c.first())
        .map(|c| match uca::pki::x509::parse(c.as_ref()) {
            Ok(parsed) => normalize_subject(&parsed.subject().to_string()),
            Err(e) => format!("(unparsable: {e})"),
        })
        .unwrap_or_default()
}

fn io_timeout() -> Duration {
    Duration::from_secs(IO_SECS.parse().unwrap())
}

/// Reads up to the first newline, which it strips.
fn read_line_trimmed<S: Read>(stream: &mut S) -> Result<String, String> {
    read_line(stream).map(|t| t.trim_end_matches(['\r', '\n']).to_string())
}

/// A rustls server requiring a client certificate (WebPkiClientVerifier),
/// in a thread; it answers one line like the programs do.
fn rustls_server(h: &Handshake) -> Result<Running, String> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(rustls_roots(&h.ca)?, rustls_provider())
            .build()
            .map_err(|e| e.to_string())?;
    let config = ServerConfig::builder_with_provider(rustls_provider())
        .with_protocol_versions(rustls_versions(h.tls))
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(rustls_certs(&h.server.chain)?, rustls_key(&h.server.key)?)
        .map_err(|e| e.to_string())?;
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().unwrap().port();
    let thread = thread::spawn(move || {
        let served = (|| -> Result<(String, String, String), String> {
            let sock = accept_within(&listener, LISTEN_LIMIT)?;
            sock.set_read_timeout(Some(io_timeout())).unwrap();
            sock.set_write_timeout(Some(io_timeout())).unwrap();
            let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
            let mut tls = StreamOwned::new(conn, sock);
            let line = read_line_trimmed(&mut tls)?;
            tls.write_all(format!("pong: {line}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            tls.conn.send_close_notify();
            tls.flush().map_err(|e| e.to_string())?;
            let peer = rustls_peer(tls.conn.peer_certificates());
            Ok((peer, line, rustls_protocol(tls.conn.protocol_version())))
        })();
        match served {
            Ok((peer, line, protocol)) => (Ok((peer, line)), protocol),
            Err(e) => (Err(e), String::new()),
        }
    });
    Ok(Running::InProcess(port, thread))
}

/// A rustls client (webpki server verification for the name).
fn rustls_client(h: &Handshake, port: u16) -> (Side, String) {
    let run = || -> Result<(String, String, String), String> {
        let builder = ClientConfig::builder_with_provider(rustls_provider())
            .with_protocol_versions(rustls_versions(h.tls))
            .map_err(|e| e.to_string())?
            .with_root_certificates(rustls_roots(&h.ca)?);
        let config = match &h.client {
            Some(id) => builder
                .with_client_auth_cert(rustls_certs(&id.chain)?, rustls_key(&id.key)?)
                .map_err(|e| e.to_string())?,
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from(h.name.clone()).map_err(|e| e.to_string())?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let sock = TcpStream::connect_timeout(&addr, io_timeout()).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(io_timeout())).unwrap();
        sock.set_write_timeout(Some(io_timeout())).unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, sock);
        tls.write_all(format!("{}\n", ping(Stack::Rustls)).as_bytes())
            .map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let reply = read_line_trimmed(&mut tls)?;
        let peer = rustls_peer(tls.conn.peer_certificates());
        let protocol = rustls_protocol(tls.conn.protocol_version());
        // s_server -rev closes on CLOSE; a clean close for the others.
        if h.server_stack == Stack::OpenSsl {
            let _ = tls.write_all(b"CLOSE\n");
        }
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Ok((peer, reply, protocol))
    };
    match run() {
        Ok((peer, reply, protocol)) => (Ok((peer, reply)), protocol),
        Err(e) => (Err(e), String::new()),
    }
}

fn handshakes(rows: &[Pki]) -> Vec<Handshake> {
    let mut out = Vec::new();
    for (i, p) in rows.iter().enumerate() {
        let hs = |kind, s: Stack, c: Stack, server: &Identity, client: &Identity, tls| Handshake {
            row: i,
            kind,
            server_stack: s,
            client_stack: c,
            server: server.clone(),
            client: Some(client.clone()),
            ca: p.ca.clone(),
            name: server.name.clone(),
            tls,
            expect: HsExpect::Ok,
        };
        for s in STACKS {
            out.push(hs(
                "server/client leaves",
                s,
                s,
                &p.server,
                &p.client,
                Tls::Any,
            ));
            out.push(hs(
                "both leaf / leaf+intermediate",
                s,
                s,
                &p.both,
                &p.int_leaf,
                Tls::Any,
            ));
            out.push(hs(
                "leaf+intermediate / both leaf",
                s,
                s,
                &p.int_leaf,
                &p.both,
                Tls::Any,
            ));
            if !p.spec.constrained {
                out.push(hs(
                    "server/client leaves, TLS 1.2",
                    s,
                    s,
                    &p.server,
                    &p.client,
                    Tls::V12,
                ));
                for c in STACKS {
                    if c != s {
                        out.push(hs(
                            "cross: leaf+intermediate / client leaf",
                            s,
                            c,
                            &p.int_leaf,
                            &p.client,
                            Tls::Any,
                        ));
                    }
                }
            }
        }
    }
    // Refusals, in the P-256 row: a Python client against every server, and
    // every client against a Go server. (Python's client sends whatever
    // certificate it is given; Go's and Java's send none when the server's
    // list of acceptable CAs does not name its issuer.)
    let p = &rows[0];
    let intruder = rows[1].client.clone();
    for s in STACKS {
        let refuse = |kind, client: Option<Identity>, r| Handshake {
            row: 0,
            kind,
            server_stack: s,
            client_stack: Stack::Python,
            server: p.server.clone(),
            client,
            ca: p.ca.clone(),
            name: p.server.name.clone(),
            tls: Tls::Any,
            expect: HsExpect::ServerRefuses(r),
        };
        out.push(refuse(
            "refused: client presents a server-only certificate",
            Some(p.server.clone()),
            Refusal::Eku,
        ));
        out.push(refuse(
            "refused: client certificate from another root",
            Some(intruder.clone()),
            Refusal::UnknownIssuer,
        ));
        out.push(refuse(
            "refused: no client certificate",
            None,
            Refusal::NoClientCert,
        ));
        out.push(Handshake {
            row: 0,
            kind: "refused: server certificate for another name",
            server_stack: Stack::Go,
            client_stack: s,
            server: p.server.clone(),
            client: Some(p.client.clone()),
            ca: p.ca.clone(),
            name: format!("other.{}.internal", p.spec.id),
            tls: Tls::Any,
            expect: HsExpect::ClientRefuses(Refusal::Name),
        });
    }
    // Name constraints, in the constrained row: every client against a Go
    // server presenting a certificate for a name outside them.
    for (i, p) in rows.iter().enumerate() {
        let (Some(by_int), Some(by_root)) = (&p.outside, &p.outside_root) else {
            continue;
        };
        for c in STACKS {
            for (kind, server) in [
                (
                    "refused: server cert outside the constraints, intermediate-signed",
                    by_int,
                ),
                (ROOT_SIGNED_OUTSIDE_TLS, by_root),
            ] {
                out.push(Handshake {
                    row: i,
                    kind,
                    server_stack: Stack::Go,
                    client_stack: c,
                    server: server.clone(),
                    client: Some(p.client.clone()),
                    ca: p.ca.clone(),
                    name: server.name.clone(),
                    tls: Tls::Any,
                    expect: HsExpect::ClientRefuses(Refusal::Constraint),
                });
            }
        }
    }
    out
}

fn expected_reply(server: Stack, client: Stack) -> String {
    let ping = ping(client);
    match server {
        Stack::OpenSsl => ping.chars().rev().collect(),
        _ => format!("pong: {ping}"),
    }
}

/// Checks one handshake's result against what it must do; returns the
/// failures found.
fn judge_handshake(h: &Handshake, r: &HsResult) -> Vec<String> {
    let mut bad = Vec::new();
    let client_name = h
        .client
        .as_ref()
        .map(|c| format!("CN={}", c.name))
        .unwrap_or_default();
    match h.expect {
        HsExpect::Ok => {
            match &r.server {
                Ok((peer, got)) => {
                    if *peer != client_name {
                        bad.push(format!(
                            "the server saw client {peer:?}, not {client_name:?}"
                        ));
                    }
                    if h.server_stack != Stack::OpenSsl && *got != ping(h.client_stack) {
                        bad.push(format!("the server got {got:?}"));
                    }
                }
                Err(e) => bad.push(format!("server failed: {e}")),
            }
            match &r.client {
                Ok((peer, reply)) => {
                    let want = format!("CN={}", h.server.name);
                    if *peer != want {
                        bad.push(format!("the client saw server {peer:?}, not {want:?}"));
                    }
                    let want = expected_reply(h.server_stack, h.client_stack);
                    if *reply != want {
                        bad.push(format!("the client got {reply:?}, not {want:?}"));
                    }
                }
                Err(e) => bad.push(format!("client failed: {e}")),
            }
            let want = match h.tls {
                Tls::V12 => "TLSv1.2",
                Tls::Any => "TLSv1.3",
            };
            if bad.is_empty() && r.protocol != want {
                bad.push(format!("negotiated {:?}, expected {want}", r.protocol));
            }
        }
        HsExpect::ServerRefuses(reason) => {
            let text = hs_refusal_text(h.server_stack, reason);
            match &r.server {
                Ok(_) => bad.push(format!(
                    "the {} server accepted the client, which it must refuse ({reason:?})",
                    h.server_stack.name()
                )),
                Err(e) if !e.contains(text) => {
                    bad.push(format!("the server refused, but not with {text:?}: {e}"))
                }
                Err(_) => {}
            }
            if r.client.is_ok() {
                bad.push("the client got an answer from a server that must refuse it".into());
            }
        }
        HsExpect::ClientRefuses(reason) => {
            let text = hs_refusal_text(h.client_stack, reason);
            match &r.client {
                Ok(_) => bad.push(format!(
                    "the {} client accepted the server, which it must refuse ({reason:?})",
                    h.client_stack.name()
                )),
                Err(e) if !e.contains(text) => {
                    bad.push(format!("the client refused, but not with {text:?}: {e}"))
                }
                Err(_) => {}
            }
            if let Ok((_, got)) = &r.server {
                if !got.is_empty() {
                    bad.push(format!(
                        "the server read {got:?} from a client that must have hung up"
                    ));
                }
            }
        }
    }
    bad
}

/// Runs `jobs` on `workers` threads, results in job order.
fn pool<J: Sync, R: Send>(jobs: &[J], workers: usize, f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= jobs.len() {
                    break;
                }
                let r = f(&jobs[i]);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Known unsupported combinations

/// Key types a stack does not support (`what` is "verify" or "tls"), with
/// the text of the failure they were observed to produce. Each is expected
/// to fail exactly so; if one starts working, the test fails until it is
/// removed here and from tests/interop/SUPPORT.md. With the versions in
/// SUPPORT.md every stack supports every key type uca makes, so the list is
/// empty.
fn unsupported(stack: &str, key: Key, what: &str) -> Option<&'static str> {
    const UNSUPPORTED: &[(&str, Key, &str, &str)] = &[];
    UNSUPPORTED
        .iter()
        .find(|(s, k, w, _)| *s == stack && *k == key && *w == what)
        .map(|(_, _, _, text)| *text)
}

const ROOT_SIGNED_OUTSIDE: &str = "root-signed leaf outside the root's constraints";
const ROOT_SIGNED_OUTSIDE_TLS: &str =
    "refused: server cert outside the root's constraints, root-signed";

/// Refusals a verifier is known not to make, by verifier (or stack) and
/// check or handshake: it accepts, and the matrix shows ACCEPTS. If one
/// starts refusing, the test fails until it is removed here and from
/// tests/interop/SUPPORT.md.
fn accepts_anyway(who: &str, case: &str) -> Option<&'static str> {
    // Java's PKIX (CertPathValidator with a TrustAnchor made from ca.pem,
    // and JSSE's trust manager) does not apply the name constraints of the
    // trust anchor's own certificate; RFC 5280 6.1.1 leaves trust-anchor
    // constraints optional. Constraints in an intermediate are enforced,
    // and uca copies the root's constraints into every intermediate.
    const ACCEPTS: &[(&str, &str, &str)] = &[
        (
            "java",
            ROOT_SIGNED_OUTSIDE,
            "trust-anchor name constraints are not enforced",
        ),
        (
            "java",
            ROOT_SIGNED_OUTSIDE_TLS,
            "trust-anchor name constraints are not enforced",
        ),
    ];
    ACCEPTS
        .iter()
        .find(|(w, c, _)| *w == who && *c == case)
        .map(|(_, _, note)| *note)
}

// ---------------------------------------------------------------------------
// The test

#[test]
fn interop_matrix() {
    let started = Instant::now();
    let s = Scratch::new();
    let tools_dir = s.join("tools");
    std::fs::create_dir_all(&tools_dir).unwrap();

    // Programs and certificates, in parallel.
    let (tools, rows, build_time) = thread::scope(|sc| {
        let t = sc.spawn(|| {
            let t0 = Instant::now();
            (build_tools(&tools_dir), t0.elapsed())
        });
        let rows: Vec<_> = ROWS
            .iter()
            .map(|spec| {
                let s = &s;
                sc.spawn(move || make_row(s, *spec))
            })
            .collect();
        let rows: Vec<Pki> = rows.into_iter().map(|r| r.join().unwrap()).collect();
        let (tools, build_time) = t.join().unwrap();
        (tools, rows, build_time)
    });
    let setup_time = started.elapsed();

    let mut failures: Vec<String> = Vec::new();
    let mut report = String::new();
    writeln!(report, "== versions\n{}", versions()).unwrap();

    // Chain verification: every verifier, every check.
    let t0 = Instant::now();
    let all_checks = checks(&rows);
    let verdicts: HashMap<Verifier, HashMap<String, Verdict>> = thread::scope(|sc| {
        let handles: Vec<_> = VERIFIERS
            .iter()
            .map(|&v| {
                let (tools, all_checks, dir) = (&tools, &all_checks, s.path());
                sc.spawn(move || {
                    let map: HashMap<String, Verdict> = match v {
                        Verifier::OpenSsl => all_checks
                            .iter()
                            .map(|c| (c.id.clone(), verify_openssl(c)))
                            .collect(),
                        Verifier::Webpki => all_checks
                            .iter()
                            .map(|c| (c.id.clone(), verify_webpki(c)))
                            .collect(),
                        Verifier::Go | Verifier::Java | Verifier::Python => {
                            let stack = match v {
                                Verifier::Go => Stack::Go,
                                Verifier::Java => Stack::Java,
                                _ => Stack::Python,
                            };
                            let mine: Vec<&Check> =
                                all_checks.iter().filter(|c| applies(v, c)).collect();
                            verify_batch(tools, stack, &mine, dir)
                        }
                    };
                    (v, map)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let verify_time = t0.elapsed();

    writeln!(
        report,
        "== chain verification ({} checks x {} verifiers)",
        all_checks.len(),
        VERIFIERS.len()
    )
    .unwrap();
    writeln!(
        report,
        "{:<22} {:<46} {}",
        "row",
        "check",
        VERIFIERS.map(|v| format!("{:<9}", v.name())).join("")
    )
    .unwrap();
    for c in &all_checks {
        let row = &rows[c.row];
        let mut cells = String::new();
        for v in VERIFIERS {
            let cell = if !applies(v, c) {
                "n/a"
            } else {
                let verdict = &verdicts[&v][&c.id];
                let ctx = format!(
                    "{} verify, {} row, {} ({} use{})",
                    v.name(),
                    row.spec.label(),
                    c.what,
                    c.usage,
                    c.name
                        .as_ref()
                        .map(|n| format!(" as {n}"))
                        .unwrap_or_default()
                );
                match (
                    c.expect,
                    verdict,
                    unsupported(v.name(), row.spec.key, "verify"),
                ) {
                    (None, Ok(detail), None) => match chain_shown(v, c, &row.spec, detail) {
                        Ok(()) => "ok",
                        Err(e) => {
                            failures.push(format!("{ctx}: accepted, but {e}"));
                            "FAIL"
                        }
                    },
                    (None, Err(e), Some(text)) if e.contains(text) => "unsupp",
                    (None, Err(e), _) => {
                        failures.push(format!("{ctx}: refused: {e}"));
                        "FAIL"
                    }
                    (None, Ok(_), Some(text)) => {
                        failures.push(format!("{ctx}: listed as unsupported ({text:?}) but it works now; update unsupported() and SUPPORT.md"));
                        "FAIL"
                    }
                    (Some(_), Err(e), _) if accepts_anyway(v.name(), c.what).is_some() => {
                        failures.push(format!(
                            "{ctx}: listed as accepting this, but it refuses it now; update accepts_anyway() and SUPPORT.md: {e}"
                        ));
                        "FAIL"
                    }
                    (Some(_), Ok(_), _) if accepts_anyway(v.name(), c.what).is_some() => "ACCEPTS",
                    (Some(r), Err(e), _) => {
                        let text = refusal_text(v, r, c.usage);
                        if e.contains(text) {
                            "refused"
                        } else {
                            failures.push(format!(
                                "{ctx}: refused as it must, but not with {text:?}: {e}"
                            ));
                            "FAIL"
                        }
                    }
                    (Some(r), Ok(d), _) => {
                        failures.push(format!("{ctx}: ACCEPTED, but must be refused ({r:?}): {d}"));
                        "FAIL"
                    }
                }
            };
            write!(cells, "{cell:<9}").unwrap();
        }
        writeln!(report, "{:<22} {:<46} {cells}", row.spec.label(), c.what).unwrap();
    }

    // Mutual TLS.
    let t0 = Instant::now();
    let all_hs = handshakes(&rows);
    let results = pool(&all_hs, WORKERS, |h| run_handshake(&tools, h));
    let hs_time = t0.elapsed();
    writeln!(report, "\n== mutual TLS ({} handshakes)", all_hs.len()).unwrap();
    for (h, r) in all_hs.iter().zip(&results) {
        let row = &rows[h.row];
        let ctx = format!(
            "mTLS {} server <- {} client, {} row, {}",
            h.server_stack.name(),
            h.client_stack.name(),
            row.spec.label(),
            h.kind
        );
        let bad = judge_handshake(h, r);
        let key_unsupported = unsupported(h.server_stack.name(), row.spec.key, "tls")
            .or_else(|| unsupported(h.client_stack.name(), row.spec.key, "tls"));
        let deviant = match h.expect {
            HsExpect::ClientRefuses(_) => {
                accepts_anyway(h.client_stack.name(), h.kind).map(|n| (n, &r.client))
            }
            HsExpect::ServerRefuses(_) => {
                accepts_anyway(h.server_stack.name(), h.kind).map(|n| (n, &r.server))
            }
            HsExpect::Ok => None,
        };
        let cell = match (bad.is_empty(), key_unsupported, h.expect) {
            _ if deviant.is_some() => {
                let (note, side) = deviant.unwrap();
                match side {
                    Ok(_) => format!("ACCEPTS ({note})"),
                    Err(e) => {
                        failures.push(format!("{ctx}: listed as accepting this ({note}), but it refuses it now; update accepts_anyway() and SUPPORT.md: {e}"));
                        "FAIL".to_string()
                    }
                }
            }
            (true, Some(text), HsExpect::Ok) => {
                failures.push(format!("{ctx}: listed as unsupported ({text:?}) but it works now; update unsupported() and SUPPORT.md"));
                "FAIL".to_string()
            }
            (true, _, HsExpect::Ok) => format!("ok {}", r.protocol),
            (true, _, HsExpect::ServerRefuses(reason)) => format!(
                "refused: {}",
                excerpt(
                    r.server.as_ref().err().map_or("", String::as_str),
                    hs_refusal_text(h.server_stack, reason)
                )
            ),
            (true, _, HsExpect::ClientRefuses(reason)) => format!(
                "refused: {}",
                excerpt(
                    r.client.as_ref().err().map_or("", String::as_str),
                    hs_refusal_text(h.client_stack, reason)
                )
            ),
            (false, Some(text), HsExpect::Ok)
                if r.server.as_ref().err().is_some_and(|e| e.contains(text))
                    || r.client.as_ref().err().is_some_and(|e| e.contains(text)) =>
            {
                "unsupp".to_string()
            }
            (false, _, _) => {
                failures.push(format!("{ctx}: {}", bad.join("; ")));
                "FAIL".to_string()
            }
        };
        writeln!(
            report,
            "{:<22} {:<8} <- {:<8} {:<66} {}",
            row.spec.label(),
            h.server_stack.name(),
            h.client_stack.name(),
            h.kind,
            cell
        )
        .unwrap();
    }

    writeln!(
        report,
        "\ntimings: setup {:.1}s (go build + javac {:.1}s), verification {:.1}s, handshakes {:.1}s, total {:.1}s",
        setup_time.as_secs_f64(),
        build_time.as_secs_f64(),
        verify_time.as_secs_f64(),
        hs_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    println!("{report}");
    assert!(
        failures.is_empty(),
        "{} interop failure(s):\n{}\n\n{report}",
        failures.len(),
        failures.join("\n")
    );
}

/// The version of each verifier, for the report.
fn versions() -> String {
    let first_line = |program: &str, args: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.args(args);
        let r = run_bounded(cmd, None, PROCESS_LIMIT);
        r.all().lines().next().unwrap_or_default().to_string()
    };
    [
        ("go", first_line("go", &["version"])),
        ("java", first_line("java", &["-version"])),
        (
            "python",
            first_line(
                "python3",
                &[
                    "-c",
                    "import ssl, sys; print(sys.version.split()[0], ssl.OPENSSL_VERSION)",
                ],
            ),
        ),
        ("openssl", first_line("openssl", &["version"])),
        ("rustls", "0.23 (ring), webpki via uca verify".to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k:<8} {v}\n"))
    .collect()
}

/// Go, Java and webpki report the chain they built: it must end at the
/// row's root and pass through the intermediate when there is one.
fn chain_shown(v: Verifier, c: &Check, spec: &RowSpec, detail: &str) -> Result<(), String> {
    if !matches!(v, Verifier::Go | Verifier::Java | Verifier::Webpki) {
        return Ok(());
    }
    let mut want = vec![format!("CN=Interop Root {}", spec.label())];
    if c.what.starts_with("leaf+intermediate") {
        want.push(format!("CN=Interop Intermediate {}", spec.label()));
    }
    match want.iter().find(|w| !detail.contains(w.as_str())) {
        Some(missing) => Err(format!("its chain lacks {missing:?}: {detail}")),
        None => Ok(()),
    }
}

/// Java's chain check has no host-name step (JSSE checks names during the
/// handshake, see the refusal handshakes).
fn applies(v: Verifier, c: &Check) -> bool {
    !(v == Verifier::Java && c.expect == Some(Refusal::Name))
}
