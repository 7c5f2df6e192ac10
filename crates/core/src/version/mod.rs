//! Versions (being written).
