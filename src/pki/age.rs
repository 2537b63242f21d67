//! Encryption to age X25519 recipients (the age v1 format,
//! age-encryption.org/v1), so that an escrow share opens only with its
//! custodian's age identity. uca only encrypts: custodians decrypt with
//! their own age tool (`age -d -i key.txt`), so uca never holds their keys.
//!
//! A file is a header wrapping a random 16-byte file key for each
//! recipient (an X25519 stanza: ephemeral key agreement, HKDF-SHA-256,
//! ChaCha20-Poly1305), closed by an HMAC-SHA-256 of the header, then the
//! payload: a 16-byte nonce and the plaintext in 64 KiB ChaCha20-Poly1305
//! chunks (STREAM: an 11-byte big-endian counter and a last-chunk flag as
//! the nonce). uca writes the ASCII-armored form, which survives mail and
//! print. All of it is ring's primitives; the recipient's bech32 text is
//! decoded here (BIP-173, checksum verified).

use base64::Engine;
use ring::rand::SecureRandom;
use ring::{aead, agreement, hkdf, hmac};
use zeroize::Zeroizing;

use crate::support::error::{Error, Result};

/// The first line of an armored age file.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";
/// The first line of a binary age file.
pub const VERSION_LINE: &str = "age-encryption.org/v1";
const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
const CHUNK: usize = 64 * 1024;
const FILE_KEY_LEN: usize = 16;
const NONCE_LEN: usize = 16;

/// An age X25519 recipient: a custodian's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    key: [u8; 32],
    /// As given, for messages.
    pub text: String,
}

impl Recipient {
    /// Parses `age1...`: bech32 with HRP "age", its checksum verified, 32
    /// bytes, and a key X25519 can agree with (not a point of small order).
    /// `what` names the setting in the error.
    pub fn parse(text: &str, what: &'static str) -> Result<Recipient> {
        let bad = |why: &str| {
            Error::invalid(
                what,
                text,
                format!("{why}; expected an age X25519 recipient (age1..., the public key age-keygen prints)"),
            )
        };
        if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
            return Err(bad(
                "it is an SSH public key; the custodian makes an age key with age-keygen",
            ));
        }
        let (hrp, data) = bech32_decode(text).map_err(bad)?;
        if hrp != "age" {
            return Err(bad(&format!("its prefix is '{hrp}1', not 'age1'")));
        }
        let bytes = from_five_bit(&data).ok_or_else(|| bad("its data is not whole bytes"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(&format!("it holds {} bytes, an X25519 key 32", b.len())))?;
        let recipient = Recipient {
            key,
            text: text.to_string(),
        };
        recipient
            .agree(&[0u8; FILE_KEY_LEN])
            .map_err(|_| bad("it is not a usable X25519 public key (a point of small order)"))?;
        Ok(recipient)
    }

    /// The key bytes, to tell two spellings of one key apart from two keys.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// Wraps `file_key` for this recipient: the stanza's ephemeral share
    /// and body.
    fn agree(&self, file_key: &[u8]) -> std::result::Result<([u8; 32], Vec<u8>), ()> {
        let rng = ring::rand::SystemRandom::new();
        let ephemeral =
            agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng).map_err(|_| ())?;
        let share: [u8; 32] = ephemeral
            .compute_public_key()
            .map_err(|_| ())?
            .as_ref()
            .try_into()
            .map_err(|_| ())?;
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, self.key);
        let mut salt = share.to_vec();
        salt.extend_from_slice(&self.key);
        let wrap = agreement::agree_ephemeral(ephemeral, &peer, |shared| {
            hkdf_key(shared, &salt, X25519_INFO)
        })
        .map_err(|_| ())?
        .map_err(|_| ())?;
        Ok((share, seal_once(wrap, file_key)))
    }
}

/// HKDF-SHA-256 to a ChaCha20-Poly1305 key.
fn hkdf_key(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
) -> std::result::Result<aead::LessSafeKey, ring::error::Unspecified> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk.expand(&info, &aead::CHACHA20_POLY1305)?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

/// ChaCha20-Poly1305 under a key used once, nonce zero.
fn seal_once(key: aead::LessSafeKey, plaintext: &[u8]) -> Vec<u8> {
    seal_chunk(&key, [0u8; 12], plaintext)
}

fn seal_chunk(key: &aead::LessSafeKey, nonce: [u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let mut out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut out,
    )
    .expect("a chunk of at most 64 KiB is within ChaCha20-Poly1305's limit");
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut bytes = Zeroizing::new([0u8; N]);
    ring::rand::SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| Error::msg("the system's random number generator failed"))?;
    Ok(bytes)
}

/// Encrypts `plaintext` to `recipient`, as an armored age file.
pub fn encrypt_armored(recipient: &Recipient, plaintext: &[u8]) -> Result<String> {
    let file_key = random::<FILE_KEY_LEN>()?;
    let nonce = random::<NONCE_LEN>()?;
    let (share, body) = recipient
        .agree(file_key.as_ref())
        .map_err(|_| Error::msg(format!("cannot encrypt to {}", recipient.text)))?;
    let mut file = header(&[stanza(&share, &body)], file_key.as_ref());
    file.extend_from_slice(&payload(file_key.as_ref(), &nonce, plaintext));
    Ok(armor(&file))
}

/// An X25519 stanza: its argument line and its body, wrapped at 64
/// columns and ended by a line shorter than 64 (empty if need be).
fn stanza(share: &[u8; 32], body: &[u8]) -> String {
    let mut text = format!("-> X25519 {}\n", b64(share));
    let encoded = b64(body);
    let mut rest = encoded.as_str();
    while rest.len() >= 64 {
        text.push_str(&rest[..64]);
        text.push('\n');
        rest = &rest[64..];
    }
    text.push_str(rest);
    text.push('\n');
    text
}

/// The header: the version line, the stanzas, and the MAC over all of it
/// up to and including "---".
fn header(stanzas: &[String], file_key: &[u8]) -> Vec<u8> {
    let mut text = format!("{VERSION_LINE}\n");
    for s in stanzas {
        text.push_str(s);
    }
    text.push_str("---");
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(file_key);
    let key: hmac::Key = prk
        .expand(&[b"header".as_slice()], hmac::HMAC_SHA256)
        .expect("32 bytes are within HKDF-SHA-256's output")
        .into();
    let mac = hmac::sign(&key, text.as_bytes());
    text.push(' ');
    text.push_str(&b64(mac.as_ref()));
    text.push('\n');
    text.into_bytes()
}

/// The payload: the nonce, then the plaintext in 64 KiB chunks, the last
/// one flagged (and non-empty, unless the whole plaintext is).
fn payload(file_key: &[u8], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let key =
        hkdf_key(file_key, nonce, b"payload").expect("32 bytes are within HKDF-SHA-256's output");
    let mut out = nonce.to_vec();
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(CHUNK).collect()
    };
    for (counter, chunk) in chunks.iter().enumerate() {
        out.extend_from_slice(&seal_chunk(
            &key,
            chunk_nonce(counter as u64, counter + 1 == chunks.len()),
            chunk,
        ));
    }
    out
}

/// STREAM's nonce: an 11-byte big-endian counter, then 1 for the last
/// chunk, 0 for the others.
fn chunk_nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// The strict PEM age reads: padded base64 in 64-column lines.
fn armor(file: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(file);
    let mut text = format!("{ARMOR_BEGIN}\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(ARMOR_END);
    text.push('\n');
    text
}

/// Whether `bytes` start as an age file does, armored or binary.
pub fn is_age_file(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    start.starts_with(ARMOR_BEGIN.as_bytes()) || start.starts_with(VERSION_LINE.as_bytes())
}

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// Decodes bech32 (BIP-173, without its length limit, as age uses it):
/// the lowercase HRP and the data's 5-bit groups, checksum removed.
fn bech32_decode(text: &str) -> std::result::Result<(String, Vec<u8>), &'static str> {
    if !text.bytes().all(|b| (33..=126).contains(&b)) {
        return Err("it holds a space or a character outside printable ASCII");
    }
    let lower = text.to_ascii_lowercase();
    if lower != text && text.to_ascii_uppercase() != text {
        return Err("it mixes upper and lower case");
    }
    let (hrp, data) = lower.rsplit_once('1').ok_or("it has no '1' separator")?;
    if hrp.is_empty() {
        return Err("its prefix is empty");
    }
    if data.len() < 6 {
        return Err("it is too short to hold a checksum");
    }
    let data = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<Vec<u8>>>()
        .ok_or("it holds a character outside the bech32 alphabet")?;
    let mut values: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|b| b & 31));
    values.extend_from_slice(&data);
    if polymod(&values) != 1 {
        return Err("its checksum does not match: a character is mistyped or missing");
    }
    Ok((hrp.to_string(), data[..data.len() - 6].to_vec()))
}

/// 5-bit groups to bytes; left-over bits (fewer than 5) must be zero.
fn from_five_bit(data: &[u8]) -> Option<Vec<u8>> {
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for &v in data {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (bits < 5 && acc & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // BIP-173's valid test vectors (the 83-character HRP one too).
    #[test]
    fn bech32_accepts_bip173_valid_strings() {
        for s in [
            "A12UEL5L",
            "a12uel5l",
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            "?1ezyfcl",
        ] {
            assert!(bech32_decode(s).is_ok(), "{s}: {:?}", bech32_decode(s));
        }
        let (hrp, data) = bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw").unwrap();
        assert_eq!(hrp, "abcdef");
        assert_eq!(data, (0..32).collect::<Vec<u8>>());
    }

    // BIP-173's invalid test vectors, but for the length limit age drops.
    #[test]
    fn bech32_refuses_bip173_invalid_strings() {
        for s in [
            "\u{20}1nwldj5",
            "\u{7f}1axkwrx",
            "\u{80}1eym55h",
            "pzry9x0s0muk",
            "1pzry9x0s0muk",
            "x1b4n0q5v",
            "li1dgmt3",
            "de1lg7wt\u{ff}",
            "A1G7SGD8",
            "10a06t8",
            "1qzzfhee",
        ] {
            assert!(bech32_decode(s).is_err(), "{s:?} was accepted");
        }
    }

    // A valid string with any one character changed fails its checksum.
    #[test]
    fn bech32_checksum_catches_every_single_substitution() {
        let good = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
        assert!(bech32_decode(good).is_ok());
        for i in 4..good.len() {
            for &c in CHARSET {
                if good.as_bytes()[i] == c {
                    continue;
                }
                let mut bad = good.as_bytes().to_vec();
                bad[i] = c;
                let bad = String::from_utf8(bad).unwrap();
                assert!(bech32_decode(&bad).is_err(), "{bad} was accepted");
            }
        }
    }

    // The age spec's example recipient, in lower and upper case.
    #[test]
    fn parses_the_spec_recipient() {
        let text = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
        let r = Recipient::parse(text, "--custodian").unwrap();
        let upper = Recipient::parse(&text.to_ascii_uppercase(), "--custodian").unwrap();
        assert_eq!(r.key(), upper.key());
        assert_eq!(r.key()[0], 0x13);
    }

    #[test]
    fn refuses_what_is_not_an_x25519_recipient() {
        let cases = [
            (
                "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwq",
                "checksum",
            ),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG", "SSH public key"),
            (
                "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",
                "prefix",
            ),
            ("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "prefix"),
            ("", "no '1' separator"),
        ];
        for (text, why) in cases {
            let e = Recipient::parse(text, "--custodian")
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && e.contains(text), "{text}: {e}");
        }
        // 31 and 33 bytes under the age prefix.
        for len in [31usize, 33] {
            let text = encode_for_test("age", &vec![9u8; len]);
            let e = Recipient::parse(&text, "--custodian")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("{len} bytes")), "{e}");
        }
        // The all-zero point is of small order: no key agreement with it.
        let zero = encode_for_test("age", &[0u8; 32]);
        let e = Recipient::parse(&zero, "--custodian")
            .unwrap_err()
            .to_string();
        assert!(e.contains("small order"), "{e}");
    }

    /// bech32 encoding, for building test recipients.
    fn encode_for_test(hrp: &str, bytes: &[u8]) -> String {
        let mut data = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                data.push(((acc >> bits) & 31) as u8);
            }
        }
        if bits > 0 {
            data.push(((acc << (5 - bits)) & 31) as u8);
        }
        let mut values: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
        values.push(0);
        values.extend(hrp.bytes().map(|b| b & 31));
        values.extend_from_slice(&data);
        values.extend_from_slice(&[0; 6]);
        let check = polymod(&values) ^ 1;
        data.extend((0..6).map(|i| ((check >> (5 * (5 - i))) & 31) as u8));
        let tail: String = data.iter().map(|&d| CHARSET[d as usize] as char).collect();
        format!("{hrp}1{tail}")
    }

    #[test]
    fn test_encoder_round_trips_the_spec_recipient() {
        let text = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
        let r = Recipient::parse(text, "--custodian").unwrap();
        assert_eq!(encode_for_test("age", r.key()), text);
    }

    fn unb64(text: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .unwrap()
    }

    // The header is the version line, one X25519 stanza (two arguments,
    // a 32-byte share, a 32-byte body: 16-byte key and tag) and a MAC that
    // HMAC-SHA-256 under HKDF(file key, "header") verifies over the header
    // through "---".
    #[test]
    fn header_has_the_spec_layout_and_mac() {
        let file_key = [7u8; 16];
        let r = Recipient::parse(
            "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
            "--custodian",
        )
        .unwrap();
        let (share, body) = r.agree(&file_key).unwrap();
        let h = String::from_utf8(header(&[stanza(&share, &body)], &file_key)).unwrap();
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 4, "{h}");
        assert_eq!(lines[0], "age-encryption.org/v1");
        let args: Vec<&str> = lines[1].split(' ').collect();
        assert_eq!(args[..2], ["->", "X25519"]);
        assert_eq!(unb64(args[2]), share);
        assert_eq!(unb64(lines[2]).len(), 32);
        assert!(lines[2].len() < 64);
        let (through, mac) = h.rsplit_once("--- ").unwrap();
        let key: hmac::Key = hkdf::Salt::new(hkdf::HKDF_SHA256, &[])
            .extract(&file_key)
            .expand(&[b"header".as_slice()], hmac::HMAC_SHA256)
            .unwrap()
            .into();
        let signed = format!("{through}---");
        hmac::verify(&key, signed.as_bytes(), &unb64(mac.trim_end())).unwrap();
        assert!(h.ends_with('\n'));
    }

    // Stanza bodies wrap at 64 columns and end with a shorter line, an
    // empty one when the body fills its last line.
    #[test]
    fn stanza_bodies_wrap_at_64_columns() {
        let share = [1u8; 32];
        for (len, lines) in [
            (0usize, 1usize),
            (32, 1),
            (47, 1),
            (48, 2),
            (49, 2),
            (96, 3),
        ] {
            let s = stanza(&share, &vec![5u8; len]);
            let body: Vec<&str> = s.lines().skip(1).collect();
            assert_eq!(body.len(), lines, "{len}: {s}");
            assert!(body[..lines - 1].iter().all(|l| l.len() == 64));
            assert!(body[lines - 1].len() < 64);
            assert_eq!(unb64(&body.concat()).len(), len);
        }
    }

    fn open_payload(file_key: &[u8], data: &[u8]) -> Vec<u8> {
        let (nonce, mut rest) = data.split_at(NONCE_LEN);
        let key = hkdf_key(file_key, nonce, b"payload").unwrap();
        let mut plain = Vec::new();
        let mut counter = 0u64;
        loop {
            let take = rest.len().min(CHUNK + 16);
            let last = take == rest.len();
            let mut chunk = rest[..take].to_vec();
            let opened = key
                .open_in_place(
                    aead::Nonce::assume_unique_for_key(chunk_nonce(counter, last)),
                    aead::Aad::empty(),
                    &mut chunk,
                )
                .expect("chunk opens with its STREAM nonce");
            assert!(
                !opened.is_empty() || (counter == 0 && last),
                "empty non-sole chunk"
            );
            plain.extend_from_slice(opened);
            rest = &rest[take..];
            counter += 1;
            if last {
                return plain;
            }
        }
    }

    // STREAM: 64 KiB chunks, the counter and last flag in the nonce, a
    // final chunk that is empty only for an empty plaintext (so a
    // plaintext of exactly 64 KiB is one chunk, not two).
    #[test]
    fn payload_chunks_as_the_spec_says() {
        let file_key = [3u8; 16];
        let nonce = [4u8; 16];
        for len in [
            0,
            1,
            700,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            2 * CHUNK + 5,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let data = payload(&file_key, &nonce, &plain);
            let chunks = len.div_ceil(CHUNK).max(1);
            assert_eq!(data.len(), NONCE_LEN + len + 16 * chunks, "{len}");
            assert_eq!(data[..NONCE_LEN], nonce);
            assert_eq!(open_payload(&file_key, &data), plain, "{len}");
        }
        assert_eq!(
            chunk_nonce(0x0102, true),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]
        );
    }

    // The armor is strict PEM: 64-column padded base64 between the labels.
    #[test]
    fn armored_file_is_strict_pem_around_the_binary_file() {
        let r = Recipient::parse(
            "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
            "--custodian",
        )
        .unwrap();
        let text = encrypt_armored(&r, b"a share\n").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ARMOR_BEGIN);
        assert_eq!(*lines.last().unwrap(), ARMOR_END);
        let body = &lines[1..lines.len() - 1];
        assert!(body[..body.len() - 1].iter().all(|l| l.len() == 64));
        assert!(!body.last().unwrap().is_empty() && body.last().unwrap().len() <= 64);
        let binary = base64::engine::general_purpose::STANDARD
            .decode(body.concat())
            .unwrap();
        assert!(binary.starts_with(b"age-encryption.org/v1\n-> X25519 "));
        assert!(is_age_file(text.as_bytes()) && is_age_file(&binary));
        assert!(!is_age_file(b"{\"format\": \"uca-escrow-share-1\"}"));
        // A fresh file key and ephemeral key every time.
        assert_ne!(text, encrypt_armored(&r, b"a share\n").unwrap());
    }
}
