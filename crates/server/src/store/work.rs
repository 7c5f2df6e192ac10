//! Work for nodes (delivered at least once) and leases for background work
//! that one replica at a time must do.

use super::audit;
use super::*;

fn work_of(r: &AnyRow) -> Result<WorkItemRecord> {
    let result: Option<String> = get(r, "result")?;
    Ok(WorkItemRecord {
        id: get(r, "id")?,
        node_id: get(r, "node_id")?,
        kind: get(r, "kind")?,
        parameters: get_json(r, "parameters")?,
        created_at: get_ts(r, "created_at")?,
        delivered_at: get_opt_ts(r, "delivered_at")?,
        completed_at: get_opt_ts(r, "completed_at")?,
        result: result.map(|s| parse_json(&s, "result")).transpose()?,
    })
}

impl Store {
    /// Queues work for a node; returns the new item's id.
    pub async fn enqueue_work(
        &self,
        node_id: &str,
        kind: &str,
        parameters: &serde_json::Value,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<String> {
        let id = new_time_id(now);
        let mut tx = self.write.begin().await?;
        let active: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM nodes WHERE node_id = $1 AND deregistered_at IS NULL")
                .bind(node_id)
                .fetch_optional(&mut *tx)
                .await?;
        if active.is_none() {
            return Err(StoreError::NotFound(format!("node {node_id}")));
        }
        sqlx::query(
            "INSERT INTO work_items (id, node_id, kind, parameters, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(node_id)
        .bind(kind)
        .bind(to_json(parameters)?)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, audit, &[node_id, &id]).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Sends `payload` on the PostgreSQL notification `channel` (the other
    /// replicas listen); nothing on SQLite, whose one process needs none.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// The node's undelivered items, oldest first, marked delivered in the
    /// same statement: two concurrent polls (any replicas) never both get an
    /// item. The agent de-duplicates redeliveries by id.
    pub async fn take_work(&self, node_id: &str, now: Timestamp) -> Result<Vec<WorkItemRecord>> {
        let rows = sqlx::query(
            "UPDATE work_items SET delivered_at = $2 WHERE node_id = $1 AND delivered_at IS NULL \
             RETURNING *",
        )
        .bind(node_id)
        .bind(ms(now))
        .fetch_all(&self.write)
        .await?;
        let mut items = rows.iter().map(work_of).collect::<Result<Vec<_>>>()?;
        items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(items)
    }

    /// Marks a delivered item complete with its result; completing twice is
    /// [`StoreError::Conflict`].
    pub async fn complete_work(
        &self,
        id: &str,
        result: &serde_json::Value,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE work_items SET completed_at = $2, result = $3, \
             delivered_at = COALESCE(delivered_at, $2) WHERE id = $1 AND completed_at IS NULL",
        )
        .bind(id)
        .bind(ms(now))
        .bind(to_json(result)?)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            let exists: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM work_items WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                None => StoreError::NotFound(format!("work item {id}")),
                Some(_) => StoreError::Conflict(format!("work item {id} already completed")),
            });
        }
        audit::write(&mut tx, audit, &[id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_work(&self, id: &str) -> Result<WorkItemRecord> {
        let r = sqlx::query("SELECT * FROM work_items WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("work item {id}")))?;
        work_of(&r)
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl`.
    /// `true` when `holder` now holds it: it was free, expired at `now`, or
    /// already `holder`'s. One upsert, atomic on both databases.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<bool> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let got = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(ms(now).saturating_add(ttl_ms))
        .bind(ms(now))
        .fetch_optional(&self.write)
        .await?;
        Ok(got.is_some())
    }

    /// Gives the lease up early (only if `holder` has it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
