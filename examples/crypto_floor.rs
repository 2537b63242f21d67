//! The crypto floor of bench/bench.sh: how many P-256 leaf certificates this
//! machine can make per second with rcgen and ring alone, on every core, with
//! no files, no ledger and no uca: a key pair generated, a leaf with one DNS
//! SAN signed by a P-256 CA, and both PEM-encoded (what any issuer must do
//! per certificate). uca's archive rate is judged against it.
//!
//!     cargo run --release --example crypto_floor -- [COUNT] [THREADS]
//!
//! Prints one line: `COUNT certificates in SECONDS s = RATE/s on THREADS threads`.

use std::time::Instant;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};

fn leaf(i: usize, issuer: &Issuer<'_, KeyPair>) -> usize {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate a P-256 key");
    let params =
        CertificateParams::new(vec![format!("svc{i}.internal")]).expect("a valid DNS name");
    let cert = params.signed_by(&key, issuer).expect("sign the leaf");
    cert.pem().len() + key.serialize_pem().len()
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
                scope.spawn(move || (t..count).step_by(threads).map(|i| leaf(i, issuer)).sum::<usize>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a thread panicked")).sum()
    });
    let secs = started.elapsed().as_secs_f64();
    assert!(bytes > 0);
    println!(
        "{count} certificates in {secs:.3} s = {:.0}/s on {threads} threads",
        count as f64 / secs
    );
}
