//! Terminal rendering of a [`Report`], shared by the `patchfleet` binary
//! (`patchfleet eval`) and the agent (`patchfleet-agent scan`), so that
//! both print the same table. `core` stays free of terminal dependencies;
//! this crate holds them.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use patchfleet_core::compliance::PatchState;
use patchfleet_core::report::Report;
use std::fmt::Write;

/// The report as text: a summary, one row per reported patch (and per
/// `NotApplicable` one when the report lists them), the install plan and
/// the diagnostics. Every line ends with a newline.
///
/// `baseline_name` is shown in the summary (empty: `(unnamed)`); `all` also
/// lists the `InstalledOther` packages, which are otherwise only counted
/// (with a note naming `--all`, the flag of both binaries).
pub fn table(report: &Report, baseline_name: &str, all: bool) -> String {
    let mut out = String::new();
    write_table(&mut out, report, baseline_name, all).expect("writing to a String cannot fail");
    out
}

fn write_table(
    out: &mut String,
    report: &Report,
    baseline_name: &str,
    all: bool,
) -> std::fmt::Result {
    let s = &report.instance_patch_state;
    let c = &report.compliance;
    let severity = c
        .overall_severity
        .map(|l| format!(" (severity {l})"))
        .unwrap_or_default();
    let name = if baseline_name.is_empty() {
        "(unnamed)"
    } else {
        baseline_name
    };
    writeln!(out, "Baseline:   {name} {}", s.baseline_id)?;
    writeln!(out, "Compliance: {}{}", c.status, severity)?;
    writeln!(
        out,
        "Installed {}  InstalledOther {}  InstalledPendingReboot {}  InstalledRejected {}  Missing {}  Failed {}  NotApplicable {}",
        s.installed_count,
        s.installed_other_count,
        s.installed_pending_reboot_count,
        s.installed_rejected_count,
        s.missing_count,
        s.failed_count,
        s.not_applicable_count
    )?;
    writeln!(
        out,
        "Non-compliant: critical {}  security {}  other {}",
        s.critical_non_compliant_count, s.security_non_compliant_count, s.other_non_compliant_count
    )?;
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "State",
        "Title",
        "Classification",
        "Severity",
        "Level",
        "CVEs",
        "Reason",
    ]);
    let mut hidden = 0;
    for p in report.patches.iter().chain(&report.not_applicable) {
        if !all && p.state == PatchState::InstalledOther {
            hidden += 1;
            continue;
        }
        table.add_row([
            p.state.as_str().to_string(),
            p.title.clone(),
            p.classification.clone(),
            p.severity.clone(),
            p.compliance_level.as_str().to_string(),
            p.cve_ids.replace(',', " "),
            p.reason.clone(),
        ]);
    }
    writeln!(out, "{table}")?;
    if hidden > 0 {
        writeln!(
            out,
            "({hidden} InstalledOther packages not shown; --all shows them)"
        )?;
    }
    if let Some(plan) = &report.install_plan {
        writeln!(
            out,
            "Install plan ({:?}): {} package(s)",
            plan.source,
            plan.packages.len()
        )?;
        for p in &plan.packages {
            writeln!(out, "  {}", p.title)?;
        }
    }
    for d in &report.diagnostics {
        writeln!(out, "note: {d}")?;
    }
    Ok(())
}
