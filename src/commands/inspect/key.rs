//! Public keys, private keys and encrypted private keys. A private key is
//! reduced to its type and public key at once; nothing secret reaches the
//! description.

use pkcs8::der::Decode;
use pkcs8::pkcs5::{self, pbes2};
use rcgen::PublicKeyData;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::model::{EncryptedPrivateKey, PrivateKey, PublicKey};
use crate::pki::x509;

const OID_EC: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

pub fn public_key(der: &[u8]) -> Result<PublicKey, String> {
    match SubjectPublicKeyInfo::from_der(der) {
        Ok(([], spki)) => Ok(describe_spki(&spki)),
        Ok(_) => Err("trailing bytes after the public key".into()),
        Err(e) => Err(format!("not a public key (SubjectPublicKeyInfo): {e}")),
    }
}

/// Algorithm, curve or size, and the SPKI pin of a public key.
pub fn describe_spki(spki: &SubjectPublicKeyInfo<'_>) -> PublicKey {
    let alg = spki.algorithm.algorithm.to_id_string();
    let param = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let (algorithm, curve) = algorithm_name(&alg, param.as_deref());
    let bits = match alg.as_str() {
        OID_RSA => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(significant_bits(rsa.modulus)),
            _ => None,
        },
        OID_EC => match curve.as_deref() {
            Some("P-256") => Some(256),
            Some("P-384") => Some(384),
            Some("P-521") => Some(521),
            _ => None,
        },
        "1.3.101.112" => Some(256),
        "1.3.101.113" => Some(456),
        _ => None,
    };
    PublicKey {
        algorithm,
        curve,
        bits,
        spki_sha256_pin: x509::spki_pin(spki.raw),
    }
}

/// (`EC`, `P-256`), (`RSA`, -), (`Ed25519`, -), or the OIDs themselves.
fn algorithm_name(alg: &str, param: Option<&str>) -> (String, Option<String>) {
    match alg {
        OID_EC => {
            let curve = match param {
                Some("1.2.840.10045.3.1.7") => "P-256".to_string(),
                Some("1.3.132.0.34") => "P-384".to_string(),
                Some("1.3.132.0.35") => "P-521".to_string(),
                Some(other) => other.to_string(),
                None => "unknown".to_string(),
            };
            ("EC".into(), Some(curve))
        }
        OID_RSA => ("RSA".into(), None),
        "1.3.101.112" => ("Ed25519".into(), None),
        "1.3.101.113" => ("Ed448".into(), None),
        other => (other.to_string(), None),
    }
}

/// Bit length of a big-endian unsigned integer (DER may prefix a zero).
fn significant_bits(n: &[u8]) -> u32 {
    match n.iter().position(|b| *b != 0) {
        Some(i) => (n.len() - i) as u32 * 8 - n[i].leading_zeros(),
        None => 0,
    }
}

/// Unencrypted PKCS#8. The public key is derived (via rcgen) for the key
/// types uca uses; any other key is still named, without a public key.
pub fn private_key(der: &[u8]) -> Result<PrivateKey, String> {
    match crate::pki::keys::PrivateKey::from_pkcs8_der(der) {
        Ok(key) => {
            let key_type = key.key_type().to_string();
            let spki = key
                .key_pair()
                .map_err(|e| e.to_string())?
                .subject_public_key_info();
            drop(key); // wipes the secret now rather than at the end of the scope
            Ok(PrivateKey {
                key_type,
                public_key: Some(public_key(&spki)?),
            })
        }
        Err(why) => {
            let info = pkcs8::PrivateKeyInfo::from_der(der)
                .map_err(|e| format!("not a PKCS#8 private key: {e}"))?;
            let param = info.algorithm.parameters_oid().ok().map(|o| o.to_string());
            let (algorithm, curve) =
                algorithm_name(&info.algorithm.oid.to_string(), param.as_deref());
            let name = curve.map_or(algorithm.clone(), |c| format!("{algorithm} {c}"));
            Ok(PrivateKey {
                key_type: format!("{name} ({why})"),
                public_key: None,
            })
        }
    }
}

/// The PBES2 (or PBES1) parameters of an `ENCRYPTED PRIVATE KEY`: enough to
/// judge how hard the passphrase is to brute-force, nothing about the key.
pub fn encrypted_private_key(der: &[u8]) -> Result<EncryptedPrivateKey, String> {
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der)
        .map_err(|e| format!("not an encrypted PKCS#8 private key uca can read: {e}"))?;
    let mut out = EncryptedPrivateKey {
        scheme: String::new(),
        kdf: None,
        scrypt_n: None,
        scrypt_r: None,
        scrypt_p: None,
        pbkdf2_iterations: None,
        pbkdf2_prf: None,
        cipher: String::new(),
    };
    match &info.encryption_algorithm {
        pkcs5::EncryptionScheme::Pbes2(params) => {
            out.scheme = "PBES2".into();
            if let Some(s) = params.kdf.scrypt() {
                out.kdf = Some("scrypt".into());
                out.scrypt_n = Some(s.cost_parameter);
                out.scrypt_r = Some(s.block_size);
                out.scrypt_p = Some(s.parallelization);
            } else if let Some(p) = params.kdf.pbkdf2() {
                out.kdf = Some("PBKDF2".into());
                out.pbkdf2_iterations = Some(p.iteration_count);
                out.pbkdf2_prf = Some(prf_name(p.prf).into());
            } else {
                out.kdf = Some(params.kdf.oid().to_string());
            }
            out.cipher = match params.encryption {
                pbes2::EncryptionScheme::Aes128Cbc { .. } => "AES-128-CBC".into(),
                pbes2::EncryptionScheme::Aes192Cbc { .. } => "AES-192-CBC".into(),
                pbes2::EncryptionScheme::Aes256Cbc { .. } => "AES-256-CBC".into(),
                ref other => other.oid().to_string(),
            };
        }
        pkcs5::EncryptionScheme::Pbes1(alg) => {
            out.scheme = "PBES1 (weak)".into();
            out.cipher = format!("{:?}", alg.encryption);
        }
        other => {
            out.scheme = other.oid().to_string();
            out.cipher = "unknown".into();
        }
    }
    Ok(out)
}

fn prf_name(prf: pbes2::Pbkdf2Prf) -> &'static str {
    match prf {
        pbes2::Pbkdf2Prf::HmacWithSha1 => "HMAC-SHA1",
        pbes2::Pbkdf2Prf::HmacWithSha224 => "HMAC-SHA224",
        pbes2::Pbkdf2Prf::HmacWithSha256 => "HMAC-SHA256",
        pbes2::Pbkdf2Prf::HmacWithSha384 => "HMAC-SHA384",
        pbes2::Pbkdf2Prf::HmacWithSha512 => "HMAC-SHA512",
        _ => "another HMAC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01, 0x00]), 9);
        assert_eq!(significant_bits(&[0x00]), 0);
    }
}
