//! Who may do what: API keys, roles, and the server key that seals the
//! secrets a protocol must recompute with.
//!
//! An API key is an access key id (`PFAK…`, public) and a 40-character
//! secret shown once. The store keeps the secret's SHA-256 (bearer tokens
//! are looked up by id and compared in constant time; the secret is random,
//! so a fast hash is safe — argon2 would cost tens of milliseconds per
//! request) and the secret sealed with the server key (AES-256-GCM), because
//! SigV4 must recompute HMACs with the secret itself.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

pub use crate::store::Role;

impl Role {
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => !matches!(action, Action::ManageApiKeys),
            Role::Auditor => action.is_read(),
        }
    }
}

/// The permissions actions are checked against, one per kind of change or
/// read (not one per endpoint: the native and SSM-compatible APIs share them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ReadFleet,
    ReadAudit,
    ManageActivations,
    ManageNodes,
    ManageBaselines,
    SendCommands,
    ManageApiKeys,
}

impl Action {
    pub fn is_read(self) -> bool {
        matches!(self, Action::ReadFleet | Action::ReadAudit)
    }

    /// For messages: "the auditor role may not manage baselines".
    pub fn describe(self) -> &'static str {
        match self {
            Action::ReadFleet => "read the fleet",
            Action::ReadAudit => "read the audit log",
            Action::ManageActivations => "manage activations",
            Action::ManageNodes => "manage nodes",
            Action::ManageBaselines => "manage baselines",
            Action::SendCommands => "send commands",
            Action::ManageApiKeys => "manage API keys",
        }
    }
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether `secret` hashes to `stored` (hex SHA-256), in constant time.
pub fn secret_matches(secret: &str, stored: &str) -> bool {
    let got = sha256_hex(secret);
    got.as_bytes().ct_eq(stored.as_bytes()).into()
}

/// `Authorization: Bearer <access key id>:<secret>` → the pair.
pub fn parse_bearer(header: &str) -> Option<(&str, &str)> {
    let token = header.strip_prefix("Bearer ")?.trim();
    let (id, secret) = token.split_once(':')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// The server key: 32 random bytes in the data directory (`server.key`,
/// mode 0600), created at first start.
pub struct ServerKey {
    key: LessSafeKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("a sealed secret does not open with this server's key (tampered, or another server's)")]
    Open,
}

impl ServerKey {
    pub fn load_or_create(data_dir: &Path) -> Result<ServerKey, KeyError> {
        let path = data_dir.join("server.key");
        let err = |message: String| KeyError::File {
            path: path.display().to_string(),
            message,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut b).map_err(|_| err("no randomness".into()))?;
                crate::tls::write_atomic(&path, &b, 0o600).map_err(|e| match e {
                    crate::tls::TlsError::File { message, .. } => err(message),
                    other => err(other.to_string()),
                })?;
                b
            }
            Err(e) => return Err(err(e.to_string())),
        };
        ServerKey::from_bytes(&bytes).map_err(|m| err(m.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ServerKey, &'static str> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| "not a 32-byte AES-256 key")?;
        Ok(ServerKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // Fails only without an entropy source, where nothing else works either.
        aws_lc_rs::rand::fill(&mut nonce).expect("the system's random generator");
        let mut out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut out)
            .expect("AES-GCM sealing of a small buffer");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Open);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Open)?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| KeyError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert!(Role::Admin.allows(Action::ManageApiKeys));
        assert!(!Role::Operator.allows(Action::ManageApiKeys));
        assert!(Role::Operator.allows(Action::ManageBaselines));
        assert!(Role::Auditor.allows(Action::ReadAudit));
        assert!(!Role::Auditor.allows(Action::ManageBaselines));
        assert!(!Role::Auditor.allows(Action::SendCommands));
    }

    #[test]
    fn bearer_and_secret() {
        assert_eq!(
            parse_bearer("Bearer PFAKABC:s3cret"),
            Some(("PFAKABC", "s3cret"))
        );
        assert_eq!(parse_bearer("Basic x"), None);
        assert_eq!(parse_bearer("Bearer nocolon"), None);
        let h = sha256_hex("s3cret");
        assert!(secret_matches("s3cret", &h));
        assert!(!secret_matches("s3creT", &h));
    }

    #[test]
    fn seal_round_trip_and_tamper() {
        let k = ServerKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = k.seal(b"the secret");
        assert_ne!(&sealed[12..22], b"the secret");
        assert_eq!(k.open(&sealed).unwrap(), b"the secret");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(k.open(&bad).is_err());
        let other = ServerKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(ServerKey::from_bytes(&[1u8; 5]).is_err());
    }
}
