//! Computed compliance: one row per evaluation group, which every node of
//! the group reads through its own columns (inventory, OS, patch group,
//! state key); the timelines; the fleet queries.

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

/// The join from a node to its group's row.
const GROUP_JOIN: &str = "JOIN group_compliance g ON g.inventory_hash = n.inventory_hash \
     AND g.operating_system = n.operating_system \
     AND g.patch_group = COALESCE(n.patch_group, '') AND g.state_key = n.state_key";

/// The columns [`compliance_of`] reads, from `nodes n` joined with `g`.
fn node_compliance_cols() -> String {
    let counts: Vec<String> = COUNT_COLS.iter().map(|c| format!("g.{c}")).collect();
    format!(
        "n.node_id, n.patch_group, n.operating_system, n.inventory_hash, n.state_key, \
         n.scanned_at, g.baseline_id, g.baseline_version, g.eval_day, g.evaluated_at, \
         g.compliance_status, g.overall_severity, {}",
        counts.join(", ")
    )
}

fn compliance_of(r: &AnyRow) -> Result<NodeCompliance> {
    let c: Vec<i64> = COUNT_COLS
        .iter()
        .map(|c| get(r, c))
        .collect::<Result<_>>()?;
    let baseline_id: String = get(r, "baseline_id")?;
    let baseline_version: i64 = get(r, "baseline_version")?;
    let scanned_at = get_opt_ts(r, "scanned_at")?;
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
        operation: "Scan".into(),
        operation_start: scanned_at,
        operation_end: scanned_at,
    })
}

fn group_key_of(r: &AnyRow) -> Result<GroupKey> {
    Ok(GroupKey {
        inventory_hash: get(r, "inventory_hash")?,
        operating_system: get(r, "operating_system")?,
        patch_group: get(r, "patch_group")?,
        state_key: get(r, "state_key")?,
    })
}

impl Store {
    /// Writes each group's result. Per group: a timeline entry when its
    /// summary changes (or it is new), and the upsert, which leaves a row
    /// already on that evaluation alone. Computed data, not a change anyone
    /// made: not audited (the timelines are its history). Returns, per
    /// fan-out in order, whether the group's summary changed.
    pub async fn put_group_compliances(&self, fans: &[FanOut]) -> Result<Vec<bool>> {
        let key_cols = "inventory_hash, operating_system, patch_group, state_key";
        let key_match = "inventory_hash = $1 AND operating_system = $2 AND patch_group = $3 \
                         AND state_key = $4";
        // $5 status, $6 severity, $7.. counts.
        let same_summary: Vec<String> = ["compliance_status", "overall_severity"]
            .iter()
            .chain(COUNT_COLS.iter())
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 5))
            .collect();
        let n = same_summary.len();
        let timeline_sql = format!(
            "INSERT INTO group_timeline ({key_cols}, at, seq, summary) \
             SELECT $1, $2, $3, $4, ${}, ${}, ${} WHERE NOT EXISTS \
             (SELECT 1 FROM group_compliance WHERE {key_match} AND {})",
            n + 5,
            n + 6,
            n + 7,
            same_summary.join(" AND ")
        );
        let value_cols: Vec<&str> = [
            "baseline_id",
            "baseline_version",
            "eval_day",
            "evaluated_at",
            "compliance_status",
            "overall_severity",
        ]
        .into_iter()
        .chain(COUNT_COLS)
        .collect();
        let params: Vec<String> = (1..=4 + value_cols.len())
            .map(|i| format!("${i}"))
            .collect();
        let updates: Vec<String> = value_cols
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        // Every column but the evaluation time: an unchanged row stays.
        let differs: Vec<String> = value_cols
            .iter()
            .filter(|c| **c != "evaluated_at")
            .map(|c| format!("group_compliance.{c} <> excluded.{c}"))
            .collect();
        let upsert_sql = format!(
            "INSERT INTO group_compliance ({key_cols}, {}) VALUES ({}) \
             ON CONFLICT ({key_cols}) DO UPDATE SET {} WHERE {}",
            value_cols.join(", "),
            params.join(", "),
            updates.join(", "),
            differs.join(" OR ")
        );
        let mut changed = Vec::with_capacity(fans.len());
        let mut tx = self.write.begin().await?;
        for f in fans {
            let g = &f.group;
            let pg = g.patch_group.clone().unwrap_or_default();
            let counts = counts_array(&f.counts);
            let summary = serde_json::json!({
                "compliance_status": f.compliance_status,
                "overall_severity": f.overall_severity,
                "baseline_id": f.baseline_id,
                "baseline_version": f.baseline_version,
                "operation": "Scan",
                "counts": f.counts,
            });
            let mut q = sqlx::query(AssertSqlSafe(timeline_sql.clone()))
                .bind(g.inventory_hash.clone())
                .bind(g.operating_system.clone())
                .bind(pg.clone())
                .bind(g.state_key.clone())
                .bind(f.compliance_status.clone())
                .bind(f.overall_severity.clone());
            for c in counts {
                q = q.bind(c);
            }
            let q = q
                .bind(ms(f.evaluated_at))
                .bind(new_time_id(f.evaluated_at))
                .bind(to_json(&summary)?);
            changed.push(q.execute(&mut *tx).await?.rows_affected() > 0);
            let mut q = sqlx::query(AssertSqlSafe(upsert_sql.clone()))
                .bind(g.inventory_hash.clone())
                .bind(g.operating_system.clone())
                .bind(pg)
                .bind(g.state_key.clone())
                .bind(f.baseline_id.clone())
                .bind(f.baseline_version)
                .bind(f.eval_day)
                .bind(ms(f.evaluated_at))
                .bind(f.compliance_status.clone())
                .bind(f.overall_severity.clone());
            for c in counts {
                q = q.bind(c);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The usual check-in: the node reports the inventory and state it
    /// reported last time, and its group was evaluated on `eval_day`.
    /// Nothing a verdict reads changed, so only the scan time moves, in one
    /// statement; `false` (nothing written) otherwise, and a full report is
    /// due. Not audited: nothing changed.
    pub async fn touch_unchanged_report(
        &self,
        node_id: &str,
        inventory_hash: &str,
        node_state: &serde_json::Value,
        eval_day: i64,
        scanned_at: Timestamp,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE nodes SET scanned_at = $4 WHERE node_id = $1 AND inventory_hash = $2 \
             AND node_state = $5 AND deregistered_at IS NULL AND EXISTS (SELECT 1 FROM \
             group_compliance g WHERE g.inventory_hash = $2 \
             AND g.operating_system = nodes.operating_system \
             AND g.patch_group = COALESCE(nodes.patch_group, '') \
             AND g.state_key = nodes.state_key AND g.eval_day = $3)",
        )
        .bind(node_id)
        .bind(inventory_hash)
        .bind(eval_day)
        .bind(ms(scanned_at))
        .bind(to_json(node_state)?)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The node's compliance: its group's row (NotFound when the node is
    /// not registered or not evaluated).
    pub async fn get_node_compliance(&self, node_id: &str) -> Result<NodeCompliance> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM nodes n {GROUP_JOIN} WHERE n.node_id = $1 \
             AND n.deregistered_at IS NULL",
            node_compliance_cols()
        )))
        .bind(node_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("compliance of node {node_id}")))?;
        compliance_of(&r)
    }

    /// The node's summaries, oldest first, each only when it differs from
    /// the one before: its group moves and its groups' changes while it
    /// was in them.
    pub async fn compliance_timeline(&self, node_id: &str) -> Result<Vec<TimelineEntry>> {
        let rows = sqlx::query(
            "SELECT at, inventory_hash, operating_system, patch_group, state_key \
             FROM node_memberships WHERE node_id = $1 ORDER BY at, seq",
        )
        .bind(node_id)
        .fetch_all(&self.read)
        .await?;
        let mut memberships = Vec::with_capacity(rows.len());
        let mut events = std::collections::HashMap::new();
        for r in &rows {
            let key = group_key_of(r)?;
            if !events.contains_key(&key) {
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT at, summary FROM group_timeline WHERE inventory_hash = $1 \
                     AND operating_system = $2 AND patch_group = $3 AND state_key = $4 \
                     ORDER BY at, seq",
                )
                .bind(&key.inventory_hash)
                .bind(&key.operating_system)
                .bind(&key.patch_group)
                .bind(&key.state_key)
                .fetch_all(&self.read)
                .await?;
                let list = rows
                    .into_iter()
                    .map(|(at, s)| Ok((ts(at)?, parse_json(&s, "summary")?)))
                    .collect::<Result<Vec<_>>>()?;
                events.insert(key.clone(), list);
            }
            memberships.push((ts(get(r, "at")?)?, key));
        }
        Ok(crate::compliance::node_timeline(&memberships, &events)
            .into_iter()
            .map(|(at, summary)| TimelineEntry {
                node_id: node_id.to_owned(),
                at,
                summary,
            })
            .collect())
    }

    /// Registered nodes counted by compliance status and overall severity
    /// (rows with `compliance_status: None` are the nodes not evaluated
    /// yet), optionally per patch group or OS (the node's current ones).
    /// The nodes are counted per group on the group index first, so the
    /// join reads one row per group, not per node.
    pub async fn compliance_summary(
        &self,
        group_by: Option<SummaryGroupBy>,
    ) -> Result<Vec<SummaryRow>> {
        let grp = match group_by {
            None => "",
            Some(SummaryGroupBy::PatchGroup) => "n.patch_group AS grp, ",
            Some(SummaryGroupBy::OperatingSystem) => "n.operating_system AS grp, ",
        };
        let grp_by = match group_by {
            None => "",
            Some(SummaryGroupBy::PatchGroup) => "n.patch_group, ",
            Some(SummaryGroupBy::OperatingSystem) => "n.operating_system, ",
        };
        let sql = format!(
            "SELECT {grp}g.compliance_status, g.overall_severity, \
             CAST(SUM(n.nodes) AS BIGINT) AS nodes FROM \
             (SELECT inventory_hash, operating_system, patch_group, state_key, COUNT(*) AS nodes \
             FROM nodes WHERE deregistered_at IS NULL \
             GROUP BY inventory_hash, operating_system, patch_group, state_key) n \
             LEFT {GROUP_JOIN} \
             GROUP BY {grp_by}g.compliance_status, g.overall_severity"
        );
        let mut out = Vec::new();
        for r in sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.read)
            .await?
        {
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

    /// Evaluated registered nodes matching the filter, by node id.
    pub async fn list_node_compliance(
        &self,
        filter: &ComplianceFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<NodeCompliance>> {
        let mut q = Sql::new(&format!(
            "SELECT {} FROM nodes n {GROUP_JOIN} WHERE n.deregistered_at IS NULL",
            node_compliance_cols()
        ));
        if let Some(s) = &filter.compliance_status {
            q.push(" AND g.compliance_status = ");
            q.bind_text(s);
        }
        if let Some(s) = &filter.overall_severity {
            q.push(" AND g.overall_severity = ");
            q.bind_text(s);
        }
        if let Some(s) = &filter.patch_group {
            q.push(" AND n.patch_group = ");
            q.bind_text(s);
        }
        if let Some(a) = after {
            q.push(" AND n.node_id > ");
            q.bind_text(a);
        }
        q.push(" ORDER BY n.node_id LIMIT ");
        q.bind_int(i64::from(limit) + 1);
        let rows = q.fetch_all(&self.read).await?;
        let items = rows.iter().map(compliance_of).collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |c| c.node_id.clone()))
    }
}
