//! Managed nodes: registration through an activation, heartbeats, tags,
//! deregistration, and the node's inventory pointer.

use super::audit::{self, Sql, page};
use super::*;

/// Why a registration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    #[error("activation not found")]
    NotFound,
    #[error("activation code does not match")]
    InvalidCode,
    #[error("activation expired")]
    Expired,
    #[error("activation registration limit reached")]
    LimitReached,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RegisterError {
    fn from(e: sqlx::Error) -> RegisterError {
        RegisterError::Store(e.into())
    }
}

const NODE_COLS: &str = "node_id, activation_id, name, computer_name, ip_address, agent_version, \
     protocol, capabilities, platform_type, platform_name, platform_version, operating_system, \
     product, registration_date, last_ping, cert_fingerprint, deregistered_at, patch_group, \
     inventory_hash, node_state, scanned_at";

fn node_of(r: &AnyRow) -> Result<Node> {
    let state: Option<String> = get(r, "node_state")?;
    Ok(Node {
        node_id: get(r, "node_id")?,
        activation_id: get(r, "activation_id")?,
        name: get(r, "name")?,
        computer_name: get(r, "computer_name")?,
        ip_address: get(r, "ip_address")?,
        agent_version: get(r, "agent_version")?,
        protocol: get(r, "protocol")?,
        capabilities: parse_json(&get::<String>(r, "capabilities")?, "capabilities")?,
        platform_type: get(r, "platform_type")?,
        platform_name: get(r, "platform_name")?,
        platform_version: get(r, "platform_version")?,
        operating_system: get(r, "operating_system")?,
        product: get(r, "product")?,
        registration_date: get_ts(r, "registration_date")?,
        last_ping: get_ts(r, "last_ping")?,
        cert_fingerprint: get(r, "cert_fingerprint")?,
        deregistered_at: get_opt_ts(r, "deregistered_at")?,
        patch_group: get(r, "patch_group")?,
        inventory_hash: get(r, "inventory_hash")?,
        node_state: state.map(|s| parse_json(&s, "node_state")).transpose()?,
        scanned_at: get_opt_ts(r, "scanned_at")?,
        tags: Vec::new(),
    })
}

/// The tag SSM reads the patch group from, in its order of preference.
pub const PATCH_GROUP_TAGS: [&str; 2] = ["Patch Group", "PatchGroup"];

impl Store {
    /// Registers `node` through an activation, atomically: the activation
    /// must exist, match `code_sha256`, not be expired at `now`, and have a
    /// registration left; its count goes up in the same statement that
    /// checks the limit, so concurrent registrations (on any replica) never
    /// exceed it. The activation's tags become the node's.
    pub async fn register_node(
        &self,
        activation_id: &str,
        code_sha256: &str,
        node: &NewNode,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<Node, RegisterError> {
        let mut tx = self.write.begin().await?;
        let claimed = sqlx::query(
            "UPDATE activations SET registrations_count = registrations_count + 1 \
             WHERE activation_id = $1 AND code_sha256 = $2 AND expiration_date > $3 \
             AND registrations_count < registration_limit RETURNING tags",
        )
        .bind(activation_id)
        .bind(code_sha256)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(claimed) = claimed else {
            let a: Option<(String, i64, i64, i64)> = sqlx::query_as(
                "SELECT code_sha256, expiration_date, registrations_count, registration_limit \
                 FROM activations WHERE activation_id = $1",
            )
            .bind(activation_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match a {
                None => RegisterError::NotFound,
                Some((code, ..)) if code != code_sha256 => RegisterError::InvalidCode,
                Some((_, exp, ..)) if exp <= ms(now) => RegisterError::Expired,
                Some(_) => RegisterError::LimitReached,
            });
        };
        let tags: serde_json::Value = get_json(&claimed, "tags")?;
        let mut tags: Vec<(String, String)> = tags
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        let patch_group = patch_group_of(&tags);
        sqlx::query(
            "INSERT INTO nodes (node_id, activation_id, name, computer_name, ip_address, \
             agent_version, protocol, capabilities, platform_type, platform_name, \
             platform_version, operating_system, product, registration_date, last_ping, \
             cert_fingerprint, patch_group) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16)",
        )
        .bind(&node.node_id)
        .bind(activation_id)
        .bind(&node.name)
        .bind(&node.computer_name)
        .bind(&node.ip_address)
        .bind(&node.agent_version)
        .bind(&node.protocol)
        .bind(to_json(&node.capabilities)?)
        .bind(&node.platform_type)
        .bind(&node.platform_name)
        .bind(&node.platform_version)
        .bind(&node.operating_system)
        .bind(&node.product)
        .bind(ms(now))
        .bind(&node.cert_fingerprint)
        .bind(patch_group)
        .execute(&mut *tx)
        .await?;
        for (k, v) in &tags {
            insert_tag(&mut tx, &node.node_id, k, v).await?;
        }
        audit::write(&mut tx, audit, &[&node.node_id, activation_id]).await?;
        tx.commit().await?;
        Ok(self.get_node(&node.node_id).await?)
    }

    /// Records a ping. `false`: no such node, or deregistered.
    pub async fn heartbeat(&self, node_id: &str, hb: &Heartbeat, now: Timestamp) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE nodes SET last_ping = $2, agent_version = $3, ip_address = $4, \
             computer_name = $5, capabilities = $6, platform_name = $7, platform_version = $8 \
             WHERE node_id = $1 AND deregistered_at IS NULL",
        )
        .bind(node_id)
        .bind(ms(now))
        .bind(&hb.agent_version)
        .bind(&hb.ip_address)
        .bind(&hb.computer_name)
        .bind(to_json(&hb.capabilities)?)
        .bind(&hb.platform_name)
        .bind(&hb.platform_version)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Registered and not deregistered: a certificate of a deregistered
    /// node must no longer authenticate.
    pub async fn is_node_active(&self, node_id: &str) -> Result<bool> {
        let r: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM nodes WHERE node_id = $1 AND deregistered_at IS NULL")
                .bind(node_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(r.is_some())
    }

    /// Deregistered nodes too (`deregistered_at` says so).
    pub async fn get_node(&self, node_id: &str) -> Result<Node> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {NODE_COLS} FROM nodes WHERE node_id = $1"
        )))
        .bind(node_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("node {node_id}")))?;
        let mut node = node_of(&r)?;
        node.tags = self.node_tags(node_id).await?;
        Ok(node)
    }

    pub async fn node_tags(&self, node_id: &str) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT key, value FROM node_tags WHERE node_id = $1 ORDER BY key")
                .bind(node_id)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// Registered nodes matching every filter, by id; `after` is the
    /// previous page's `next`.
    pub async fn list_nodes(
        &self,
        filter: &NodeFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Node>> {
        let mut q = Sql::new(&format!(
            "SELECT {NODE_COLS} FROM nodes n WHERE n.deregistered_at IS NULL"
        ));
        if !filter.node_ids.is_empty() {
            q.push(" AND n.node_id IN (");
            for (i, id) in filter.node_ids.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.bind_text(id);
            }
            q.push(")");
        }
        for (k, v) in &filter.tags {
            q.push(
                " AND EXISTS (SELECT 1 FROM node_tags t WHERE t.node_id = n.node_id AND t.key = ",
            );
            q.bind_text(k);
            q.push(" AND t.value = ");
            q.bind_text(v);
            q.push(")");
        }
        if let Some(pg) = &filter.patch_group {
            q.push(" AND n.patch_group = ");
            q.bind_text(pg);
        }
        if let Some(os) = &filter.operating_system {
            q.push(" AND n.operating_system = ");
            q.bind_text(os);
        }
        if let Some((status, cutoff)) = filter.ping_status {
            q.push(match status {
                PingStatus::Online => " AND n.last_ping >= ",
                PingStatus::ConnectionLost => " AND n.last_ping < ",
            });
            q.bind_int(ms(cutoff));
        }
        if let Some(a) = after {
            q.push(" AND n.node_id > ");
            q.bind_text(a);
        }
        q.push(" ORDER BY n.node_id LIMIT ");
        q.bind_int(i64::from(limit) + 1);
        let rows = q.fetch_all(&self.read).await?;
        let nodes = rows.iter().map(node_of).collect::<Result<Vec<_>>>()?;
        let mut p = page(nodes, limit, |n| n.node_id.clone());
        // The page's tags in one query (its id range), not one per node.
        if let (Some(first), Some(last)) = (p.items.first(), p.items.last()) {
            let tags: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT node_id, key, value FROM node_tags WHERE node_id >= $1 AND node_id <= $2 \
                 ORDER BY node_id, key",
            )
            .bind(first.node_id.clone())
            .bind(last.node_id.clone())
            .fetch_all(&self.read)
            .await?;
            let mut by_node: std::collections::HashMap<String, Vec<(String, String)>> =
                std::collections::HashMap::new();
            for (n, k, v) in tags {
                by_node.entry(n).or_default().push((k, v));
            }
            for n in &mut p.items {
                n.tags = by_node.remove(&n.node_id).unwrap_or_default();
            }
        }
        Ok(p)
    }

    /// Adds or replaces the given tags.
    pub async fn set_node_tags(
        &self,
        node_id: &str,
        tags: &[(String, String)],
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        self.lock_active_node(&mut tx, node_id).await?;
        for (k, v) in tags {
            sqlx::query(
                "INSERT INTO node_tags (node_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (node_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(node_id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        refresh_patch_group(&mut tx, node_id, audit.at).await?;
        audit::write(&mut tx, audit, &[node_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the tags with these keys (absent ones are ignored).
    pub async fn remove_node_tags(
        &self,
        node_id: &str,
        keys: &[String],
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        self.lock_active_node(&mut tx, node_id).await?;
        for k in keys {
            sqlx::query("DELETE FROM node_tags WHERE node_id = $1 AND key = $2")
                .bind(node_id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        refresh_patch_group(&mut tx, node_id, audit.at).await?;
        audit::write(&mut tx, audit, &[node_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The node stays in the table (history, audit) but no longer
    /// authenticates, is listed or counted.
    pub async fn deregister_node(
        &self,
        node_id: &str,
        now: Timestamp,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE nodes SET deregistered_at = $2 WHERE node_id = $1 AND deregistered_at IS NULL",
        )
        .bind(node_id)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("node {node_id}")));
        }
        sqlx::query("DELETE FROM work_items WHERE node_id = $1 AND completed_at IS NULL")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        // Its commands' invocations not yet sent can never be delivered.
        let commands: Vec<(String,)> = sqlx::query_as(
            "UPDATE invocations SET status = 'Failed', status_details = 'Undeliverable', \
             ended_at = $2, updated_at = $2 \
             WHERE node_id = $1 AND dispatched = 0 AND status_details = 'Pending' \
             RETURNING command_id",
        )
        .bind(node_id)
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await?;
        for (c,) in &commands {
            sqlx::query("UPDATE commands SET dirty = 1 WHERE command_id = $1")
                .bind(c)
                .execute(&mut *tx)
                .await?;
        }
        audit::write(&mut tx, audit, &[node_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Points the node at an inventory (which must be stored) with its own
    /// state and the state's key; returns the previous inventory hash. A
    /// node that changes evaluation group records the move (its timeline).
    pub async fn set_node_inventory(
        &self,
        node_id: &str,
        inventory_hash: &str,
        node_state: &serde_json::Value,
        state_key: &str,
        scanned_at: Timestamp,
        audit: &Audit,
    ) -> Result<Option<String>> {
        let mut tx = self.write.begin().await?;
        let previous: Option<(Option<String>, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT inventory_hash, state_key FROM nodes WHERE node_id = $1 \
             AND deregistered_at IS NULL{}",
            self.for_update()
        )))
        .bind(node_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((previous, previous_key)) = previous else {
            return Err(StoreError::NotFound(format!("node {node_id}")));
        };
        let known: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM inventories WHERE content_hash = $1")
                .bind(inventory_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("inventory {inventory_hash}")));
        }
        sqlx::query(
            "UPDATE nodes SET inventory_hash = $2, node_state = $3, scanned_at = $4, \
             state_key = $5 WHERE node_id = $1",
        )
        .bind(node_id)
        .bind(inventory_hash)
        .bind(to_json(node_state)?)
        .bind(ms(scanned_at))
        .bind(state_key)
        .execute(&mut *tx)
        .await?;
        if previous.as_deref() != Some(inventory_hash) || previous_key != state_key {
            record_membership(&mut tx, node_id, audit.at).await?;
        }
        audit::write(&mut tx, audit, &[node_id, inventory_hash]).await?;
        tx.commit().await?;
        Ok(previous)
    }

    /// The evaluation groups of the registered nodes with facts among
    /// `node_ids` (all when empty), in key order.
    pub async fn evaluation_groups(&self, node_ids: &[String]) -> Result<Vec<EvaluationGroup>> {
        let mut filter = String::new();
        if !node_ids.is_empty() {
            filter = format!(" AND node_id IN {}", self.id_set("$1"));
        }
        let sql = format!(
            "SELECT g.inventory_hash, g.operating_system, g.patch_group, g.state_key, g.nodes, \
             n.node_state FROM (SELECT inventory_hash, operating_system, patch_group, state_key, \
             MIN(node_id) AS rep, COUNT(*) AS nodes FROM nodes \
             WHERE deregistered_at IS NULL AND inventory_hash IS NOT NULL{filter} \
             GROUP BY inventory_hash, operating_system, patch_group, state_key) g \
             JOIN nodes n ON n.node_id = g.rep \
             ORDER BY g.inventory_hash, g.operating_system, g.patch_group, g.state_key"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if !node_ids.is_empty() {
            q = q.bind(to_json(&node_ids)?);
        }
        q.fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                let state: Option<String> = get(r, "node_state")?;
                Ok(EvaluationGroup {
                    inventory_hash: get(r, "inventory_hash")?,
                    operating_system: get(r, "operating_system")?,
                    patch_group: get(r, "patch_group")?,
                    state_key: get(r, "state_key")?,
                    node_state: state.map(|s| parse_json(&s, "node_state")).transpose()?,
                    nodes: get(r, "nodes")?,
                })
            })
            .collect()
    }

    async fn lock_active_node(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        node_id: &str,
    ) -> Result<()> {
        let r: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT 1 FROM nodes WHERE node_id = $1 AND deregistered_at IS NULL{}",
            self.for_update()
        )))
        .bind(node_id)
        .fetch_optional(&mut **tx)
        .await?;
        r.map(|_| ())
            .ok_or_else(|| StoreError::NotFound(format!("node {node_id}")))
    }
}

fn patch_group_of(tags: &[(String, String)]) -> Option<String> {
    PATCH_GROUP_TAGS
        .iter()
        .find_map(|t| tags.iter().find(|(k, _)| k == t).map(|(_, v)| v.clone()))
}

async fn insert_tag(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    node_id: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO node_tags (node_id, key, value) VALUES ($1, $2, $3)")
        .bind(node_id)
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The node's current evaluation group, from the audited change on
/// (nothing when it has no facts yet).
async fn record_membership(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    node_id: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO node_memberships (node_id, at, seq, inventory_hash, operating_system, \
         patch_group, state_key) SELECT node_id, $2, $3, inventory_hash, operating_system, \
         COALESCE(patch_group, ''), state_key FROM nodes \
         WHERE node_id = $1 AND inventory_hash IS NOT NULL",
    )
    .bind(node_id)
    .bind(ms(now))
    .bind(new_time_id(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn refresh_patch_group(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    node_id: &str,
    at: Timestamp,
) -> Result<()> {
    let tags: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM node_tags WHERE node_id = $1 AND key IN ($2, $3)")
            .bind(node_id)
            .bind(PATCH_GROUP_TAGS[0])
            .bind(PATCH_GROUP_TAGS[1])
            .fetch_all(&mut **tx)
            .await?;
    let changed = sqlx::query(
        "UPDATE nodes SET patch_group = $2 WHERE node_id = $1 \
         AND patch_group IS DISTINCT FROM $2",
    )
    .bind(node_id)
    .bind(patch_group_of(&tags))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed > 0 {
        record_membership(tx, node_id, at).await?;
    }
    Ok(())
}
