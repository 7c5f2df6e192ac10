//! Patch baselines (spec §1, §6, §7): the model in SSM's exact shape, its
//! validation, the predefined baselines, the choice of a node's baseline,
//! and the two per-operation documents (`BaselineOverride`,
//! `InstallOverrideList`).
//!
//! Everything here works on values and strings the caller supplies: no
//! files are read and no clock is consulted.

mod baseline_override;
mod document;
mod install_override;
mod model;
mod patch_group;
pub mod predefined;
pub mod properties;
mod resolve;
mod timestamp;
mod validate;
mod warnings;

pub use baseline_override::{OverrideError, parse_baseline_override, select_override};
pub use document::{BaselineError, BaselineErrorKind, DocumentKind, Format};
pub use install_override::{
    InstallOverrideError, InstallOverrideList, OverrideEntry, parse_install_override_list,
};
pub use model::{
    Baseline, PatchAction, PatchFilter, PatchFilterGroup, PatchFilterKey, PatchRule,
    PatchRuleGroup, PatchSource, Tag,
};
pub use patch_group::{
    DisplayChar, PATCH_GROUP_MAX_CHARS, PatchGroupNameError, TAG_LIKE_PATTERN, is_tag_like_char,
    validate_patch_group_name,
};
pub use resolve::{
    PATCH_GROUP_TAG_KEYS, PatchRegistry, RegistryError, Resolution, ResolutionError,
    ResolutionSource, patch_group_from_tags,
};
pub use validate::{
    Constraint, ShownValue, ValidationError, ValidationErrors, parse_calendar_date,
};
pub use warnings::{BaselineWarning, WarningKind};
