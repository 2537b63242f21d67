//! PKCS#12 export (`uca::pki::pkcs12::build`) read back by the consumers it is
//! for: OpenSSL 3 without `-legacy`, and Java 17 (`keytool` and the
//! `KeyStore` "PKCS12" API). Each file holds a leaf, its CA and the leaf key.
//!
//! Ed25519: Java 17 (EdDSA since JDK 15, JEP 339) loads Ed25519 keys from a
//! PKCS#12 KeyStore: `getEntry` returns a `PrivateKeyEntry` whose key has
//! algorithm "EdDSA" and signs; the Ed25519 tests assert exactly that.
//!
//! These tests need `openssl` and `java`/`keytool` on PATH and fail (never
//! skip) without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use uca::pki::keys::{KeyType, PrivateKey};
use uca::pki::passphrase::Passphrase;

const PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "correct horse battery stapler";
const NAME: &str = "web1";
const LEAF_CN: &str = "web1.internal";
const CA_CN: &str = "Test Root";

/// A leaf issued by a CA, the leaf key, and their PKCS#12 file in a scratch
/// directory (`web1.p12`, with `pass.txt`, `wrong.txt`, `leaf.pem`, `ca.pem`
/// and `key.pem` beside it).
struct Fixture {
    dir: tempfile::TempDir,
    leaf: Vec<u8>,
    ca: Vec<u8>,
    key: PrivateKey,
}

impl Fixture {
    fn new(key_type: KeyType) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pass.txt"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(dir.path().join("wrong.txt"), format!("{WRONG_PASSWORD}\n")).unwrap();

        let ca_key = KeyType::EcP256.generate().unwrap();
        let ca_pair = ca_key.key_pair().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, CA_CN);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_pair).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_pair);

        let key = key_type.generate().unwrap();
        let mut leaf_params = rcgen::CertificateParams::new(vec![LEAF_CN.into()]).unwrap();
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, LEAF_CN);
        let leaf_cert = leaf_params
            .signed_by(&key.key_pair().unwrap(), &issuer)
            .unwrap();

        let fx = Fixture {
            dir,
            leaf: leaf_cert.der().to_vec(),
            ca: ca_cert.der().to_vec(),
            key,
        };
        std::fs::write(
            fx.path("leaf.pem"),
            uca::pki::x509::pem_certificate(&fx.leaf),
        )
        .unwrap();
        std::fs::write(fx.path("ca.pem"), uca::pki::x509::pem_certificate(&fx.ca)).unwrap();
        std::fs::write(fx.path("key.pem"), fx.key.to_pem().as_bytes()).unwrap();
        let p12 = fx.build(&fx.password());
        std::fs::write(fx.path("web1.p12"), p12).unwrap();
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn password(&self) -> Passphrase {
        Passphrase::from_file(&self.path("pass.txt")).unwrap()
    }

    fn build(&self, password: &Passphrase) -> Vec<u8> {
        uca::pki::pkcs12::build(
            &self.leaf,
            std::slice::from_ref(&self.ca),
            &self.key,
            password,
            NAME,
        )
        .unwrap()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        run(program, args, self.dir.path())
    }
}

/// Runs a program in `cwd` with stdin closed; panics (fails the test) if it
/// cannot be started, e.g. because it is not installed.
fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e}; it must be installed for these tests")
        })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn success(program: &str, o: &Output) -> String {
    assert!(
        o.status.success(),
        "{program} failed ({:?}): {}",
        o.status.code(),
        text(o)
    );
    text(o)
}

/// The DER of every CERTIFICATE block in OpenSSL's output (which interleaves
/// "Bag Attributes" lines with the PEM).
fn certificates(output: &str) -> Vec<Vec<u8>> {
    let blocks = pem::parse_many(output).expect("PEM in the output");
    blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect()
}

/// `localKeyID: AB CD ...` as `openssl pkcs12 -info` prints it.
fn openssl_key_id(leaf: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("localKeyID: {}", hex.join(" "))
}

fn check_openssl(key_type: KeyType) {
    let fx = Fixture::new(key_type);
    let p12 = ["pkcs12", "-in", "web1.p12", "-passin", "file:pass.txt"];

    // Everything, with the algorithms OpenSSL found.
    let info = success(
        "openssl pkcs12 -info",
        &fx.run("openssl", &[&p12[..], &["-nodes", "-info"]].concat()),
    );
    for needle in [
        "MAC: sha256, Iteration 2048",
        "MAC length: 32, salt length: 16",
        "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
        "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
        &format!("subject=CN = {LEAF_CN}"),
        &format!("subject=CN = {CA_CN}"),
        "-----BEGIN PRIVATE KEY-----",
    ] {
        assert!(
            info.contains(needle),
            "openssl -info lacks {needle:?}:\n{info}"
        );
    }
    // Encrypted certificates first, then the key bag in plain data.
    let encrypted = info.find("PKCS7 Encrypted data:").unwrap();
    let data = info.find("PKCS7 Data").expect("a PKCS7 Data section");
    let shrouded = info.find("Shrouded Keybag:").unwrap();
    assert!(
        encrypted < data && data < shrouded,
        "unexpected order:\n{info}"
    );
    assert_eq!(info.matches("Certificate bag").count(), 2, "{info}");
    assert_eq!(
        info.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{info}"
    );
    assert_eq!(
        info.matches("-----BEGIN PRIVATE KEY-----").count(),
        1,
        "{info}"
    );
    // friendlyName and localKeyID on the leaf's bag and the key's, not the CA's.
    assert_eq!(
        info.matches(&format!("friendlyName: {NAME}")).count(),
        2,
        "{info}"
    );
    assert_eq!(info.matches(&openssl_key_id(&fx.leaf)).count(), 2, "{info}");
    assert_eq!(certificates(&info), vec![fx.leaf.clone(), fx.ca.clone()]);

    // The client certificate alone is the leaf; the CA certificates are the CA.
    let leaf_only = success(
        "openssl -clcerts",
        &fx.run("openssl", &[&p12[..], &["-nokeys", "-clcerts"]].concat()),
    );
    assert_eq!(certificates(&leaf_only), vec![fx.leaf.clone()]);
    let ca_only = success(
        "openssl -cacerts",
        &fx.run("openssl", &[&p12[..], &["-nokeys", "-cacerts"]].concat()),
    );
    assert_eq!(certificates(&ca_only), vec![fx.ca.clone()]);

    // The key is the one given, and it belongs to the leaf.
    success(
        "openssl -nocerts",
        &fx.run(
            "openssl",
            &[&p12[..], &["-nocerts", "-nodes", "-out", "out-key.pem"]].concat(),
        ),
    );
    let exported = fx.run(
        "openssl",
        &["pkey", "-in", "out-key.pem", "-outform", "DER"],
    );
    let original = fx.run("openssl", &["pkey", "-in", "key.pem", "-outform", "DER"]);
    success("openssl pkey", &exported);
    success("openssl pkey", &original);
    assert!(!exported.stdout.is_empty());
    assert_eq!(
        exported.stdout, original.stdout,
        "the exported key differs from the original"
    );
    let key_pub = fx.run("openssl", &["pkey", "-in", "out-key.pem", "-pubout"]);
    let cert_pub = fx.run("openssl", &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
    let key_pub = success("openssl pkey -pubout", &key_pub);
    assert!(
        key_pub.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{key_pub}"
    );
    assert_eq!(key_pub, success("openssl x509 -pubkey", &cert_pub));

    // A wrong password fails the MAC check.
    let wrong = fx.run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            "web1.p12",
            "-passin",
            "file:wrong.txt",
            "-nodes",
            "-info",
        ],
    );
    assert!(
        !wrong.status.success(),
        "a wrong password was accepted: {}",
        text(&wrong)
    );
    assert!(
        text(&wrong).contains("Mac verify error"),
        "{}",
        text(&wrong)
    );
    assert!(
        !String::from_utf8_lossy(&wrong.stdout).contains("BEGIN"),
        "{}",
        text(&wrong)
    );

    // So does a file changed after the MAC was computed.
    let mut tampered = std::fs::read(fx.path("web1.p12")).unwrap();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    std::fs::write(fx.path("tampered.p12"), tampered).unwrap();
    let bad = fx.run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            "tampered.p12",
            "-passin",
            "file:pass.txt",
            "-nodes",
            "-info",
        ],
    );
    assert!(
        !bad.status.success(),
        "a tampered file was accepted: {}",
        text(&bad)
    );
}

/// Loads the file through the KeyStore API, takes the PrivateKeyEntry, checks
/// the chain's signature and that the key signs what the leaf verifies.
const JAVA_LOADER: &str = r#"
import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.*;
import java.security.cert.X509Certificate;
import java.util.Collections;

public class LoadP12 {
    public static void main(String[] args) throws Exception {
        String text = Files.readString(Path.of(args[1]));
        char[] pw = text.substring(0, text.length() - (text.endsWith("\n") ? 1 : 0)).toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) { ks.load(in, pw); }
        for (String alias : Collections.list(ks.aliases())) {
            System.out.println("alias=" + alias);
            KeyStore.PrivateKeyEntry e = (KeyStore.PrivateKeyEntry) ks.getEntry(alias, new KeyStore.PasswordProtection(pw));
            PrivateKey key = e.getPrivateKey();
            System.out.println("keyAlgorithm=" + key.getAlgorithm());
            X509Certificate[] chain = (X509Certificate[]) e.getCertificateChain();
            System.out.println("chainLength=" + chain.length);
            for (int i = 0; i < chain.length; i++) {
                System.out.println("chain[" + i + "]=" + chain[i].getSubjectX500Principal().getName());
            }
            for (int i = 0; i + 1 < chain.length; i++) chain[i].verify(chain[i + 1].getPublicKey());
            System.out.println("chainVerified=true");
            String alg = switch (key.getAlgorithm()) {
                case "EC" -> "SHA256withECDSA";
                case "RSA" -> "SHA256withRSA";
                default -> key.getAlgorithm();
            };
            byte[] msg = "uca pkcs12".getBytes(StandardCharsets.UTF_8);
            Signature s = Signature.getInstance(alg);
            s.initSign(key);
            s.update(msg);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance(alg);
            v.initVerify(chain[0].getPublicKey());
            v.update(msg);
            System.out.println("keyMatchesLeaf=" + v.verify(sig));
        }
    }
}
"#;

fn check_java(key_type: KeyType, java_key_algorithm: &str) {
    let fx = Fixture::new(key_type);
    let list = [
        "-list",
        "-v",
        "-keystore",
        "web1.p12",
        "-storetype",
        "PKCS12",
        "-storepass",
    ];

    let out = success(
        "keytool -list",
        &fx.run("keytool", &[&list[..], &[PASSWORD]].concat()),
    );
    for needle in [
        "Keystore type: PKCS12",
        "Your keystore contains 1 entry",
        &format!("Alias name: {NAME}"),
        "Entry type: PrivateKeyEntry",
        "Certificate chain length: 2",
        &format!("Certificate[1]:\nOwner: CN={LEAF_CN}\nIssuer: CN={CA_CN}"),
        &format!("Certificate[2]:\nOwner: CN={CA_CN}\nIssuer: CN={CA_CN}"),
    ] {
        assert!(
            out.contains(needle),
            "keytool -list lacks {needle:?}:\n{out}"
        );
    }

    let wrong = fx.run("keytool", &[&list[..], &[WRONG_PASSWORD]].concat());
    assert!(
        !wrong.status.success(),
        "keytool accepted a wrong password: {}",
        text(&wrong)
    );
    assert!(
        text(&wrong).contains("keystore password was incorrect"),
        "{}",
        text(&wrong)
    );

    std::fs::write(fx.path("LoadP12.java"), JAVA_LOADER).unwrap();
    let out = fx.run("java", &["LoadP12.java", "web1.p12", "pass.txt"]);
    success("java LoadP12.java", &out);
    let expected = format!(
        "alias={NAME}\nkeyAlgorithm={java_key_algorithm}\nchainLength=2\nchain[0]=CN={LEAF_CN}\nchain[1]=CN={CA_CN}\nchainVerified=true\nkeyMatchesLeaf=true\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected,
        "{}",
        text(&out)
    );
    let wrong = fx.run("java", &["LoadP12.java", "web1.p12", "wrong.txt"]);
    assert!(
        !wrong.status.success(),
        "Java loaded the keystore with a wrong password: {}",
        text(&wrong)
    );
    assert!(
        text(&wrong).contains("keystore password was incorrect"),
        "{}",
        text(&wrong)
    );
}

#[test]
fn openssl_reads_ec_p256() {
    check_openssl(KeyType::EcP256);
}

#[test]
fn openssl_reads_ec_p384() {
    check_openssl(KeyType::EcP384);
}

#[test]
fn openssl_reads_rsa_2048() {
    check_openssl(KeyType::Rsa2048);
}

#[test]
fn openssl_reads_ed25519() {
    check_openssl(KeyType::Ed25519);
}

#[test]
fn java_reads_ec_p256() {
    check_java(KeyType::EcP256, "EC");
}

#[test]
fn java_reads_ec_p384() {
    check_java(KeyType::EcP384, "EC");
}

#[test]
fn java_reads_rsa_2048() {
    check_java(KeyType::Rsa2048, "RSA");
}

#[test]
fn java_reads_ed25519() {
    check_java(KeyType::Ed25519, "EdDSA");
}

#[test]
fn salts_and_ivs_are_fresh_each_time() {
    let fx = Fixture::new(KeyType::EcP256);
    let a = fx.build(&fx.password());
    let b = fx.build(&fx.password());
    assert_eq!(a[0], 0x30);
    assert_ne!(a, b);
}

#[test]
fn refuses_a_key_that_is_not_the_certificates() {
    let fx = Fixture::new(KeyType::EcP256);
    let other = KeyType::EcP256.generate().unwrap();
    let err = uca::pki::pkcs12::build(
        &fx.leaf,
        std::slice::from_ref(&fx.ca),
        &other,
        &fx.password(),
        NAME,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not belong to the certificate"),
        "{err}"
    );
}

#[test]
fn refuses_bad_friendly_names_and_certificates() {
    let fx = Fixture::new(KeyType::EcP256);
    let chain = std::slice::from_ref(&fx.ca);
    let err = uca::pki::pkcs12::build(&fx.leaf, chain, &fx.key, &fx.password(), "").unwrap_err();
    assert!(err.to_string().contains("friendly name"), "{err}");
    let err = uca::pki::pkcs12::build(&fx.leaf, &[b"junk".to_vec()], &fx.key, &fx.password(), NAME)
        .unwrap_err();
    assert!(err.to_string().contains("chain certificate 1"), "{err}");
    let err = uca::pki::pkcs12::build(b"junk", chain, &fx.key, &fx.password(), NAME).unwrap_err();
    assert!(
        err.to_string().contains("not an X.509 certificate"),
        "{err}"
    );
}

/// Java 17 cannot open a PBES2 PKCS#12 file whose password is not printable
/// ASCII ("Password is not ASCII"), even one OpenSSL wrote itself, so `build`
/// refuses such passwords. If the Java half of this test ever fails, a newer
/// JDK lifted the limit and the refusal can be reconsidered.
#[test]
fn non_ascii_passwords_are_refused_because_java_cannot_use_them() {
    let fx = Fixture::new(KeyType::EcP256);
    std::fs::write(fx.path("unicode.txt"), "pässwörd ünïcode 日本語\n").unwrap();
    let unicode = Passphrase::from_file(&fx.path("unicode.txt")).unwrap();
    let err = uca::pki::pkcs12::build(
        &fx.leaf,
        std::slice::from_ref(&fx.ca),
        &fx.key,
        &unicode,
        NAME,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("outside printable ASCII"), "{msg}");
    assert!(
        !msg.contains("pässwörd"),
        "the error must not echo the password: {msg}"
    );

    // The reason: the same password on a file OpenSSL 3 made.
    let export = fx.run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            "leaf.pem",
            "-inkey",
            "key.pem",
            "-certfile",
            "ca.pem",
            "-name",
            NAME,
            "-passout",
            "file:unicode.txt",
            "-out",
            "openssl.p12",
        ],
    );
    success("openssl pkcs12 -export", &export);
    let check = fx.run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            "openssl.p12",
            "-passin",
            "file:unicode.txt",
            "-noout",
        ],
    );
    success("openssl pkcs12", &check);
    std::fs::write(fx.path("LoadP12.java"), JAVA_LOADER).unwrap();
    let java = fx.run("java", &["LoadP12.java", "openssl.p12", "unicode.txt"]);
    assert!(
        !java.status.success(),
        "Java now opens non-ASCII passwords: {}",
        text(&java)
    );
    assert!(
        text(&java).contains("Password is not ASCII"),
        "{}",
        text(&java)
    );

    // Printable ASCII, spaces and punctuation included, is fine.
    std::fs::write(
        fx.path("ascii.txt"),
        " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\n",
    )
    .unwrap();
    let ascii = Passphrase::from_file(&fx.path("ascii.txt")).unwrap();
    let p12 = uca::pki::pkcs12::build(
        &fx.leaf,
        std::slice::from_ref(&fx.ca),
        &fx.key,
        &ascii,
        NAME,
    )
    .unwrap();
    std::fs::write(fx.path("ascii.p12"), p12).unwrap();
    let java = fx.run("java", &["LoadP12.java", "ascii.p12", "ascii.txt"]);
    let out = success("java LoadP12.java", &java);
    assert!(out.contains("keyMatchesLeaf=true\n"), "{out}");
    let check = fx.run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            "ascii.p12",
            "-passin",
            "file:ascii.txt",
            "-noout",
        ],
    );
    success("openssl pkcs12", &check);
}
