//! The facts `inspect` reports, shaped as the JSON document. Field names are
//! part of the interface: scripts read them, so rename nothing.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Serialize)]
pub struct Block {
    /// 1-based position in the file.
    pub index: usize,
    #[serde(flatten)]
    pub body: Body,
}

/// What a block holds; `type` in the JSON.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Certificate(Certificate),
    Csr(Csr),
    PublicKey { public_key: PublicKey },
    PrivateKey(PrivateKey),
    EncryptedPrivateKey(EncryptedPrivateKey),
}

#[derive(Debug, Serialize)]
pub struct Certificate {
    pub version: u32,
    /// Colon hex, as OpenSSL prints it.
    pub serial: String,
    pub signature_algorithm: String,
    pub issuer: String,
    pub subject: String,
    pub self_signed: bool,
    /// RFC 3339, UTC.
    pub not_before: String,
    pub not_after: String,
    /// `valid`, `expired` or `not_yet_valid`, at the time of inspection.
    pub status: &'static str,
    /// Until not_after; negative once expired.
    pub seconds_left: i64,
    /// Whole days until not_after, rounded down (-1 just after expiry).
    pub days_left: i64,
    pub public_key: PublicKey,
    pub extensions: Vec<Extension>,
    /// SHA-256 of the whole certificate, colon hex.
    pub sha256_fingerprint: String,
}

#[derive(Debug, Serialize)]
pub struct Csr {
    pub version: u32,
    pub subject: String,
    pub signature_algorithm: String,
    /// Whether the CSR is signed by the key it carries (proof of possession).
    pub signature_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_error: Option<String>,
    pub public_key: PublicKey,
    /// The extensions the requester asked for (a CA may ignore them).
    pub extensions: Vec<Extension>,
}

#[derive(Debug, Serialize)]
pub struct PublicKey {
    /// `EC`, `RSA`, `Ed25519`, `Ed448`, or the algorithm OID.
    pub algorithm: String,
    /// `P-256`, `P-384`, `P-521` or the curve OID, for EC keys.
    pub curve: Option<String>,
    pub bits: Option<u32>,
    /// SHA-256 of the SubjectPublicKeyInfo, base64: equal for a certificate
    /// and its private key.
    pub spki_sha256_pin: String,
}

#[derive(Debug, Serialize)]
pub struct PrivateKey {
    /// uca's name for the key type (`ec-p256`, `rsa-2048`, ...) or, for a
    /// key uca cannot use, the algorithm.
    pub key_type: String,
    /// None when the key type is not one uca can derive the public key for.
    pub public_key: Option<PublicKey>,
}

#[derive(Debug, Serialize)]
pub struct EncryptedPrivateKey {
    /// `PBES2` (or `PBES1`, which is weak).
    pub scheme: String,
    /// `scrypt` or `PBKDF2`.
    pub kdf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_r: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_p: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pbkdf2_iterations: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pbkdf2_prf: Option<String>,
    pub cipher: String,
}

#[derive(Debug, Serialize)]
pub struct Extension {
    pub oid: String,
    pub critical: bool,
    #[serde(flatten)]
    pub kind: ExtensionKind,
}

/// One extension, readable; `name` in the JSON.
#[derive(Debug, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ExtensionKind {
    BasicConstraints {
        ca: bool,
        pathlen: Option<u32>,
    },
    /// RFC 5280 bit names: digitalSignature, keyCertSign, ...
    KeyUsage {
        usages: Vec<String>,
    },
    /// serverAuth, clientAuth, ... or OIDs.
    ExtendedKeyUsage {
        usages: Vec<String>,
    },
    /// DNS:x, IP:x, EMAIL:x, URI:x.
    SubjectAltNames {
        names: Vec<String>,
    },
    SubjectKeyIdentifier {
        key_id: String,
    },
    AuthorityKeyIdentifier {
        key_id: Option<String>,
    },
    /// DNS:suffix or IP:network/prefix.
    NameConstraints {
        permitted: Vec<String>,
        excluded: Vec<String>,
    },
    /// Where to fetch the issuer and ask about revocation:
    /// `OCSP URI:...`, `caIssuers URI:...`.
    AuthorityInfoAccess {
        access: Vec<String>,
    },
    /// Where the CRLs are, usually `URI:...`.
    CrlDistributionPoints {
        points: Vec<String>,
    },
    /// Anything else: the registered short name if there is one, or
    /// nothing for an extension unknown to uca.
    Other {
        label: Option<String>,
        bytes: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}
