//! A baseline compiled for evaluation: filter values canonicalised, list
//! entries turned into [`PatternSet`]s, approval delays into seconds.
//! Compiled once per baseline version; bound to each inventory's symbols
//! when it is evaluated.

use super::pattern::PatternSet;
use crate::baseline::{Baseline, PatchAction, PatchFilter, PatchFilterKey};
use crate::compliance::ComplianceLevel;
use crate::inventory::{AttrKind, Inventory, Sym, canonical_value};
use crate::os::{Family, OperatingSystem};
use std::collections::HashSet;

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Product,
    Classification,
    Severity,
    Priority,
    Section,
}

#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub attr: Attr,
    /// `*` among the values: matches every patch, with or without the property.
    pub any: bool,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FilterGroup {
    pub filters: Vec<Filter>,
}

/// When a rule's approval delay lets a patch through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delay {
    None,
    /// Approved once `R < now − days`.
    AfterSeconds(i64),
    /// Approved when `R` is before this instant (the day after the date, 00:00Z).
    Before(i64),
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub group: FilterGroup,
    pub level: ComplianceLevel,
    pub delay: Delay,
    pub non_security: bool,
}

/// A baseline ready to evaluate inventories.
#[derive(Debug, Clone)]
pub struct CompiledBaseline {
    pub id: String,
    pub name: String,
    pub os: OperatingSystem,
    pub family: Family,
    pub(crate) global: FilterGroup,
    pub(crate) rules: Vec<Rule>,
    pub(crate) approved: PatternSet,
    /// Approved entries compared with notice ids, CVE and Bugzilla ids.
    pub(crate) approved_ids: HashSet<String>,
    pub(crate) approved_level: ComplianceLevel,
    pub(crate) approved_non_security: bool,
    pub(crate) rejected: PatternSet,
    pub rejected_entries: Vec<String>,
    pub block: bool,
}

/// The baseline cannot be evaluated; carries the validation message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("baseline '{name}' cannot be evaluated: {message}")]
pub struct CompileError {
    pub name: String,
    pub message: String,
}

fn attr_of(key: PatchFilterKey) -> Option<Attr> {
    Some(match key {
        PatchFilterKey::Product => Attr::Product,
        PatchFilterKey::Classification => Attr::Classification,
        PatchFilterKey::Severity => Attr::Severity,
        PatchFilterKey::Priority => Attr::Priority,
        PatchFilterKey::Section => Attr::Section,
        _ => return None,
    })
}

fn compile_group(family: Family, filters: &[PatchFilter]) -> Result<FilterGroup, String> {
    let mut out = Vec::with_capacity(filters.len());
    for f in filters {
        let attr = attr_of(f.key)
            .ok_or_else(|| format!("filter key {} is not valid in a baseline", f.key.as_str()))?;
        let kind = match attr {
            Attr::Product => None,
            Attr::Classification => Some(AttrKind::Classification),
            Attr::Severity => Some(AttrKind::Severity),
            Attr::Priority => Some(AttrKind::Priority),
            Attr::Section => Some(AttrKind::Section),
        };
        let any = f.values.iter().any(|v| v.trim() == "*");
        let values = f
            .values
            .iter()
            .map(|v| match kind {
                Some(kind) => canonical_value(kind, family, v),
                None => v.trim().to_ascii_lowercase(),
            })
            .collect();
        out.push(Filter { attr, any, values });
    }
    Ok(FilterGroup { filters: out })
}

impl CompiledBaseline {
    /// Compiles a baseline. The baseline must be valid (see
    /// `Baseline::validate`); the first problem is reported otherwise.
    pub fn compile(baseline: &Baseline) -> Result<CompiledBaseline, CompileError> {
        let err = |message: String| CompileError {
            name: baseline.name_or_empty().to_string(),
            message,
        };
        baseline
            .validate_override()
            .map_err(|e| err(e.to_string()))?;
        let os = baseline.operating_system;
        let family = os.family();
        if family == Family::Unsupported {
            return Err(err(format!("{os} is not a Linux operating system")));
        }
        let global = compile_group(family, &baseline.global_filters.patch_filters).map_err(err)?;
        let mut rules = Vec::new();
        for rule in &baseline.approval_rules.patch_rules {
            let delay = match (rule.approve_after_days, rule.approve_until_date.as_deref()) {
                (Some(days), _) => Delay::AfterSeconds(i64::from(days) * DAY),
                (None, Some(date)) => {
                    let date: jiff::civil::Date = date
                        .parse()
                        .map_err(|e| err(format!("ApproveUntilDate '{date}': {e}")))?;
                    let start = date
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .map_err(|e| err(format!("ApproveUntilDate '{date}': {e}")))?
                        .timestamp()
                        .as_second();
                    Delay::Before(start + DAY)
                }
                (None, None) => Delay::None,
            };
            rules.push(Rule {
                group: compile_group(family, &rule.patch_filter_group.patch_filters)
                    .map_err(err)?,
                level: rule.compliance_level,
                delay,
                non_security: rule.enable_non_security,
            });
        }
        Ok(CompiledBaseline {
            id: baseline.baseline_id.clone().unwrap_or_default(),
            name: baseline.name_or_empty().to_string(),
            os,
            family,
            global,
            rules,
            approved: PatternSet::new(&baseline.approved_patches),
            approved_ids: baseline.approved_patches.iter().cloned().collect(),
            approved_level: baseline.approved_patches_compliance_level,
            approved_non_security: baseline.approved_patches_enable_non_security,
            rejected: PatternSet::new(&baseline.rejected_patches),
            rejected_entries: baseline.rejected_patches.clone(),
            block: baseline.rejected_patches_action == PatchAction::Block,
        })
    }
}

/// A filter bound to one inventory: which interned values it accepts.
#[derive(Debug)]
pub(crate) struct BoundFilter {
    attr: Attr,
    any: bool,
    product_ok: bool,
    accepts: Vec<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct BoundGroup {
    filters: Vec<BoundFilter>,
}

impl BoundGroup {
    pub fn bind(group: &FilterGroup, inv: &Inventory) -> BoundGroup {
        let filters = group
            .filters
            .iter()
            .map(|f| {
                let mut accepts = vec![false; inv.symbols.len()];
                for v in &f.values {
                    if let Some(sym) = inv.symbols.get(v) {
                        accepts[sym.0 as usize] = true;
                    }
                }
                BoundFilter {
                    attr: f.attr,
                    any: f.any,
                    product_ok: f.any || f.values.contains(&inv.product_lc),
                    accepts,
                }
            })
            .collect();
        BoundGroup { filters }
    }

    /// AND across filters, OR within one (spec §1.2). A property the record
    /// lacks fails the filter unless it holds `*`. `attrs` is a record's
    /// (classification, severity, priority, section).
    pub fn matches(&self, attrs: &[Sym; 4]) -> bool {
        self.filters.iter().all(|f| {
            if f.any {
                return true;
            }
            let sym = match f.attr {
                Attr::Product => return f.product_ok,
                Attr::Classification => attrs[0],
                Attr::Severity => attrs[1],
                Attr::Priority => attrs[2],
                Attr::Section => attrs[3],
            };
            sym.0 != 0 && f.accepts.get(sym.0 as usize).copied().unwrap_or(false)
        })
    }
}
