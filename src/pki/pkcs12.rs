//! PKCS#12 (PFX, RFC 7292) export: a certificate, its chain and its private
//! key in one password-protected file, for Java (`KeyStore` "PKCS12",
//! `keytool`) and OpenSSL 3 without `-legacy`.
//!
//! The layout is what `openssl pkcs12 -export` (OpenSSL 3 defaults) writes:
//!
//! ```text
//! PFX { version 3,
//!   authSafe ContentInfo(id-data) -> AuthenticatedSafe {
//!     ContentInfo(id-encryptedData, PBES2) -> SafeContents {
//!       certBag(leaf) {friendlyName, localKeyId}, certBag(CA) ... },
//!     ContentInfo(id-data) -> SafeContents {
//!       pkcs8ShroudedKeyBag(PBES2) {friendlyName, localKeyId} } },
//!   macData { HMAC-SHA256, salt, iterations } }
//! ```
//!
//! Every PBES2 uses PBKDF2-HMAC-SHA256 and AES-256-CBC with its own random
//! salt and IV, keyed by the password's bytes (as OpenSSL 3 and Java do).
//! The MAC key comes from the PKCS#12 KDF (RFC 7292 appendix B.2) over the
//! password as a zero-terminated big-endian BMPString. The password must be
//! non-empty printable ASCII: Java 17 cannot open a PBES2-protected PKCS#12
//! file whose password is anything else ("Password is not ASCII").
//! `localKeyId` is the SHA-256 of the leaf certificate and sits on both the
//! leaf's certBag and the keyBag, so Java pairs them into one
//! `PrivateKeyEntry`.
//!
//! The `der` crate (through `pkcs8`) encodes the primitives and the PBES2
//! pieces; the PKCS#12 containers are assembled with the small helpers below.

use pkcs8::der::asn1::ObjectIdentifier;
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::{pbes2, EncryptionScheme};
use rand_core::RngCore;
use zeroize::Zeroizing;

use crate::pki::keys::PrivateKey;
use crate::pki::passphrase::Passphrase;
use crate::support::error::{Error, Result};

/// PBKDF2 and MAC iteration count: OpenSSL 3's `PKCS12_DEFAULT_ITER`.
pub const ITERATIONS: u32 = 2048;

const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const OID_SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const OID_CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const OID_X509_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const OID_FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
const OID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_BMP_STRING: u8 = 0x1e;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
/// `[0]` primitive: `encryptedContent [0] IMPLICIT OCTET STRING`.
const TAG_CONTEXT_0_PRIMITIVE: u8 = 0x80;
/// `[0]` constructed: `[0] EXPLICIT`.
const TAG_CONTEXT_0_EXPLICIT: u8 = 0xa0;

/// Builds a DER PKCS#12 file holding `cert_der` (the leaf), `chain_der` (the
/// CA certificates after it, usually just the root) and `key`, protected by
/// `password`. `friendly_name` becomes the Java alias.
pub fn build(
    cert_der: &[u8],
    chain_der: &[Vec<u8>],
    key: &PrivateKey,
    password: &Passphrase,
    friendly_name: &str,
) -> Result<Vec<u8>> {
    check_password(password)?;
    let name = bmp_string(friendly_name)?;
    check_key_matches(cert_der, key)?;
    for (i, ca) in chain_der.iter().enumerate() {
        crate::pki::x509::parse(ca).map_err(|why| {
            Error::msg(format!(
                "chain certificate {} for the PKCS#12 file: {why}",
                i + 1
            ))
        })?;
    }

    let local_key_id = ring::digest::digest(&ring::digest::SHA256, cert_der);
    let attributes = bag_attributes(&name, local_key_id.as_ref());

    // (1) the certificates, encrypted.
    let mut cert_bags = vec![cert_bag(cert_der, Some(&attributes))];
    cert_bags.extend(chain_der.iter().map(|ca| cert_bag(ca, None)));
    let cert_safe = sequence(&cert_bags);
    let certs_info = encrypted_data(&cert_safe, password)?;

    // (2) the key, in a shrouded key bag inside plain data.
    let key_safe = sequence(&[shrouded_key_bag(key, password, &attributes)?]);
    let key_info = data_content_info(&key_safe);

    let auth_safe = sequence(&[certs_info, key_info]);
    let mac = mac_data(&auth_safe, password)?;
    Ok(sequence(&[integer(3), data_content_info(&auth_safe), mac]))
}

/// A non-empty printable-ASCII password, as Java and OpenSSL both accept.
fn check_password(password: &Passphrase) -> Result<()> {
    if password.as_str().is_empty() {
        return Err(Error::Passphrase(
            "a PKCS#12 file needs a non-empty password; Java and OpenSSL treat empty-password files inconsistently"
                .into(),
        ));
    }
    // Java 17's PBE key factory throws "Password is not ASCII" for anything
    // else, so Java could not open the file (OpenSSL could). The character
    // itself is not echoed: it is part of a secret.
    if !password.as_str().chars().all(|c| (' '..='~').contains(&c)) {
        return Err(Error::Passphrase(
            "the PKCS#12 password contains a character outside printable ASCII; Java's PKCS12 KeyStore refuses such passwords, so uca does too"
                .into(),
        ));
    }
    Ok(())
}

/// Java's trusted-key-usage attribute (Oracle's arc): a certBag carrying it
/// is read by Java's PKCS12 `KeyStore` as a `trustedCertEntry`.
const OID_ORACLE_TRUSTED_KEY_USAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");
const OID_ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// Builds a DER PKCS#12 truststore: one certBag per `(certificate, alias)`,
/// each with its friendlyName and the trusted-key-usage attribute, no key,
/// encrypted and MACed with `password` as [`build`] does. Without a
/// password the certificates are plain data and there is no MAC, the
/// password-less form Java reads with no trustStorePassword (and writes
/// itself since Java 18): a truststore holds only public certificates.
pub fn build_truststore(
    entries: &[(&[u8], &str)],
    password: Option<&Passphrase>,
) -> Result<Vec<u8>> {
    if let Some(password) = password {
        check_password(password)?;
    }
    let mut bags = Vec::new();
    for (der, alias) in entries {
        crate::pki::x509::parse(der)
            .map_err(|why| Error::msg(format!("certificate {alias} for the truststore: {why}")))?;
        let attributes = set_of(vec![
            sequence(&[
                oid(OID_FRIENDLY_NAME),
                set_of(vec![tlv(TAG_BMP_STRING, &bmp_string(alias)?)]),
            ]),
            sequence(&[
                oid(OID_ORACLE_TRUSTED_KEY_USAGE),
                set_of(vec![oid(OID_ANY_EXTENDED_KEY_USAGE)]),
            ]),
        ]);
        bags.push(cert_bag(der, Some(&attributes)));
    }
    let Some(password) = password else {
        let auth_safe = sequence(&[data_content_info(&sequence(&bags))]);
        return Ok(sequence(&[integer(3), data_content_info(&auth_safe)]));
    };
    let certs_info = encrypted_data(&sequence(&bags), password)?;
    let auth_safe = sequence(&[certs_info]);
    let mac = mac_data(&auth_safe, password)?;
    Ok(sequence(&[integer(3), data_content_info(&auth_safe), mac]))
}

/// The key must be the one the leaf certificate certifies, or Java would pair
/// a certificate with a key that cannot use it.
fn check_key_matches(cert_der: &[u8], key: &PrivateKey) -> Result<()> {
    let cert = crate::pki::x509::parse(cert_der)
        .map_err(|why| Error::msg(format!("the certificate for the PKCS#12 file: {why}")))?;
    let key_pair = key.key_pair()?;
    let public = rcgen::PublicKeyData::der_bytes(&key_pair);
    if cert.public_key().subject_public_key.data.as_ref() != public {
        return Err(Error::msg(format!(
            "the {} private key does not belong to the certificate {}; refusing to pair them in a PKCS#12 file",
            key.key_type(),
            cert.subject()
        )));
    }
    Ok(())
}

/// `CertBag` in a `SafeBag`: `SEQUENCE { certBag, [0] { SEQUENCE {
/// x509Certificate, [0] OCTET STRING cert } }, attributes? }`.
fn cert_bag(cert_der: &[u8], attributes: Option<&[u8]>) -> Vec<u8> {
    let value = sequence(&[
        oid(OID_X509_CERTIFICATE),
        explicit0(&octet_string(cert_der)),
    ]);
    safe_bag(OID_CERT_BAG, &value, attributes)
}

/// `pkcs8ShroudedKeyBag`: the key as a PBES2 `EncryptedPrivateKeyInfo`.
fn shrouded_key_bag(key: &PrivateKey, password: &Passphrase, attributes: &[u8]) -> Result<Vec<u8>> {
    let salt = random16();
    let iv = random16();
    let params = pbes2_params(&salt, &iv)?;
    let info = pkcs8::PrivateKeyInfo::from_der(key.pkcs8_der())
        .map_err(|e| Error::msg(format!("cannot encode the key for the PKCS#12 file: {e}")))?;
    let encrypted = info
        .encrypt_with_params(params, password.as_bytes())
        .map_err(|e| Error::msg(format!("cannot encrypt the key for the PKCS#12 file: {e}")))?;
    Ok(safe_bag(
        OID_SHROUDED_KEY_BAG,
        encrypted.as_bytes(),
        Some(attributes),
    ))
}

fn safe_bag(bag_id: ObjectIdentifier, value: &[u8], attributes: Option<&[u8]>) -> Vec<u8> {
    let mut parts = vec![oid(bag_id), explicit0(value)];
    parts.extend(attributes.map(<[u8]>::to_vec));
    sequence(&parts)
}

/// `SET OF PKCS12Attribute` with friendlyName and localKeyId.
fn bag_attributes(bmp_name: &[u8], local_key_id: &[u8]) -> Vec<u8> {
    set_of(vec![
        sequence(&[
            oid(OID_FRIENDLY_NAME),
            set_of(vec![tlv(TAG_BMP_STRING, bmp_name)]),
        ]),
        sequence(&[
            oid(OID_LOCAL_KEY_ID),
            set_of(vec![octet_string(local_key_id)]),
        ]),
    ])
}

/// `ContentInfo(id-encryptedData)` holding `plaintext` encrypted with PBES2.
fn encrypted_data(plaintext: &[u8], password: &Passphrase) -> Result<Vec<u8>> {
    let salt = random16();
    let iv = random16();
    let params = pbes2_params(&salt, &iv)?;
    let ciphertext = params
        .encrypt(password.as_bytes(), plaintext)
        .map_err(|e| {
            Error::msg(format!(
                "cannot encrypt the certificates for the PKCS#12 file: {e}"
            ))
        })?;
    let algorithm = EncryptionScheme::from(params)
        .to_der()
        .map_err(|e| Error::msg(format!("cannot encode the PBES2 parameters: {e}")))?;
    // EncryptedData { version 0, EncryptedContentInfo { id-data, alg, [0] IMPLICIT ciphertext } }
    let content_info = sequence(&[
        oid(OID_DATA),
        algorithm,
        tlv(TAG_CONTEXT_0_PRIMITIVE, &ciphertext),
    ]);
    let encrypted = sequence(&[integer(0), content_info]);
    Ok(sequence(&[oid(OID_ENCRYPTED_DATA), explicit0(&encrypted)]))
}

/// `ContentInfo(id-data)`: `SEQUENCE { id-data, [0] { OCTET STRING content } }`.
fn data_content_info(content: &[u8]) -> Vec<u8> {
    sequence(&[oid(OID_DATA), explicit0(&octet_string(content))])
}

fn pbes2_params<'a>(salt: &'a [u8; 16], iv: &'a [u8; 16]) -> Result<pbes2::Parameters<'a>> {
    pbes2::Parameters::pbkdf2_sha256_aes256cbc(ITERATIONS, salt, iv)
        .map_err(|e| Error::msg(format!("PBES2 parameters: {e}")))
}

/// `MacData { DigestInfo { sha256, HMAC }, salt, iterations }` over the
/// AuthenticatedSafe bytes.
fn mac_data(auth_safe: &[u8], password: &Passphrase) -> Result<Vec<u8>> {
    let salt = random16();
    let bmp_password = bmp_password(password.as_str());
    let mac_key = pkcs12_kdf_sha256(&bmp_password, &salt, 3, ITERATIONS, 32);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key);
    let tag = ring::hmac::sign(&key, auth_safe);
    let digest_info = sequence(&[
        sequence(&[oid(OID_SHA256), tlv(TAG_NULL, &[])]),
        octet_string(tag.as_ref()),
    ]);
    Ok(sequence(&[
        digest_info,
        octet_string(&salt),
        integer(ITERATIONS),
    ]))
}

/// The PKCS#12 key derivation function (RFC 7292 appendix B.2) with SHA-256
/// (u = 32, v = 64). `password` is already a zero-terminated BMPString.
fn pkcs12_kdf_sha256(
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u32,
    n: usize,
) -> Zeroizing<Vec<u8>> {
    use ring::digest::{digest, Context, SHA256};
    const U: usize = 32;
    const V: usize = 64;
    let repeat = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        src.iter()
            .cycle()
            .take(V * src.len().div_ceil(V))
            .copied()
            .collect()
    };
    let d = [id; V];
    let mut i = Zeroizing::new(repeat(salt));
    i.extend_from_slice(&Zeroizing::new(repeat(password)));
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    loop {
        let mut ctx = Context::new(&SHA256);
        ctx.update(&d);
        ctx.update(&i);
        let mut a = ctx.finish();
        for _ in 1..iterations {
            a = digest(&SHA256, a.as_ref());
        }
        let a = a.as_ref();
        let take = (n - out.len()).min(U);
        out.extend_from_slice(&a[..take]);
        if out.len() == n {
            return out;
        }
        // B = A repeated to v bytes; every v-byte block of I becomes (I_j + B + 1) mod 2^(8v).
        let b = Zeroizing::new(a.iter().cycle().take(V).copied().collect::<Vec<u8>>());
        for block in i.chunks_mut(V) {
            let mut carry = 1u16;
            for k in (0..V).rev() {
                let sum = u16::from(block[k]) + u16::from(b[k]) + carry;
                block[k] = sum as u8;
                carry = sum >> 8;
            }
        }
    }
}

/// The password as PKCS#12 wants it for the MAC: big-endian UTF-16 with a
/// two-byte zero terminator (characters beyond the BMP as surrogate pairs,
/// as OpenSSL and Java do).
fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// The friendly name as BMPString content (UCS-2 big-endian, no terminator).
fn bmp_string(name: &str) -> Result<Vec<u8>> {
    if name.is_empty() {
        return Err(Error::invalid(
            "PKCS#12 friendly name",
            name,
            "a non-empty name (it becomes the Java alias)",
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| u32::from(*c) > 0xffff || c.is_control())
    {
        return Err(Error::invalid(
            "PKCS#12 friendly name",
            name,
            format!(
                "printable characters from the Basic Multilingual Plane (BMPString); {c:?} is not"
            ),
        ));
    }
    Ok(name.encode_utf16().flat_map(u16::to_be_bytes).collect())
}

fn random16() -> [u8; 16] {
    let mut out = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut out);
    out
}

// DER helpers for the containers.

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(elements: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &elements.concat())
}

/// DER `SET OF`: elements sorted by their encodings (X.690 11.6) when there
/// are several.
fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    if elements.len() > 1 {
        elements.sort();
    }
    tlv(TAG_SET, &elements.concat())
}

fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, content)
}

fn explicit0(inner: &[u8]) -> Vec<u8> {
    tlv(TAG_CONTEXT_0_EXPLICIT, inner)
}

fn oid(oid: ObjectIdentifier) -> Vec<u8> {
    tlv(0x06, oid.as_bytes())
}

/// A non-negative INTEGER in minimal two's complement.
fn integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    let mut content = bytes[skip..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    tlv(TAG_INTEGER, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Vectors from OpenSSL 3.0: `openssl kdf -keylen N -kdfopt digest:SHA256
    // -kdfopt hexpass:0073006d006500670000 -kdfopt hexsalt:0a58cf64530d823f
    // -kdfopt iter:I -kdfopt id:D PKCS12KDF` (the password "smeg" as a
    // zero-terminated BMPString: the KDF takes it already encoded).
    #[test]
    fn pkcs12_kdf_matches_openssl() {
        let salt = unhex("0a58cf64530d823f");
        let pw = bmp_password("smeg");
        assert_eq!(
            pkcs12_kdf_sha256(&pw, &salt, 3, 2048, 32).as_slice(),
            unhex("E4388CD88983083B1D1552867406CB3426E16CBCF4358C7BF5A97CDB2A11DB46")
        );
        // 100 bytes: four hash blocks, so the I_j + B + 1 update is exercised.
        assert_eq!(
            pkcs12_kdf_sha256(&pw, &salt, 1, 1, 100).as_slice(),
            unhex(
                "27E90D7ED5A1C411BA878BC090F5CEBE5E9D5FE3D62B73AABBCABFC91DAD48733107E6ED46BFA918E5811FFF41279E1A\
                 FDD9C5F9B02A15A316992570F517C948F8F67BA466897F7815B0DF822F4178EB5800D0668602820A0F24D377181060C5DB75790B"
            )
        );
    }

    #[test]
    fn bmp_password_is_utf16be_zero_terminated() {
        assert_eq!(bmp_password("aé").as_slice(), &[0, b'a', 0, 0xe9, 0, 0]);
        assert_eq!(
            bmp_password("😀").as_slice(),
            &[0xd8, 0x3d, 0xde, 0x00, 0, 0]
        );
    }

    #[test]
    fn friendly_names_must_be_bmp_and_non_empty() {
        assert_eq!(
            bmp_string("web1").unwrap(),
            vec![0, b'w', 0, b'e', 0, b'b', 0, b'1']
        );
        assert!(bmp_string("").is_err());
        assert!(bmp_string("a😀").is_err());
        assert!(bmp_string("a\nb").is_err());
    }

    #[test]
    fn der_helpers() {
        assert_eq!(tlv(0x04, &[]), vec![0x04, 0x00]);
        assert_eq!(&tlv(0x04, &[0; 0x80])[..3], &[0x04, 0x81, 0x80]);
        assert_eq!(&tlv(0x04, &[0; 0x1234])[..4], &[0x04, 0x82, 0x12, 0x34]);
        assert_eq!(integer(0), vec![0x02, 0x01, 0x00]);
        assert_eq!(integer(3), vec![0x02, 0x01, 0x03]);
        assert_eq!(integer(128), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(2048), vec![0x02, 0x02, 0x08, 0x00]);
        assert_eq!(integer(2048), 2048u32.to_der().unwrap());
        assert_eq!(oid(OID_DATA), OID_DATA.to_der().unwrap());
        // Sorted by encoding when several, as given when one.
        assert_eq!(
            set_of(vec![vec![0x04, 0x01, 0x02], vec![0x04, 0x01, 0x01]]),
            vec![0x31, 0x06, 4, 1, 1, 4, 1, 2]
        );
        assert_eq!(set_of(vec![vec![0x05, 0x00]]), vec![0x31, 0x02, 0x05, 0x00]);
    }
}
