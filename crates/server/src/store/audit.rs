//! The audit log: written inside each change's transaction, read newest
//! first in keyset pages.

use super::*;
use sqlx::{Any, Transaction};

/// Appends `audit` (plus `extra` object ids the store generated) inside
/// the caller's transaction.
pub(crate) async fn write(
    tx: &mut Transaction<'static, Any>,
    audit: &Audit,
    extra: &[&str],
) -> Result<String> {
    let id = new_time_id(audit.at);
    let mut objects: Vec<&str> = audit.objects.iter().map(String::as_str).collect();
    for e in extra {
        if !objects.contains(e) {
            objects.push(e);
        }
    }
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, objects, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(ms(audit.at))
    .bind(&audit.actor)
    .bind(&audit.action)
    .bind(to_json(&objects)?)
    .bind(to_json(&audit.detail)?)
    .execute(&mut **tx)
    .await?;
    let mut seen = Vec::new();
    for o in objects {
        if seen.contains(&o) {
            continue;
        }
        seen.push(o);
        sqlx::query("INSERT INTO audit_objects (object_id, audit_id) VALUES ($1, $2)")
            .bind(o)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(id)
}

impl Store {
    /// Newest first. `after`: the `next` of the previous page. The keyset is
    /// the unique id, so a page never repeats an entry of an earlier one
    /// even when entries are added meanwhile.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<AuditEntry>> {
        let mut q =
            Sql::new("SELECT a.id, a.at, a.actor, a.action, a.objects, a.detail FROM audit_log a");
        if let Some(o) = &filter.object {
            q.push(" JOIN audit_objects o ON o.audit_id = a.id AND o.object_id = ");
            q.bind_text(o);
        }
        q.push(" WHERE 1 = 1");
        if let Some(a) = &filter.actor {
            q.push(" AND a.actor = ");
            q.bind_text(a);
        }
        if let Some(a) = &filter.action {
            q.push(" AND a.action = ");
            q.bind_text(a);
        }
        if let Some(t) = filter.since {
            q.push(" AND a.at >= ");
            q.bind_int(ms(t));
        }
        if let Some(t) = filter.until {
            q.push(" AND a.at < ");
            q.bind_int(ms(t));
        }
        if let Some(c) = after {
            q.push(" AND a.id < ");
            q.bind_text(c);
        }
        q.push(" ORDER BY a.id DESC LIMIT ");
        q.bind_int(i64::from(limit) + 1);
        let rows = q.fetch_all(&self.read).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(AuditEntry {
                id: get(r, "id")?,
                at: get_ts(r, "at")?,
                actor: get(r, "actor")?,
                action: get(r, "action")?,
                objects: parse_json(&get::<String>(r, "objects")?, "objects")?,
                detail: get_json(r, "detail")?,
            });
        }
        Ok(page(items, limit, |e| e.id.clone()))
    }
}

/// Cuts the extra row fetched to know whether another page follows.
pub(crate) fn page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(&key);
        Page { items, next }
    } else {
        Page { items, next: None }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Dynamic SQL whose values are always binds; only fixed fragments from
/// this module are ever pushed as text.
pub(crate) struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub(crate) fn new(start: &str) -> Sql {
        Sql {
            text: start.to_owned(),
            binds: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }

    fn placeholder(&mut self) {
        self.text.push_str(&format!("${}", self.binds.len()));
    }

    pub(crate) fn bind_text(&mut self, s: &str) -> &mut Sql {
        self.binds.push(Bind::Text(s.to_owned()));
        self.placeholder();
        self
    }

    pub(crate) fn bind_int(&mut self, i: i64) -> &mut Sql {
        self.binds.push(Bind::Int(i));
        self.placeholder();
        self
    }

    pub(crate) fn query(self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for b in self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        q
    }

    pub(crate) async fn fetch_all(self, pool: &AnyPool) -> Result<Vec<AnyRow>> {
        Ok(self.query().fetch_all(pool).await?)
    }
}
