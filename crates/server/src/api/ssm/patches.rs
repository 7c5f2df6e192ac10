//! Patch catalogue operations: DescribeAvailablePatches (the updates the
//! fleet's repositories offer, from the stored inventories),
//! DescribePatchProperties (`core`'s per-OS filter table),
//! DescribeEffectivePatchesForPatchBaseline (Windows-only in SSM) and
//! GetDeployablePatchSnapshotForInstance.

use super::error::{SsmError, not_found_as};
use super::paging::{Paging, epoch, with_token};
use super::{Ctx, SsmResult, input};
use crate::services::fleet::{Resolver, cached_inventory};
use crate::services::{baselines, nodes};
use patchfleet_core::baseline::{PatchFilterKey, properties};
use patchfleet_core::facts::UpdateNotice;
use patchfleet_core::os::{Family, OperatingSystem};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IdRequest {
    baseline_id: String,
    instance_id: String,
    snapshot_id: String,
    baseline_override: Option<Value>,
}

pub async fn effective_patches(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    let view = baselines::get(ctx.svc, ctx.caller, &r.baseline_id, None)
        .await
        .map_err(not_found_as("DoesNotExistException", || {
            format!("Patch Baseline {} does not exist.", r.baseline_id)
        }))?;
    // SSM answers this for Windows baselines only; Linux patches are
    // judged per node (DescribeInstancePatches). A Windows baseline is
    // stored here, but there is no Windows patch catalogue to list.
    if view.operating_system == "WINDOWS" {
        return Ok(json!({"EffectivePatches": []}));
    }
    Err(SsmError::client(
        "UnsupportedOperatingSystem",
        format!(
            "DescribeEffectivePatchesForPatchBaseline applies to Windows baselines only; {} is a {} baseline. Use DescribeInstancePatches for the patches a node is judged on.",
            view.baseline_id, view.operating_system
        ),
    ))
}

/// One available update of the fleet, as SSM's `Patch`.
struct Patch {
    key: String,
    product: String,
    name: String,
    arch: String,
    epoch: i64,
    version: String,
    release: String,
    repository: String,
    notice: Option<UpdateNotice>,
    released: Option<jiff::Timestamp>,
    os: OperatingSystem,
}

impl Patch {
    fn field(&self, key: &str) -> Vec<String> {
        let n = self.notice.as_ref();
        match key {
            "PRODUCT" => vec![self.product.clone()],
            "NAME" => vec![self.name.clone()],
            "ARCH" => vec![self.arch.clone()],
            "EPOCH" => vec![self.epoch.to_string()],
            "VERSION" => vec![self.version.clone()],
            "RELEASE" => vec![self.release.clone()],
            "REPOSITORY" => vec![self.repository.clone()],
            "PATCH_ID" => vec![self.id()],
            "SEVERITY" => n.and_then(|n| n.severity.clone()).into_iter().collect(),
            "CLASSIFICATION" => n.map(|n| classification(&n.kind)).into_iter().collect(),
            "ADVISORY_ID" => n.map(|n| n.id.clone()).into_iter().collect(),
            "CVE_ID" => n.map(|n| n.cves.clone()).unwrap_or_default(),
            "BUGZILLA_ID" => n.map(|n| n.bugzilla.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn id(&self) -> String {
        let full = if self.release.is_empty() {
            self.version.clone()
        } else {
            format!("{}-{}", self.version, self.release)
        };
        format!("{}.{}:{}:{full}", self.name, self.arch, self.epoch)
    }

    fn json(&self) -> Value {
        let mut v = json!({
            "Id": self.id(),
            "Title": self.notice.as_ref().and_then(|n| n.title.clone()).unwrap_or_else(|| format!("{}.{}", self.name, self.arch)),
            "Product": self.product,
            "Name": self.name,
            "Arch": self.arch,
            "Epoch": self.epoch,
            "Version": self.version,
            "Release": self.release,
            "Repository": self.repository,
            "Vendor": match self.os.family() { Family::Apt => "Debian", Family::Zypp => "SUSE", _ => "" },
        });
        if let Some(n) = &self.notice {
            v["AdvisoryIds"] = json!([n.id]);
            v["CVEIds"] = json!(n.cves);
            v["BugzillaIds"] = json!(n.bugzilla);
            v["Classification"] = json!(classification(&n.kind));
            if let Some(s) = &n.severity {
                v["Severity"] = json!(s);
            }
        }
        if let Some(t) = self.released {
            v["ReleaseDate"] = epoch(t);
        }
        v
    }
}

/// `security` → `Security`, as SSM spells classifications.
fn classification(kind: &str) -> String {
    let mut c = kind.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `E:V-R` (RPM) or a Debian version → (epoch, version, release).
fn split_version(v: &str, family: Family) -> (i64, String, String) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
        _ => (0, v),
    };
    match (family, rest.rsplit_once('-')) {
        (Family::Rpm | Family::Zypp, Some((ver, rel))) => (epoch, ver.to_string(), rel.to_string()),
        _ => (epoch, rest.to_string(), String::new()),
    }
}

const LINUX_KEYS: &[&str] = &[
    "PRODUCT",
    "NAME",
    "SEVERITY",
    "EPOCH",
    "VERSION",
    "RELEASE",
    "ARCH",
    "REPOSITORY",
    "ADVISORY_ID",
    "CVE_ID",
    "BUGZILLA_ID",
    "CLASSIFICATION",
    "PATCH_ID",
];
/// Windows keys: valid, but no Windows update is ever in the catalogue.
const WINDOWS_KEYS: &[&str] = &["PATCH_SET", "PRODUCT_FAMILY", "MSRC_SEVERITY"];

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Filter {
    key: Option<String>,
    values: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListRequest {
    filters: Vec<Filter>,
}

pub async fn available_patches(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 100)?;
    let r: ListRequest = input(v)?;
    for f in &r.filters {
        let k = f.key.as_deref().unwrap_or("");
        if !LINUX_KEYS.contains(&k) && !WINDOWS_KEYS.contains(&k) {
            return Err(SsmError::invalid_filter(format!(
                "The filter key {k} is not valid for DescribeAvailablePatches."
            )));
        }
    }
    ctx.caller
        .require(crate::auth::Action::ReadFleet)
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    // Every distinct inventory of a registered node once.
    let groups = ctx.svc.store.evaluation_groups(&[]).await?;
    let mut hashes: Vec<String> = groups.into_iter().map(|g| g.inventory_hash).collect();
    hashes.sort();
    hashes.dedup();
    let mut patches: BTreeMap<String, Patch> = BTreeMap::new();
    for h in hashes {
        let inv = cached_inventory(ctx.svc, &h)
            .await
            .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
        let facts = &inv.facts;
        let family = facts.os.operating_system.family();
        let mut by_package: HashMap<(&str, &str, &str), &UpdateNotice> = HashMap::new();
        for n in &facts.notices {
            for p in &n.packages {
                by_package
                    .entry((p.name.as_str(), p.arch.as_str(), p.version.as_str()))
                    .or_insert(n);
            }
        }
        for a in &facts.available {
            let (epoch, version, release) = split_version(&a.version, family);
            let notice = by_package
                .get(&(a.name.as_str(), a.arch.as_str(), a.version.as_str()))
                .map(|n| (*n).clone());
            let p = Patch {
                key: String::new(),
                product: facts.os.product.clone(),
                name: a.name.clone(),
                arch: a.arch.clone(),
                epoch,
                version,
                release,
                repository: a.repository.clone().unwrap_or_default(),
                notice,
                released: a.build_time,
                os: facts.os.operating_system,
            };
            let key = format!("{}\u{0}{}", p.product, p.id());
            patches.entry(key.clone()).or_insert(Patch { key, ..p });
        }
    }
    let all: Vec<Patch> = patches
        .into_values()
        .filter(|p| {
            r.filters.iter().all(|f| {
                let have = p.field(f.key.as_deref().unwrap_or(""));
                f.values.is_empty() || f.values.iter().any(|v| v == "*" || have.contains(v))
            })
        })
        .collect();
    let (page, next) = paging.page(ctx, all, |p| p.key.clone());
    let out = json!({"Patches": page.iter().map(Patch::json).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct PropertiesRequest {
    operating_system: String,
    property: String,
}

pub async fn patch_properties(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: PropertiesRequest = input(v)?;
    ctx.caller
        .require(crate::auth::Action::ReadFleet)
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    let os: OperatingSystem = r
        .operating_system
        .parse()
        .map_err(|_| SsmError::validation("unknown operating system"))?;
    let key: PatchFilterKey = r
        .property
        .parse()
        .map_err(|_| SsmError::validation("unknown property"))?;
    let mut values: Vec<String> = Vec::new();
    if properties::valid_keys(os).contains(&key) {
        match properties::valid_values(os, key) {
            Some(closed) => values.extend(closed.iter().map(|s| (*s).to_string())),
            // Free text (PRODUCT): the products the fleet runs.
            None if key == PatchFilterKey::Product => {
                let mut after = None;
                loop {
                    let (batch, next) = nodes::list(
                        ctx.svc,
                        ctx.caller,
                        nodes::ListNodes {
                            operating_system: Some(os.as_str().to_string()),
                            next: after,
                            limit: Some(1000),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
                    values.extend(
                        batch
                            .into_iter()
                            .map(|n| n.product)
                            .filter(|p| !p.is_empty()),
                    );
                    match next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
            }
            None => {}
        }
    }
    values.sort();
    values.dedup();
    let (page, next) = paging.page(ctx, values, Clone::clone);
    // Each entry is a map; AWS names the value `Name` for every property.
    let out = json!({"Properties": page.iter().map(|p| json!({"Name": p})).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

pub async fn deployable_snapshot(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    if r.baseline_override.is_some() {
        return Err(SsmError::client(
            "UnsupportedFeatureRequiredException",
            "BaselineOverride is not supported here: Patchfleet agents read their baseline override themselves.",
        ));
    }
    let node = nodes::get(ctx.svc, ctx.caller, &r.instance_id)
        .await
        .map_err(not_found_as("InvalidInstanceId", || {
            format!("Instance Id {} is not valid.", r.instance_id)
        }))?;
    let os: OperatingSystem = node.operating_system.parse().map_err(|_| {
        SsmError::client(
            "UnsupportedOperatingSystem",
            format!(
                "{} runs an operating system Patchfleet does not patch.",
                r.instance_id
            ),
        )
    })?;
    let resolver = Resolver::load(ctx.svc)
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    let Some(id) = resolver.baseline_for(os, node.patch_group.as_deref()) else {
        return Err(SsmError::client(
            "UnsupportedOperatingSystem",
            format!("No baseline judges {} nodes.", os.as_str()),
        ));
    };
    let view = baselines::get(ctx.svc, ctx.caller, &id, None)
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    // The snapshot is the baseline definition at its current version
    // (Linux snapshots are the definition, spec §3.9): the native API
    // serves that version unchanged however the baseline is edited later.
    let url = match view.current_version {
        Some(n) => format!(
            "{}/api/v1/baselines/{}?version={n}",
            ctx.base_url, view.baseline_id
        ),
        None => format!("{}/api/v1/baselines/{}", ctx.base_url, view.baseline_id),
    };
    Ok(json!({
        "InstanceId": node.node_id,
        "SnapshotId": r.snapshot_id,
        "SnapshotDownloadUrl": url,
        "Product": node.product,
    }))
}
