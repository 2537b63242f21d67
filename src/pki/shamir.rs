//! Shamir's secret sharing over GF(2^8), byte by byte: each secret byte is
//! the constant term of a random polynomial of degree M-1, share `x` holds
//! the polynomials' values at `x` (1..=N), and any M shares give the
//! secret back by Lagrange interpolation at 0; M-1 shares are consistent
//! with every secret alike. The field is AES's (x^8+x^4+x^3+x+1), checked
//! against the worked products of FIPS-197; multiplication runs in the
//! same time whatever its operands.
//!
//! Small enough to read whole, and tested exhaustively below, which is why
//! uca carries it rather than a crate.

use rand_core::RngCore;
use zeroize::Zeroizing;

/// Multiplication in GF(2^8), without branches on the operands.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// The inverse of a non-zero element: a^254.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut power = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, power);
        }
        power = mul(power, power);
        e >>= 1;
    }
    result
}

/// Splits `secret` into `n` shares, any `m` of which recombine it
/// (2 <= m <= n <= 255, checked by the caller). Share `i` is for x = i + 1.
pub fn split(secret: &[u8], m: u8, n: u8) -> Vec<Zeroizing<Vec<u8>>> {
    assert!(2 <= m && m <= n, "threshold {m} of {n}");
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..n)
        .map(|_| Zeroizing::new(Vec::with_capacity(secret.len())))
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; usize::from(m)]);
    for &byte in secret {
        coefficients[0] = byte;
        rand_core::OsRng.fill_bytes(&mut coefficients[1..]);
        for (i, share) in shares.iter_mut().enumerate() {
            share.push(eval(&coefficients, i as u8 + 1));
        }
    }
    shares
}

/// The polynomial with `coefficients` (constant term first) at `x`, by
/// Horner's rule.
fn eval(coefficients: &[u8], x: u8) -> u8 {
    coefficients
        .iter()
        .rev()
        .fold(0u8, |acc, c| mul(acc, x) ^ c)
}

/// Recombines the secret from shares `(x, bytes)`: distinct non-zero x,
/// equal lengths (checked by the caller). With fewer shares than the
/// threshold the result is a random-looking wrong secret.
pub fn combine(shares: &[(u8, &[u8])]) -> Zeroizing<Vec<u8>> {
    let len = shares.first().map_or(0, |s| s.1.len());
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (i, (xi, yi)) in shares.iter().enumerate() {
        // The Lagrange basis polynomial of share i, at 0.
        let mut basis = 1u8;
        for (j, (xj, _)) in shares.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(*xj, inv(xj ^ xi)));
            }
        }
        for (s, y) in secret.iter_mut().zip(yi.iter()) {
            *s ^= mul(*y, basis);
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_matches_fips_197() {
        // FIPS-197 section 4.2: {57}*{83} = {c1}, {57}*{13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        // Section 4.2.1's inverse example: {53} and {ca}.
        assert_eq!(inv(0x53), 0xca);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul(b, a));
            }
        }
    }

    /// Every M-subset of the N shares, for a few (M, N).
    fn subsets(n: u8, m: u8) -> Vec<Vec<u8>> {
        (0u32..1 << n)
            .filter(|bits| bits.count_ones() == u32::from(m))
            .map(|bits| (0..n).filter(|i| bits & 1 << i != 0).collect())
            .collect()
    }

    #[test]
    fn all_ten_3_subsets_of_5_shares_recombine_and_no_2_subset_does() {
        let secret: Vec<u8> = (0..32).map(|i| i * 7 + 1).collect();
        let shares = split(&secret, 3, 5);
        let three = subsets(5, 3);
        assert_eq!(three.len(), 10);
        for subset in three {
            let given: Vec<(u8, &[u8])> = subset
                .iter()
                .map(|&i| (i + 1, shares[usize::from(i)].as_slice()))
                .collect();
            assert_eq!(combine(&given).as_slice(), secret.as_slice(), "{subset:?}");
        }
        for subset in subsets(5, 2) {
            let given: Vec<(u8, &[u8])> = subset
                .iter()
                .map(|&i| (i + 1, shares[usize::from(i)].as_slice()))
                .collect();
            assert_ne!(combine(&given).as_slice(), secret.as_slice(), "{subset:?}");
        }
        for (m, n) in [(2, 2), (2, 3), (4, 6), (5, 5)] {
            let shares = split(&secret, m, n);
            for subset in subsets(n, m) {
                let given: Vec<(u8, &[u8])> = subset
                    .iter()
                    .map(|&i| (i + 1, shares[usize::from(i)].as_slice()))
                    .collect();
                assert_eq!(combine(&given).as_slice(), secret.as_slice());
            }
        }
    }

    #[test]
    fn fewer_shares_than_the_threshold_are_consistent_with_every_secret_alike() {
        // Threshold 2: for every secret, the one share at x (over all
        // random coefficients) takes every value exactly once.
        for x in [1u8, 2, 255] {
            for s in 0..=255u8 {
                let mut seen = [false; 256];
                for a in 0..=255u8 {
                    seen[usize::from(eval(&[s, a], x))] = true;
                }
                assert!(seen.iter().all(|v| *v), "x={x} s={s}");
            }
        }
        // Threshold 3: shares 1 and 2 together take every pair of values
        // exactly once for each secret tried.
        for s in [0u8, 1, 0x80, 0xff] {
            let mut seen = vec![false; 65536];
            for a in 0..=255u8 {
                for b in 0..=255u8 {
                    let pair =
                        usize::from(eval(&[s, a, b], 1)) << 8 | usize::from(eval(&[s, a, b], 2));
                    assert!(!seen[pair], "s={s}");
                    seen[pair] = true;
                }
            }
        }
    }
}
