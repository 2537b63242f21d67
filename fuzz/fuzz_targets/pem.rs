//! PEM and DER files wherever uca reads them: `x509::parse_blocks`, the
//! certificate readers behind the CA store, `verify` and `check`, name
//! constraints read back from a CA certificate, private keys, and the whole
//! `uca inspect` description (text and JSON) of any file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("uca-fuzz-pem-{}.pem", std::process::id()))
    })
}

fn one_line(s: &str) {
    assert!(!s.contains(['\n', '\r']), "multi-line error: {s:?}");
}

fn certificate(der: &[u8]) {
    let Ok(cert) = uca::pki::x509::parse(der) else {
        return;
    };
    let _ = uca::pki::x509::sans(&cert);
    let _ = uca::pki::x509::serial_hex(&cert);
    let _ = uca::pki::x509::is_ca(&cert);
    let _ = uca::pki::x509::not_after(&cert);
    let _ = uca::pki::x509::not_before(&cert);
    let _ = uca::pki::x509::spki_pin(cert.public_key().raw);
    if let Err(e) = uca::pki::constraints::NameConstraints::from_certificate(&cert) {
        one_line(&e.to_string());
    }
}

fuzz_target!(|data: &[u8]| {
    match uca::pki::x509::parse_blocks(data) {
        Ok(blocks) => {
            for b in blocks.iter().take(8) {
                match b.tag() {
                    "CERTIFICATE" | "DER" => certificate(b.contents()),
                    "PRIVATE KEY" => {
                        if let Ok(k) = uca::pki::keys::PrivateKey::from_pkcs8_der(b.contents()) {
                            let _ = k.key_pair();
                        }
                    }
                    _ => {}
                }
            }
        }
        Err(why) => one_line(&why),
    }
    let path = scratch();
    std::fs::write(path, data).unwrap();
    match uca::pki::x509::read_certificates(path) {
        Ok(certs) => assert!(!certs.is_empty()),
        Err(e) => one_line(&e.to_string()),
    }
    match uca::commands::inspect::describe_file(path) {
        Ok(report) => {
            let _ = serde_json::to_string(&report).unwrap();
            // The text rendering too.
            uca::commands::inspect::render_file(path, false).expect("described once, described twice");
        }
        Err(e) => one_line(&e.to_string()),
    }
});
