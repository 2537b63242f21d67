//! Layer 1, pki: X.509 facts, with no CA directory. Names and SAN rules,
//! registry hosts, name constraints, keys and passphrases, certificate
//! profiles, subject templates, reading certificates back, chain
//! verification, output formats and PKCS#12,
//! revocation lists, secret sharing and encryption to age recipients.
//! Uses only `support`.

pub mod age;
pub mod constraints;
pub mod crl;
pub mod formats;
pub mod host;
pub mod keys;
pub mod names;
pub mod passphrase;
pub mod pkcs12;
pub mod profile;
pub mod san_rule;
pub mod shamir;
pub mod subject;
pub mod verify;
pub mod x509;
