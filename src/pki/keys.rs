//! Key types, key generation and PKCS#8 encoding (plain for leaves,
//! PBES2-encrypted for the CA) in forms that OpenSSL 3.0 reads.

use std::fmt;

use clap::ValueEnum;
use pkcs8::der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::pki::passphrase::Passphrase;
use crate::support::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    #[value(name = "ec-p256")]
    #[serde(rename = "ec-p256")]
    EcP256,
    #[value(name = "ec-p384")]
    #[serde(rename = "ec-p384")]
    EcP384,
    Ed25519,
    #[value(name = "rsa-2048")]
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.to_possible_value()
                .expect("no skipped variants")
                .get_name(),
        )
    }
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// A public key's algorithm OID and, for elliptic curves, its curve OID,
/// as dotted strings.
pub fn spki_algorithm(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> (String, Option<String>) {
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    (spki.algorithm.algorithm.to_id_string(), curve)
}

impl KeyType {
    /// The key type of a certificate's public key: the fact uca acts on,
    /// whatever a settings file says. RSA sizes other than 2048, 3072 and
    /// 4096 bits, and curves other than P-256 and P-384, are refused.
    pub fn of_certificate(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<KeyType> {
        let spki = cert.public_key();
        let (alg, curve) = spki_algorithm(spki);
        let curve = curve.unwrap_or_default();
        match (alg.as_str(), curve.as_str()) {
            (OID_ED25519, _) => Ok(KeyType::Ed25519),
            (OID_EC_PUBLIC_KEY, OID_P256) => Ok(KeyType::EcP256),
            (OID_EC_PUBLIC_KEY, OID_P384) => Ok(KeyType::EcP384),
            (OID_RSA, _) => match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => match rsa.key_size() {
                    2048 => Ok(KeyType::Rsa2048),
                    3072 => Ok(KeyType::Rsa3072),
                    4096 => Ok(KeyType::Rsa4096),
                    bits => Err(Error::msg(format!(
                        "the CA certificate has a {bits}-bit RSA key; uca supports 2048, 3072 and 4096"
                    ))),
                },
                _ => Err(Error::msg("the CA certificate's RSA key cannot be read")),
            },
            (other, curve) => Err(Error::msg(format!(
                "the CA certificate's key ({other} {curve}) is not one uca signs with (P-256, P-384, Ed25519, RSA)"
            ))),
        }
    }

    /// ring's algorithm for checking this key's signatures over raw bytes
    /// (the manifest), in the encoding `Signer::sign_bytes` produces.
    pub fn verification_algorithm(self) -> &'static dyn ring::signature::VerificationAlgorithm {
        match self {
            KeyType::EcP256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            KeyType::EcP384 => &ring::signature::ECDSA_P384_SHA384_ASN1,
            KeyType::Ed25519 => &ring::signature::ED25519,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA256
            }
        }
    }

    pub fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// The digest (OpenSSL name) that this key's signatures hash with
    /// (None for Ed25519, which signs the message itself).
    pub fn openssl_digest(self) -> Option<&'static str> {
        match self {
            KeyType::EcP384 => Some("sha384"),
            KeyType::Ed25519 => None,
            _ => Some("sha256"),
        }
    }

    /// Generates a fresh key together with its signing form, without
    /// parsing the key a second time (that costs as much as generating it).
    pub fn generate_with_pair(self) -> Result<(PrivateKey, rcgen::KeyPair)> {
        if self.is_rsa() {
            let key = self.generate()?;
            let pair = key.key_pair()?;
            return Ok((key, pair));
        }
        let pair = rcgen::KeyPair::generate_for(self.signature_algorithm())
            .map_err(|e| Error::msg(format!("cannot generate a {self} key: {e}")))?;
        let der = Zeroizing::new(pair.serialize_der());
        let pkcs8 = if self == KeyType::Ed25519 {
            pkcs8_v1(&der)?
        } else {
            der
        };
        Ok((
            PrivateKey {
                key_type: self,
                pkcs8,
            },
            pair,
        ))
    }

    /// Generates a fresh key for a certificate someone else signs: the
    /// key and its public half, without the signing form. For ECDSA that
    /// saves building a ring key pair from the PKCS#8 document, which
    /// recomputes the public point (as costly as generating the key); the
    /// document already holds it.
    pub fn generate_for_leaf(self) -> Result<(PrivateKey, PublicKey)> {
        let ring_alg = match self {
            KeyType::EcP256 => &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            KeyType::EcP384 => &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            _ => {
                let (key, pair) = self.generate_with_pair()?;
                return Ok((key, PublicKey::of(&pair)));
            }
        };
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(ring_alg, &rng)
            .map_err(|_| Error::msg(format!("cannot generate a {self} key")))?;
        let pkcs8 = Zeroizing::new(doc.as_ref().to_vec());
        let raw = ec_public_key_of_pkcs8(&pkcs8, self)?.to_vec();
        Ok((
            PrivateKey {
                key_type: self,
                pkcs8,
            },
            PublicKey {
                raw,
                alg: self.signature_algorithm(),
            },
        ))
    }

    /// Generates a fresh key.
    pub fn generate(self) -> Result<PrivateKey> {
        let der = match self {
            KeyType::EcP256 | KeyType::EcP384 | KeyType::Ed25519 => {
                let kp = rcgen::KeyPair::generate_for(self.signature_algorithm())
                    .map_err(|e| Error::msg(format!("cannot generate a {self} key: {e}")))?;
                let der = Zeroizing::new(kp.serialize_der());
                if self == KeyType::Ed25519 {
                    pkcs8_v1(&der)?
                } else {
                    der
                }
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                use rsa::pkcs8::EncodePrivateKey;
                let bits = match self {
                    KeyType::Rsa2048 => 2048,
                    KeyType::Rsa3072 => 3072,
                    _ => 4096,
                };
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits)
                    .map_err(|e| Error::msg(format!("cannot generate a {self} key: {e}")))?;
                let doc = key
                    .to_pkcs8_der()
                    .map_err(|e| Error::msg(format!("cannot encode a {self} key: {e}")))?;
                Zeroizing::new(doc.as_bytes().to_vec())
            }
        };
        Ok(PrivateKey {
            key_type: self,
            pkcs8: der,
        })
    }
}

/// Re-encodes a PKCS#8 v2 (RFC 5958, with the public key) as v1: ring writes
/// v2 for Ed25519 and OpenSSL 3.0 cannot read it.
/// A public key as a certificate carries it, for rcgen to sign.
pub struct PublicKey {
    raw: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl PublicKey {
    pub fn of(pair: &rcgen::KeyPair) -> PublicKey {
        use rcgen::PublicKeyData;
        PublicKey {
            raw: pair.der_bytes().to_vec(),
            alg: pair.algorithm(),
        }
    }
}

impl rcgen::PublicKeyData for PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

/// The uncompressed public point at the end of the PKCS#8 document ring
/// generates for an ECDSA key: its RFC 5915 ECPrivateKey ends with
/// `[1] { BIT STRING { 0x00, 0x04 || X || Y } }`. Checked byte for byte, so a
/// document of another shape is an error, never a wrong key.
fn ec_public_key_of_pkcs8(pkcs8: &[u8], key: KeyType) -> Result<&[u8]> {
    let (point_len, tail): (usize, &[u8]) = match key {
        KeyType::EcP256 => (65, &[0xa1, 0x44, 0x03, 0x42, 0x00]),
        KeyType::EcP384 => (97, &[0xa1, 0x64, 0x03, 0x62, 0x00]),
        _ => return Err(Error::msg(format!("{key} is not an ECDSA key"))),
    };
    let split = pkcs8.len().checked_sub(point_len + tail.len());
    match split.map(|at| pkcs8[at..].split_at(tail.len())) {
        Some((head, point)) if head == tail && point[0] == 0x04 => Ok(point),
        _ => Err(Error::msg(format!(
            "the generated {key} key is not in the PKCS#8 layout expected"
        ))),
    }
}

fn pkcs8_v1(der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut info = pkcs8::PrivateKeyInfo::from_der(der)
        .map_err(|e| Error::msg(format!("cannot re-encode a PKCS#8 key: {e}")))?;
    info.public_key = None;
    let out = info
        .to_der()
        .map_err(|e| Error::msg(format!("cannot re-encode a PKCS#8 key: {e}")))?;
    Ok(Zeroizing::new(out))
}

/// A private key held as unencrypted PKCS#8 DER, wiped from memory on drop.
pub struct PrivateKey {
    key_type: KeyType,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, [secret elided])", self.key_type)
    }
}

impl PrivateKey {
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Parses unencrypted PKCS#8 DER and works out the key type.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| Error::msg(format!("not a PKCS#8 private key: {e}")))?;
        let alg = info.algorithm.oid.to_string();
        let key_type = match alg.as_str() {
            OID_ED25519 => KeyType::Ed25519,
            OID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map(|o| o.to_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    OID_P256 => KeyType::EcP256,
                    OID_P384 => KeyType::EcP384,
                    other => {
                        return Err(Error::msg(format!(
                            "unsupported elliptic curve {other}; uca supports P-256 and P-384"
                        )))
                    }
                }
            }
            OID_RSA => {
                let kp = ring::signature::RsaKeyPair::from_pkcs8(der)
                    .map_err(|e| Error::msg(format!("unusable RSA key: {e}")))?;
                match kp.public().modulus_len() * 8 {
                    2048 => KeyType::Rsa2048,
                    3072 => KeyType::Rsa3072,
                    4096 => KeyType::Rsa4096,
                    bits => {
                        return Err(Error::msg(format!(
                            "unsupported RSA key size {bits}; uca supports 2048, 3072 and 4096"
                        )))
                    }
                }
            }
            other => return Err(Error::msg(format!("unsupported key algorithm {other}"))),
        };
        let pkcs8 = if key_type == KeyType::Ed25519 {
            pkcs8_v1(der)?
        } else {
            Zeroizing::new(der.to_vec())
        };
        Ok(PrivateKey { key_type, pkcs8 })
    }

    /// An rcgen signing key for this key.
    pub fn key_pair(&self) -> Result<rcgen::KeyPair> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.as_slice());
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, self.key_type.signature_algorithm())
            .map_err(|e| Error::msg(format!("unusable {} key: {e}", self.key_type)))
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Unencrypted `PRIVATE KEY` PEM (PKCS#8 v1), as OpenSSL and every TLS
    /// stack read it.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode_config(
            &pem::Pem::new("PRIVATE KEY", self.pkcs8.to_vec()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ))
    }

    /// `ENCRYPTED PRIVATE KEY` PEM: PBES2 with scrypt (N=2^14, r=8, p=1, the
    /// most OpenSSL 3.0 accepts) and AES-256-CBC.
    pub fn encrypt(&self, passphrase: &Passphrase) -> Result<String> {
        use rand_core::RngCore;
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut salt);
        rand_core::OsRng.fill_bytes(&mut iv);
        let scrypt = pkcs8::pkcs5::scrypt::Params::new(14, 8, 1, 32)
            .map_err(|e| Error::msg(format!("scrypt parameters: {e}")))?;
        let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
            .map_err(|e| Error::msg(format!("PBES2 parameters: {e}")))?;
        let info = pkcs8::PrivateKeyInfo::from_der(&self.pkcs8)
            .map_err(|e| Error::msg(format!("cannot encode the key: {e}")))?;
        let doc = info
            .encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|e| Error::msg(format!("cannot encrypt the key: {e}")))?;
        Ok(pem::encode_config(
            &pem::Pem::new("ENCRYPTED PRIVATE KEY", doc.as_bytes().to_vec()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ))
    }

    /// Decrypts an `ENCRYPTED PRIVATE KEY` PEM.
    pub fn decrypt(pem_text: &str, passphrase: &Passphrase) -> Result<PrivateKey> {
        let block = pem::parse(pem_text)
            .map_err(|e| Error::msg(format!("the CA key file is not PEM: {e}")))?;
        if block.tag() != "ENCRYPTED PRIVATE KEY" {
            return Err(Error::msg(format!(
                "the CA key file holds a '{}' block; expected ENCRYPTED PRIVATE KEY",
                block.tag()
            )));
        }
        let enc = pkcs8::EncryptedPrivateKeyInfo::from_der(block.contents())
            .map_err(|e| Error::msg(format!("the CA key file is not encrypted PKCS#8: {e}")))?;
        let doc = enc.decrypt(passphrase.as_bytes()).map_err(|_| {
            Error::Passphrase("wrong passphrase: it does not decrypt the CA key".into())
        })?;
        PrivateKey::from_pkcs8_der(doc.as_bytes()).map_err(|_| {
            Error::Passphrase("wrong passphrase: it does not decrypt the CA key".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_key_public_half_is_the_one_its_private_key_derives() {
        use rcgen::PublicKeyData;
        for key in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let rounds = if key.is_rsa() { 1 } else { 40 };
            for _ in 0..rounds {
                let (private, public) = key.generate_for_leaf().unwrap();
                let derived = private.key_pair().unwrap();
                assert_eq!(public.der_bytes(), derived.der_bytes(), "{key}");
                assert_eq!(public.algorithm(), derived.algorithm(), "{key}");
            }
        }
    }

    #[test]
    fn a_pkcs8_document_of_another_shape_is_refused() {
        let (private, _) = KeyType::EcP256.generate_for_leaf().unwrap();
        let mut doc = private.pkcs8.to_vec();
        let at = doc.len() - 66;
        doc[at] ^= 0xff;
        assert!(ec_public_key_of_pkcs8(&doc, KeyType::EcP256).is_err());
        assert!(ec_public_key_of_pkcs8(&doc[..10], KeyType::EcP256).is_err());
        assert!(ec_public_key_of_pkcs8(&private.pkcs8, KeyType::EcP384).is_err());
    }
}
