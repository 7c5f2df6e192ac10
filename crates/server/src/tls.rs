//! The server's PKI (DESIGN decision 5): at first start the server makes
//! its own CA and a server certificate signed by it, in the data directory;
//! later starts reload them, so the CA fingerprint operators gave to agents
//! stays valid. The CA signs the agents' CSRs into client certificates
//! (mutual TLS). Operator-provided files replace the self-made ones.
//!
//! Files in the data directory: `ca.pem`, `ca-key.pem`, `server.pem`,
//! `server-key.pem`; key files are mode 0600 and written atomically
//! (temporary file, fsync, rename), so a crash never leaves half a key.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

pub const CA_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const SERVER_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";

const DAY: i64 = 86_400;
const CA_VALIDITY_DAYS: i64 = 3_652;
const SERVER_VALIDITY_DAYS: i64 = 730;
const AGENT_VALIDITY_DAYS: i64 = 365;
/// A self-made server certificate closer than this to its end is renewed at
/// start, so a server restarted now and then never serves an expired one.
const SERVER_RENEW_DAYS: i64 = 30;
/// Certificates start a little in the past: a node whose clock is slightly
/// behind the server's must still accept them.
const BACKDATE_SECONDS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("certificate signing request: {0}")]
    Csr(String),
    #[error("{0}")]
    Other(String),
}

fn file_error(path: &Path, message: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Operator-provided certificates, replacing the self-made ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvidedFiles {
    /// The server's certificate chain (PEM, leaf first, intermediates may follow).
    pub cert: PathBuf,
    /// The server certificate's private key (PEM, PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA that issued `cert`: appended to the chain when missing, and
    /// the certificate whose fingerprint agents pin.
    pub ca: PathBuf,
    /// The CA's key. With it, that CA also signs agent certificates; without
    /// it (the usual case with a corporate CA), the self-made CA in the data
    /// directory does, and only the server side uses the operator's files.
    pub ca_key: Option<PathBuf>,
}

/// Who the peer of a TLS connection is, from its verified client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The certificate's common name: the node id for agents.
    pub node_id: String,
    /// `sha256:` + hex of the certificate's DER.
    pub fingerprint: String,
}

/// The loaded PKI: what the TLS server presents and how agent CSRs are signed.
pub struct Pki {
    /// The CA agents trust (and pin by fingerprint).
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    /// Server chain, leaf first, ending with `ca_der`.
    chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    /// The CA that signs agent certificates and verifies client certificates.
    client_ca_der: CertificateDer<'static>,
    client_issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("ca_fingerprint", &self.ca_fingerprint())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// `sha256:` + lowercase hex of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Pki {
    /// Loads the PKI of `data_dir`, creating what is missing (see the module
    /// documentation). `server_names` are the DNS names or IP addresses
    /// agents use to reach the server; `localhost`, `127.0.0.1` and `::1`
    /// are always added.
    pub fn load_or_create(data_dir: &Path, server_names: &[String]) -> Result<Pki, TlsError> {
        Self::load(data_dir, server_names, None, jiff::Timestamp::now())
    }

    /// Like [`Pki::load_or_create`], with operator-provided files.
    pub fn load_with(
        data_dir: &Path,
        server_names: &[String],
        provided: Option<&ProvidedFiles>,
    ) -> Result<Pki, TlsError> {
        Self::load(data_dir, server_names, provided, jiff::Timestamp::now())
    }

    fn load(
        data_dir: &Path,
        server_names: &[String],
        provided: Option<&ProvidedFiles>,
        now: jiff::Timestamp,
    ) -> Result<Pki, TlsError> {
        std::fs::create_dir_all(data_dir).map_err(|e| file_error(data_dir, e))?;
        let (client_ca_der, client_ca_pem, client_issuer) = match provided {
            Some(ProvidedFiles {
                ca,
                ca_key: Some(ca_key),
                ..
            }) => {
                let (der, pem) = read_ca(ca)?;
                let issuer = load_issuer(ca, &pem, ca_key)?;
                (der, pem, issuer)
            }
            _ => load_or_create_ca(data_dir, now)?,
        };
        match provided {
            Some(p) => {
                let chain_pem = read_text(&p.cert)?;
                let mut chain = parse_certs(&p.cert, &chain_pem)?;
                let key = parse_key(&p.key, &read_text(&p.key)?)?;
                let (ca_der, ca_pem) = read_ca(&p.ca)?;
                if !chain.contains(&ca_der) {
                    chain.push(ca_der.clone());
                }
                Ok(Pki {
                    ca_der,
                    ca_pem,
                    chain,
                    server_key: key,
                    client_ca_der,
                    client_issuer,
                })
            }
            None => {
                let (leaf, key) = load_or_create_server(
                    data_dir,
                    server_names,
                    &client_ca_der,
                    &client_issuer,
                    now,
                )?;
                Ok(Pki {
                    chain: vec![leaf, client_ca_der.clone()],
                    ca_der: client_ca_der.clone(),
                    ca_pem: client_ca_pem,
                    server_key: key,
                    client_ca_der,
                    client_issuer,
                })
            }
        }
    }

    /// What operators pass to agents as `--ca-fingerprint`.
    pub fn ca_fingerprint(&self) -> String {
        fingerprint(&self.ca_der)
    }

    /// The CA agents trust, PEM (sent to them at registration).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Signs an agent's CSR into its client certificate (PEM): subject
    /// CN=`node_id` whatever the CSR asked for, ClientAuth only, one year
    /// from `now`, random serial. The CSR's signature is checked (the agent
    /// holds the key).
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        node_id: &str,
        now: jiff::Timestamp,
    ) -> Result<String, TlsError> {
        if !csr_pem.contains("-----BEGIN CERTIFICATE REQUEST-----") {
            return Err(TlsError::Csr(
                "not a PEM certificate request (no \"BEGIN CERTIFICATE REQUEST\" block)".into(),
            ));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| TlsError::Csr(csr_problem(&e)))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, node_id.to_string());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, now, AGENT_VALIDITY_DAYS)?;
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&csr.public_key, &self.client_issuer)
            .map_err(|e| TlsError::Other(format!("signing the certificate of {node_id}: {e}")))?;
        Ok(cert.pem())
    }

    /// The rustls configuration of the HTTPS listener: chain = server
    /// certificate(s) then the CA (an agent pinning the CA fingerprint finds
    /// it there); client certificates optional (people and scripts use API
    /// keys) but, when presented, verified against the CA; ALPN h2 and
    /// http/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.client_ca_der.clone())
            .map_err(|e| TlsError::Other(format!("the client CA: {e}")))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Other(format!("the client certificate verifier: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Other(format!("TLS versions: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.server_key.clone_key())
            .map_err(|e| TlsError::Other(format!("the server certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The identity in a (verified) client certificate: its common name and
/// fingerprint. `None` when the certificate is unreadable or has no CN.
pub fn client_cert_identity(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(PeerIdentity {
        node_id: cn.to_string(),
        fingerprint: fingerprint(der),
    })
}

fn csr_problem(e: &rcgen::Error) -> String {
    match e {
        rcgen::Error::CouldNotParseCertificationRequest => "not a valid PKCS#10 request".into(),
        rcgen::Error::InvalidCertificationRequestSignature => {
            "its signature does not verify (it was not made with the key it names)".into()
        }
        rcgen::Error::UnsupportedExtension => {
            "it requests an extension this server does not sign".into()
        }
        other => other.to_string(),
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and 16 bytes long: DER integers are signed and a leading zero
    // byte would be stripped.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn set_validity(
    params: &mut CertificateParams,
    now: jiff::Timestamp,
    days: i64,
) -> Result<(), TlsError> {
    let start = now.as_second() - BACKDATE_SECONDS;
    let end = now.as_second() + days * DAY;
    let conv = |s: i64| {
        time::OffsetDateTime::from_unix_timestamp(s)
            .map_err(|e| TlsError::Other(format!("certificate validity at {s}: {e}")))
    };
    params.not_before = conv(start)?;
    params.not_after = conv(end)?;
    Ok(())
}

fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

type LoadedCa = (CertificateDer<'static>, String, Issuer<'static, KeyPair>);

fn load_or_create_ca(data_dir: &Path, now: jiff::Timestamp) -> Result<LoadedCa, TlsError> {
    let cert_path = data_dir.join(CA_FILE);
    let key_path = data_dir.join(CA_KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let (der, pem) = read_ca(&cert_path)?;
            let issuer = load_issuer(&cert_path, &pem, &key_path)?;
            Ok((der, pem, issuer))
        }
        (false, false) => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| TlsError::Other(format!("generating the CA key: {e}")))?;
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(
                DnType::CommonName,
                format!("Patchfleet CA {}", random_hex(6)),
            );
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.serial_number = Some(random_serial());
            set_validity(&mut params, now, CA_VALIDITY_DAYS)?;
            let cert = params
                .self_signed(&key)
                .map_err(|e| TlsError::Other(format!("making the CA certificate: {e}")))?;
            // Key first: a CA certificate without its key would be unusable,
            // while a key without a certificate is found and reported below.
            write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            let pem = cert.pem();
            write_atomic(&cert_path, pem.as_bytes(), 0o644)?;
            let der = cert.der().clone();
            Ok((der, pem, Issuer::new(params, key)))
        }
        (true, false) => Err(file_error(
            &key_path,
            format!(
                "missing, but {} exists: restore the CA key (agents pin this CA; making a new one would lock them out), or remove both to start over",
                cert_path.display()
            ),
        )),
        (false, true) => Err(file_error(
            &cert_path,
            format!(
                "missing, but {} exists: restore the CA certificate, or remove both to start over",
                key_path.display()
            ),
        )),
    }
}

fn load_or_create_server(
    data_dir: &Path,
    server_names: &[String],
    ca_der: &CertificateDer<'static>,
    issuer: &Issuer<'static, KeyPair>,
    now: jiff::Timestamp,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let cert_path = data_dir.join(SERVER_FILE);
    let key_path = data_dir.join(SERVER_KEY_FILE);
    let mut names: Vec<String> = Vec::new();
    for n in server_names.iter().map(|s| s.trim().to_string()).chain([
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ]) {
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    if cert_path.exists() && key_path.exists() {
        let pem = read_text(&cert_path)?;
        let certs = parse_certs(&cert_path, &pem)?;
        let key = parse_key(&key_path, &read_text(&key_path)?)?;
        let leaf = certs[0].clone();
        if server_cert_current(&leaf, ca_der, &names, now) {
            return Ok((leaf, key));
        }
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Other(format!("generating the server key: {e}")))?;
    let mut params = CertificateParams::new(names.clone())
        .map_err(|e| TlsError::Other(format!("server names {names:?}: {e}")))?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    set_validity(&mut params, now, SERVER_VALIDITY_DAYS)?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| TlsError::Other(format!("making the server certificate: {e}")))?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Other(format!("the server key: {e}")))?;
    Ok((cert.der().clone(), key_der))
}

/// Whether a stored server certificate can be served on: issued by the
/// current CA, not near its end, and naming every requested server name.
fn server_cert_current(
    leaf: &CertificateDer<'_>,
    ca_der: &CertificateDer<'_>,
    names: &[String],
    now: jiff::Timestamp,
) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else {
        return false;
    };
    let Ok((_, ca)) = X509Certificate::from_der(ca_der) else {
        return false;
    };
    if cert.issuer() != ca.subject() || cert.verify_signature(Some(ca.public_key())).is_err() {
        return false;
    }
    if cert.validity().not_after.timestamp() < now.as_second() + SERVER_RENEW_DAYS * DAY {
        return false;
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let present: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => ip_from_bytes(b).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect();
    names.iter().all(|n| {
        let n = n
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .unwrap_or_else(|_| n.clone());
        present.contains(&n)
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(<[u8; 4]>::try_from(b).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(b).ok()?.into()),
        _ => None,
    }
}

/// [`fingerprint`] of the first certificate of `pem` (a signed agent
/// certificate, for the node's record).
pub fn pem_fingerprint(pem: &str) -> Result<String, TlsError> {
    let certs = parse_certs(Path::new("the certificate"), pem)?;
    Ok(fingerprint(&certs[0]))
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, e))
}

fn parse_certs(path: &Path, pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            path,
            "no certificate (no \"BEGIN CERTIFICATE\" block)",
        ));
    }
    for (i, c) in certs.iter().enumerate() {
        X509Certificate::from_der(c).map_err(|e| {
            file_error(path, format!("certificate {}: not valid X.509: {e}", i + 1))
        })?;
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| file_error(path, format!("no usable private key: {e}")))
}

fn read_ca(path: &Path) -> Result<(CertificateDer<'static>, String), TlsError> {
    let pem = read_text(path)?;
    let certs = parse_certs(path, &pem)?;
    if certs.len() != 1 {
        return Err(file_error(
            path,
            format!("{} certificates; expected exactly the CA's", certs.len()),
        ));
    }
    let der = certs.into_iter().next().expect("one certificate");
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| file_error(path, e))?;
    if !cert.is_ca() {
        return Err(file_error(
            path,
            "not a CA certificate (basicConstraints CA:FALSE or absent)",
        ));
    }
    Ok((der, pem))
}

fn load_issuer(
    cert_path: &Path,
    cert_pem: &str,
    key_path: &Path,
) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let key_pem = read_text(key_path)?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| file_error(key_path, format!("not a usable private key: {e}")))?;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| file_error(cert_path, e))?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| file_error(cert_path, e))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(file_error(
            key_path,
            format!(
                "does not belong to the certificate in {}",
                cert_path.display()
            ),
        ));
    }
    Issuer::from_ca_cert_pem(cert_pem, key)
        .map_err(|e| file_error(cert_path, format!("not usable as a CA: {e}")))
}

/// Writes `bytes` to `path` so that readers see the old content or the new,
/// never a part: a temporary file in the same directory, created with
/// `mode` (a key is never readable by others, not even for a moment),
/// fsynced, renamed over `path`, then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| file_error(path, "not a file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", random_hex(6)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_error(path, format!("writing: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_positive_and_full_length() {
        for _ in 0..100 {
            let s = random_serial().to_bytes();
            assert_eq!(s.len(), 16);
            assert!(s[0] & 0x80 == 0 && s[0] != 0);
        }
    }
}
