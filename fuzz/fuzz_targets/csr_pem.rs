//! CSRs as `uca sign` reads them: raw DER, and every block of a PEM file.
//! An accepted CSR is then turned into leaf parameters and really signed, so
//! whatever a hostile CSR smuggles in (subject strings, SANs, key) must either
//! be refused with one clear line or produce a certificate.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use uca::pki::keys::KeyType;
use uca::pki::profile::{self, Profile, Validity};

fn issuer() -> &'static rcgen::Issuer<'static, rcgen::KeyPair> {
    static ISSUER: OnceLock<rcgen::Issuer<'static, rcgen::KeyPair>> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let validity = Validity::days_from_now(3650).unwrap();
        let params = profile::root_params(
            "Fuzz Root",
            validity,
            1,
            &uca::pki::constraints::NameConstraints(Vec::new()),
        );
        rcgen::Issuer::new(params, key)
    })
}

fn check(der: &[u8]) {
    let csr = match uca::ca::signing::parse_csr(der) {
        Ok(csr) => csr,
        Err(why) => {
            assert!(!why.contains(['\n', '\r']), "multi-line error: {why:?}");
            return;
        }
    };
    let _ = &csr.subject_text;
    let Ok(public_key) = rcgen::SubjectPublicKeyInfo::from_der(&csr.spki_der) else {
        return;
    };
    let validity = Validity::days_from_now(397).unwrap();
    let key_type = if csr.rsa_key {
        KeyType::Rsa2048
    } else {
        KeyType::EcP256
    };
    let open = uca::pki::constraints::NameConstraints(Vec::new());
    let names = match profile::LeafNames::checked(csr.subject.clone(), csr.sans.clone(), &open) {
        Ok(n) => n,
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains(['\n', '\r']), "multi-line error: {s:?}");
            return;
        }
    };
    for profile in [Profile::Server, Profile::Both] {
        let params = match profile::leaf_params(&names, profile, &[], key_type, validity) {
                Ok(p) => p,
                Err(e) => {
                    let s = e.to_string();
                    assert!(!s.contains(['\n', '\r']), "multi-line error: {s:?}");
                    continue;
                }
            };
        if let Ok(cert) = params.signed_by(&public_key, issuer()) {
            uca::pki::x509::parse(cert.der()).expect("uca must be able to read what it signed");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    match uca::pki::x509::parse_blocks(data) {
        Ok(blocks) => {
            for b in blocks.iter().take(8) {
                check(b.contents());
            }
        }
        Err(why) => assert!(!why.contains(['\n', '\r']), "multi-line error: {why:?}"),
    }
});
