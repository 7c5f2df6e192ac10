//! Configuration people change: API keys, activations, baselines, default
//! baselines and patch groups.

use super::audit;
use super::*;

fn api_key_of(r: &AnyRow) -> Result<ApiKey> {
    let role: String = get(r, "role")?;
    Ok(ApiKey {
        access_key_id: get(r, "access_key_id")?,
        name: get(r, "name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Database(format!("unknown role {role}")))?,
        secret_sha256: get(r, "secret_sha256")?,
        secret_sealed: get(r, "secret_sealed")?,
        created_at: get_ts(r, "created_at")?,
        disabled: get::<i64>(r, "disabled")? != 0,
    })
}

fn activation_of(r: &AnyRow) -> Result<Activation> {
    Ok(Activation {
        activation_id: get(r, "activation_id")?,
        code_sha256: get(r, "code_sha256")?,
        description: get(r, "description")?,
        default_instance_name: get(r, "default_instance_name")?,
        iam_role: get(r, "iam_role")?,
        registration_limit: get(r, "registration_limit")?,
        registrations_count: get(r, "registrations_count")?,
        expiration_date: get_ts(r, "expiration_date")?,
        created_date: get_ts(r, "created_date")?,
        tags: get_json(r, "tags")?,
    })
}

fn baseline_of(r: &AnyRow) -> Result<BaselineRecord> {
    Ok(BaselineRecord {
        baseline_id: get(r, "baseline_id")?,
        name: get(r, "name")?,
        operating_system: get(r, "operating_system")?,
        current_version: get(r, "current_version")?,
        deleted: get::<i64>(r, "deleted")? != 0,
        created_at: get_ts(r, "created_at")?,
        updated_at: get_ts(r, "updated_at")?,
    })
}

fn version_of(r: &AnyRow) -> Result<BaselineVersion> {
    Ok(BaselineVersion {
        baseline_id: get(r, "baseline_id")?,
        version: get(r, "version")?,
        document: get_json(r, "document")?,
        created_at: get_ts(r, "created_at")?,
        actor: get(r, "actor")?,
    })
}

const API_KEY_COLS: &str =
    "access_key_id, name, role, secret_sha256, secret_sealed, created_at, disabled";
const BASELINE_COLS: &str =
    "baseline_id, name, operating_system, current_version, deleted, created_at, updated_at";

impl Store {
    // --- API keys -------------------------------------------------------

    pub async fn create_api_key(&self, key: &ApiKey, audit: &Audit) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (access_key_id, name, role, secret_sha256, secret_sealed, \
             created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.access_key_id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.secret_sha256)
        .bind(key.secret_sealed.clone())
        .bind(ms(key.created_at))
        .bind(i64::from(key.disabled))
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, audit, &[&key.access_key_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_api_key(&self, access_key_id: &str) -> Result<ApiKey> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLS} FROM api_keys WHERE access_key_id = $1"
        )))
        .bind(access_key_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("API key {access_key_id}")))?;
        api_key_of(&r)
    }

    /// Bearer tokens are looked up by the hash of the secret.
    pub async fn get_api_key_by_secret_sha256(&self, secret_sha256: &str) -> Result<ApiKey> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLS} FROM api_keys WHERE secret_sha256 = $1"
        )))
        .bind(secret_sha256)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound("API key".into()))?;
        api_key_of(&r)
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLS} FROM api_keys ORDER BY access_key_id"
        )))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(api_key_of).collect()
    }

    pub async fn set_api_key_disabled(
        &self,
        access_key_id: &str,
        disabled: bool,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("UPDATE api_keys SET disabled = $2 WHERE access_key_id = $1")
            .bind(access_key_id)
            .bind(i64::from(disabled))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("API key {access_key_id}")));
        }
        audit::write(&mut tx, audit, &[access_key_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_api_key(&self, access_key_id: &str, audit: &Audit) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("DELETE FROM api_keys WHERE access_key_id = $1")
            .bind(access_key_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("API key {access_key_id}")));
        }
        audit::write(&mut tx, audit, &[access_key_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- Activations ----------------------------------------------------

    pub async fn create_activation(&self, a: &Activation, audit: &Audit) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO activations (activation_id, code_sha256, description, \
             default_instance_name, iam_role, registration_limit, registrations_count, \
             expiration_date, created_date, tags) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.activation_id)
        .bind(&a.code_sha256)
        .bind(&a.description)
        .bind(a.default_instance_name.clone())
        .bind(&a.iam_role)
        .bind(a.registration_limit)
        .bind(a.registrations_count)
        .bind(ms(a.expiration_date))
        .bind(ms(a.created_date))
        .bind(to_json(&a.tags)?)
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, audit, &[&a.activation_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_activation(&self, activation_id: &str) -> Result<Activation> {
        let r = sqlx::query("SELECT * FROM activations WHERE activation_id = $1")
            .bind(activation_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("activation {activation_id}")))?;
        activation_of(&r)
    }

    pub async fn list_activations(&self) -> Result<Vec<Activation>> {
        let rows = sqlx::query("SELECT * FROM activations ORDER BY created_date, activation_id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(activation_of).collect()
    }

    /// Registered nodes stay registered; only new registrations stop.
    pub async fn delete_activation(&self, activation_id: &str, audit: &Audit) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("DELETE FROM activations WHERE activation_id = $1")
            .bind(activation_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("activation {activation_id}")));
        }
        audit::write(&mut tx, audit, &[activation_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- Baselines ------------------------------------------------------

    /// Creates version 1 under a new `pb-` id, which it returns.
    pub async fn create_baseline(
        &self,
        name: &str,
        operating_system: &str,
        document: &serde_json::Value,
        tags: &[(String, String)],
        now: Timestamp,
        audit: &Audit,
    ) -> Result<BaselineRecord> {
        let id = new_baseline_id();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO baselines (baseline_id, name, operating_system, current_version, \
             deleted, created_at, updated_at) VALUES ($1, $2, $3, 1, 0, $4, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(operating_system)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        insert_version(&mut tx, &id, 1, document, now, &audit.actor).await?;
        for (k, v) in tags {
            sqlx::query("INSERT INTO baseline_tags (baseline_id, key, value) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        audit::write(&mut tx, audit, &[&id]).await?;
        tx.commit().await?;
        Ok(BaselineRecord {
            baseline_id: id,
            name: name.to_owned(),
            operating_system: operating_system.to_owned(),
            current_version: 1,
            deleted: false,
            created_at: now,
            updated_at: now,
        })
    }

    /// Adds version `expected_version + 1` if the current version is still
    /// `expected_version` (else [`StoreError::Conflict`]); earlier versions
    /// stay as they were. Returns the new version number.
    pub async fn update_baseline(
        &self,
        baseline_id: &str,
        expected_version: i64,
        name: &str,
        document: &serde_json::Value,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<i64> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE baselines SET current_version = current_version + 1, name = $3, \
             updated_at = $4 WHERE baseline_id = $1 AND current_version = $2 AND deleted = 0",
        )
        .bind(baseline_id)
        .bind(expected_version)
        .bind(name)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            let current: Option<(i64, i64)> = sqlx::query_as(
                "SELECT current_version, deleted FROM baselines WHERE baseline_id = $1",
            )
            .bind(baseline_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match current {
                None | Some((_, 1)) => StoreError::NotFound(format!("baseline {baseline_id}")),
                Some((v, _)) => StoreError::Conflict(format!(
                    "baseline {baseline_id} is at version {v}, not {expected_version}"
                )),
            });
        }
        let version = expected_version + 1;
        insert_version(&mut tx, baseline_id, version, document, now, &audit.actor).await?;
        audit::write(&mut tx, audit, &[baseline_id]).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Soft: the versions stay readable (evaluations and history name them).
    pub async fn delete_baseline(
        &self,
        baseline_id: &str,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE baselines SET deleted = 1, updated_at = $2 WHERE baseline_id = $1 AND deleted = 0",
        )
        .bind(baseline_id)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("baseline {baseline_id}")));
        }
        audit::write(&mut tx, audit, &[baseline_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A deleted baseline is found too (`deleted` says so).
    pub async fn get_baseline(&self, baseline_id: &str) -> Result<BaselineRecord> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BASELINE_COLS} FROM baselines WHERE baseline_id = $1"
        )))
        .bind(baseline_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("baseline {baseline_id}")))?;
        baseline_of(&r)
    }

    /// Not deleted, by name then id.
    pub async fn list_baselines(
        &self,
        operating_system: Option<&str>,
    ) -> Result<Vec<BaselineRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BASELINE_COLS} FROM baselines WHERE deleted = 0 \
             AND ($1 = '' OR operating_system = $1) ORDER BY name, baseline_id"
        )))
        .bind(operating_system.unwrap_or(""))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(baseline_of).collect()
    }

    /// `version`: `None` for the current one.
    pub async fn get_baseline_version(
        &self,
        baseline_id: &str,
        version: Option<i64>,
    ) -> Result<BaselineVersion> {
        let r = match version {
            Some(v) => {
                sqlx::query(
                    "SELECT * FROM baseline_versions WHERE baseline_id = $1 AND version = $2",
                )
                .bind(baseline_id)
                .bind(v)
                .fetch_optional(&self.read)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT v.* FROM baselines b JOIN baseline_versions v \
                     ON v.baseline_id = b.baseline_id AND v.version = b.current_version \
                     WHERE b.baseline_id = $1",
                )
                .bind(baseline_id)
                .fetch_optional(&self.read)
                .await?
            }
        }
        .ok_or_else(|| {
            StoreError::NotFound(format!("baseline {baseline_id} version {version:?}"))
        })?;
        version_of(&r)
    }

    /// Oldest first.
    pub async fn list_baseline_versions(&self, baseline_id: &str) -> Result<Vec<BaselineVersion>> {
        let rows =
            sqlx::query("SELECT * FROM baseline_versions WHERE baseline_id = $1 ORDER BY version")
                .bind(baseline_id)
                .fetch_all(&self.read)
                .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound(format!("baseline {baseline_id}")));
        }
        rows.iter().map(version_of).collect()
    }

    pub async fn baseline_tags(&self, baseline_id: &str) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT key, value FROM baseline_tags WHERE baseline_id = $1 ORDER BY key",
        )
        .bind(baseline_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Adds or replaces `add`, then removes the keys in `remove`, on a
    /// baseline that exists and is not deleted.
    pub async fn change_baseline_tags(
        &self,
        baseline_id: &str,
        add: &[(String, String)],
        remove: &[String],
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let live: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT 1 FROM baselines WHERE baseline_id = $1 AND deleted = 0{}",
            self.for_update()
        )))
        .bind(baseline_id)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(StoreError::NotFound(format!("baseline {baseline_id}")));
        }
        for (k, v) in add {
            sqlx::query(
                "INSERT INTO baseline_tags (baseline_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (baseline_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(baseline_id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        for k in remove {
            sqlx::query("DELETE FROM baseline_tags WHERE baseline_id = $1 AND key = $2")
                .bind(baseline_id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        audit::write(&mut tx, audit, &[baseline_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- Defaults and patch groups ----------------------------------------

    /// Replaces the default of the OS.
    pub async fn set_default_baseline(
        &self,
        operating_system: &str,
        baseline_id: &str,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO default_baselines (operating_system, baseline_id) VALUES ($1, $2) \
             ON CONFLICT (operating_system) DO UPDATE SET baseline_id = excluded.baseline_id",
        )
        .bind(operating_system)
        .bind(baseline_id)
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, audit, &[baseline_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Only the defaults set here; predefined ones are the caller's fallback.
    pub async fn default_baselines(&self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT operating_system, baseline_id FROM default_baselines ORDER BY operating_system",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// A group has at most one baseline per OS: a second one is
    /// [`StoreError::AlreadyExists`].
    pub async fn register_patch_group(&self, pg: &PatchGroupRecord, audit: &Audit) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO patch_groups (patch_group, operating_system, baseline_id) VALUES ($1, $2, $3)",
        )
        .bind(&pg.patch_group)
        .bind(&pg.operating_system)
        .bind(&pg.baseline_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!(
                "patch group {} already has a baseline for {}",
                pg.patch_group, pg.operating_system
            )),
            e => e,
        })?;
        audit::write(&mut tx, audit, &[&pg.baseline_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn deregister_patch_group(
        &self,
        patch_group: &str,
        operating_system: &str,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "DELETE FROM patch_groups WHERE patch_group = $1 AND operating_system = $2",
        )
        .bind(patch_group)
        .bind(operating_system)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "patch group {patch_group} ({operating_system})"
            )));
        }
        audit::write(&mut tx, audit, &[]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_patch_groups(&self) -> Result<Vec<PatchGroupRecord>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT patch_group, operating_system, baseline_id FROM patch_groups \
             ORDER BY patch_group, operating_system",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(patch_group, operating_system, baseline_id)| PatchGroupRecord {
                    patch_group,
                    operating_system,
                    baseline_id,
                },
            )
            .collect())
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    baseline_id: &str,
    version: i64,
    document: &serde_json::Value,
    now: Timestamp,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO baseline_versions (baseline_id, version, document, created_at, actor) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(baseline_id)
    .bind(version)
    .bind(to_json(document)?)
    .bind(ms(now))
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
