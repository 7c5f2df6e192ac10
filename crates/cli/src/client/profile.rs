//! Profiles: which server and which API key, kept in
//! `$PATCHFLEET_CONFIG`, else `$XDG_CONFIG_HOME/patchfleet/config.toml`,
//! else `~/.config/patchfleet/config.toml` (mode 0600: it holds secrets, as
//! `~/.aws/credentials` does). Environment variables and flags override the
//! file: `PATCHFLEET_SERVER`, `PATCHFLEET_ACCESS_KEY_ID`,
//! `PATCHFLEET_SECRET_ACCESS_KEY`, `PATCHFLEET_CA_FILE`.

use super::ClientArgs;
use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// The server's CA certificate (PEM): the only one trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// A profile with everything a request needs.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub server: String,
    pub access_key_id: String,
    pub secret: String,
    pub ca_file: Option<PathBuf>,
}

pub fn config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PATCHFLEET_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("patchfleet/config.toml")
}

pub fn read(path: &Path) -> Result<ConfigFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Writes the file with mode 0600 (whole or not at all).
pub fn write(path: &Path, file: &ConfigFile) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(file)?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn resolve(args: &ClientArgs) -> Result<Resolved> {
    let path = config_path();
    let file = read(&path)?;
    let name = args.profile.clone().unwrap_or_else(|| "default".into());
    let p = file.profiles.get(&name).cloned().unwrap_or_default();
    if args.profile.is_some() && !file.profiles.contains_key(&name) {
        return Err(anyhow!("{}: no profile '{name}'", path.display()));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let missing = |what: &str, var: &str| {
        anyhow!(
            "no {what}: run `patchfleet configure` (profile '{name}' in {}) or set {var}",
            path.display()
        )
    };
    Ok(Resolved {
        server: args
            .server
            .clone()
            .or(p.server)
            .ok_or_else(|| missing("server", "PATCHFLEET_SERVER"))?,
        access_key_id: env("PATCHFLEET_ACCESS_KEY_ID")
            .or(p.access_key_id)
            .ok_or_else(|| missing("access key id", "PATCHFLEET_ACCESS_KEY_ID"))?,
        secret: env("PATCHFLEET_SECRET_ACCESS_KEY")
            .or(p.secret_access_key)
            .ok_or_else(|| missing("secret access key", "PATCHFLEET_SECRET_ACCESS_KEY"))?,
        ca_file: env("PATCHFLEET_CA_FILE").map(PathBuf::from).or(p.ca_file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pf-profile-{}", std::process::id()));
        let path = dir.join("patchfleet/config.toml");
        let mut file = ConfigFile::default();
        file.profiles.insert(
            "default".into(),
            Profile {
                server: Some("https://127.0.0.1:8443".into()),
                access_key_id: Some("PFAKAAAA".into()),
                secret_access_key: Some("s".into()),
                ca_file: Some("/x/ca.pem".into()),
            },
        );
        write(&path, &file).unwrap();
        assert_eq!(read(&path).unwrap(), file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "[profiles.default]\nservr = 1\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("servr"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
