//! The Patchfleet server: the store (SQLite or PostgreSQL, one schema),
//! TLS with its own CA, the services that hold the rules, and the APIs
//! (`/api/v1` for people and scripts, `/agent/v1` for agents, and the
//! SSM-compatible API at `/` for the AWS CLI and SDKs). See
//! ARCHITECTURE.md.

pub mod api;
pub mod auth;
pub mod compliance;
pub mod config;
pub mod diff;
pub mod ids;
pub mod objects;
pub mod serve;
pub mod server;
pub mod services;
pub mod sigv4;
pub mod store;
pub mod tls;
