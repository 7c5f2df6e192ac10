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
