//! The crypto floor of bench/bench.sh: how many P-256 leaf certificates this
//! machine can make per second with rcgen and ring alone, on every core, with
//! no files, no ledger and no uca: a P-256 key generated (ring's PKCS#8
//! document, whose last 65 bytes are the public point), a leaf with one DNS
//! SAN signed by a P-256 CA, and both PEM-encoded (what any issuer must do
//! per certificate). uca's archive rate is judged against it.
//!
//!     cargo run --release --example crypto_floor -- [COUNT] [THREADS]
//!
//! Prints one line: `COUNT certificates in SECONDS s = RATE/s on THREADS threads`.

use std::time::Instant;

use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PublicKeyData, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256,
};

struct Public<'a>(&'a [u8]);

impl PublicKeyData for Public<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

fn leaf(i: usize, issuer: &Issuer<'_, KeyPair>, rng: &ring::rand::SystemRandom) -> usize {
    let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, rng).expect("generate a key");
    let pkcs8 = doc.as_ref();
    let public = Public(&pkcs8[pkcs8.len() - 65..]);
    let params =
        CertificateParams::new(vec![format!("svc{i}.internal")]).expect("a valid DNS name");
    let cert = params.signed_by(&public, issuer).expect("sign the leaf");
    cert.pem().len() + pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8)).len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(100_000, |a| a.parse().expect("COUNT"));
    let threads: usize = args.next().map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |a| a.parse().expect("THREADS"),
    );
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate the CA key");
    let mut ca = CertificateParams::new(Vec::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign the CA");
    let issuer = Issuer::from_ca_cert_der(ca_cert.der(), ca_key).expect("the CA as issuer");
    let started = Instant::now();
    let bytes: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let issuer = &issuer;
                scope.spawn(move || {
                    let rng = ring::rand::SystemRandom::new();
                    (t..count)
                        .step_by(threads)
                        .map(|i| leaf(i, issuer, &rng))
                        .sum::<usize>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a thread panicked"))
            .sum()
    });
    let secs = started.elapsed().as_secs_f64();
    assert!(bytes > 0);
    println!(
        "{count} certificates in {secs:.3} s = {:.0}/s on {threads} threads",
        count as f64 / secs
    );
}
