//! The documents Patchfleet runs and their parameters (patching-semantics
//! §5.1, §5.6): `AWS-RunPatchBaseline` and `AWS-RunPatchBaselineWithHooks`,
//! validated the way SSM validates SendCommand's `Parameters`, into the typed
//! [`PatchDocument`] the agent receives.
//!
//! The agent never runs document content sent by the server: the document is
//! a fixed program and the parameters only select its options. Hooks in
//! particular are not documents here but the node's own hook directories.

use crate::eval::RebootOption;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// `StepTimeoutSeconds` when not given (the 2021 document's fixed value).
pub const DEFAULT_STEP_TIMEOUT_SECONDS: u32 = 7_200;
/// The largest `StepTimeoutSeconds` the document allows.
pub const MAX_STEP_TIMEOUT_SECONDS: u32 = 36_000;
/// The hook that does nothing (the AWS default).
pub const NOOP_HOOK: &str = "AWS-Noop";
/// The hook that runs the node's hook directory for its stage.
pub const LOCAL_HOOKS: &str = "Patchfleet-LocalHooks";

/// SendCommand input that names no runnable document or carries parameters
/// the document refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// `InvalidDocument`: no such document.
    #[error(
        "document {0:?} does not exist; Patchfleet runs AWS-RunPatchBaseline and AWS-RunPatchBaselineWithHooks"
    )]
    InvalidDocument(String),
    /// `InvalidParameters`: the message names the parameter and the value.
    #[error("{0}")]
    InvalidParameters(String),
}

impl DocumentError {
    /// The AWS error code a server answers with.
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::InvalidDocument(_) => "InvalidDocument",
            DocumentError::InvalidParameters(_) => "InvalidParameters",
        }
    }
}

fn bad(msg: impl Into<String>) -> DocumentError {
    DocumentError::InvalidParameters(msg.into())
}

/// The documents a command may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentName {
    /// Scan or Install against the node's baseline.
    #[serde(rename = "AWS-RunPatchBaseline")]
    RunPatchBaseline,
    /// The same with pre-install, post-install and on-exit hooks.
    #[serde(rename = "AWS-RunPatchBaselineWithHooks")]
    RunPatchBaselineWithHooks,
}

impl DocumentName {
    /// Resolves a `DocumentName` as sent: the AWS name or the name without
    /// its `AWS-` prefix (what people type).
    pub fn parse(name: &str) -> Result<Self, DocumentError> {
        match name {
            "AWS-RunPatchBaseline" | "RunPatchBaseline" => Ok(Self::RunPatchBaseline),
            "AWS-RunPatchBaselineWithHooks" | "RunPatchBaselineWithHooks" => {
                Ok(Self::RunPatchBaselineWithHooks)
            }
            _ => Err(DocumentError::InvalidDocument(name.to_owned())),
        }
    }

    /// The canonical AWS name, which is what the API reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunPatchBaseline => "AWS-RunPatchBaseline",
            Self::RunPatchBaselineWithHooks => "AWS-RunPatchBaselineWithHooks",
        }
    }

    /// The parameters the document declares, in the order it declares them.
    pub fn parameter_names(self) -> &'static [&'static str] {
        match self {
            Self::RunPatchBaseline => &[
                "Operation",
                "SnapshotId",
                "InstallOverrideList",
                "BaselineOverride",
                "RebootOption",
                "StepTimeoutSeconds",
            ],
            Self::RunPatchBaselineWithHooks => &[
                "Operation",
                "SnapshotId",
                "RebootOption",
                "PreInstallHookDocName",
                "PostInstallHookDocName",
                "OnExitHookDocName",
            ],
        }
    }
}

/// `Operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PatchOperation {
    /// Report compliance only.
    Scan,
    /// Install what the baseline approves, then report.
    Install,
}

impl PatchOperation {
    /// The document's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "Scan",
            Self::Install => "Install",
        }
    }
}

/// Which hook stages run the node's hook directory (`Patchfleet-LocalHooks`)
/// rather than nothing (`AWS-Noop`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Before the install (`PreInstallHookDocName`).
    pub pre_install: bool,
    /// After the install, before any reboot (`PostInstallHookDocName`).
    pub post_install: bool,
    /// At the end, also after a failure (`OnExitHookDocName`).
    pub on_exit: bool,
}

/// A validated patch command, as the agent receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchDocument {
    /// Which document (canonical AWS name on the wire).
    pub name: DocumentName,
    /// `Operation`.
    pub operation: PatchOperation,
    /// `SnapshotId` (a GUID), if given.
    pub snapshot_id: Option<String>,
    /// `InstallOverrideList` (an `https://` or `s3://` URL), if given.
    pub install_override_list: Option<String>,
    /// `BaselineOverride` (same URL forms), if given.
    pub baseline_override: Option<String>,
    /// `RebootOption`.
    pub reboot_option: RebootOption,
    /// `StepTimeoutSeconds`: the execution timeout the agent enforces and
    /// the `executionTimeout` of the command's expiry.
    pub step_timeout_seconds: u32,
    /// The hook stages (the hooks document only).
    pub hooks: Option<Hooks>,
}

/// `(^$)|^https://.+$|^s3://([^/]+)/(.*?([^/]+))$` (`.` excludes newlines).
fn is_override_location(v: &str) -> bool {
    if v.contains('\n') {
        return false;
    }
    if let Some(rest) = v.strip_prefix("https://") {
        return !rest.is_empty();
    }
    if let Some(rest) = v.strip_prefix("s3://") {
        return match rest.split_once('/') {
            Some((bucket, key)) => !bucket.is_empty() && !key.is_empty() && !key.ends_with('/'),
            None => false,
        };
    }
    false
}

/// A GUID: 8-4-4-4-12 hex digits, either case.
fn is_guid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A decimal in 1..=36000 without sign, spaces or leading zeros.
fn step_timeout(v: &str) -> Option<u32> {
    if v.is_empty() || v.len() > 5 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse()
        .ok()
        .filter(|n| (1..=MAX_STEP_TIMEOUT_SECONDS).contains(n))
}

fn hook(param: &str, v: &str) -> Result<bool, DocumentError> {
    match v {
        NOOP_HOOK => Ok(false),
        LOCAL_HOOKS => Ok(true),
        _ => Err(bad(format!(
            "{param} {v:?}: Patchfleet runs no documents sent to nodes; use \"{NOOP_HOOK}\" (no hook) or \"{LOCAL_HOOKS}\" (the node's own hook directory for this stage)"
        ))),
    }
}

impl PatchDocument {
    /// Validates SendCommand's `DocumentName` and `Parameters`: every name
    /// declared by the document, exactly one value each, each value allowed,
    /// `Operation` present; absent parameters take their defaults.
    pub fn from_parameters<S: BuildHasher>(
        document: &str,
        parameters: &HashMap<String, Vec<String>, S>,
    ) -> Result<Self, DocumentError> {
        let name = DocumentName::parse(document)?;
        let declared = name.parameter_names();
        // Sorted, so that the error for several bad names is always the same.
        let mut given: Vec<(&String, &Vec<String>)> = parameters.iter().collect();
        given.sort();
        for (param, values) in &given {
            if !declared.contains(&param.as_str()) {
                let hint = if param.as_str() == "AssociationId" {
                    " (patch policies are not supported)"
                } else {
                    ""
                };
                return Err(bad(format!(
                    "parameter {param:?} is not declared by {}{hint}; it takes {}",
                    name.as_str(),
                    declared.join(", ")
                )));
            }
            if values.len() != 1 {
                return Err(bad(format!(
                    "parameter {param:?} takes exactly one value, {} given",
                    values.len()
                )));
            }
        }
        let get = |p: &str| -> Option<&str> {
            parameters
                .get(p)
                .and_then(|v| v.first())
                .map(String::as_str)
        };

        let operation = match get("Operation") {
            Some("Scan") => PatchOperation::Scan,
            Some("Install") => PatchOperation::Install,
            Some(v) => return Err(bad(format!("Operation {v:?}: must be Scan or Install"))),
            None => return Err(bad("parameter \"Operation\" is required (Scan or Install)")),
        };
        let snapshot_id = match get("SnapshotId").unwrap_or("") {
            "" => None,
            v if is_guid(v) => Some(v.to_owned()),
            v => return Err(bad(format!("SnapshotId {v:?}: must be empty or a GUID"))),
        };
        let location = |p: &str| -> Result<Option<String>, DocumentError> {
            match get(p).unwrap_or("") {
                "" => Ok(None),
                v if is_override_location(v) => Ok(Some(v.to_owned())),
                v => Err(bad(format!(
                    "{p} {v:?}: must be empty, an https:// URL or s3://bucket/key"
                ))),
            }
        };
        let install_override_list = location("InstallOverrideList")?;
        let baseline_override = location("BaselineOverride")?;
        if install_override_list.is_some() && baseline_override.is_some() {
            return Err(bad(
                "BaselineOverride and InstallOverrideList cannot be used together",
            ));
        }
        let reboot_option = match get("RebootOption").unwrap_or("RebootIfNeeded") {
            "RebootIfNeeded" => RebootOption::RebootIfNeeded,
            "NoReboot" => RebootOption::NoReboot,
            v => {
                return Err(bad(format!(
                    "RebootOption {v:?}: must be RebootIfNeeded or NoReboot"
                )));
            }
        };
        let step_timeout_seconds = match get("StepTimeoutSeconds") {
            None => DEFAULT_STEP_TIMEOUT_SECONDS,
            Some(v) => step_timeout(v).ok_or_else(|| {
                bad(format!(
                    "StepTimeoutSeconds {v:?}: must be a whole number of seconds from 1 to {MAX_STEP_TIMEOUT_SECONDS}"
                ))
            })?,
        };
        let hooks = match name {
            DocumentName::RunPatchBaseline => None,
            DocumentName::RunPatchBaselineWithHooks => {
                let stage = |p: &str| hook(p, get(p).unwrap_or(NOOP_HOOK));
                Some(Hooks {
                    pre_install: stage("PreInstallHookDocName")?,
                    post_install: stage("PostInstallHookDocName")?,
                    on_exit: stage("OnExitHookDocName")?,
                })
            }
        };
        Ok(Self {
            name,
            operation,
            snapshot_id,
            install_override_list,
            baseline_override,
            reboot_option,
            step_timeout_seconds,
            hooks,
        })
    }

    /// Every parameter the document declares with its value, defaults
    /// filled in: what `Command.Parameters` echoes. Sorted by name.
    pub fn parameters(&self) -> BTreeMap<String, Vec<String>> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let hook = |on: bool| if on { LOCAL_HOOKS } else { NOOP_HOOK }.to_owned();
        let hooks = self.hooks.unwrap_or_default();
        self.name
            .parameter_names()
            .iter()
            .map(|&p| {
                let value = match p {
                    "Operation" => self.operation.as_str().to_owned(),
                    "SnapshotId" => opt(&self.snapshot_id),
                    "InstallOverrideList" => opt(&self.install_override_list),
                    "BaselineOverride" => opt(&self.baseline_override),
                    "RebootOption" => match self.reboot_option {
                        RebootOption::RebootIfNeeded => "RebootIfNeeded",
                        RebootOption::NoReboot => "NoReboot",
                    }
                    .to_owned(),
                    "StepTimeoutSeconds" => self.step_timeout_seconds.to_string(),
                    "PreInstallHookDocName" => hook(hooks.pre_install),
                    "PostInstallHookDocName" => hook(hooks.post_install),
                    "OnExitHookDocName" => hook(hooks.on_exit),
                    _ => String::new(),
                };
                (p.to_owned(), vec![value])
            })
            .collect()
    }

    /// The execution timeout for the command's `ExpiresAfter`, in seconds.
    pub fn execution_timeout_seconds(&self) -> i64 {
        i64::from(self.step_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (document, parameters, expected document)
    type Accepted = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        PatchDocument,
    );
    /// (document, parameters, message fragment)
    type Refused = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );

    const GUID: &str = "4e1f3b2a-9c8d-4e7f-a6b5-c4d3e2f1a0b9";

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect()
    }

    fn install() -> PatchDocument {
        PatchDocument {
            name: DocumentName::RunPatchBaseline,
            operation: PatchOperation::Install,
            snapshot_id: None,
            install_override_list: None,
            baseline_override: None,
            reboot_option: RebootOption::RebootIfNeeded,
            step_timeout_seconds: 7_200,
            hooks: None,
        }
    }

    #[test]
    fn names() {
        let table = [
            ("AWS-RunPatchBaseline", Some(DocumentName::RunPatchBaseline)),
            ("RunPatchBaseline", Some(DocumentName::RunPatchBaseline)),
            (
                "AWS-RunPatchBaselineWithHooks",
                Some(DocumentName::RunPatchBaselineWithHooks),
            ),
            (
                "RunPatchBaselineWithHooks",
                Some(DocumentName::RunPatchBaselineWithHooks),
            ),
            ("aws-runpatchbaseline", None),
            ("AWS-RunShellScript", None),
            ("AWS-RunPatchBaselineAssociation", None),
            ("", None),
        ];
        for (name, want) in table {
            let got = DocumentName::parse(name);
            assert_eq!(got.as_ref().ok().copied(), want, "{name}");
            if let Err(e) = got {
                assert_eq!(e.code(), "InvalidDocument");
                assert!(e.to_string().contains(&format!("{name:?}")));
            }
        }
    }

    /// (document, parameters, expected document)
    #[test]
    fn accepted() {
        let table: Vec<Accepted> = vec![
            (
                "RunPatchBaseline",
                vec![("Operation", "Install")],
                install(),
            ),
            (
                "AWS-RunPatchBaseline",
                vec![
                    ("Operation", "Scan"),
                    ("SnapshotId", GUID),
                    ("RebootOption", "NoReboot"),
                    ("StepTimeoutSeconds", "36000"),
                    ("InstallOverrideList", "s3://bucket/lists/list.yaml"),
                ],
                PatchDocument {
                    operation: PatchOperation::Scan,
                    snapshot_id: Some(GUID.into()),
                    reboot_option: RebootOption::NoReboot,
                    step_timeout_seconds: 36_000,
                    install_override_list: Some("s3://bucket/lists/list.yaml".into()),
                    ..install()
                },
            ),
            (
                "AWS-RunPatchBaseline",
                vec![
                    ("Operation", "Install"),
                    ("SnapshotId", ""),
                    ("InstallOverrideList", ""),
                    ("BaselineOverride", "https://example.com/o.json"),
                    ("StepTimeoutSeconds", "1"),
                ],
                PatchDocument {
                    baseline_override: Some("https://example.com/o.json".into()),
                    step_timeout_seconds: 1,
                    ..install()
                },
            ),
            (
                "AWS-RunPatchBaselineWithHooks",
                vec![
                    ("Operation", "Install"),
                    ("PreInstallHookDocName", LOCAL_HOOKS),
                ],
                PatchDocument {
                    name: DocumentName::RunPatchBaselineWithHooks,
                    hooks: Some(Hooks {
                        pre_install: true,
                        post_install: false,
                        on_exit: false,
                    }),
                    ..install()
                },
            ),
        ];
        for (doc, pairs, want) in table {
            let got = PatchDocument::from_parameters(doc, &params(&pairs));
            assert_eq!(got, Ok(want), "{doc} {pairs:?}");
        }
    }

    /// (document, parameters, message fragment)
    #[test]
    fn refused() {
        let table: Vec<Refused> = vec![
            (
                "AWS-RunPatchBaseline",
                vec![],
                r#"parameter "Operation" is required"#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "scan")],
                r#"Operation "scan": must be"#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("Foo", "x")],
                r#"parameter "Foo" is not declared by AWS-RunPatchBaseline"#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("AssociationId", GUID)],
                "patch policies are not supported",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("SnapshotId", "abc")],
                r#"SnapshotId "abc": must be empty or a GUID"#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("SnapshotId", &GUID[1..])],
                "SnapshotId",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("InstallOverrideList", "http://x/y")],
                r#"InstallOverrideList "http://x/y": must be empty"#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![
                    ("Operation", "Scan"),
                    ("InstallOverrideList", "s3://bucket/dir/"),
                ],
                "InstallOverrideList",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("BaselineOverride", "s3://bucket")],
                "BaselineOverride",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("BaselineOverride", "https://")],
                "BaselineOverride",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("BaselineOverride", "https://a\nb")],
                "BaselineOverride",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![
                    ("Operation", "Install"),
                    ("BaselineOverride", "https://a/b"),
                    ("InstallOverrideList", "s3://b/k"),
                ],
                "cannot be used together",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("RebootOption", "Always")],
                r#"RebootOption "Always""#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("StepTimeoutSeconds", "0")],
                r#"StepTimeoutSeconds "0""#,
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("StepTimeoutSeconds", "36001")],
                "StepTimeoutSeconds",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("StepTimeoutSeconds", "0100")],
                "StepTimeoutSeconds",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("StepTimeoutSeconds", "99999999999")],
                "StepTimeoutSeconds",
            ),
            (
                "AWS-RunPatchBaseline",
                vec![("Operation", "Scan"), ("PreInstallHookDocName", "AWS-Noop")],
                "not declared",
            ),
            (
                "AWS-RunPatchBaselineWithHooks",
                vec![
                    ("Operation", "Install"),
                    ("InstallOverrideList", "s3://b/k"),
                ],
                r#"parameter "InstallOverrideList" is not declared"#,
            ),
            (
                "AWS-RunPatchBaselineWithHooks",
                vec![("Operation", "Install"), ("OnExitHookDocName", "MyCleanup")],
                r#"OnExitHookDocName "MyCleanup": Patchfleet runs no documents"#,
            ),
            (
                "AWS-RunPatchBaselineWithHooks",
                vec![
                    ("Operation", "Install"),
                    (
                        "PostInstallHookDocName",
                        "arn:aws:ssm:eu-west-1:1:document/AWS-Noop",
                    ),
                ],
                "PostInstallHookDocName",
            ),
        ];
        for (doc, pairs, frag) in table {
            let err = PatchDocument::from_parameters(doc, &params(&pairs)).unwrap_err();
            assert_eq!(err.code(), "InvalidParameters");
            assert!(err.to_string().contains(frag), "{err} lacks {frag:?}");
        }
    }

    #[test]
    fn one_value_each() {
        for values in [vec![], vec!["Scan".to_owned(), "Install".to_owned()]] {
            let p = HashMap::from([("Operation".to_owned(), values.clone())]);
            let err = PatchDocument::from_parameters("AWS-RunPatchBaseline", &p).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("takes exactly one value, {} given", values.len())),
                "{err}"
            );
        }
    }

    #[test]
    fn parameters_echo_with_defaults() {
        let doc =
            PatchDocument::from_parameters("RunPatchBaseline", &params(&[("Operation", "Scan")]))
                .unwrap();
        let want: BTreeMap<String, Vec<String>> = [
            ("BaselineOverride", ""),
            ("InstallOverrideList", ""),
            ("Operation", "Scan"),
            ("RebootOption", "RebootIfNeeded"),
            ("SnapshotId", ""),
            ("StepTimeoutSeconds", "7200"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect();
        assert_eq!(doc.parameters(), want);
        assert_eq!(doc.execution_timeout_seconds(), 7_200);

        let hooks = PatchDocument::from_parameters(
            "AWS-RunPatchBaselineWithHooks",
            &params(&[("Operation", "Install"), ("OnExitHookDocName", LOCAL_HOOKS)]),
        )
        .unwrap();
        let echoed = hooks.parameters();
        assert_eq!(echoed.len(), 6);
        assert_eq!(echoed["OnExitHookDocName"], [LOCAL_HOOKS]);
        assert_eq!(echoed["PreInstallHookDocName"], [NOOP_HOOK]);
        // The echo is valid input and means the same.
        let again: HashMap<String, Vec<String>> = echoed.into_iter().collect();
        assert_eq!(
            PatchDocument::from_parameters(hooks.name.as_str(), &again),
            Ok(hooks.clone())
        );
    }

    #[test]
    fn serde_for_the_agent() {
        let doc = PatchDocument {
            hooks: Some(Hooks::default()),
            name: DocumentName::RunPatchBaselineWithHooks,
            ..install()
        };
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["name"], "AWS-RunPatchBaselineWithHooks");
        assert_eq!(json["operation"], "Install");
        assert_eq!(json["reboot_option"], "RebootIfNeeded");
        assert_eq!(serde_json::from_value::<PatchDocument>(json).unwrap(), doc);
    }
}
