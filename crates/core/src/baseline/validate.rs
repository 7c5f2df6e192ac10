//! Baseline validation: the constraints of the SSM model (lengths, counts,
//! ranges, patterns) plus the semantic rules of spec §1.1–1.5, all collected
//! in one pass so that an operator fixes a file once, not once per error.
//!
//! Messages follow SSM's `ValidationException` wording (member paths in
//! lowerCamelCase, list members as `.N.member` counted from 1) so that the
//! SSM-compatible API can return them verbatim.

use super::model::{Baseline, PatchFilterGroup, PatchFilterKey, PatchRule};
use super::patch_group::{
    PatchGroupNameError, TAG_LIKE_PATTERN, is_tag_like_char, validate_patch_group_name,
};
use super::properties;
use crate::os::{Family, OperatingSystem};
use std::fmt;

const NAME_PATTERN: &str = r"^[a-zA-Z0-9_\-.]{3,128}$";
const BASELINE_ID_PATTERN: &str = r"^[a-zA-Z0-9_\-:/]{20,128}$";
const SOURCE_NAME_PATTERN: &str = r"^[a-zA-Z0-9_\-.]{3,50}$";

const MAX_FILTERS_PER_GROUP: usize = 4;
const MAX_FILTER_VALUES: usize = 20;
const MAX_FILTER_VALUE_CHARS: usize = 64;
const MAX_RULES: usize = 10;
const MAX_APPROVE_AFTER_DAYS: u32 = 360;
const MAX_PATCH_LIST_ENTRIES: usize = 50;
const MAX_PATCH_ID_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_SOURCES: usize = 20;
const MAX_SOURCE_PRODUCTS: usize = 20;
const MAX_SOURCE_PRODUCT_CHARS: usize = 128;
const MAX_SOURCE_CONFIGURATION_CHARS: usize = 1024;
const MAX_TAGS: usize = 1000;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

/// The value shown in front of a violated constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownValue {
    Text(String),
    /// The member is absent.
    Null,
    /// The member is sensitive (`PatchSource.Configuration`): never echoed.
    Redacted,
}

/// The rule a member breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constraint {
    NotNull,
    MinLength(usize),
    MaxLength(usize),
    MaxValue(u64),
    Pattern(&'static str),
    CalendarDate,
    KeyNotValidForOs {
        os: OperatingSystem,
        valid: &'static [PatchFilterKey],
    },
    ValueNotValidForKey {
        os: OperatingSystem,
        key: PatchFilterKey,
        valid: &'static [&'static str],
    },
    DuplicateKey(PatchFilterKey),
    /// Neither `ApproveAfterDays` nor `ApproveUntilDate` on a non-APT OS.
    ApprovalDelayMissing(OperatingSystem),
    /// Both `ApproveAfterDays` and `ApproveUntilDate` on a non-APT OS.
    ApprovalDelayTwice(OperatingSystem),
    /// No approval rule and no approved patch: the baseline approves nothing.
    NothingApproved,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNull => f.write_str("Member must not be null"),
            Self::MinLength(n) => write!(f, "Member must have length greater than or equal to {n}"),
            Self::MaxLength(n) => write!(f, "Member must have length less than or equal to {n}"),
            Self::MaxValue(n) => write!(f, "Member must have value less than or equal to {n}"),
            Self::Pattern(p) => write!(f, "Member must satisfy regular expression pattern: {p}"),
            Self::CalendarDate => f.write_str("Member must be a calendar date in the form YYYY-MM-DD"),
            Self::KeyNotValidForOs { os, valid } => write!(
                f,
                "Member must be a patch filter key valid for {os} baselines: [{}]",
                join(valid.iter().map(|k| k.as_str()))
            ),
            Self::ValueNotValidForKey { os, key, valid } => write!(
                f,
                "Member must be * or one of the {key} values valid for {os} (any letter case): [{}]",
                join(valid.iter().copied())
            ),
            Self::DuplicateKey(key) => write!(
                f,
                "Member must not repeat the filter key {key} within one filter group"
            ),
            Self::ApprovalDelayMissing(os) => write!(
                f,
                "Member must not be null when approveUntilDate is absent: every {os} rule needs approveAfterDays or approveUntilDate"
            ),
            Self::ApprovalDelayTwice(os) => write!(
                f,
                "Member must be null when approveAfterDays is set: an {os} rule takes approveAfterDays or approveUntilDate, not both"
            ),
            Self::NothingApproved => f.write_str(
                "Member must contain at least one rule when approvedPatches is empty: the baseline would approve nothing",
            ),
        }
    }
}

/// One violated constraint, at one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// SSM style: `approvalRules.patchRules.1.member.approveAfterDays`.
    pub path: String,
    pub value: ShownValue,
    pub constraint: Constraint,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            ShownValue::Text(v) => write!(f, "Value '{v}' at")?,
            ShownValue::Null => f.write_str("Value null at")?,
            ShownValue::Redacted => f.write_str("Value at")?,
        }
        write!(
            f,
            " '{}' failed to satisfy constraint: {}",
            self.path, self.constraint
        )
    }
}

/// Every problem of a baseline. `Display` is SSM's summary:
/// `2 validation errors detected: …; …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    /// The error at exactly `path`, if any.
    pub fn at(&self, path: &str) -> Option<&ValidationError> {
        self.0.iter().find(|e| e.path == path)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let noun = if n == 1 { "error" } else { "errors" };
        write!(f, "{n} validation {noun} detected: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Baseline {
    /// Checks a baseline as `CreatePatchBaseline` would (plus the rules of
    /// spec §1), reporting every problem at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        Checker::run(self, true)
    }

    /// As [`validate`](Self::validate), for a `BaselineOverride` entry:
    /// such entries need no `Name` (spec §3.8).
    pub fn validate_override(&self) -> Result<(), ValidationErrors> {
        Checker::run(self, false)
    }
}

impl PatchRule {
    /// `ApproveUntilDate` as a date, when present and well formed.
    pub fn until_date(&self) -> Option<jiff::civil::Date> {
        self.approve_until_date
            .as_deref()
            .and_then(parse_calendar_date)
    }
}

/// Strict `YYYY-MM-DD` (four-digit year) naming a real day.
pub fn parse_calendar_date(text: &str) -> Option<jiff::civil::Date> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let year: i16 = text[0..4].parse().ok()?;
    let month: i8 = text[5..7].parse().ok()?;
    let day: i8 = text[8..10].parse().ok()?;
    jiff::civil::Date::new(year, month, day).ok()
}

struct Checker {
    os: OperatingSystem,
    errors: Vec<ValidationError>,
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn list_value<S: AsRef<str>>(items: &[S]) -> String {
    format!("[{}]", join(items.iter().map(|s| s.as_ref())))
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn member(prefix: &str, index: usize) -> String {
    format!("{prefix}.{}.member", index + 1)
}

impl Checker {
    fn run(b: &Baseline, require_name: bool) -> Result<(), ValidationErrors> {
        let mut c = Checker {
            os: b.operating_system,
            errors: Vec::new(),
        };
        c.check_identity(b, require_name);
        c.check_group("globalFilters", &b.global_filters);
        c.check_rules(b);
        c.check_patch_list("approvedPatches", &b.approved_patches);
        c.check_patch_list("rejectedPatches", &b.rejected_patches);
        c.check_sources(b);
        c.check_patch_groups(&b.patch_groups);
        c.check_tags(b);
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(c.errors))
        }
    }

    fn push(&mut self, path: impl Into<String>, value: ShownValue, constraint: Constraint) {
        self.errors.push(ValidationError {
            path: path.into(),
            value,
            constraint,
        });
    }

    fn text(&mut self, path: impl Into<String>, value: &str, constraint: Constraint) {
        self.push(path, ShownValue::Text(value.to_string()), constraint);
    }

    /// Length bounds of a string member; true when they hold.
    fn length(&mut self, path: &str, value: &str, min: usize, max: usize) -> bool {
        let n = chars(value);
        if n < min {
            self.text(path, value, Constraint::MinLength(min));
            false
        } else if n > max {
            self.text(path, value, Constraint::MaxLength(max));
            false
        } else {
            true
        }
    }

    /// Length bounds of a list member; true when they hold.
    fn count<S: AsRef<str>>(&mut self, path: &str, shown: &[S], min: usize, max: usize) -> bool {
        let n = shown.len();
        let constraint = if n < min {
            Constraint::MinLength(min)
        } else if n > max {
            Constraint::MaxLength(max)
        } else {
            return true;
        };
        self.text(path, &list_value(shown), constraint);
        false
    }

    fn check_identity(&mut self, b: &Baseline, require_name: bool) {
        if let Some(id) = &b.baseline_id {
            let ok = id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/'));
            if self.length("baselineId", id, 20, 128) && !ok {
                self.text("baselineId", id, Constraint::Pattern(BASELINE_ID_PATTERN));
            }
        }
        match &b.name {
            None if require_name => self.push("name", ShownValue::Null, Constraint::NotNull),
            None => {}
            Some(name) => {
                let ok = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if self.length("name", name, 3, 128) && !ok {
                    self.text("name", name, Constraint::Pattern(NAME_PATTERN));
                }
            }
        }
        if let Some(d) = &b.description {
            self.length("description", d, 1, MAX_DESCRIPTION_CHARS);
        }
    }

    fn check_group(&mut self, prefix: &str, group: &PatchFilterGroup) {
        let filters_path = format!("{prefix}.patchFilters");
        let keys: Vec<&str> = group.patch_filters.iter().map(|f| f.key.as_str()).collect();
        self.count(&filters_path, &keys, 0, MAX_FILTERS_PER_GROUP);
        let valid_keys = properties::valid_keys(self.os);
        for (i, filter) in group.patch_filters.iter().enumerate() {
            let at = member(&filters_path, i);
            let key_path = format!("{at}.key");
            let key_ok = valid_keys.contains(&filter.key);
            if !key_ok {
                self.text(
                    &key_path,
                    filter.key.as_str(),
                    Constraint::KeyNotValidForOs {
                        os: self.os,
                        valid: valid_keys,
                    },
                );
            } else if group.patch_filters[..i].iter().any(|f| f.key == filter.key) {
                self.text(
                    &key_path,
                    filter.key.as_str(),
                    Constraint::DuplicateKey(filter.key),
                );
            }
            let values_path = format!("{at}.values");
            self.count(&values_path, &filter.values, 1, MAX_FILTER_VALUES);
            for (j, value) in filter.values.iter().enumerate() {
                let value_path = member(&values_path, j);
                if !self.length(&value_path, value, 1, MAX_FILTER_VALUE_CHARS) || !key_ok {
                    continue;
                }
                if !properties::is_valid_value(self.os, filter.key, value) {
                    let valid = properties::valid_values(self.os, filter.key).unwrap_or(&[]);
                    self.text(
                        &value_path,
                        value,
                        Constraint::ValueNotValidForKey {
                            os: self.os,
                            key: filter.key,
                            valid,
                        },
                    );
                }
            }
        }
    }

    fn check_rules(&mut self, b: &Baseline) {
        let rules = b.rules();
        let path = "approvalRules.patchRules";
        if rules.len() > MAX_RULES {
            self.text(
                path,
                &format!("[{} PatchRule objects]", rules.len()),
                Constraint::MaxLength(MAX_RULES),
            );
        }
        if rules.is_empty() && b.approved_patches.is_empty() {
            self.push(
                "approvalRules",
                ShownValue::Null,
                Constraint::NothingApproved,
            );
        }
        let delay_required = b.operating_system.family() != Family::Apt;
        for (i, rule) in rules.iter().enumerate() {
            let at = member(path, i);
            self.check_group(&format!("{at}.patchFilterGroup"), &rule.patch_filter_group);
            let days_path = format!("{at}.approveAfterDays");
            let until_path = format!("{at}.approveUntilDate");
            if let Some(days) = rule.approve_after_days
                && days > MAX_APPROVE_AFTER_DAYS
            {
                self.text(
                    &days_path,
                    &days.to_string(),
                    Constraint::MaxValue(MAX_APPROVE_AFTER_DAYS.into()),
                );
            }
            if let Some(date) = &rule.approve_until_date
                && self.length(&until_path, date, 1, 10)
                && parse_calendar_date(date).is_none()
            {
                self.text(&until_path, date, Constraint::CalendarDate);
            }
            if delay_required {
                match (&rule.approve_after_days, &rule.approve_until_date) {
                    (None, None) => self.push(
                        days_path,
                        ShownValue::Null,
                        Constraint::ApprovalDelayMissing(self.os),
                    ),
                    (Some(_), Some(date)) => {
                        self.text(until_path, date, Constraint::ApprovalDelayTwice(self.os))
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_patch_list(&mut self, path: &str, list: &[String]) {
        self.count(path, list, 0, MAX_PATCH_LIST_ENTRIES);
        for (i, entry) in list.iter().enumerate() {
            self.length(&member(path, i), entry, 1, MAX_PATCH_ID_CHARS);
        }
    }

    fn check_sources(&mut self, b: &Baseline) {
        let names: Vec<&str> = b.sources.iter().map(|s| s.name.as_str()).collect();
        self.count("sources", &names, 0, MAX_SOURCES);
        for (i, source) in b.sources.iter().enumerate() {
            let at = member("sources", i);
            let name_ok = (3..=50).contains(&chars(&source.name))
                && source
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !name_ok {
                self.text(
                    format!("{at}.name"),
                    &source.name,
                    Constraint::Pattern(SOURCE_NAME_PATTERN),
                );
            }
            let products_path = format!("{at}.products");
            self.count(&products_path, &source.products, 1, MAX_SOURCE_PRODUCTS);
            for (j, product) in source.products.iter().enumerate() {
                self.length(
                    &member(&products_path, j),
                    product,
                    1,
                    MAX_SOURCE_PRODUCT_CHARS,
                );
            }
            let n = chars(&source.configuration);
            let bound = if n < 1 {
                Some(Constraint::MinLength(1))
            } else if n > MAX_SOURCE_CONFIGURATION_CHARS {
                Some(Constraint::MaxLength(MAX_SOURCE_CONFIGURATION_CHARS))
            } else {
                None
            };
            if let Some(constraint) = bound {
                self.push(
                    format!("{at}.configuration"),
                    ShownValue::Redacted,
                    constraint,
                );
            }
        }
    }

    fn check_patch_groups(&mut self, groups: &[String]) {
        for (i, group) in groups.iter().enumerate() {
            let path = member("patchGroups", i);
            let constraint = match validate_patch_group_name(group) {
                Ok(()) => continue,
                Err(PatchGroupNameError::Empty) => Constraint::MinLength(1),
                Err(PatchGroupNameError::TooLong { .. }) => {
                    Constraint::MaxLength(super::patch_group::PATCH_GROUP_MAX_CHARS)
                }
                Err(PatchGroupNameError::InvalidChar { .. }) => {
                    Constraint::Pattern(TAG_LIKE_PATTERN)
                }
            };
            self.text(path, group, constraint);
        }
    }

    fn check_tags(&mut self, b: &Baseline) {
        let keys: Vec<&str> = b.tags.iter().map(|t| t.key.as_str()).collect();
        self.count("tags", &keys, 0, MAX_TAGS);
        for (i, tag) in b.tags.iter().enumerate() {
            let at = member("tags", i);
            let key_path = format!("{at}.key");
            if self.length(&key_path, &tag.key, 1, MAX_TAG_KEY_CHARS)
                && !tag.key.chars().all(is_tag_like_char)
            {
                self.text(key_path, &tag.key, Constraint::Pattern(TAG_LIKE_PATTERN));
            }
            let value_path = format!("{at}.value");
            if self.length(&value_path, &tag.value, 0, MAX_TAG_VALUE_CHARS)
                && !tag.value.chars().all(is_tag_like_char)
            {
                self.text(
                    value_path,
                    &tag.value,
                    Constraint::Pattern(TAG_LIKE_PATTERN),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates() {
        assert!(parse_calendar_date("2024-02-29").is_some());
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024/01/01",
            "+02024-01-0",
            "２０２４-01-01",
        ] {
            assert!(parse_calendar_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn summary_wording() {
        let one = ValidationErrors(vec![ValidationError {
            path: "name".into(),
            value: ShownValue::Null,
            constraint: Constraint::NotNull,
        }]);
        assert_eq!(
            one.to_string(),
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
        );
    }
}
