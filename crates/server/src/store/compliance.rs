//! Computed compliance per node, its timeline, and the fleet queries.

use super::audit::{Sql, page};
use super::*;

const COUNT_COLS: [&str; 11] = [
    "installed",
    "installed_other",
    "installed_pending_reboot",
    "installed_rejected",
    "missing",
    "failed",
    "not_applicable",
    "unreported_not_applicable",
    "critical_non_compliant",
    "security_non_compliant",
    "other_non_compliant",
];

fn counts_array(c: &PatchCounts) -> [i64; 11] {
    [
        c.installed,
        c.installed_other,
        c.installed_pending_reboot,
        c.installed_rejected,
        c.missing,
        c.failed,
        c.not_applicable,
        c.unreported_not_applicable,
        c.critical_non_compliant,
        c.security_non_compliant,
        c.other_non_compliant,
    ]
}

fn compliance_of(r: &AnyRow) -> Result<NodeCompliance> {
    let c: Vec<i64> = COUNT_COLS
        .iter()
        .map(|c| get(r, c))
        .collect::<Result<_>>()?;
    let baseline_id: String = get(r, "baseline_id")?;
    let baseline_version: i64 = get(r, "baseline_version")?;
    Ok(NodeCompliance {
        node_id: get(r, "node_id")?,
        key: EvaluationKey {
            inventory_hash: get(r, "inventory_hash")?,
            baseline_id: baseline_id.clone(),
            baseline_version,
            eval_day: get(r, "eval_day")?,
            state_key: get(r, "state_key")?,
        },
        baseline_id,
        baseline_version,
        patch_group: get(r, "patch_group")?,
        operating_system: get(r, "operating_system")?,
        evaluated_at: get_ts(r, "evaluated_at")?,
        compliance_status: get(r, "compliance_status")?,
        overall_severity: get(r, "overall_severity")?,
        counts: PatchCounts {
            installed: c[0],
            installed_other: c[1],
            installed_pending_reboot: c[2],
            installed_rejected: c[3],
            missing: c[4],
            failed: c[5],
            not_applicable: c[6],
            unreported_not_applicable: c[7],
            critical_non_compliant: c[8],
            security_non_compliant: c[9],
            other_non_compliant: c[10],
        },
        operation: get(r, "operation")?,
        operation_start: get_opt_ts(r, "operation_start")?,
        operation_end: get_opt_ts(r, "operation_end")?,
    })
}

impl Store {
    /// Upserts the node's compliance. When the status, the severity or a
    /// count differs from the stored row (or there was none), appends a
    /// timeline entry in the same transaction and returns `true`. Computed
    /// data, not a change anyone made: not audited (the timeline is its
    /// history). A deregistered node is [`StoreError::NotFound`].
    pub async fn put_node_compliance(&self, c: &NodeCompliance) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let active: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT 1 FROM nodes WHERE node_id = $1 AND deregistered_at IS NULL{}",
            self.for_update()
        )))
        .bind(&c.node_id)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_none() {
            return Err(StoreError::NotFound(format!("node {}", c.node_id)));
        }
        let old = sqlx::query("SELECT * FROM node_compliance WHERE node_id = $1")
            .bind(&c.node_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| compliance_of(&r))
            .transpose()?;
        let changed = old.is_none_or(|o| {
            o.compliance_status != c.compliance_status
                || o.overall_severity != c.overall_severity
                || o.counts != c.counts
        });
        let cols = COUNT_COLS.join(", ");
        let updates: String = COUNT_COLS
            .iter()
            .map(|c| format!(", {c} = excluded.{c}"))
            .collect();
        let sql = format!(
            "INSERT INTO node_compliance (node_id, baseline_id, baseline_version, patch_group, \
             operating_system, inventory_hash, eval_day, state_key, evaluated_at, \
             compliance_status, overall_severity, operation, operation_start, operation_end, {cols}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
             ON CONFLICT (node_id) DO UPDATE SET baseline_id = excluded.baseline_id, \
             baseline_version = excluded.baseline_version, patch_group = excluded.patch_group, \
             operating_system = excluded.operating_system, inventory_hash = excluded.inventory_hash, \
             eval_day = excluded.eval_day, state_key = excluded.state_key, \
             evaluated_at = excluded.evaluated_at, compliance_status = excluded.compliance_status, \
             overall_severity = excluded.overall_severity, operation = excluded.operation, \
             operation_start = excluded.operation_start, operation_end = excluded.operation_end{updates}"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(&c.node_id)
            .bind(&c.baseline_id)
            .bind(c.baseline_version)
            .bind(c.patch_group.clone())
            .bind(&c.operating_system)
            .bind(&c.key.inventory_hash)
            .bind(c.key.eval_day)
            .bind(&c.key.state_key)
            .bind(ms(c.evaluated_at))
            .bind(&c.compliance_status)
            .bind(&c.overall_severity)
            .bind(&c.operation)
            .bind(c.operation_start.map(ms))
            .bind(c.operation_end.map(ms));
        for n in counts_array(&c.counts) {
            q = q.bind(n);
        }
        q.execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE nodes SET compliance_status = $2, overall_severity = $3 WHERE node_id = $1",
        )
        .bind(&c.node_id)
        .bind(&c.compliance_status)
        .bind(&c.overall_severity)
        .execute(&mut *tx)
        .await?;
        if changed {
            let summary = serde_json::json!({
                "compliance_status": c.compliance_status,
                "overall_severity": c.overall_severity,
                "baseline_id": c.baseline_id,
                "baseline_version": c.baseline_version,
                "operation": c.operation,
                "counts": c.counts,
            });
            sqlx::query("INSERT INTO compliance_timeline (node_id, at, seq, summary) VALUES ($1, $2, $3, $4)")
                .bind(&c.node_id)
                .bind(ms(c.evaluated_at))
                .bind(new_time_id(c.evaluated_at))
                .bind(to_json(&summary)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// [`Self::put_node_compliance`] for many nodes: per chunk, one
    /// transaction of a few set-based statements (the records as one JSON
    /// text). Same semantics per node: upserted, the node's copy updated, a
    /// timeline entry only when the summary changed. Returns, per record in
    /// order, whether it changed, or `None` for a node not registered (any
    /// more), which is skipped.
    pub async fn put_node_compliances(&self, cs: &[NodeCompliance]) -> Result<Vec<Option<bool>>> {
        let mut out = Vec::with_capacity(cs.len());
        for chunk in cs.chunks(500) {
            out.extend(self.put_node_compliance_chunk(chunk).await?);
        }
        Ok(out)
    }

    async fn put_node_compliance_chunk(&self, cs: &[NodeCompliance]) -> Result<Vec<Option<bool>>> {
        let mut ids: Vec<&str> = cs.iter().map(|c| c.node_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids_json = to_json(&ids)?;
        let pg = self.backend == Backend::Postgres;
        let id_set = if pg {
            "(SELECT value FROM json_array_elements_text($1::json))"
        } else {
            "(SELECT value FROM json_each($1))"
        };
        let mut tx = self.write.begin().await?;
        // Locked in node-id order (no deadlock with another writer).
        let active: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT node_id FROM nodes WHERE node_id IN {id_set} AND deregistered_at IS NULL \
             ORDER BY node_id{}",
            self.for_update()
        )))
        .bind(&ids_json)
        .fetch_all(&mut *tx)
        .await?;
        let active: std::collections::HashSet<String> = active.into_iter().map(|(n,)| n).collect();
        let cols = COUNT_COLS.join(", ");
        let old_rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT node_id, compliance_status, overall_severity, {cols} FROM node_compliance \
             WHERE node_id IN {id_set}"
        )))
        .bind(&ids_json)
        .fetch_all(&mut *tx)
        .await?;
        let mut old: std::collections::HashMap<String, (String, String, Vec<i64>)> =
            std::collections::HashMap::new();
        for r in &old_rows {
            let counts: Vec<i64> = COUNT_COLS
                .iter()
                .map(|c| get(r, c))
                .collect::<Result<_>>()?;
            old.insert(
                get(r, "node_id")?,
                (
                    get(r, "compliance_status")?,
                    get(r, "overall_severity")?,
                    counts,
                ),
            );
        }
        let mut result = Vec::with_capacity(cs.len());
        let mut rows = Vec::new();
        let mut timeline = Vec::new();
        // A node twice in one call: the last record wins, each compared
        // with the one before it (as separate calls would).
        for c in cs {
            if !active.contains(&c.node_id) {
                result.push(None);
                continue;
            }
            let counts = counts_array(&c.counts).to_vec();
            let changed = old.get(&c.node_id).is_none_or(|(s, v, n)| {
                *s != c.compliance_status || *v != c.overall_severity || *n != counts
            });
            old.insert(
                c.node_id.clone(),
                (
                    c.compliance_status.clone(),
                    c.overall_severity.clone(),
                    counts.clone(),
                ),
            );
            let mut row = serde_json::json!({
                "node_id": c.node_id,
                "baseline_id": c.baseline_id,
                "baseline_version": c.baseline_version,
                "patch_group": c.patch_group,
                "operating_system": c.operating_system,
                "inventory_hash": c.key.inventory_hash,
                "eval_day": c.key.eval_day,
                "state_key": c.key.state_key,
                "evaluated_at": ms(c.evaluated_at),
                "compliance_status": c.compliance_status,
                "overall_severity": c.overall_severity,
                "operation": c.operation,
                "operation_start": c.operation_start.map(ms),
                "operation_end": c.operation_end.map(ms),
            });
            for (k, n) in COUNT_COLS.iter().zip(&counts) {
                row[*k] = serde_json::json!(n);
            }
            rows.push(row);
            if changed {
                let summary = serde_json::json!({
                    "compliance_status": c.compliance_status,
                    "overall_severity": c.overall_severity,
                    "baseline_id": c.baseline_id,
                    "baseline_version": c.baseline_version,
                    "operation": c.operation,
                    "counts": c.counts,
                });
                timeline.push(serde_json::json!({
                    "node_id": c.node_id,
                    "at": ms(c.evaluated_at),
                    "seq": new_time_id(c.evaluated_at),
                    "summary": to_json(&summary)?,
                }));
            }
            result.push(Some(changed));
        }
        // The last record of a node, once (ON CONFLICT cannot touch a row twice).
        let mut seen = std::collections::HashSet::new();
        let mut last: Vec<&serde_json::Value> = rows
            .iter()
            .rev()
            .filter(|r| seen.insert(r["node_id"].as_str().unwrap_or_default().to_string()))
            .collect();
        last.reverse();
        if !last.is_empty() {
            let rows_json = to_json(&last)?;
            let text_cols = [
                "node_id",
                "baseline_id",
                "patch_group",
                "operating_system",
                "inventory_hash",
                "state_key",
                "compliance_status",
                "overall_severity",
                "operation",
            ];
            let int_cols = [
                "baseline_version",
                "eval_day",
                "evaluated_at",
                "operation_start",
                "operation_end",
            ];
            let all: Vec<&str> = text_cols
                .iter()
                .chain(int_cols.iter())
                .chain(COUNT_COLS.iter())
                .copied()
                .collect();
            let (source, select) = if pg {
                let types: Vec<String> = text_cols
                    .iter()
                    .map(|c| format!("{c} text"))
                    .chain(
                        int_cols
                            .iter()
                            .chain(COUNT_COLS.iter())
                            .map(|c| format!("{c} bigint")),
                    )
                    .collect();
                (
                    format!("json_to_recordset($1::json) AS x({})", types.join(", ")),
                    all.iter()
                        .map(|c| format!("x.{c}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            } else {
                (
                    "json_each($1)".to_string(),
                    all.iter()
                        .map(|c| format!("json_extract(value, '$.{c}')"))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            };
            let updates: String = all
                .iter()
                .skip(1)
                .map(|c| format!("{c} = excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO node_compliance ({}) SELECT {select} FROM {source} WHERE true \
                 ON CONFLICT (node_id) DO UPDATE SET {updates}",
                all.join(", ")
            )))
            .bind(&rows_json)
            .execute(&mut *tx)
            .await?;
            let update_nodes = if pg {
                "UPDATE nodes SET compliance_status = x.compliance_status, \
                 overall_severity = x.overall_severity \
                 FROM json_to_recordset($1::json) AS x(node_id text, compliance_status text, \
                 overall_severity text) WHERE nodes.node_id = x.node_id"
            } else {
                "UPDATE nodes SET compliance_status = x.s, overall_severity = x.v \
                 FROM (SELECT json_extract(value, '$.node_id') AS id, \
                 json_extract(value, '$.compliance_status') AS s, \
                 json_extract(value, '$.overall_severity') AS v FROM json_each($1)) AS x \
                 WHERE nodes.node_id = x.id"
            };
            sqlx::query(update_nodes)
                .bind(&rows_json)
                .execute(&mut *tx)
                .await?;
        }
        if !timeline.is_empty() {
            let sql = if pg {
                "INSERT INTO compliance_timeline (node_id, at, seq, summary) \
                 SELECT x.node_id, x.at, x.seq, x.summary \
                 FROM json_to_recordset($1::json) AS x(node_id text, at bigint, seq text, summary text)"
            } else {
                "INSERT INTO compliance_timeline (node_id, at, seq, summary) \
                 SELECT json_extract(value, '$.node_id'), json_extract(value, '$.at'), \
                 json_extract(value, '$.seq'), json_extract(value, '$.summary') FROM json_each($1)"
            };
            sqlx::query(sql)
                .bind(to_json(&timeline)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(result)
    }

    /// A report that changed nothing the verdict depends on (same
    /// inventory, same state, same day): the node's compliance row takes the
    /// new scan time and evaluation time, nothing else. `false` when the row
    /// is not for that inventory and day (then a full re-computation is
    /// due). No timeline entry: the summary did not change.
    pub async fn touch_node_compliance(
        &self,
        node_id: &str,
        inventory_hash: &str,
        eval_day: i64,
        evaluated_at: Timestamp,
        scanned_at: Timestamp,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE node_compliance SET evaluated_at = $4, operation_start = $5, \
             operation_end = $5 WHERE node_id = $1 AND inventory_hash = $2 AND eval_day = $3",
        )
        .bind(node_id)
        .bind(inventory_hash)
        .bind(eval_day)
        .bind(ms(evaluated_at))
        .bind(ms(scanned_at))
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn get_node_compliance(&self, node_id: &str) -> Result<NodeCompliance> {
        let r = sqlx::query("SELECT * FROM node_compliance WHERE node_id = $1")
            .bind(node_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("compliance of node {node_id}")))?;
        compliance_of(&r)
    }

    /// Oldest first.
    pub async fn compliance_timeline(&self, node_id: &str) -> Result<Vec<TimelineEntry>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT at, summary FROM compliance_timeline WHERE node_id = $1 ORDER BY at, seq",
        )
        .bind(node_id)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(at, s)| {
                Ok(TimelineEntry {
                    node_id: node_id.to_owned(),
                    at: ts(at)?,
                    summary: parse_json(&s, "summary")?,
                })
            })
            .collect()
    }

    /// Registered nodes counted by compliance status and overall severity
    /// (rows with `compliance_status: None` are the nodes not evaluated
    /// yet), optionally per patch group or OS (the node's current ones).
    /// One aggregate over a covering partial index of `nodes`.
    pub async fn compliance_summary(
        &self,
        group_by: Option<SummaryGroupBy>,
    ) -> Result<Vec<SummaryRow>> {
        let sql = match group_by {
            None => {
                "SELECT compliance_status, overall_severity, COUNT(*) AS nodes FROM nodes \
                 WHERE deregistered_at IS NULL GROUP BY compliance_status, overall_severity"
            }
            Some(SummaryGroupBy::PatchGroup) => {
                "SELECT patch_group AS grp, compliance_status, overall_severity, COUNT(*) AS nodes \
                 FROM nodes WHERE deregistered_at IS NULL \
                 GROUP BY patch_group, compliance_status, overall_severity"
            }
            Some(SummaryGroupBy::OperatingSystem) => {
                "SELECT operating_system AS grp, compliance_status, overall_severity, \
                 COUNT(*) AS nodes FROM nodes WHERE deregistered_at IS NULL \
                 GROUP BY operating_system, compliance_status, overall_severity"
            }
        };
        let mut out = Vec::new();
        for r in sqlx::query(sql).fetch_all(&self.read).await? {
            out.push(SummaryRow {
                group: if group_by.is_some() {
                    get(&r, "grp")?
                } else {
                    None
                },
                compliance_status: get(&r, "compliance_status")?,
                overall_severity: get(&r, "overall_severity")?,
                nodes: get(&r, "nodes")?,
            });
        }
        out.sort_by(|a, b| {
            (&a.group, &a.compliance_status, &a.overall_severity).cmp(&(
                &b.group,
                &b.compliance_status,
                &b.overall_severity,
            ))
        });
        Ok(out)
    }

    /// Evaluated nodes matching the filter, by node id.
    pub async fn list_node_compliance(
        &self,
        filter: &ComplianceFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<NodeCompliance>> {
        let mut q = Sql::new("SELECT * FROM node_compliance c WHERE 1 = 1");
        if let Some(s) = &filter.compliance_status {
            q.push(" AND c.compliance_status = ");
            q.bind_text(s);
        }
        if let Some(s) = &filter.overall_severity {
            q.push(" AND c.overall_severity = ");
            q.bind_text(s);
        }
        if let Some(s) = &filter.patch_group {
            q.push(" AND c.patch_group = ");
            q.bind_text(s);
        }
        if let Some(a) = after {
            q.push(" AND c.node_id > ");
            q.bind_text(a);
        }
        q.push(" ORDER BY c.node_id LIMIT ");
        q.bind_int(i64::from(limit) + 1);
        let rows = q.fetch_all(&self.read).await?;
        let items = rows.iter().map(compliance_of).collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |c| c.node_id.clone()))
    }
}
