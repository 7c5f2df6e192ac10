//! The client verbs' shared half: which server and key (profiles, like
//! `aws configure`), the HTTPS client that trusts only the server's CA, and
//! the output (`output`). Errors from the server (`{code, message, field}`)
//! become one line and exit status 1.

pub mod output;
pub mod profile;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use output::Format;
use patchfleet_protocol::ErrorBody;
use serde_json::Value;
use std::time::Duration;

/// Flags every client verb takes.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// The profile of the configuration file (default: `default`, or
    /// PATCHFLEET_PROFILE).
    #[arg(long, global = true, env = "PATCHFLEET_PROFILE")]
    pub profile: Option<String>,
    /// The server's URL, over the profile's.
    #[arg(long, global = true, env = "PATCHFLEET_SERVER")]
    pub server: Option<String>,
    #[arg(long, global = true, value_enum)]
    pub output: Option<Format>,
    /// A JMESPath expression applied to the answer (as in the AWS CLI).
    #[arg(long, global = true)]
    pub query: Option<String>,
}

/// A failed request, as the server explained it.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}{}", field.as_deref().map(|f| format!(" (field {f})")).unwrap_or_default())]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

pub struct Client {
    base: String,
    authorization: String,
    http: reqwest::blocking::Client,
    pub format: Format,
    pub query: Option<String>,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Result<Client> {
        let p = profile::resolve(args)?;
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("patchfleet/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &p.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| anyhow!("{}: not a PEM certificate: {e}", ca.display()))?;
            builder = builder.tls_certs_only([cert]);
        }
        Ok(Client {
            base: p.server.trim_end_matches('/').to_string(),
            authorization: format!("Bearer {}:{}", p.access_key_id, p.secret),
            http: builder.build().context("building the HTTPS client")?,
            format: args.output.unwrap_or_default(),
            query: args.query.clone(),
        })
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(self.url(path)))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(self.url(path)).json(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.put(self.url(path)).json(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.http.delete(self.url(path)))
    }

    /// A text answer (an invocation's output), errors as for JSON.
    pub fn get_text(&self, path: &str) -> Result<String> {
        let resp = self
            .http
            .get(self.url(path))
            .header("Authorization", &self.authorization)
            .send()
            .map_err(|e| anyhow!("{}: {}", self.base, error_chain(&e)))?;
        if resp.status().is_success() {
            return resp.text().context("reading the answer");
        }
        self.send_answer(resp).map(|_| String::new())
    }

    /// Whether the answer is printed as a table without a query: verbs then
    /// choose the columns.
    pub fn is_table(&self) -> bool {
        self.query.is_none() && self.format == Format::Table
    }

    /// Prints `value` with the chosen query and format.
    pub fn print(&self, value: Value) -> Result<()> {
        let v = output::query(value, self.query.as_deref())?;
        print!("{}", output::render(&v, self.format)?);
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<Value> {
        let resp = req
            .header("Authorization", &self.authorization)
            .send()
            .map_err(|e| anyhow!("{}: {}", self.base, error_chain(&e)))?;
        self.send_answer(resp)
    }

    fn send_answer(&self, resp: reqwest::blocking::Response) -> Result<Value> {
        let status = resp.status();
        let bytes = resp.bytes().context("reading the answer")?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("the server's answer is not JSON: {e}"));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ServerError {
                status: status.as_u16(),
                code: b.code,
                message: b.message,
                field: b.field,
            }
            .into()),
            Err(_) => bail!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
            ),
        }
    }
}

/// reqwest's error with its causes (the TLS reason is in a cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
