//! Run Command: commands, their invocations, delivery to agents, and the
//! transaction in which a rollout step is decided and recorded.
//!
//! The decisions are `core::command`'s, made by the services inside
//! [`Store::with_rollout`]: the store reads a command and its invocations
//! under a lock (a row lock on PostgreSQL, the one writer on SQLite), hands
//! them to the caller's pure function, and writes what it returns in the
//! same transaction. Two replicas can therefore never both start the same
//! invocation, nor compute a command's status from different states.

use super::audit::{self, Sql, page};
use super::*;
use std::collections::HashMap;

const COMMAND_COLS: &str = "command_id, document_name, document, targets, comment, \
     timeout_seconds, max_concurrency, max_errors, output_bucket, output_prefix, \
     install_override, baseline_override, requested_by, requested_at, delivery_deadline, \
     expires_after, cancel_requested, status, status_details, target_count, completed_count, \
     error_count, delivery_timed_out_count, wake_at, finished_at";

const INVOCATION_COLS: &str = "command_id, node_id, invocation_id, position, computer_name, \
     status, status_details, dispatched, dispatched_at, delivered_at, deliveries, baseline_id, \
     baseline_version, acknowledged_at, started_at, ended_at, response_code, stdout, stderr, \
     output, output_key, reboots, updated_at";

fn opt_json(r: &AnyRow, col: &str) -> Result<Option<serde_json::Value>> {
    let text: Option<String> = get(r, col)?;
    text.map(|t| parse_json(&t, col)).transpose()
}

fn command_of(r: &AnyRow) -> Result<CommandRecord> {
    Ok(CommandRecord {
        spec: CommandSpec {
            command_id: get(r, "command_id")?,
            document_name: get(r, "document_name")?,
            document: get_json(r, "document")?,
            targets: get_json(r, "targets")?,
            comment: get(r, "comment")?,
            timeout_seconds: get(r, "timeout_seconds")?,
            max_concurrency: get(r, "max_concurrency")?,
            max_errors: get(r, "max_errors")?,
            output_bucket: get(r, "output_bucket")?,
            output_prefix: get(r, "output_prefix")?,
            install_override: opt_json(r, "install_override")?,
            baseline_override: opt_json(r, "baseline_override")?,
            requested_by: get(r, "requested_by")?,
            requested_at: get_ts(r, "requested_at")?,
            delivery_deadline: get_ts(r, "delivery_deadline")?,
            expires_after: get_ts(r, "expires_after")?,
        },
        progress: CommandProgress {
            status: get(r, "status")?,
            status_details: get(r, "status_details")?,
            completed_count: get(r, "completed_count")?,
            error_count: get(r, "error_count")?,
            delivery_timed_out_count: get(r, "delivery_timed_out_count")?,
            finished_at: get_opt_ts(r, "finished_at")?,
        },
        cancel_requested: get::<i64>(r, "cancel_requested")? != 0,
        target_count: get(r, "target_count")?,
        wake_at: get_ts(r, "wake_at")?,
    })
}

fn invocation_of(r: &AnyRow) -> Result<InvocationRecord> {
    Ok(InvocationRecord {
        command_id: get(r, "command_id")?,
        node_id: get(r, "node_id")?,
        invocation_id: get(r, "invocation_id")?,
        position: get(r, "position")?,
        computer_name: get(r, "computer_name")?,
        status: get(r, "status")?,
        status_details: get(r, "status_details")?,
        dispatched: get::<i64>(r, "dispatched")? != 0,
        dispatched_at: get_opt_ts(r, "dispatched_at")?,
        delivered_at: get_opt_ts(r, "delivered_at")?,
        deliveries: get(r, "deliveries")?,
        baseline_id: get(r, "baseline_id")?,
        baseline_version: get(r, "baseline_version")?,
        acknowledged_at: get_opt_ts(r, "acknowledged_at")?,
        started_at: get_opt_ts(r, "started_at")?,
        ended_at: get_opt_ts(r, "ended_at")?,
        response_code: get(r, "response_code")?,
        stdout: get(r, "stdout")?,
        stderr: get(r, "stderr")?,
        output: get(r, "output")?,
        output_key: get(r, "output_key")?,
        reboots: get(r, "reboots")?,
        updated_at: get_ts(r, "updated_at")?,
    })
}

/// Polls waiting for their deliveries to be taken, in one write.
#[derive(Debug, Default)]
pub(crate) struct DeliveryBatch {
    queue: std::sync::Mutex<Vec<(String, Answer)>>,
    turn: tokio::sync::Mutex<()>,
}

type Answer = tokio::sync::oneshot::Sender<std::result::Result<Vec<InvocationRecord>, String>>;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The rows [`Store::json_rows`] aggregated into column `col`.
fn json_rows_of<T: serde::de::DeserializeOwned>(r: &AnyRow, col: &str) -> Result<Vec<T>> {
    let text: String = get(r, col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Database(format!("column {col}: {e}")))
}

impl Store {
    /// `WITH j AS MATERIALIZED (…)`: the rows of the JSON array of objects
    /// bound to `param`, with the named columns (`(name, "text" |
    /// "bigint")`), read once. How one statement writes many rows on both
    /// databases; materialised so that a join probes it instead of parsing
    /// the JSON again for every row it meets.
    fn json_records(&self, param: &str, cols: &[(&str, &str)]) -> String {
        let select = match self.backend {
            Backend::Sqlite => {
                let fields: Vec<String> = cols
                    .iter()
                    .map(|(c, _)| format!("json_extract(value, '$.{c}') AS {c}"))
                    .collect();
                format!("SELECT {} FROM json_each({param})", fields.join(", "))
            }
            Backend::Postgres => {
                let fields: Vec<String> = cols.iter().map(|(c, t)| format!("{c} {t}")).collect();
                format!(
                    "SELECT * FROM json_to_recordset({param}::json) AS x({})",
                    fields.join(", ")
                )
            }
        };
        format!("WITH j AS MATERIALIZED ({select}) ")
    }

    /// An expression aggregating the matched rows into one JSON text: an
    /// array of `[col, …]` arrays (`[]` when none), in no order (the
    /// caller sorts: cheaper than a sort inside the aggregate).
    fn json_rows(&self, cols: &[&str]) -> String {
        let cols = cols.join(", ");
        match self.backend {
            Backend::Sqlite => format!("COALESCE(json_group_array(json_array({cols})), '[]')"),
            Backend::Postgres => {
                format!("COALESCE(json_agg(json_build_array({cols}))::text, '[]')")
            }
        }
    }

    /// Stores a command and its invocations (one per target, in dispatch
    /// order) with the audit entry, in one transaction.
    pub async fn create_command(&self, c: &NewCommand, audit: &Audit) -> Result<()> {
        let (spec, p) = (&c.spec, &c.progress);
        let mut tx = self.write.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO commands ({COMMAND_COLS}, dirty) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, $17, $18, $19, $20, $21, $22, $23, \
             $24, 1)"
        )))
        .bind(&spec.command_id)
        .bind(&spec.document_name)
        .bind(to_json(&spec.document)?)
        .bind(to_json(&spec.targets)?)
        .bind(&spec.comment)
        .bind(spec.timeout_seconds)
        .bind(&spec.max_concurrency)
        .bind(&spec.max_errors)
        .bind(&spec.output_bucket)
        .bind(&spec.output_prefix)
        .bind(spec.install_override.as_ref().map(to_json).transpose()?)
        .bind(spec.baseline_override.as_ref().map(to_json).transpose()?)
        .bind(&audit.actor)
        .bind(ms(spec.requested_at))
        .bind(ms(spec.delivery_deadline))
        .bind(ms(spec.expires_after))
        .bind(&p.status)
        .bind(&p.status_details)
        .bind(c.targets_resolved.len() as i64)
        .bind(p.completed_count)
        .bind(p.error_count)
        .bind(p.delivery_timed_out_count)
        .bind(ms(spec.requested_at))
        .bind(p.finished_at.map(ms))
        .execute(&mut *tx)
        .await?;
        let rows: Vec<serde_json::Value> = c
            .targets_resolved
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::json!({
                    "n": t.node_id,
                    "i": format!("{}.{}", spec.command_id, t.node_id),
                    "p": i,
                    "c": t.computer_name,
                    "s": t.status,
                    "d": t.status_details,
                })
            })
            .collect();
        // Chunks keep each JSON text small whatever the fleet.
        for chunk in rows.chunks(5_000) {
            let from = self.json_records(
                "$1",
                &[
                    ("n", "text"),
                    ("i", "text"),
                    ("p", "bigint"),
                    ("c", "text"),
                    ("s", "text"),
                    ("d", "text"),
                ],
            );
            sqlx::query(AssertSqlSafe(format!(
                "{from}INSERT INTO invocations (command_id, node_id, invocation_id, position, \
                 computer_name, status, status_details, updated_at) \
                 SELECT $2, j.n, j.i, j.p, j.c, j.s, j.d, $3 FROM j"
            )))
            .bind(to_json(&chunk)?)
            .bind(&spec.command_id)
            .bind(ms(spec.requested_at))
            .execute(&mut *tx)
            .await?;
        }
        audit::write(&mut tx, audit, &[&spec.command_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_command(&self, command_id: &str) -> Result<CommandRecord> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COMMAND_COLS} FROM commands WHERE command_id = $1"
        )))
        .bind(command_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("command {command_id}")))?;
        command_of(&r)
    }

    /// Newest first; `after` is the `next` of the previous page.
    pub async fn list_commands(
        &self,
        filter: &CommandFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<CommandRecord>> {
        let mut q = Sql::new(&format!(
            "SELECT {COMMAND_COLS} FROM commands c WHERE 1 = 1"
        ));
        if let Some(id) = &filter.command_id {
            q.push(" AND c.command_id = ").bind_text(id);
        }
        if let Some(node) = &filter.node_id {
            q.push(" AND EXISTS (SELECT 1 FROM invocations i WHERE i.command_id = c.command_id AND i.node_id = ")
                .bind_text(node)
                .push(")");
        }
        if let Some(s) = &filter.status {
            q.push(" AND c.status = ").bind_text(s);
        }
        if let Some(d) = &filter.document_name {
            q.push(" AND c.document_name = ").bind_text(d);
        }
        if let Some(t) = filter.requested_after {
            q.push(" AND c.requested_at >= ").bind_int(ms(t));
        }
        if let Some(t) = filter.requested_before {
            q.push(" AND c.requested_at <= ").bind_int(ms(t));
        }
        if let Some(a) = after {
            let (at, id) = a
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .ok_or_else(|| StoreError::NotFound(format!("page token {a}")))?;
            q.push(" AND (c.requested_at < ")
                .bind_int(at)
                .push(" OR (c.requested_at = ")
                .bind_int(at)
                .push(" AND c.command_id < ")
                .bind_text(id)
                .push("))");
        }
        q.push(" ORDER BY c.requested_at DESC, c.command_id DESC LIMIT ")
            .bind_int(i64::from(limit) + 1);
        let rows = q.fetch_all(&self.read).await?;
        let items = rows.iter().map(command_of).collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |c| {
            format!("{}.{}", ms(c.spec.requested_at), c.spec.command_id)
        }))
    }

    /// Invocations of a command (dispatch order) or of a node (newest
    /// command first); `after` is the `next` of the previous page.
    pub async fn list_invocations(
        &self,
        filter: &InvocationFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<InvocationRecord>> {
        let cols: Vec<String> = INVOCATION_COLS
            .split(", ")
            .map(|c| format!("i.{}", c.trim()))
            .collect();
        let mut q = Sql::new(&format!(
            "SELECT {}, c.requested_at AS requested_at FROM invocations i \
             JOIN commands c ON c.command_id = i.command_id WHERE 1 = 1",
            cols.join(", ")
        ));
        if let Some(id) = &filter.command_id {
            q.push(" AND i.command_id = ").bind_text(id);
        }
        if let Some(node) = &filter.node_id {
            q.push(" AND i.node_id = ").bind_text(node);
        }
        if let Some(s) = &filter.status {
            q.push(" AND i.status = ").bind_text(s);
        }
        // The keyset: (requested_at descending, command id, position).
        if let Some(a) = after {
            let mut parts = a.splitn(3, '.');
            let (Some(at), Some(id), Some(pos)) = (
                parts.next().and_then(|v| v.parse::<i64>().ok()),
                parts.next(),
                parts.next().and_then(|v| v.parse::<i64>().ok()),
            ) else {
                return Err(StoreError::NotFound(format!("page token {a}")));
            };
            q.push(" AND (c.requested_at < ")
                .bind_int(at)
                .push(" OR (c.requested_at = ")
                .bind_int(at)
                .push(" AND (i.command_id > ")
                .bind_text(id)
                .push(" OR (i.command_id = ")
                .bind_text(id)
                .push(" AND i.position > ")
                .bind_int(pos)
                .push("))))");
        }
        q.push(" ORDER BY c.requested_at DESC, i.command_id, i.position LIMIT ")
            .bind_int(i64::from(limit) + 1);
        let rows = q.fetch_all(&self.read).await?;
        let items = rows
            .iter()
            .map(|r| Ok((invocation_of(r)?, get::<i64>(r, "requested_at")?)))
            .collect::<Result<Vec<_>>>()?;
        let p = page(items, limit, |(i, at)| {
            format!("{at}.{}.{}", i.command_id, i.position)
        });
        Ok(Page {
            items: p.items.into_iter().map(|(i, _)| i).collect(),
            next: p.next,
        })
    }

    pub async fn get_invocation(
        &self,
        command_id: &str,
        node_id: &str,
    ) -> Result<InvocationRecord> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INVOCATION_COLS} FROM invocations WHERE command_id = $1 AND node_id = $2"
        )))
        .bind(command_id)
        .bind(node_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!("invocation of command {command_id} on {node_id}"))
        })?;
        invocation_of(&r)
    }

    /// The node's invocation by its id (an agent names only its own).
    pub async fn get_invocation_by_id(
        &self,
        invocation_id: &str,
        node_id: &str,
    ) -> Result<InvocationRecord> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INVOCATION_COLS} FROM invocations WHERE invocation_id = $1 AND node_id = $2"
        )))
        .bind(invocation_id)
        .bind(node_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("invocation {invocation_id}")))?;
        invocation_of(&r)
    }

    /// How many of the command's invocations are in each `Status`.
    pub async fn invocation_counts(
        &self,
        command_id: &str,
    ) -> Result<std::collections::BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM invocations WHERE command_id = $1 GROUP BY status",
        )
        .bind(command_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Reads the command and its invocations under a lock, asks `decide`
    /// what changes, and writes them in the same transaction: dispatch
    /// flags, invocation states (with their end times), `cancel` work for
    /// the invocations named, and the command's status, counters, next
    /// wake-up and end. `audit` is written when the step is someone's
    /// change (a cancel); a rollout step of the server's is bookkeeping.
    /// `pin` names the baseline version each dispatched invocation will be
    /// judged by, given its node. Returns `None` when the command does not
    /// exist, else what was applied (`decide` returning `None` changes
    /// nothing).
    pub async fn with_rollout<F, P>(
        &self,
        command_id: &str,
        now: Timestamp,
        audit: Option<&Audit>,
        decide: F,
        pin: P,
    ) -> Result<Option<RolloutChange>>
    where
        F: FnOnce(&CommandRecord, &[RolloutSlot]) -> Option<RolloutChange>,
        P: FnOnce(&CommandRecord, &[DispatchedNode]) -> Vec<(usize, String, i64)>,
    {
        let mut tx = self.write.begin().await?;
        let Some(r) = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COMMAND_COLS} FROM commands WHERE command_id = $1{}",
            self.for_update()
        )))
        .bind(command_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let command = command_of(&r)?;
        // One row holding every slot: on SQLite each fetched row is a
        // message between threads, which made a step over 10,000 targets
        // cost more than the rest of it together. Read from the covering
        // index alone; the nodes are read for the dispatched ones only.
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} AS slots FROM invocations i WHERE i.command_id = $1",
            self.json_rows(&[
                "i.position",
                "i.node_id",
                "i.status_details",
                "i.dispatched",
                "i.ended_at",
            ])
        )))
        .bind(command_id)
        .fetch_one(&mut *tx)
        .await?;
        type Row = (i64, String, String, i64, Option<i64>);
        let mut rows: Vec<Row> = json_rows_of(&r, "slots")?;
        rows.sort_unstable_by_key(|r| r.0);
        let mut slots = Vec::with_capacity(rows.len());
        for (_, node_id, details, dispatched, ended_at) in rows {
            slots.push(RolloutSlot {
                node_id,
                details,
                dispatched: dispatched != 0,
                ended_at: ended_at.map(ts).transpose()?,
            });
        }
        let Some(mut change) = decide(&command, &slots) else {
            sqlx::query("UPDATE commands SET dirty = 0 WHERE command_id = $1")
                .bind(command_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Some(RolloutChange::default()));
        };
        if !change.dispatch.is_empty() {
            let nodes: Vec<serde_json::Value> = change
                .dispatch
                .iter()
                .filter_map(|&p| {
                    slots
                        .get(p)
                        .map(|s| serde_json::json!({"p": p, "n": s.node_id}))
                })
                .collect();
            let from = self.json_records("$1", &[("p", "bigint"), ("n", "text")]);
            let r = sqlx::query(AssertSqlSafe(format!(
                "{from}SELECT {} AS nodes FROM j LEFT JOIN nodes n ON n.node_id = j.n",
                self.json_rows(&["j.p", "n.operating_system", "n.patch_group"])
            )))
            .bind(to_json(&nodes)?)
            .fetch_one(&mut *tx)
            .await?;
            let found: Vec<(usize, Option<String>, Option<String>)> = json_rows_of(&r, "nodes")?;
            let dispatched: Vec<DispatchedNode> = found
                .into_iter()
                .map(|(position, operating_system, patch_group)| DispatchedNode {
                    position,
                    operating_system,
                    patch_group,
                })
                .collect();
            change.pins = pin(&command, &dispatched);
        }
        let now_ms = ms(now);
        let mut rows = Vec::new();
        let pins: HashMap<usize, (&String, i64)> = change
            .pins
            .iter()
            .map(|(p, id, v)| (*p, (id, *v)))
            .collect();
        for &p in &change.dispatch {
            let (b, v) = pins
                .get(&p)
                .map_or((None, None), |(b, v)| (Some(*b), Some(*v)));
            rows.push(serde_json::json!({"p": p, "k": "dispatch", "b": b, "v": v}));
        }
        for (p, status, details) in &change.states {
            rows.push(serde_json::json!({"p": p, "k": "state", "s": status, "d": details}));
        }
        for chunk in rows.chunks(5_000) {
            let from = self.json_records(
                "$1",
                &[
                    ("p", "bigint"),
                    ("k", "text"),
                    ("s", "text"),
                    ("d", "text"),
                    ("b", "text"),
                    ("v", "bigint"),
                ],
            );
            // A terminal state records its end; a dispatch its instant.
            sqlx::query(AssertSqlSafe(format!(
                "{from}UPDATE invocations SET \
                 dispatched = CASE WHEN j.k = 'dispatch' THEN 1 ELSE dispatched END, \
                 dispatched_at = CASE WHEN j.k = 'dispatch' THEN $3 ELSE dispatched_at END, \
                 baseline_id = CASE WHEN j.k = 'dispatch' THEN j.b ELSE baseline_id END, \
                 baseline_version = CASE WHEN j.k = 'dispatch' THEN j.v ELSE baseline_version END, \
                 status = CASE WHEN j.k = 'state' THEN j.s ELSE status END, \
                 status_details = CASE WHEN j.k = 'state' THEN j.d ELSE status_details END, \
                 ended_at = CASE WHEN j.k = 'state' AND j.d NOT IN ('Pending', 'InProgress', \
                 'Delayed', 'Cancelling') THEN COALESCE(ended_at, $3) ELSE ended_at END, \
                 updated_at = $3 \
                 FROM j WHERE invocations.command_id = $2 AND invocations.position = j.p"
            )))
            .bind(to_json(&chunk)?)
            .bind(command_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        for &p in &change.cancel_work {
            let Some(slot) = slots.get(p) else { continue };
            let invocation_id = format!("{command_id}.{}", slot.node_id);
            sqlx::query(
                "INSERT INTO work_items (id, node_id, kind, parameters, created_at) \
                 VALUES ($1, $2, 'cancel', $3, $4)",
            )
            .bind(new_time_id(now))
            .bind(&slot.node_id)
            .bind(to_json(
                &serde_json::json!({"invocation_id": invocation_id}),
            )?)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE commands SET status = $2, status_details = $3, completed_count = $4, \
             error_count = $5, delivery_timed_out_count = $6, wake_at = $7, \
             finished_at = CASE WHEN $8 = 1 THEN COALESCE(finished_at, $9) ELSE NULL END, \
             cancel_requested = CASE WHEN $10 = 1 THEN 1 ELSE cancel_requested END, dirty = 0 \
             WHERE command_id = $1",
        )
        .bind(command_id)
        .bind(&change.progress.status)
        .bind(&change.progress.status_details)
        .bind(change.progress.completed_count)
        .bind(change.progress.error_count)
        .bind(change.progress.delivery_timed_out_count)
        .bind(ms(change.wake_at))
        .bind(i64::from(change.progress.finished_at.is_some()))
        .bind(now_ms)
        .bind(i64::from(change.cancel_requested))
        .execute(&mut *tx)
        .await?;
        if let Some(a) = audit {
            audit::write(&mut tx, a, &[command_id]).await?;
        }
        tx.commit().await?;
        Ok(Some(change))
    }

    /// Every running command.
    pub async fn active_commands(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT command_id FROM commands WHERE finished_at IS NULL OR dirty = 1",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// The commands whose rollout must look again at `now`: new ones
    /// (`dirty`), and running ones whose deadline (or safety wake-up) came.
    /// Changed invocations are announced by notification instead (see
    /// `services::commands::Rollouts`), not by a write to the command's row
    /// that every report would contend for.
    pub async fn commands_due(&self, now: Timestamp) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT command_id FROM commands WHERE dirty = 1 \
             UNION SELECT command_id FROM commands WHERE finished_at IS NULL AND wake_at <= $1",
        )
        .bind(ms(now))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// What a poll has for the node: work items, and invocations
    /// dispatched, not yet acknowledged, and not delivered since
    /// `resend_before`. One read, what every long poll repeats; the poll
    /// then writes only for the kind there is.
    pub async fn pending_work(
        &self,
        node_id: &str,
        resend_before: Timestamp,
    ) -> Result<PendingWork> {
        let (invocations, items): (i64, i64) = sqlx::query_as(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM invocations WHERE node_id = $1 \
             AND dispatched = 1 AND status_details = 'Pending' \
             AND (delivered_at IS NULL OR delivered_at <= $2)) THEN 1 ELSE 0 END, \
             CASE WHEN EXISTS (SELECT 1 FROM work_items WHERE node_id = $1 \
             AND delivered_at IS NULL) THEN 1 ELSE 0 END",
        )
        .bind(node_id)
        .bind(ms(resend_before))
        .fetch_one(&self.read)
        .await?;
        Ok(PendingWork {
            invocations: invocations != 0,
            items: items != 0,
        })
    }

    /// Marks the node's invocations due for delivery (dispatched, not
    /// acknowledged, not delivered since `resend_before`) as delivered now
    /// and returns them, oldest dispatch first.
    ///
    /// Group commit: a rollout wave wakes hundreds of polls at once, and one
    /// write transaction each made the wave as slow as the writer. Whoever
    /// takes the batch lock writes for every node queued by then, in one
    /// statement (with its own `now`: the batch is milliseconds wide); the
    /// others find their answer waiting. Two polls of one node never both
    /// take an invocation.
    pub async fn take_deliveries(
        &self,
        node_id: &str,
        now: Timestamp,
        resend_before: Timestamp,
    ) -> Result<Vec<InvocationRecord>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.deliveries.queue).push((node_id.to_string(), tx));
        {
            let _turn = self.deliveries.turn.lock().await;
            let batch = std::mem::take(&mut *lock(&self.deliveries.queue));
            if !batch.is_empty() {
                // A task of its own: a poll given up on half-way must not
                // leave the others of its batch without an answer.
                let store = self.clone();
                let _ = tokio::spawn(async move {
                    store.answer_deliveries(batch, now, resend_before).await;
                })
                .await;
            }
        }
        let mut out = rx
            .await
            .map_err(|_| StoreError::Database("delivery batch abandoned".into()))?
            .map_err(StoreError::Database)?;
        out.sort_by(|a, b| (a.dispatched_at, &a.command_id).cmp(&(b.dispatched_at, &b.command_id)));
        Ok(out)
    }

    /// One write for a batch of polls; each gets its own node's share.
    async fn answer_deliveries(
        &self,
        batch: Vec<(String, Answer)>,
        now: Timestamp,
        resend_before: Timestamp,
    ) {
        let nodes: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
        match self.take_deliveries_of(&nodes, now, resend_before).await {
            Ok(taken) => {
                let mut by_node: HashMap<String, Vec<InvocationRecord>> = HashMap::new();
                for i in taken {
                    by_node.entry(i.node_id.clone()).or_default().push(i);
                }
                for (node, answer) in batch {
                    let _ = answer.send(Ok(by_node.remove(&node).unwrap_or_default()));
                }
            }
            Err(e) => {
                for (_, answer) in batch {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
    }

    async fn take_deliveries_of(
        &self,
        nodes: &[&str],
        now: Timestamp,
        resend_before: Timestamp,
    ) -> Result<Vec<InvocationRecord>> {
        let nodes: Vec<serde_json::Value> = nodes
            .iter()
            .map(|n| serde_json::json!({ "n": n }))
            .collect();
        let from = self.json_records("$1", &[("n", "text")]);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{from}UPDATE invocations SET delivered_at = $3, deliveries = deliveries + 1, \
             updated_at = $3 WHERE node_id IN (SELECT n FROM j) AND dispatched = 1 \
             AND status_details = 'Pending' AND (delivered_at IS NULL OR delivered_at <= $2) \
             RETURNING {INVOCATION_COLS}"
        )))
        .bind(to_json(&nodes)?)
        .bind(ms(resend_before))
        .bind(ms(now))
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(invocation_of).collect()
    }

    /// Applies an agent's report to its invocation (which must be the
    /// node's own): `decide` sees the stored invocation and says what to
    /// write (`None`: nothing). Optimistic: the write holds
    /// only while the stored status is still the one `decide` saw, else it
    /// is decided again on the new one (a rollout step or another report
    /// came between); no transaction, two statements.
    pub async fn report_invocation<F>(
        &self,
        invocation_id: &str,
        node_id: &str,
        now: Timestamp,
        mut decide: F,
    ) -> Result<Reported>
    where
        F: FnMut(&InvocationRecord) -> Option<InvocationUpdate>,
    {
        for _ in 0..8 {
            let inv = self.get_invocation_by_id(invocation_id, node_id).await?;
            let Some(u) = decide(&inv) else {
                return Ok(Reported {
                    command_id: inv.command_id,
                    update: None,
                });
            };
            let written = sqlx::query(
                "UPDATE invocations SET status = $3, status_details = $4, \
                 acknowledged_at = COALESCE(acknowledged_at, $5), \
                 started_at = COALESCE($6, started_at), ended_at = COALESCE($7, ended_at), \
                 response_code = $8, stdout = $9, stderr = $10, output = $11, \
                 output_key = COALESCE($12, output_key), reboots = $13, updated_at = $5 \
                 WHERE command_id = $1 AND node_id = $2 AND status_details = $14",
            )
            .bind(&inv.command_id)
            .bind(node_id)
            .bind(&u.status)
            .bind(&u.status_details)
            .bind(ms(now))
            .bind(u.started_at.map(ms))
            .bind(u.ended_at.map(ms))
            .bind(u.response_code)
            .bind(&u.stdout)
            .bind(&u.stderr)
            .bind(&u.output)
            .bind(u.output_key.clone())
            .bind(u.reboots)
            .bind(&inv.status_details)
            .execute(&self.write)
            .await?
            .rows_affected();
            if written == 1 {
                return Ok(Reported {
                    command_id: inv.command_id,
                    update: Some(u),
                });
            }
        }
        Err(StoreError::Database(format!(
            "invocation {invocation_id}: its status kept changing under the report"
        )))
    }

    /// Whether any dispatched invocation of the command still awaits its
    /// acknowledgement. Read after the report's write: of two last
    /// acknowledgements written at once, the later one's read sees both.
    pub async fn awaiting_ack(&self, command_id: &str) -> Result<bool> {
        let (awaiting,): (i64,) = sqlx::query_as(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM invocations WHERE command_id = $1 \
             AND dispatched = 1 AND status_details = 'Pending') THEN 1 ELSE 0 END",
        )
        .bind(command_id)
        .fetch_one(&self.read)
        .await?;
        Ok(awaiting != 0)
    }

    /// The registered nodes a target list is matched against: id, computer
    /// name, tags.
    pub async fn nodes_for_targeting(&self) -> Result<Vec<TargetableNode>> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} AS nodes FROM nodes n LEFT JOIN node_tags t ON t.node_id = n.node_id \
             WHERE n.deregistered_at IS NULL",
            self.json_rows(&[
                "n.node_id",
                "n.computer_name",
                "n.capabilities",
                "t.key",
                "t.value"
            ])
        )))
        .fetch_one(&self.read)
        .await?;
        type Row = (String, String, String, Option<String>, Option<String>);
        let mut rows: Vec<Row> = json_rows_of(&r, "nodes")?;
        // Stable: a node's rows (one per tag) stay together.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<TargetableNode> = Vec::new();
        for (id, computer_name, capabilities, key, value) in rows {
            if out.last().is_none_or(|n| n.node_id != id) {
                out.push(TargetableNode {
                    node_id: id,
                    computer_name,
                    tags: HashMap::new(),
                    capabilities: parse_json(&capabilities, "capabilities")?,
                });
            }
            if let (Some(k), Some(n)) = (key, out.last_mut()) {
                n.tags.insert(k, value.unwrap_or_default());
            }
        }
        Ok(out)
    }
}
