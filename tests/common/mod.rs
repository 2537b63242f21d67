//! Helpers shared by the integration tests: run the real `uca` binary in a
//! scratch directory and make CAs quickly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PASSPHRASE: &str = "correct horse battery staple";

pub fn uca_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_uca"))
}

/// A scratch directory that holds a passphrase file.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pass.txt"), format!("{PASSPHRASE}\n")).unwrap();
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn pass_file(&self) -> PathBuf {
        self.join("pass.txt")
    }

    /// Runs uca with `args` in the scratch directory, stdin closed and no
    /// UCA_PASSPHRASE inherited.
    pub fn uca(&self, args: &[&str]) -> Output {
        self.uca_env(args, &[])
    }

    pub fn uca_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(uca_bin());
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("UCA_PASSPHRASE")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run uca")
    }

    /// `uca init --dir ca` with the passphrase file, asserting success.
    pub fn init_ca(&self, extra: &[&str]) -> PathBuf {
        let pass = self.pass_file();
        let mut args = vec![
            "init",
            "--dir",
            "ca",
            "--name",
            "Test Root",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&self.uca(&args));
        self.join("ca")
    }

    /// `uca init --dir ca --name Root --generate-passphrase`, asserting
    /// success; returns the passphrase uca stored in ca/private/passphrase.
    pub fn init_ca_generating_passphrase(&self) -> String {
        ok(&self.uca(&[
            "init",
            "--dir",
            "ca",
            "--name",
            "Root",
            "--generate-passphrase",
        ]));
        std::fs::read_to_string(self.join("ca/private/passphrase"))
            .unwrap()
            .trim_end()
            .to_string()
    }

    /// `uca issue --dir ca --out certs ...`, asserting success.
    pub fn issue(&self, extra: &[&str]) -> Output {
        let pass = self.pass_file();
        let mut args = vec![
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&self.uca(&args))
    }

    /// Every file below the scratch directory (relative paths), sorted.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        out.push(p.strip_prefix(root).unwrap().display().to_string());
        if e.file_type().unwrap().is_dir() {
            walk(root, &p, out);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns the output.
pub fn ok(o: &Output) -> Output {
    assert!(
        o.status.success(),
        "uca failed: {}\nstdout: {}",
        stderr(o),
        stdout(o)
    );
    o.clone()
}

/// Asserts failure with exit status 1, a single-line error containing
/// `needle`, and returns stderr.
pub fn fails_with(o: &Output, needle: &str) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit 1, got {:?}; stderr: {err}; stdout: {}",
        o.status.code(),
        stdout(o)
    );
    assert!(
        err.starts_with("uca: error: "),
        "error must start with 'uca: error: ': {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error must be one line: {err}"
    );
    assert!(
        err.contains(needle),
        "error should mention {needle:?}: {err}"
    );
    err
}

/// Runs an external program, returning (success, stdout+stderr).
pub fn run(program: &str, args: &[&str], cwd: &Path) -> (bool, String) {
    let o = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (is it installed? ./test.sh installs it)")
        });
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// `count` consecutive loopback ports that are free right now, for a test
/// server that binds them itself.
///
/// Ports come from 20000..32000, below Linux's ephemeral range (32768 and
/// up), so no outgoing connection can take one between this check and the
/// server's bind; asking the kernel for port 0 would hand out exactly such
/// an ephemeral port. The next port to try lives in a file shared by every
/// test process of this user, under an exclusive lock, so parallel tests
/// and overlapping test runs walk the range in turn instead of meeting.
pub fn free_ports(count: u16) -> u16 {
    use std::io::{Read, Seek, Write};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    // One file per user: another user's file would not be writable.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let path = std::env::temp_dir().join(format!("uca-test-ports-{uid}"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let mut next: u32 = text.trim().parse().unwrap_or(std::process::id() % SPAN);
    for _ in 0..SPAN {
        let base = LOW + next % (SPAN - 16);
        next = (next + u32::from(count)) % SPAN;
        let base = base as u16;
        let all_free =
            (base..base + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            file.rewind().unwrap();
            file.set_len(0).unwrap();
            write!(file, "{next}").unwrap();
            return base; // the lock ends with `file`
        }
    }
    panic!("no {count} free consecutive loopback ports in 20000..32000");
}

/// One free loopback port; see [`free_ports`].
pub fn free_port() -> u16 {
    free_ports(1)
}

/// Checks an EC P-256 CA's manifest signature with stock OpenSSL and only
/// ca.pem's public key (extracted to the scratch root, outside the CA): the
/// signature over manifest.sha256, which names the manifest's SHA-256.
pub fn assert_manifest_verifies_with_openssl(s: &Scratch, ca_dir: &str) {
    let (extracted, out) = run(
        "openssl",
        &[
            "x509",
            "-in",
            &format!("{ca_dir}/ca.pem"),
            "-pubkey",
            "-noout",
            "-out",
            "ca.pub",
        ],
        s.path(),
    );
    assert!(extracted, "{out}");
    let (verified, out) = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            "ca.pub",
            "-signature",
            &format!("{ca_dir}/manifest.sig"),
            &format!("{ca_dir}/manifest.sha256"),
        ],
        s.path(),
    );
    assert!(verified && out.contains("Verified OK"), "{out}");
    let dir = s.path().join(ca_dir);
    let (hashed, out) = run("openssl", &["dgst", "-sha256", "-r", "manifest.json"], &dir);
    let signed = std::fs::read_to_string(dir.join("manifest.sha256")).unwrap();
    assert!(hashed && out == signed, "{out} differs from {signed}");
}

/// Reads up to and including the first newline.
pub fn read_line<S: std::io::Read>(stream: &mut S) -> Result<String, String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while !out.contains(&b'\n') {
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(format!(
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&out)
                ))
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Accepts one connection on `listener` within `limit`, as a blocking socket.
pub fn accept_within(
    listener: &std::net::TcpListener,
    limit: std::time::Duration,
) -> Result<std::net::TcpStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(sock);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    return Err("no client connected in time".into());
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// NAME.csr and NAME.key made by OpenSSL (P-256) for `subj`, with each of
/// `exts` as an `-addext`; `+` in `subj` joins attributes into one RDN.
/// Returns the CSR's file name.
pub fn openssl_csr(s: &Scratch, name: &str, subj: &str, exts: &[&str]) -> String {
    let csr = format!("{name}.csr");
    let key = format!("{name}.key");
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-multivalue-rdn",
        "-keyout",
        &key,
        "-subj",
        subj,
        "-out",
        &csr,
    ];
    for e in exts {
        args.push("-addext");
        args.push(e);
    }
    let (ok, out) = run("openssl", &args, s.path());
    assert!(ok, "{out}");
    csr
}

/// Go's crypto/x509, Java 17's PKIX and Python's ssl (the programs in
/// tests/interop), each run in verify mode over `jobs` (id, trust file,
/// chain file, the leaf's key: all under the scratch directory; server use
/// for `name`): "STACK ID", the verdict and the program's line.
pub fn interop_verdicts(
    s: &Scratch,
    name: &str,
    jobs: &[(&str, &str, &str, &str)],
) -> Vec<(String, bool, String)> {
    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let go = s.join("interop-go");
    let built = std::process::Command::new("go")
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&go)
        .arg(".")
        .current_dir(manifest.join("tests/interop/go"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOCACHE", s.join("go-cache"))
        .output()
        .expect("go (./test.sh installs golang-go)");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let classes = s.join("java-classes");
    let built = std::process::Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(manifest.join("tests/interop/java/Interop.java"))
        .output()
        .expect("javac (./test.sh installs openjdk-17-jdk-headless)");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let tsv: String = jobs
        .iter()
        .map(|(id, ca, chain, key)| {
            let (chain, key) = (s.join(chain), s.join(key));
            format!(
                "{id}\t{}\t{}\t{}\tserver\t{name}\t{}\t{}\n",
                s.join(ca).display(),
                chain.display(),
                key.display(),
                chain.display(),
                key.display()
            )
        })
        .collect();
    std::fs::write(s.join("jobs.tsv"), tsv).unwrap();
    let mut verdicts = Vec::new();
    for (stack, mut cmd) in [
        ("go", std::process::Command::new(&go)),
        ("java", {
            let mut c = std::process::Command::new("java");
            c.arg("-cp").arg(&classes).arg("Interop");
            c
        }),
        ("python", {
            let mut c = std::process::Command::new("python3");
            c.arg(manifest.join("tests/interop/python/interop.py"));
            c
        }),
    ] {
        let out = cmd.arg("verify").arg(s.join("jobs.tsv")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for (id, _, _, _) in jobs {
            let line = text
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(id))
                .unwrap_or_else(|| panic!("{stack}: no verdict for {id}: {text}"));
            verdicts.push((
                format!("{stack} {id}"),
                line.starts_with("OK"),
                line.to_string(),
            ));
        }
    }
    verdicts
}
