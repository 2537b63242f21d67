//! The seal's streamed manifest: `manifest.sig` signs `manifest.sha256`,
//! which holds what `openssl dgst -sha256 -r manifest.json` prints, so the
//! manifest never has to be in memory whole, and stock OpenSSL checks it
//! with the command the manifest, the seal report and the README give.

mod common;

use std::path::Path;

use common::*;

/// The command the README gives for checking a sealed CA of the default key.
const README_COMMAND: &str = "openssl pkeyutl -verify -certin -inkey ca.pem -rawin -digest sha256 -in manifest.sha256 -sigfile manifest.sig && openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256";

/// A CA of `key` type with three certificates, sealed with its key kept
/// (encrypted under the scratch passphrase). Returns the seal's output.
fn sealed(s: &Scratch, key: &str) -> String {
    s.init_ca(&["--key", key]);
    s.issue(&["a.internal", "b.internal", "c.internal"]);
    let pass = s.pass_file();
    stdout(&ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ])))
}

fn manifest(s: &Scratch) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(s.join("ca/manifest.json")).unwrap()).unwrap()
}

fn verify_with(s: &Scratch) -> String {
    manifest(s)["verify_with"].as_str().unwrap().to_string()
}

/// Runs `command` with sh in `dir`: (success, stdout + stderr).
fn sh_in(dir: &Path, command: &str) -> (bool, String) {
    run("sh", &["-c", command], dir)
}

fn uca_verify(s: &Scratch) -> std::process::Output {
    s.uca(&["verify", "--manifest", "ca/manifest.json"])
}

#[test]
fn every_key_type_verifies_with_the_openssl_command_the_manifest_gives() {
    for key in ["ec-p256", "ec-p384", "rsa-2048", "ed25519"] {
        let s = Scratch::new();
        let report = sealed(&s, key);
        let command = verify_with(&s);
        assert!(
            report.contains(&format!("check with   cd ca && {command}\n")),
            "{key}: the seal report does not give {command}:\n{report}"
        );
        assert!(
            command.contains("-in manifest.sha256 -sigfile manifest.sig")
                && command
                    .ends_with("openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256"),
            "{key}: {command}"
        );
        let (good, out) = sh_in(&s.join("ca"), &command);
        assert!(
            good && out.contains("Signature Verified Successfully"),
            "{key}: {command}:\n{out}"
        );
        let digest = std::fs::read_to_string(s.join("ca/manifest.sha256")).unwrap();
        let (_, printed) = run(
            "openssl",
            &["dgst", "-sha256", "-r", "manifest.json"],
            &s.join("ca"),
        );
        assert_eq!(digest, printed, "{key}");
        assert_eq!(manifest(&s)["digest_file"], "manifest.sha256");
        let o = ok(&uca_verify(&s));
        assert!(
            stdout(&o).contains("3 certificates, 3 files match"),
            "{key}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn the_readme_gives_the_command_the_manifest_gives() {
    let s = Scratch::new();
    sealed(&s, "ec-p256");
    assert_eq!(verify_with(&s), README_COMMAND);
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("cd ca && {README_COMMAND}\n")),
        "README.md does not give {README_COMMAND}"
    );
    let (good, out) = sh_in(&s.join("ca"), README_COMMAND);
    assert!(good, "{out}");
}

/// Flips one byte of `file` (in the CA directory) at `at`.
fn flip_byte(s: &Scratch, file: &str, at: usize) {
    let path = s.join("ca").join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn one_altered_byte_of_any_seal_file_is_caught_by_uca_and_openssl() {
    // (file, a byte inside it, what uca's one line says)
    let cases = [
        (
            "manifest.json",
            None,
            "manifest.json does not have the SHA-256",
        ),
        (
            "manifest.sha256",
            Some(3),
            "does not match ca/manifest.sha256",
        ),
        (
            "manifest.sig",
            Some(20),
            "the signature ca/manifest.sig does not match",
        ),
    ];
    for (file, at, says) in cases {
        let s = Scratch::new();
        sealed(&s, "ec-p256");
        let command = verify_with(&s);
        let at = at.unwrap_or_else(|| {
            let json = std::fs::read(s.join("ca/manifest.json")).unwrap();
            json.windows(10).position(|w| w == b"b.internal").unwrap()
        });
        flip_byte(&s, file, at);
        let err = fails_with(&uca_verify(&s), says);
        assert!(err.contains(file), "{file}: {err}");
        let (good, out) = sh_in(&s.join("ca"), &command);
        assert!(!good, "{file}: OpenSSL accepted it:\n{out}");
    }
}

#[test]
fn a_missing_seal_file_is_named() {
    for (file, says) in [
        ("manifest.json", "manifest.json"),
        ("manifest.sha256", "ca/manifest.sha256 is missing"),
        ("manifest.sig", "manifest.sig"),
    ] {
        let s = Scratch::new();
        sealed(&s, "ec-p256");
        std::fs::remove_file(s.join("ca").join(file)).unwrap();
        fails_with(&uca_verify(&s), says);
        let (good, out) = sh_in(&s.join("ca"), README_COMMAND);
        assert!(!good, "{file}: OpenSSL accepted it:\n{out}");
    }
}

#[test]
fn a_ca_sealed_before_the_digest_file_still_verifies() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sealed-before-digest");
    let s = Scratch::new();
    copy_dir(&fixture, &s.join("ca"));
    let o = ok(&uca_verify(&s));
    assert_eq!(
        stdout(&o),
        "OK: manifest signature verifies with ca/ca.pem; 0 certificates, 0 files match, 1 CRL of the root checked\n"
    );
    // Its own command still holds, and a changed byte is still caught.
    let (good, out) = sh_in(&s.join("ca"), &verify_with(&s));
    assert!(good, "{out}");
    let json = std::fs::read(s.join("ca/manifest.json")).unwrap();
    let at = json.windows(6).position(|w| w == b"Legacy").unwrap();
    flip_byte(&s, "manifest.json", at);
    let err = fails_with(&uca_verify(&s), "ca/manifest.sha256 is missing");
    assert!(err.contains("ca/manifest.sig"), "{err}");
}

#[test]
fn a_ca_sealed_before_the_digest_file_with_certificates_still_verifies() {
    let s = Scratch::new();
    sealed(&s, "ec-p256");
    // Back to the earlier form: no digest file, the signature over the
    // manifest itself, as uca seal wrote it then.
    let text = std::fs::read_to_string(s.join("ca/manifest.json")).unwrap();
    let old = text
        .replace("  \"digest_file\": \"manifest.sha256\",\n", "")
        .replace(
            README_COMMAND,
            "openssl pkeyutl -verify -certin -inkey ca.pem -rawin -digest sha256 -in manifest.json -sigfile manifest.sig",
        );
    std::fs::write(s.join("ca/manifest.json"), &old).unwrap();
    std::fs::remove_file(s.join("ca/manifest.sha256")).unwrap();
    sign_with_ca_key(&s, "manifest.json");
    let o = ok(&uca_verify(&s));
    assert!(
        stdout(&o).contains("3 certificates, 3 files match, 1 CRL"),
        "{}",
        stdout(&o)
    );
    let (good, out) = sh_in(&s.join("ca"), &verify_with(&s));
    assert!(good, "{out}");
}

#[test]
fn a_signed_manifest_in_another_json_layout_is_read_whole_never_misread() {
    let s = Scratch::new();
    sealed(&s, "ec-p256");
    // The same manifest pretty-printed (one field a line, entries spread
    // over many lines), then sealed again by the CA's key.
    let pretty = serde_json::to_string_pretty(&manifest(&s)).unwrap();
    std::fs::write(s.join("ca/manifest.json"), pretty).unwrap();
    redigest_and_sign(&s);
    let o = ok(&uca_verify(&s));
    assert!(
        stdout(&o).contains("3 certificates, 3 files match"),
        "{}",
        stdout(&o)
    );
    // Two certificate lists, or anything after the object: refused.
    let text = std::fs::read_to_string(s.join("ca/manifest.json")).unwrap();
    let twice = text.replacen(
        "\"certificates\"",
        "\"certificates\": [],\n  \"certificates\"",
        1,
    );
    std::fs::write(s.join("ca/manifest.json"), twice).unwrap();
    redigest_and_sign(&s);
    fails_with(&uca_verify(&s), "not a uca manifest");
    std::fs::write(s.join("ca/manifest.json"), format!("{text}{{}}")).unwrap();
    redigest_and_sign(&s);
    fails_with(&uca_verify(&s), "not a uca manifest");
}

/// Writes manifest.sha256 for the manifest as it is now and signs it with
/// the CA key: a manifest this CA's key really signed.
fn redigest_and_sign(s: &Scratch) {
    let (good, digest) = run(
        "openssl",
        &["dgst", "-sha256", "-r", "manifest.json"],
        &s.join("ca"),
    );
    assert!(good, "{digest}");
    std::fs::write(s.join("ca/manifest.sha256"), digest).unwrap();
    sign_with_ca_key(s, "manifest.sha256");
}

/// Signs `file` in the CA directory into manifest.sig with the CA's key,
/// decrypted by stock OpenSSL into the scratch root.
fn sign_with_ca_key(s: &Scratch, file: &str) {
    let pass = format!("file:{}", s.pass_file().display());
    let (good, out) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            &pass,
            "-out",
            "signing-key.pem",
        ],
        s.path(),
    );
    assert!(good, "{out}");
    let input = format!("ca/{file}");
    let (good, out) = run(
        "openssl",
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            "signing-key.pem",
            "-rawin",
            "-digest",
            "sha256",
            "-in",
            &input,
            "-out",
            "ca/manifest.sig",
        ],
        s.path(),
    );
    assert!(good, "{out}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn recovery_after_a_streamed_seal_chains_from_the_manifest_digest() {
    // Sealed with escrow, then one recovery: its log entry names the
    // SHA-256 that manifest.sha256 (signed) gives, and verify accepts it.
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["a.internal"]);
    let pass = s.pass_file();
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
    ]));
    let shares: Vec<String> = std::fs::read_dir(s.join("shares"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut args = vec!["recover", "--dir", "ca"];
    for share in shares.iter().take(2) {
        args.extend(["--share", share.as_str()]);
    }
    args.extend(["revoke", "certs/a.internal/cert.pem"]);
    ok(&s.uca(&args));
    let log = std::fs::read_to_string(s.join("ca/recoveries.jsonl")).unwrap();
    let digest = std::fs::read_to_string(s.join("ca/manifest.sha256")).unwrap();
    let sha256 = &digest[..64];
    assert!(
        log.contains(&format!("\\\"previous_sha256\\\":\\\"{sha256}\\\"")),
        "{log}"
    );
    let o = ok(&uca_verify(&s));
    assert!(stdout(&o).contains("1 recovery entry"), "{}", stdout(&o));
}

#[test]
fn a_large_plan_finds_exactly_the_output_produced_twice() {
    // 60,000 outputs checked in a few bits each: the many that share a
    // bit are checked again exactly, so only the real duplicate, far from
    // its first occurrence, is named; nothing is made.
    let s = Scratch::new();
    s.init_ca(&[]);
    std::fs::write(
        s.join("plan.toml"),
        "[[group]]\nname = \"a\"\nnames = [\"svc{1..60000}.internal\"]\n\
         [[group]]\nname = \"b\"\nnames = [\"late.internal\", \"SVC17.internal\"]\n",
    )
    .unwrap();
    let pass = s.pass_file();
    let err = fails_with(
        &s.uca(&[
            "issue",
            "--dir",
            "ca",
            "--out",
            "out",
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--plan",
            "plan.toml",
        ]),
        "produced twice",
    );
    assert!(
        err.contains("plan group 'b', name 'svc17.internal'"),
        "{err}"
    );
    assert!(!s.join("out").exists(), "the refused plan wrote output");
}
