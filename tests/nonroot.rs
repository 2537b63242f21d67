//! The README's run, and every other command that writes, as an ordinary
//! user. Root writes through file modes, so a test suite run as root cannot
//! see a 0400 file opened for writing or a directory only root may enter.
//! As root this test drops to uid/gid 65534 for every uca it runs (a copy
//! of the binary in a directory that user owns); as any other user it runs
//! uca as that user. scripts/nonroot-lane.sh also runs the other test
//! files this way.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::uca_bin;

const NOBODY: u32 = 65534;

/// Runs `cmd`. A binary just copied can be "busy" for a moment: another
/// test's child, forked while the copy was open for writing, holds it
/// until that child execs (ETXTBSY); trying again is the remedy.
fn output_of(cmd: &mut Command) -> Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
    panic!("the binary stayed busy (ETXTBSY) for 2 s: {cmd:?}");
}

/// A scratch directory owned by the user the commands run as.
struct UserScratch {
    dir: tempfile::TempDir,
    uid: u32,
    /// Running as root: every command drops to NOBODY.
    drop_root: bool,
    uca: PathBuf,
}

impl UserScratch {
    fn new() -> UserScratch {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let drop_root = euid == 0;
        let uid = if drop_root { NOBODY } else { euid };
        // Dropping root, the build directory may lie where that user cannot
        // go: a copy in the scratch directory. As an ordinary user already,
        // the binary is run where it is.
        let uca = if drop_root {
            let copy = dir.path().join("uca");
            std::fs::copy(uca_bin(), &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            copy
        } else {
            uca_bin()
        };
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
        UserScratch {
            dir,
            uid,
            drop_root,
            uca,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = if self.drop_root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .current_dir(self.path())
            .env("HOME", self.path())
            .env("TMPDIR", self.path())
            .env_remove("UCA_PASSPHRASE")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs uca as the user and asserts success.
    fn uca(&self, args: &[&str]) -> Output {
        let o = output_of(&mut self.command(&self.uca, args));
        assert!(
            o.status.success(),
            "uca {} failed as uid {}:\n{}{}",
            args.join(" "),
            self.uid,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// `app.csr` and `app.key` for CN=`cn`, made by the user with OpenSSL.
    fn make_csr(&self, cn: &str) {
        let subject = format!("/CN={cn}");
        let o = self
            .command(
                Path::new("openssl"),
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "app.key",
                    "-subj",
                    &subject,
                    "-out",
                    "app.csr",
                ],
            )
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// Writes a file as the test, then hands it to the user.
    fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(self.uid), Some(self.uid)).unwrap();
    }

    /// Every file under `rel` is the user's, and every key is 0600.
    fn assert_owned_and_private(&self, rel: &str) {
        let mut stack = vec![self.path().join(rel)];
        let mut keys = 0;
        while let Some(p) = stack.pop() {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!(meta.uid(), self.uid, "{} is not the user's", p.display());
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else if p.file_name().is_some_and(|n| n == "key.pem") {
                keys += 1;
                assert_eq!(meta.mode() & 0o777, 0o600, "{}", p.display());
            }
        }
        assert!(keys > 0 || rel == "ca", "no key under {rel}");
    }
}

#[test]
fn every_command_that_writes_works_for_an_ordinary_user() {
    let s = UserScratch::new();
    // The README's typical run.
    s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Lane Root",
        "--generate-passphrase",
        "--pathlen",
        "1",
        "--permit",
        "internal",
        "--permit",
        "10.0.0.0/8",
    ]);
    s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1.internal"]);
    s.assert_owned_and_private("certs");
    s.write(
        "plan.toml",
        "[[group]]\nname = \"fleet\"\nnames = [\"node{1..3}.internal\"]\nformats = [\"pem\", \"combined\", \"k8s\"]\n",
    );
    s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "fleet",
        "--plan",
        "plan.toml",
    ]);
    s.assert_owned_and_private("fleet");
    // A CSR made by the user, signed as a leaf.
    s.make_csr("app.internal");
    s.uca(&["sign", "--dir", "ca", "app.csr", "--out", "app.pem"]);
    s.uca(&[
        "registry",
        "--dir",
        "ca",
        "--out",
        "registry",
        "registry.internal:5000",
    ]);
    s.assert_owned_and_private("registry");
    s.uca(&[
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vault-tls",
        "--host",
        "vault.internal",
    ]);
    s.assert_owned_and_private("vault-tls");
    s.uca(&["check", "certs", "fleet"]);
    s.uca(&[
        "verify",
        "certs/web1.internal/cert.pem",
        "--ca",
        "ca/ca.pem",
        "--name",
        "web1.internal",
    ]);
    s.uca(&["inspect", "app.pem"]);
    // The seal: the stored passphrase is 0400 and the user's to destroy.
    s.uca(&["seal", "--dir", "ca", "--destroy-key"]);
    assert!(!s.path().join("ca/private/passphrase").exists());
    assert!(!s.path().join("ca/private/ca-key.pem").exists());
    s.uca(&["verify", "--manifest", "ca/manifest.json"]);
    s.assert_owned_and_private("ca");
    // The one-shot ceremony, with escrow.
    s.write(
        "ceremony.toml",
        "[ca]\nname = \"Lane Ceremony Root\"\npermit = [\"internal\"]\n\n[[group]]\nname = \"svc\"\nnames = [\"svc{1..2}.internal\"]\n",
    );
    s.uca(&[
        "ceremony",
        "ceremony.toml",
        "--out",
        "ceremony",
        "--escrow-passphrase",
        "escrow-pass.txt",
    ]);
    let escrow = std::fs::metadata(s.path().join("escrow-pass.txt")).unwrap();
    assert_eq!(escrow.uid(), s.uid);
    assert_eq!(
        escrow.mode() & 0o077,
        0,
        "the escrowed passphrase is readable by others"
    );
}

/// Whatever an ordinary user's permissions stop, they stop before anything
/// is signed or published: never a certificate on disk that the ledger (and
/// so the sealed manifest) does not record, never an old key left behind.
#[test]
fn permissions_stop_issuing_before_anything_is_published() {
    use std::os::unix::fs::PermissionsExt;
    let s = UserScratch::new();
    s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Lane Root",
        "--generate-passphrase",
    ]);
    s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1.internal"]);
    s.make_csr("app.internal");
    let ledger = s.path().join("ca/ledger.jsonl");
    let recorded = std::fs::read_to_string(&ledger).unwrap();
    let chmod = |rel: &str, mode: u32| {
        std::fs::set_permissions(s.path().join(rel), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let fails = |args: &[&str]| {
        let o = output_of(&mut s.command(&s.uca, args));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "uca {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "uca {args:?}: {err}");
        err
    };
    // A ledger the user may not append to.
    chmod("ca/ledger.jsonl", 0o444);
    // Every command here runs as an ordinary user, so the modes bind.
    let err = fails(&["issue", "--dir", "ca", "--out", "certs", "web2.internal"]);
    assert!(err.contains("ledger"), "{err}");
    assert!(
        !s.path().join("certs/web2.internal").exists(),
        "published unrecorded"
    );
    let err = fails(&["sign", "--dir", "ca", "app.csr", "--out", "leaf.pem"]);
    assert!(err.contains("ledger"), "{err}");
    assert!(!s.path().join("leaf.pem").exists(), "signed unrecorded");
    fails(&[
        "registry",
        "--dir",
        "ca",
        "--out",
        "reg",
        "registry.internal",
    ]);
    assert!(
        !s.path().join("reg").exists(),
        "registry published unrecorded"
    );
    chmod("ca/ledger.jsonl", 0o644);
    // A certificate directory the user may not empty, replaced with --force.
    let cert = std::fs::read(s.path().join("certs/web1.internal/cert.pem")).unwrap();
    chmod("certs/web1.internal", 0o555);
    let err = fails(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--force",
        "web1.internal",
    ]);
    chmod("certs/web1.internal", 0o755);
    assert!(err.contains("cannot be replaced"), "{err}");
    assert_eq!(
        std::fs::read(s.path().join("certs/web1.internal/cert.pem")).unwrap(),
        cert
    );
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), recorded);
    let leftovers: Vec<_> = std::fs::read_dir(s.path().join("certs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}
