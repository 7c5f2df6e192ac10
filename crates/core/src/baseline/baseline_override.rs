//! The `BaselineOverride` document (spec §3.8): a JSON array of baselines in
//! `GetPatchBaseline` shape, one per operating system, that replaces the
//! default and patch-group baselines for one operation.

use super::document::{
    BaselineError, BaselineErrorKind, DocumentKind, Format, first_char, strip_bom,
};
use super::model::Baseline;
use crate::os::OperatingSystem;

/// Reads a `BaselineOverride` document. Entries are not validated here;
/// call [`Baseline::validate_override`] on the one you select.
pub fn parse_baseline_override(text: &str) -> Result<Vec<Baseline>, BaselineError> {
    let text = strip_bom(text);
    let problem = match first_char(text) {
        Some('[') => None,
        Some('{') => Some((BaselineErrorKind::WrongContainer, "found a single object")),
        Some(_) => Some((
            BaselineErrorKind::WrongContainer,
            "found something that is not JSON",
        )),
        None => Some((BaselineErrorKind::Empty, "the document is empty")),
    };
    if let Some((kind, found)) = problem {
        return Err(BaselineError::new(
            kind,
            Format::Json,
            format!("expected a JSON array of baselines, {found}"),
        )
        .in_document(DocumentKind::BaselineOverride));
    }
    serde_json::from_str(text)
        .map_err(|e| BaselineError::from_json(text, &e).in_document(DocumentKind::BaselineOverride))
}

/// Why no override entry could be chosen for a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("the BaselineOverride document has no baseline for {0}")]
    NoEntryForOs(OperatingSystem),
    #[error(
        "the BaselineOverride document has {} baselines for {os} (entries {}); exactly one is allowed",
        .indexes.len(),
        .indexes.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    )]
    SeveralEntriesForOs {
        os: OperatingSystem,
        /// Positions in the array, from 0.
        indexes: Vec<usize>,
    },
}

/// The single entry whose `OperatingSystem` is `os`.
pub fn select_override(
    entries: &[Baseline],
    os: OperatingSystem,
) -> Result<&Baseline, OverrideError> {
    let indexes: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, b)| b.operating_system == os)
        .map(|(i, _)| i)
        .collect();
    match indexes.as_slice() {
        [] => Err(OverrideError::NoEntryForOs(os)),
        [i] => Ok(&entries[*i]),
        _ => Err(OverrideError::SeveralEntriesForOs { os, indexes }),
    }
}
