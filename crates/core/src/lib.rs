//! `patchfleet-core`: the pure domain engine of Patchfleet.
//!
//! Everything Patchfleet decides comes from here: version ordering, baselines,
//! the evaluation of a node's facts against a baseline, patch states and
//! compliance. The crate does no I/O, spawns nothing and reads no clock: the
//! evaluation instant is always a parameter, so the same inputs give the same
//! verdict on every machine, every time.

pub mod baseline;
pub mod command;
pub mod compliance;
pub mod eval;
pub mod facts;
pub mod inventory;
pub mod os;
pub mod reboot_evidence;
pub mod release_date;
pub mod report;
pub mod version;
