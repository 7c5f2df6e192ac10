//! The requests a registered agent makes to its server (`/agent/v1`),
//! shared by the run loop and the invocations it runs: one HTTPS client,
//! one base URL, and whether the server takes gzip uploads.

use crate::channel::{self, CallError};
use crate::facts_file::{self, ScanSummary};
use anyhow::anyhow;
use jiff::Timestamp;
use patchfleet_protocol::{
    FactsOffer, FactsOfferAck, Heartbeat, HeartbeatAck, InvocationReport, InvocationReportAck,
    WorkResponse,
};
use std::cell::Cell;
use std::path::Path;

/// A request that failed: at the server (retried with backoff) or on this
/// node (reported; retrying would fail the same way).
#[derive(Debug)]
pub enum Failure {
    Call(CallError),
    Local(anyhow::Error),
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        Failure::Call(e)
    }
}

pub struct ServerLink {
    client: reqwest::Client,
    base: reqwest::Url,
    /// Cleared on a 415: the server does not decompress requests.
    gzip: Cell<bool>,
}

impl ServerLink {
    pub fn new(client: reqwest::Client, base: reqwest::Url) -> ServerLink {
        ServerLink {
            client,
            base,
            gzip: Cell::new(true),
        }
    }

    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        channel::endpoint(&self.base, path)
    }

    pub async fn heartbeat(&self, body: &Heartbeat) -> Result<Option<HeartbeatAck>, CallError> {
        channel::call(self.client.post(self.url("/agent/v1/heartbeat")).json(body)).await
    }

    /// The long poll: waits up to `wait` seconds for work.
    pub async fn work(&self, wait: u64) -> Result<WorkResponse, CallError> {
        let url = self.url(&format!("/agent/v1/work?wait={wait}"));
        Ok(channel::call(self.client.get(&url))
            .await?
            .unwrap_or_default())
    }

    /// An invocation's progress or result; the server's answer says whether
    /// it still wants the invocation.
    pub async fn report(
        &self,
        invocation_id: &str,
        report: &InvocationReport,
    ) -> Result<InvocationReportAck, CallError> {
        let url = self.url(&format!("/agent/v1/invocations/{invocation_id}"));
        channel::call(self.client.post(&url).json(report))
            .await?
            .ok_or_else(|| CallError::Network(format!("{url}: empty answer")))
    }

    /// Offers a scan by hash; uploads `facts_gz` when the server does not
    /// know the inventory.
    pub async fn offer_facts(
        &self,
        summary: &ScanSummary,
        scanned_at: Timestamp,
        facts_gz: &Path,
    ) -> Result<(), Failure> {
        let hash = &summary.content_hash;
        let offer = FactsOffer {
            content_hash: hash.clone(),
            state: summary.state.clone(),
            scanned_at,
        };
        let url = self.url("/agent/v1/facts/offer");
        let ack: FactsOfferAck = channel::call(self.client.post(&url).json(&offer))
            .await?
            .ok_or_else(|| Failure::Call(CallError::Network(format!("{url}: empty answer"))))?;
        if ack.known {
            return Ok(());
        }
        let packed = std::fs::read(facts_gz)
            .map_err(|e| Failure::Local(anyhow!("reading {}: {e}", facts_gz.display())))?;
        // The scan's time goes with the body: the server records it as the
        // node's scan time (an upload may come long after the scan, when the
        // server was away).
        let url = self.url(&format!("/agent/v1/facts/{hash}?scanned_at={scanned_at}"));
        if self.gzip.get() {
            let request = self
                .client
                .put(&url)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(packed.clone());
            match channel::call::<serde_json::Value>(request).await {
                Ok(_) => {
                    crate::collect::info(&format!("facts {hash} uploaded"));
                    return Ok(());
                }
                // A server without request decompression: send plain from now on.
                Err(CallError::Server { status: 415, .. }) => self.gzip.set(false),
                Err(e) => return Err(e.into()),
            }
        }
        let json = facts_file::gunzip(&packed)
            .map_err(|e| Failure::Local(anyhow!("reading {}: {e}", facts_gz.display())))?;
        let request = self
            .client
            .put(&url)
            .header("content-type", "application/json")
            .body(json);
        channel::call::<serde_json::Value>(request).await?;
        crate::collect::info(&format!("facts {hash} uploaded"));
        Ok(())
    }
}
