//! Trust on first contact, pinned: at registration the agent knows only the
//! SHA-256 fingerprint of the server's CA (`--ca-fingerprint`, from the
//! operator). The server presents its chain with the CA at the end; the
//! verifier takes the certificate with that fingerprint from the chain and
//! verifies the leaf against it exactly as against a configured root
//! (signature, validity, server name). No system root is ever consulted:
//! a certificate from a public CA for the same name is still refused.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// `sha256:` + lowercase hex of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// Parses `--ca-fingerprint`: `sha256:` and 64 hex digits; upper case and
/// `:` between bytes (as `openssl x509 -fingerprint` prints) are accepted.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let hex_part = match t.split_once(':') {
        Some((alg, rest)) if alg.eq_ignore_ascii_case("sha256") => rest,
        _ => {
            return Err(format!(
                "--ca-fingerprint {t:?}: expected sha256:<64 hex digits> (the server prints it)"
            ));
        }
    };
    let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&digits)
        .map_err(|e| format!("--ca-fingerprint {t:?}: not hexadecimal: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "--ca-fingerprint {t:?}: {} hex digits; a SHA-256 fingerprint has 64",
            digits.len()
        )
    })
}

/// The certificate of `presented` whose SHA-256 is `pin`, if any.
pub fn find_pinned<'a>(
    pin: &[u8; 32],
    presented: impl IntoIterator<Item = &'a CertificateDer<'a>>,
) -> Option<&'a CertificateDer<'a>> {
    presented
        .into_iter()
        .find(|c| Sha256::digest(c.as_ref()).as_slice() == pin)
}

/// Why the handshake was refused: the CA the operator named is not in the
/// server's chain (a different server, or one reinstalled with a new CA).
#[derive(Debug)]
pub struct PinMismatch {
    pub expected: String,
    pub presented: Vec<String>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's CA fingerprint did not match --ca-fingerprint {}: the server presented {}",
            self.expected,
            if self.presented.is_empty() {
                "no certificate".to_string()
            } else {
                self.presented.join(", ")
            }
        )
    }
}

impl std::error::Error for PinMismatch {}

#[derive(Debug)]
pub struct PinnedCaVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinnedCaVerifier {
    pub fn new(pin: [u8; 32], provider: Arc<CryptoProvider>) -> Self {
        PinnedCaVerifier { pin, provider }
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = find_pinned(&self.pin, intermediates) else {
            let presented = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| fingerprint(c))
                .collect();
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    expected: format!("sha256:{}", hex::encode(self.pin)),
                    presented,
                })),
            )));
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(format!("the pinned CA certificate: {e}")))?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(format!("the pinned CA certificate: {e}")))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let want = <[u8; 32]>::try_from(hex::decode(HEX).unwrap()).unwrap();
        assert_eq!(parse_fingerprint(&format!("sha256:{HEX}")).unwrap(), want);
        assert_eq!(
            parse_fingerprint(&format!("SHA256:{}", HEX.to_uppercase())).unwrap(),
            want
        );
        let colons: Vec<String> = HEX
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(
            parse_fingerprint(&format!("sha256:{}", colons.join(":"))).unwrap(),
            want
        );
    }

    #[test]
    fn bad_fingerprints_say_what_is_wrong() {
        let e = parse_fingerprint(HEX).unwrap_err();
        assert!(e.contains("expected sha256:"), "{e}");
        let e = parse_fingerprint("sha256:abcd").unwrap_err();
        assert!(e.contains("4 hex digits"), "{e}");
        let e = parse_fingerprint(&format!("sha256:{}", "zz".repeat(32))).unwrap_err();
        assert!(e.contains("not hexadecimal"), "{e}");
        let e = parse_fingerprint(&format!("md5:{HEX}")).unwrap_err();
        assert!(e.contains("expected sha256:"), "{e}");
    }

    #[test]
    fn the_pinned_certificate_is_found_by_its_digest() {
        let a = CertificateDer::from(b"certificate a".to_vec());
        let b = CertificateDer::from(b"certificate b".to_vec());
        let pin = <[u8; 32]>::try_from(Sha256::digest(b"certificate b").as_slice()).unwrap();
        let chain = [a.clone(), b.clone()];
        assert_eq!(find_pinned(&pin, &chain), Some(&b));
        assert_eq!(find_pinned(&pin, &chain[..1]), None);
        assert_eq!(
            fingerprint(b"certificate b"),
            format!("sha256:{}", hex::encode(pin))
        );
    }
}
