//! Identifiers in AWS's formats (DESIGN decision 6): operators and their
//! scripts recognise them, and the SSM-compatible API can return them as is.

use rand::Rng;

fn hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// A managed node: `mi-` and 17 hex digits.
pub fn node_id() -> String {
    format!("mi-{}", hex(17))
}

/// A baseline: `pb-` and 17 hex digits.
pub fn baseline_id() -> String {
    format!("pb-{}", hex(17))
}

/// An activation: a UUID, as SSM's activation ids are.
pub fn activation_id() -> String {
    let h = hex(32);
    // RFC 4122 variant bits: the variant digit is 8, 9, a or b.
    let variant = 8 + u8::from_str_radix(&h[16..17], 16).unwrap_or(0) % 4;
    format!(
        "{}-{}-4{}-{variant:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A secret of `len` characters from an alphabet without look-alikes,
/// drawn from the operating system's generator.
pub fn secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// An API access key id: `PFAK` and 16 upper-case letters and digits (the
/// shape of AWS's `AKIA…`, so SigV4 clients accept it).
pub fn access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("PFAK{tail}")
}

pub fn is_node_id(s: &str) -> bool {
    s.len() == 20
        && s.starts_with("mi-")
        && s[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn is_baseline_id(s: &str) -> bool {
    s.len() == 20
        && s.starts_with("pb-")
        && s[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for _ in 0..100 {
            let n = node_id();
            assert!(is_node_id(&n), "{n}");
            let b = baseline_id();
            assert!(is_baseline_id(&b), "{b}");
            let a = activation_id();
            assert_eq!(a.len(), 36, "{a}");
            assert_eq!(&a[14..15], "4", "{a}");
            assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
            let k = access_key_id();
            assert_eq!(k.len(), 20, "{k}");
            assert!(k.starts_with("PFAK"));
        }
        assert_ne!(node_id(), node_id());
        assert!(!is_node_id("mi-0123456789ABCDEF0"));
        assert!(!is_node_id("i-0123456789abcdef0"));
        assert_eq!(secret(40).len(), 40);
    }
}
