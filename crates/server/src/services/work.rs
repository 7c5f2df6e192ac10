//! Work for agents: queued durably (work items, and the invocations a
//! command's rollout dispatched), delivered through a long poll that
//! answers at once when there is some and is woken (on any replica) when
//! some arrives.

use super::{Services, commands, wake};
use crate::api::error::ApiResult;
use crate::store::{Audit, WorkItemRecord};
use jiff::Timestamp;
use std::time::Duration;

/// Queues `kind` work for the node and wakes its poll wherever it is.
pub async fn queue(
    svc: &Services,
    node_id: &str,
    kind: &str,
    parameters: &serde_json::Value,
    audit: &Audit,
) -> ApiResult<String> {
    let id = svc
        .store
        .enqueue_work(node_id, kind, parameters, Timestamp::now(), audit)
        .await?;
    wake::work_queued(&svc.store, &svc.wake, node_id).await;
    Ok(id)
}

/// The node's work: what is queued now, else what arrives within `wait`.
/// The poll registers for its wake-up before it reads the store, so work
/// queued between the read and the wait is not missed.
pub async fn poll(svc: &Services, node_id: &str, wait: Duration) -> ApiResult<Vec<WorkItemRecord>> {
    let deadline = tokio::time::Instant::now() + wait;
    let notify = svc.wake.handle(node_id);
    let result = async {
        loop {
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = Timestamp::now();
            let pending = svc
                .store
                .pending_work(node_id, commands::resend_before(svc, now))
                .await?;
            let mut items = Vec::new();
            if pending.items {
                items = svc.store.take_work(node_id, now).await?;
            }
            if pending.invocations {
                items.extend(commands::deliveries(svc, node_id, now).await?);
            }
            if !items.is_empty() {
                return Ok(items);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = (now + wake::FALLBACK_REREAD).min(deadline);
            let _ = tokio::time::timeout_at(until, woken).await;
        }
    }
    .await;
    svc.wake.release(node_id, notify);
    result
}
