//! Distinct inventories (content-addressed, compressed), the fleet-wide
//! first sighting of each available version, and the evaluation cache.

use super::audit;
use super::*;
use std::collections::HashMap;

impl Store {
    /// Stores an inventory unless its hash is known (then nothing happens
    /// and `false` is returned). On first storage it also records `now` as
    /// the first sighting of each of its available versions that no earlier
    /// inventory offered, in one set-based statement, and writes the audit
    /// row; all in one transaction.
    pub async fn put_inventory(
        &self,
        inv: &NewInventory,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<bool> {
        let facts = gzip(&inv.facts_json)?;
        let versions = versions_json(&inv.available)?;
        let mut tx = self.write.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO inventories (content_hash, operating_system, product, facts, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (content_hash) DO NOTHING",
        )
        .bind(&inv.content_hash)
        .bind(&inv.operating_system)
        .bind(&inv.product)
        .bind(facts)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        // One statement for the whole list (65k versions on Debian): a JSON
        // array read by the database, never a row per round trip.
        let sql = match self.backend {
            // `WHERE true`: SQLite's parser needs it before ON CONFLICT
            // after a SELECT.
            Backend::Sqlite => {
                "INSERT INTO package_first_seen (name, arch, version, first_seen) \
                 SELECT json_extract(value, '$.n'), json_extract(value, '$.a'), \
                 json_extract(value, '$.v'), $2 FROM json_each($1) WHERE true \
                 ON CONFLICT (name, arch, version) DO NOTHING"
            }
            Backend::Postgres => {
                "INSERT INTO package_first_seen (name, arch, version, first_seen) \
                 SELECT x.n, x.a, x.v, $2 FROM json_to_recordset($1::json) AS x(n text, a text, v text) \
                 ON CONFLICT (name, arch, version) DO NOTHING"
            }
        };
        sqlx::query(sql)
            .bind(versions)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        audit::write(&mut tx, audit, &[&inv.content_hash]).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn has_inventory(&self, content_hash: &str) -> Result<bool> {
        let r: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM inventories WHERE content_hash = $1")
            .bind(content_hash)
            .fetch_optional(&self.read)
            .await?;
        Ok(r.is_some())
    }

    pub async fn get_inventory(&self, content_hash: &str) -> Result<Inventory> {
        let r = sqlx::query(
            "SELECT content_hash, operating_system, product, facts, created_at FROM inventories \
             WHERE content_hash = $1",
        )
        .bind(content_hash)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("inventory {content_hash}")))?;
        Ok(Inventory {
            content_hash: get(&r, "content_hash")?,
            operating_system: get(&r, "operating_system")?,
            product: get(&r, "product")?,
            facts_json: gunzip(&get::<Vec<u8>>(&r, "facts")?)?,
            created_at: get_ts(&r, "created_at")?,
        })
    }

    /// When the fleet first saw each of `versions` (those never seen are
    /// absent). One statement for the whole list.
    pub async fn first_seen(
        &self,
        versions: &[PackageVersion],
    ) -> Result<HashMap<PackageVersion, Timestamp>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT p.name, p.arch, p.version, p.first_seen FROM json_each($1) j \
                 JOIN package_first_seen p ON p.name = json_extract(j.value, '$.n') \
                 AND p.arch = json_extract(j.value, '$.a') AND p.version = json_extract(j.value, '$.v')"
            }
            Backend::Postgres => {
                "SELECT p.name, p.arch, p.version, p.first_seen \
                 FROM json_to_recordset($1::json) AS x(n text, a text, v text) \
                 JOIN package_first_seen p ON p.name = x.n AND p.arch = x.a AND p.version = x.v"
            }
        };
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(sql)
            .bind(versions_json(versions)?)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|(name, arch, version, at)| {
                Ok((
                    PackageVersion {
                        name,
                        arch,
                        version,
                    },
                    ts(at)?,
                ))
            })
            .collect()
    }

    /// [`Self::first_seen`] of the available versions of a stored inventory.
    pub async fn inventory_first_seen(
        &self,
        content_hash: &str,
    ) -> Result<HashMap<PackageVersion, Timestamp>> {
        let inv = self.get_inventory(content_hash).await?;
        #[derive(serde::Deserialize)]
        struct Available {
            name: String,
            arch: String,
            version: String,
        }
        #[derive(serde::Deserialize)]
        struct Facts {
            #[serde(default)]
            available: Vec<Available>,
        }
        let facts: Facts = serde_json::from_slice(&inv.facts_json)
            .map_err(|e| StoreError::Database(format!("inventory {content_hash}: {e}")))?;
        let versions: Vec<PackageVersion> = facts
            .available
            .into_iter()
            .map(|a| PackageVersion {
                name: a.name,
                arch: a.arch,
                version: a.version,
            })
            .collect();
        self.first_seen(&versions).await
    }

    // --- Evaluation cache -------------------------------------------------

    pub async fn get_evaluation(&self, key: &EvaluationKey) -> Result<Option<Evaluation>> {
        let r = evaluation_query("summary, patches, created_at", key)
            .fetch_optional(&self.read)
            .await?;
        let Some(r) = r else { return Ok(None) };
        Ok(Some(Evaluation {
            key: key.clone(),
            summary: get_json(&r, "summary")?,
            patches_json: {
                let gz: Vec<u8> = get(&r, "patches")?;
                if gz.is_empty() {
                    Vec::new()
                } else {
                    gunzip(&gz)?
                }
            },
            created_at: get_ts(&r, "created_at")?,
        }))
    }

    /// Only the summary of an evaluation (what a fan-out needs).
    pub async fn get_evaluation_summary<T: serde::de::DeserializeOwned>(
        &self,
        key: &EvaluationKey,
    ) -> Result<Option<T>> {
        let r = evaluation_query("summary", key)
            .fetch_optional(&self.read)
            .await?;
        r.map(|r| parse_json(&get::<String>(&r, "summary")?, "summary"))
            .transpose()
    }

    /// Keeps the report rendered for an evaluation stored without one.
    pub async fn put_evaluation_report(
        &self,
        key: &EvaluationKey,
        patches_json: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "UPDATE evaluations SET patches = $6 WHERE inventory_hash = $1 AND baseline_id = $2 \
             AND baseline_version = $3 AND eval_day = $4 AND state_key = $5",
        )
        .bind(&key.inventory_hash)
        .bind(&key.baseline_id)
        .bind(key.baseline_version)
        .bind(key.eval_day)
        .bind(&key.state_key)
        .bind(gzip(patches_json)?)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A cache: the first writer wins (the same key computes the same
    /// result), so concurrent replicas need no coordination. Not audited.
    pub async fn put_evaluation(&self, e: &Evaluation) -> Result<bool> {
        Ok(self.put_evaluations(&[e.pack()?]).await? == 1)
    }

    /// [`Self::put_evaluation`] for many, in one transaction of multi-row
    /// inserts; returns how many were new.
    pub async fn put_evaluations(&self, es: &[PackedEvaluation]) -> Result<u64> {
        // 8 parameters a row: far below both databases' bind limits.
        const ROWS: usize = 64;
        let mut tx = self.write.begin().await?;
        let mut new = 0;
        for chunk in es.chunks(ROWS) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p: Vec<String> = (1..=8).map(|c| format!("${}", r * 8 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO evaluations (inventory_hash, baseline_id, baseline_version, eval_day, \
                 state_key, summary, patches, created_at) VALUES {} ON CONFLICT (inventory_hash, \
                 baseline_id, baseline_version, eval_day, state_key) DO NOTHING",
                rows.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.key.inventory_hash.clone())
                    .bind(e.key.baseline_id.clone())
                    .bind(e.key.baseline_version)
                    .bind(e.key.eval_day)
                    .bind(e.key.state_key.clone())
                    .bind(e.summary_json.clone())
                    .bind(e.patches_gz.clone())
                    .bind(ms(e.created_at));
            }
            new += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(new)
    }
}

/// Sorted and deduplicated: concurrent inserts on PostgreSQL then take
/// their row locks in one order (no deadlock between two new inventories).
fn versions_json(versions: &[PackageVersion]) -> Result<String> {
    let mut v: Vec<&PackageVersion> = versions.iter().collect();
    v.sort();
    v.dedup();
    to_json(&v)
}

/// `SELECT cols` of the evaluation stored under `key`.
fn evaluation_query<'k>(
    cols: &str,
    key: &'k EvaluationKey,
) -> sqlx::query::Query<'k, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {cols} FROM evaluations WHERE inventory_hash = $1 AND baseline_id = $2 \
         AND baseline_version = $3 AND eval_day = $4 AND state_key = $5"
    )))
    .bind(&key.inventory_hash)
    .bind(&key.baseline_id)
    .bind(key.baseline_version)
    .bind(key.eval_day)
    .bind(&key.state_key)
}
