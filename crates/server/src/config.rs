//! The server's configuration: a TOML file, then `PATCHFLEET_*` environment
//! variables, then command-line flags (the CLI applies those), each
//! overriding the one before. Unknown keys in the file are errors naming
//! the key, so a typo never silently falls back to a default.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Keys, certificates and (by default) the SQLite database.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; default: `patchfleet.db` in the
    /// data directory.
    pub database: Option<String>,
    /// Serve plain HTTP. Only for a TLS-terminating proxy in front, or tests.
    pub insecure_http: bool,
    /// Names (DNS or IP) in the server certificate besides localhost.
    pub server_names: Vec<String>,
    /// Operator-provided certificates instead of the self-made CA.
    pub tls: TlsFiles,
    /// How often agents check in.
    pub heartbeat_seconds: u32,
    /// After how many missed heartbeats a node is `ConnectionLost`.
    pub missed_heartbeats: u32,
    /// Largest request body, facts uploads excepted (bytes).
    pub max_body_bytes: usize,
    /// Largest facts upload, after decompression (bytes).
    pub max_facts_bytes: usize,
    /// Where full command output and `s3://` documents live.
    pub objects: ObjectsConfig,
    /// A delivered invocation the agent has not acknowledged is sent again
    /// after this many seconds (the answer may have been lost).
    pub command_resend_seconds: u64,
    /// How far a SigV4 request's time may be from the server's, either
    /// way (seconds; AWS JSON services use 5 minutes).
    pub sigv4_clock_skew_seconds: u32,
}

/// `[objects]`: a local directory (default `<data_dir>/objects`) or an
/// S3-compatible bucket (credentials from `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsConfig {
    /// `file:///DIR` or `s3://BUCKET[/PREFIX]`.
    pub url: Option<String>,
    /// An S3-compatible service's endpoint (MinIO, Ceph, …).
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/patchfleet"),
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            database: None,
            insecure_http: false,
            server_names: Vec::new(),
            tls: TlsFiles::default(),
            heartbeat_seconds: 60,
            missed_heartbeats: 3,
            max_body_bytes: 1 << 20,
            max_facts_bytes: 256 << 20,
            objects: ObjectsConfig::default(),
            command_resend_seconds: 30,
            sigv4_clock_skew_seconds: 300,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

impl Config {
    /// Reads `path` (TOML) over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_toml(&path.display().to_string(), &text)
    }

    pub fn from_toml(name: &str, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError {
            source_name: name.to_string(),
            message: e.to_string().trim().to_string(),
        })
    }

    /// Applies `PATCHFLEET_DATA_DIR`, `PATCHFLEET_LISTEN`,
    /// `PATCHFLEET_DATABASE`, `PATCHFLEET_INSECURE_HTTP` from `vars`.
    pub fn apply_env<'a>(
        &mut self,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), ConfigError> {
        for (k, v) in vars {
            let bad = |what: &str| ConfigError {
                source_name: k.to_string(),
                message: format!("'{v}' is not {what}"),
            };
            match k {
                "PATCHFLEET_DATA_DIR" => self.data_dir = PathBuf::from(v),
                "PATCHFLEET_LISTEN" => {
                    self.listen = v.parse().map_err(|_| bad("an address:port"))?
                }
                "PATCHFLEET_DATABASE" => self.database = Some(v.to_string()),
                "PATCHFLEET_INSECURE_HTTP" => {
                    self.insecure_http = match v {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" | "" => false,
                        _ => return Err(bad("true or false")),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The database URL: the configured one, else SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("patchfleet.db").display()),
        }
    }

    /// Who this replica is to the leases: the same on every start of it (so
    /// a restarted server takes its background work back at once instead
    /// of waiting for its own lease to lapse), different for every other
    /// replica (another host, data directory or listening address).
    pub fn replica_id(&self) -> String {
        use sha2::Digest;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let text = format!(
            "{}\n{}\n{}",
            host.trim(),
            self.data_dir.display(),
            self.listen
        );
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..12])
    }

    /// Seconds without a heartbeat after which a node is `ConnectionLost`.
    pub fn connection_lost_after(&self) -> i64 {
        i64::from(self.heartbeat_seconds) * i64::from(self.missed_heartbeats.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut c = Config::from_toml(
            "server.toml",
            "data_dir = \"/srv/pf\"\nlisten = \"127.0.0.1:9443\"\n[tls]\ncert = \"/etc/c.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/pf"));
        assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/c.pem")));
        assert_eq!(c.database_url(), "sqlite:///srv/pf/patchfleet.db");
        c.apply_env([
            ("PATCHFLEET_DATABASE", "postgres://db/pf"),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(c.database_url(), "postgres://db/pf");
        let e = c
            .apply_env([("PATCHFLEET_LISTEN", "nowhere")])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "PATCHFLEET_LISTEN: 'nowhere' is not an address:port");
    }

    #[test]
    fn unknown_keys_are_errors_naming_them() {
        let e = Config::from_toml("server.toml", "listn = \"1.2.3.4:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server.toml: "), "{e}");
        assert!(e.contains("listn"), "{e}");
    }
}
