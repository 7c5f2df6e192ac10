//! The object store: full command output, and the documents a command names
//! by `s3://` URL (InstallOverrideList, BaselineOverride). A directory under
//! the data directory by default; S3-compatible storage when configured
//! (`object_store`, credentials from the standard `AWS_*` variables).
//!
//! Keys are always built by the server from ids it validated, or checked
//! here, so a key can never leave the store's root (`..`, absolute paths
//! and empty segments are refused).

use crate::config::ObjectsConfig;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("object store: {0}")]
    Config(String),
    #[error("{0}")]
    BadLocation(String),
    #[error("{location}: not found in the object store")]
    NotFound { location: String },
    #[error("{location}: larger than {limit} bytes")]
    TooLarge { location: String, limit: usize },
    #[error("object store: {0}")]
    Io(String),
}

/// The configured store and the one bucket `s3://` URLs may name.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    /// Prepended to every key (an S3 URL's path).
    prefix: String,
    description: String,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

/// The bucket name `s3://` URLs use for the local store.
pub const LOCAL_BUCKET: &str = "patchfleet";

impl Objects {
    /// `file:///dir` (or no URL: `<data_dir>/objects`) or `s3://bucket[/prefix]`.
    pub fn open(cfg: &ObjectsConfig, data_dir: &Path) -> Result<Objects, ObjectsError> {
        let url = cfg.url.clone().unwrap_or_default();
        if url.is_empty() || url.starts_with("file://") {
            let dir = match url.strip_prefix("file://") {
                Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
                _ => data_dir.join("objects"),
            };
            create_private_dir(&dir)?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| ObjectsError::Config(format!("{}: {e}", dir.display())))?;
            return Ok(Objects {
                store: Arc::new(store),
                bucket: LOCAL_BUCKET.into(),
                prefix: String::new(),
                description: format!("file://{}", dir.display()),
            });
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(ObjectsError::Config(format!(
                "[objects] url {url:?}: expected file:///DIR or s3://BUCKET[/PREFIX]"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectsError::Config(format!(
                "[objects] url {url:?}: no bucket"
            )));
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        let store = b
            .build()
            .map_err(|e| ObjectsError::Config(format!("{url}: {e}")))?;
        Ok(Objects {
            store: Arc::new(store),
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').to_string(),
            description: url,
        })
    }

    fn path(&self, key: &str) -> Result<ObjectPath, ObjectsError> {
        check_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjectPath::parse(&full).map_err(|e| ObjectsError::BadLocation(format!("{key}: {e}")))
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectsError> {
        self.store
            .put(&self.path(key)?, bytes.into())
            .await
            .map_err(|e| ObjectsError::Io(format!("writing {key}: {e}")))?;
        Ok(())
    }

    /// The object's bytes; more than `limit` is an error, never a read of
    /// an arbitrarily large object into memory.
    pub async fn get(&self, key: &str, limit: usize) -> Result<Vec<u8>, ObjectsError> {
        let path = self.path(key)?;
        let r = self.store.get(&path).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => ObjectsError::NotFound {
                location: key.to_string(),
            },
            e => ObjectsError::Io(format!("reading {key}: {e}")),
        })?;
        if r.meta.size > limit as u64 {
            return Err(ObjectsError::TooLarge {
                location: key.to_string(),
                limit,
            });
        }
        let bytes = r
            .bytes()
            .await
            .map_err(|e| ObjectsError::Io(format!("reading {key}: {e}")))?;
        Ok(bytes.to_vec())
    }

    /// The key an `s3://bucket/key` URL names in this store: the bucket must
    /// be this store's (`patchfleet` for the local one).
    pub fn key_of_url(&self, url: &str) -> Result<String, ObjectsError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| ObjectsError::BadLocation(format!("{url}: not an s3:// URL")))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| ObjectsError::BadLocation(format!("{url}: no key after the bucket")))?;
        if bucket != self.bucket {
            return Err(ObjectsError::BadLocation(format!(
                "{url}: bucket {bucket:?} is not the server's object store (its bucket is {:?})",
                self.bucket
            )));
        }
        check_key(key)?;
        Ok(key.to_string())
    }

    /// The bucket `s3://` URLs must name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The `s3://` URL of a key (what the API shows as an output URL).
    pub fn url_of(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}/{key}", self.bucket)
        } else {
            format!("s3://{}/{}/{key}", self.bucket, self.prefix)
        }
    }
}

/// Refuses a key that could leave the store's root or is not a plain path.
pub fn check_key(key: &str) -> Result<(), ObjectsError> {
    let bad = key.is_empty()
        || key.len() > 1024
        || key.starts_with('/')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || key.chars().any(char::is_control);
    if bad {
        return Err(ObjectsError::BadLocation(format!(
            "object key {key:?}: expected segments separated by '/', none empty, '.' or '..'"
        )));
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), ObjectsError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ObjectsError::Config(format!("creating {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_leave_the_root() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a/b/", "a\nb"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        check_key("commands/8d0e/mi-0123/PatchLinux/stdout").unwrap();
    }

    #[tokio::test]
    async fn local_store_round_trip_and_urls() {
        let dir = std::env::temp_dir().join(format!("pf-objects-{}", std::process::id()));
        let o = Objects::open(&ObjectsConfig::default(), &dir).unwrap();
        o.put("a/b.txt", b"hello".to_vec()).await.unwrap();
        assert_eq!(o.get("a/b.txt", 10).await.unwrap(), b"hello");
        assert!(matches!(
            o.get("a/b.txt", 2).await,
            Err(ObjectsError::TooLarge { .. })
        ));
        assert!(matches!(
            o.get("a/none", 10).await,
            Err(ObjectsError::NotFound { .. })
        ));
        assert_eq!(o.key_of_url("s3://patchfleet/a/b.txt").unwrap(), "a/b.txt");
        let e = o.key_of_url("s3://other/a").unwrap_err().to_string();
        assert!(e.contains("not the server's object store"), "{e}");
        assert!(o.key_of_url("s3://patchfleet/../x").is_err());
        assert_eq!(o.url_of("a/b.txt"), "s3://patchfleet/a/b.txt");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
