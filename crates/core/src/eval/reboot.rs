//! Whether an operation ends with a reboot (spec §4.3, "Reboot decision").

use crate::inventory::Inventory;
use serde::{Deserialize, Serialize};

/// `RebootOption` of `AWS-RunPatchBaseline`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RebootOption {
    #[default]
    RebootIfNeeded,
    NoReboot,
}

/// A Scan never reboots. An Install with `RebootIfNeeded` reboots when it
/// installed anything (Patch Manager does not ask the OS whether a reboot is
/// needed), or when an earlier `NoReboot` install left patches pending and the
/// node has not booted since (worked example E13). `NoReboot` never reboots.
pub fn reboot_after(
    option: RebootOption,
    install: bool,
    installed_this_run: bool,
    inv: &Inventory,
) -> bool {
    if !install || option == RebootOption::NoReboot {
        return false;
    }
    installed_this_run || inv.no_reboot_install_pending()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::NodeFacts;

    fn inventory(boot: &str, pending: bool) -> Inventory {
        let facts = NodeFacts::from_json(&format!(
            r#"{{"format": "patchfleet.facts/1",
                "os": {{"operating_system": "AMAZON_LINUX_2023", "product": "AmazonLinux2023"}},
                "boot_time": "{boot}",
                "reboot_state": {{"last_no_reboot_install_operation_time": "2025-06-01T10:05:00Z",
                                  "pending_reboot": {}}}}}"#,
            if pending {
                r#"["kernel.x86_64:0:6.1.100-1.amzn2023"]"#
            } else {
                "[]"
            }
        ))
        .unwrap();
        Inventory::prepare(&facts).unwrap()
    }

    /// E13: after a 10:05 NoReboot install, an 11:00 RebootIfNeeded install
    /// that installs nothing still reboots; after a reboot it does not.
    #[test]
    fn e13_pending_reboot_alone_reboots() {
        use RebootOption::*;
        let before_reboot = inventory("2025-06-01T09:00:00Z", true);
        assert!(reboot_after(RebootIfNeeded, true, false, &before_reboot));
        assert!(!reboot_after(NoReboot, true, true, &before_reboot));
        assert!(
            !reboot_after(RebootIfNeeded, false, false, &before_reboot),
            "a Scan never reboots"
        );

        let after_reboot = inventory("2025-06-01T12:00:00Z", true);
        assert!(!reboot_after(RebootIfNeeded, true, false, &after_reboot));
        assert!(reboot_after(RebootIfNeeded, true, true, &after_reboot));

        let nothing_pending = inventory("2025-06-01T09:00:00Z", false);
        assert!(!reboot_after(RebootIfNeeded, true, false, &nothing_pending));
    }
}
