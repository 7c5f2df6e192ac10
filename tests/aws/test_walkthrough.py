"""The issue's walk-through with real `patchfleet-agent run` processes on
two APT test-bed roots (crates/pkg/tests/testbed/apt/build.sh): nodes
registered through an activation made with `aws ssm create-activation`,
scanned, judged by the server, read back through every node and compliance
operation, then scanned and patched with `aws ssm send-command`."""

import datetime
import json
import os
import subprocess
import time

import pytest

from conftest import REPO, binary

DEBIAN_DEFAULT = "pb-75b114c507d400ec2"
RULES = {
    "PatchRules": [
        {
            "PatchFilterGroup": {
                "PatchFilters": [
                    {"Key": "PRIORITY", "Values": ["Required", "Important", "Standard", "Optional", "Extra"]}
                ]
            },
            "ComplianceLevel": "UNSPECIFIED",
            "EnableNonSecurity": True,
        }
    ]
}


def start_agent(agent, state, root, boot, log):
    return subprocess.Popen(
        [agent, "run", "--state-dir", str(state), "--root", str(root), "--boot-time", boot],
        stdout=open(log, "a"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def fleet(sqlite_server, tmp_path_factory):
    """Two registered, scanned APT nodes: {name: node id}."""
    server = sqlite_server
    tmp = tmp_path_factory.mktemp("beds")
    beds = {}
    builds = []
    for name in ["apt-a", "apt-b"]:
        d = tmp / name
        builds.append(
            (name, d, subprocess.Popen(["sh", str(REPO / "crates/pkg/tests/testbed/apt/build.sh"), str(d)],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        )
    for name, d, p in builds:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, f"building the APT test bed {name}: {out}"
        beds[name] = d / "root"
    activation = server.aws(
        "create-activation", "--iam-role", "SSMServiceRole", "--registration-limit", "2",
        "--default-instance-name", "walk", "--tags", "Key=Environment,Value=Development",
    )
    agent = str(binary("PATCHFLEET_AGENT_BIN", "patchfleet-agent"))
    boot = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids, procs = {}, []
    for name, root in beds.items():
        state = tmp / "state" / name
        p = subprocess.run(
            [agent, "register", "--server", server.url, "--activation-id", activation["ActivationId"],
             "--ca-fingerprint", server.ca_fingerprint, "--state-dir", str(state), "--root", str(root)],
            env={"PATCHFLEET_ACTIVATION_CODE": activation["ActivationCode"], "PATH": os.environ["PATH"]},
            capture_output=True, text=True, timeout=120,
        )
        assert p.returncode == 0, p.stderr
        ids[name] = p.stdout.strip()
        procs.append(start_agent(agent, state, root, boot, tmp / f"{name}.log"))
    ssm = server.client()
    deadline = time.time() + 120
    while True:
        states = ssm.describe_instance_patch_states(InstanceIds=list(ids.values()))["InstancePatchStates"]
        if len(states) == 2:
            break
        for p in procs:
            assert p.poll() is None, f"an agent exited: {(tmp / 'apt-a.log').read_text()}"
        assert time.time() < deadline, "the nodes were not judged within 120 s"
        time.sleep(0.5)
    def reboot():
        """A simulated reboot of both nodes: their agents restarted with a
        new boot time."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i, (name, root) in enumerate(beds.items()):
            procs[i].kill()
            procs[i].wait()
            procs[i] = start_agent(agent, tmp / "state" / name, root, now, tmp / f"{name}.log")

    yield {"ids": ids, "procs": procs, "activation": activation, "reboot": reboot}
    for p in procs:
        p.kill()
        p.wait()


def wait_for(ssm, command_id, nodes):
    """Until every node's invocation ended (the SDK's own waiter)."""
    waiter = ssm.get_waiter("command_executed")
    for n in nodes:
        waiter.wait(CommandId=command_id, InstanceId=n, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def test_walkthrough(sqlite_server, fleet, tmp_path):
    server = sqlite_server
    ssm = server.client()
    a, b = fleet["ids"]["apt-a"], fleet["ids"]["apt-b"]

    # aws ssm describe-instance-information --query "…"
    info = server.aws(
        "describe-instance-information",
        "--query", "InstanceInformationList[*].{InstanceId:InstanceId,ManagedBy:PingStatus}",
    )
    assert sorted(info, key=lambda x: x["InstanceId"]) == sorted(
        [{"InstanceId": a, "ManagedBy": "Online"}, {"InstanceId": b, "ManagedBy": "Online"}],
        key=lambda x: x["InstanceId"],
    )
    full = ssm.describe_instance_information(Filters=[{"Key": "tag:Environment", "Values": ["Development"]}])
    nodes = full["InstanceInformationList"]
    assert {n["InstanceId"] for n in nodes} == {a, b}
    n = nodes[0]
    assert n["PlatformType"] == "Linux" and n["ResourceType"] == "ManagedInstance"
    assert n["IamRole"] == "SSMServiceRole" and n["ActivationId"] == fleet["activation"]["ActivationId"]
    # Pagination at the floor of 5 per page (legacy filter list).
    legacy = ssm.describe_instance_information(InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": [a]}])
    assert [x["InstanceId"] for x in legacy["InstanceInformationList"]] == [a]
    assert ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}])["InstanceInformationList"] == []

    # aws ssm list-compliance-summaries --query "…" (ResourceId and Status
    # are not members of a summary item: the guide's query prints nulls).
    q = server.aws(
        "list-compliance-summaries",
        "--query", "ComplianceSummaryItems[*].{ResourceId:ResourceId,Status:Status}",
    )
    assert q == [{"ResourceId": None, "Status": None}]
    summaries = server.aws("list-compliance-summaries")["ComplianceSummaryItems"]
    assert summaries[0]["ComplianceType"] == "Patch"
    assert summaries[0]["NonCompliantSummary"]["NonCompliantCount"] == 2
    assert summaries[0]["CompliantSummary"]["CompliantCount"] == 0

    # Compliance as the Debian default judges it: 2 missing security
    # updates, tb-tool InstalledOther.
    states = {s["InstanceId"]: s for s in ssm.describe_instance_patch_states(InstanceIds=[a, b, "mi-0123456789abcdef0"])["InstancePatchStates"]}
    assert set(states) == {a, b}
    assert states[a]["BaselineId"] == DEBIAN_DEFAULT
    assert (states[a]["MissingCount"], states[a]["InstalledOtherCount"], states[a]["SecurityNonCompliantCount"]) == (2, 1, 2)
    patches = ssm.describe_instance_patches(InstanceId=a)["Patches"]
    by_name = {p["Title"].split(".")[0].split(":")[0]: p["State"] for p in patches}
    assert by_name == {"tb-hello": "MISSING", "tb-kernel": "MISSING", "tb-tool": "INSTALLED_OTHER"}, patches
    missing = ssm.describe_instance_patches(InstanceId=a, Filters=[{"Key": "State", "Values": ["Missing"]}])["Patches"]
    assert len(missing) == 2
    items = ssm.list_compliance_items(ResourceIds=[a], ResourceTypes=["ManagedInstance"])["ComplianceItems"]
    assert len(items) == 3
    assert {i["Status"] for i in items} == {"COMPLIANT", "NON_COMPLIANT"}
    assert all(i["Details"]["PatchBaselineId"] == DEBIAN_DEFAULT for i in items)
    nc = ssm.list_compliance_items(
        ResourceIds=[a], ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}],
    )["ComplianceItems"]
    assert len(nc) == 2
    with pytest.raises(ssm.exceptions.InvalidFilter):
        ssm.list_compliance_items(ResourceIds=[a], Filters=[{"Key": "Colour", "Values": ["x"]}])
    rs = ssm.list_resource_compliance_summaries(Filters=[{"Key": "AWS:InstanceInformation.PlatformType", "Values": ["Linux"]}])
    rows = {r["ResourceId"]: r for r in rs["ResourceComplianceSummaryItems"]}
    assert set(rows) == {a, b}
    assert rows[a]["Status"] == "NON_COMPLIANT"
    assert rows[a]["NonCompliantSummary"]["NonCompliantCount"] == 2
    assert rows[a]["CompliantSummary"]["CompliantCount"] == 1
    page = ssm.list_resource_compliance_summaries(MaxResults=1)
    assert len(page["ResourceComplianceSummaryItems"]) == 1 and page["NextToken"]
    rest = ssm.list_resource_compliance_summaries(MaxResults=1, NextToken=page["NextToken"])
    assert rest["ResourceComplianceSummaryItems"][0]["ResourceId"] != page["ResourceComplianceSummaryItems"][0]["ResourceId"]
    assert "NextToken" not in rest
    available = ssm.describe_available_patches(Filters=[{"Key": "NAME", "Values": ["tb-hello"]}])["Patches"]
    assert available and all(p["Name"] == "tb-hello" for p in available)
    products = ssm.describe_patch_properties(OperatingSystem="DEBIAN", Property="PRODUCT")["Properties"]
    assert products and all(p["Name"].startswith("Debian") for p in products), products
    snap = ssm.get_deployable_patch_snapshot_for_instance(InstanceId=a, SnapshotId="11111111-2222-3333-4444-555555555555")
    assert snap["SnapshotDownloadUrl"].startswith(server.url + f"/api/v1/baselines/{DEBIAN_DEFAULT}")
    assert snap["Product"].startswith("Debian")

    # Tag a node into a patch group (re-judged at once, no re-scan).
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=a, Tags=[{"Key": "Patch Group", "Value": "web"}])
    tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=a)["TagList"]
    assert {"Key": "Patch Group", "Value": "web"} in tags and {"Key": "Environment", "Value": "Development"} in tags

    # aws ssm create-patch-baseline --name <name> --operating-system <os> --approval-rules file://rules.json
    (tmp_path / "rules.json").write_text(json.dumps(RULES))
    bid = server.aws(
        "create-patch-baseline", "--name", "walk-debian-all", "--operating-system", "DEBIAN",
        "--approval-rules", "file://rules.json", cwd=tmp_path,
    )["BaselineId"]
    # aws ssm register-patch-baseline-for-patch-group --baseline-id <id> --patch-group <group>
    r = server.aws("register-patch-baseline-for-patch-group", "--baseline-id", bid, "--patch-group", "web")
    assert r == {"BaselineId": bid, "PatchGroup": "web"}
    s = ssm.describe_instance_patch_states(InstanceIds=[a])["InstancePatchStates"][0]
    assert (s["BaselineId"], s["PatchGroup"], s["MissingCount"]) == (bid, "web", 3)
    group = ssm.describe_patch_group_state(PatchGroup="web")
    assert group["Instances"] == 1 and group["InstancesWithMissingPatches"] == 1
    assert group["InstancesWithInstalledOtherPatches"] == 0
    more = ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="web", Filters=[{"Key": "MissingCount", "Type": "GreaterThan", "Values": ["2"]}]
    )["InstancePatchStates"]
    assert [x["InstanceId"] for x in more] == [a]
    assert ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="web", Filters=[{"Key": "MissingCount", "Type": "LessThan", "Values": ["3"]}]
    )["InstancePatchStates"] == []
    with pytest.raises(ssm.exceptions.InvalidFilter):
        ssm.describe_instance_patch_states_for_patch_group(PatchGroup="web", Filters=[{"Key": "MissingCount", "Type": "Equal", "Values": ["many"]}])
    # The other node is in no group: still the default.
    assert ssm.describe_instance_patch_states(InstanceIds=[b])["InstancePatchStates"][0]["MissingCount"] == 2
    summaries = ssm.list_compliance_summaries(Filters=[{"Key": "PatchGroup", "Values": ["web"]}])["ComplianceSummaryItems"]
    assert summaries[0]["NonCompliantSummary"]["NonCompliantCount"] == 1

    # aws ssm send-command --document-name AWS-RunPatchBaseline
    #   --targets Key=tag:Environment,Values=Development --parameters Operation=Scan
    scan = server.aws(
        "send-command", "--document-name", "AWS-RunPatchBaseline",
        "--targets", "Key=tag:Environment,Values=Development", "--parameters", "Operation=Scan",
    )["Command"]
    assert scan["TargetCount"] == 2 and scan["DocumentName"] == "AWS-RunPatchBaseline"
    wait_for(ssm, scan["CommandId"], [a, b])
    out = ssm.get_command_invocation(CommandId=scan["CommandId"], InstanceId=a)
    assert out["Status"] == "Success" and out["ResponseCode"] == 0 and out["PluginName"] == "PatchLinux"
    assert "Instance is Non-Compliant" in out["StandardOutputContent"], out["StandardOutputContent"]
    assert out["ExecutionElapsedTime"].startswith("PT")

    # aws ssm send-command … --parameters Operation=Install --max-concurrency 1 --max-errors 1
    install = server.aws(
        "send-command", "--document-name", "AWS-RunPatchBaseline",
        "--targets", "Key=tag:Environment,Values=Development", "--parameters", "Operation=Install",
        "--max-concurrency", "1", "--max-errors", "1",
    )["Command"]
    assert (install["MaxConcurrency"], install["MaxErrors"]) == ("1", "1")
    wait_for(ssm, install["CommandId"], [a, b])
    runs = ssm.list_command_invocations(CommandId=install["CommandId"], Details=True)["CommandInvocations"]
    assert {r["InstanceId"] for r in runs} == {a, b}
    for r in runs:
        plugin = r["CommandPlugins"][0]
        assert (r["Status"], plugin["Name"], plugin["ResponseCode"]) == ("Success", "PatchLinux", 0)
        assert len(plugin["Output"]) <= 2500
    # MaxConcurrency 1: one node after the other.
    first, second = sorted(runs, key=lambda r: r["CommandPlugins"][0]["ResponseStartDateTime"])
    assert first["CommandPlugins"][0]["ResponseFinishDateTime"] <= second["CommandPlugins"][0]["ResponseStartDateTime"]
    cmd = ssm.list_commands(CommandId=install["CommandId"])["Commands"][0]
    assert (cmd["Status"], cmd["CompletedCount"], cmd["ErrorCount"]) == ("Success", 2, 0)

    # aws ssm list-compliance-summaries: the installs show at once (each
    # agent scanned again before reporting). Nothing is missing any more,
    # but the nodes did not reboot (a test bed is not this machine's
    # root): what was installed since their boot awaits a reboot, so they
    # are not compliant yet.
    summary = server.aws("list-compliance-summaries")["ComplianceSummaryItems"][0]
    assert summary["NonCompliantSummary"]["NonCompliantCount"] == 2, summary
    s = ssm.describe_instance_patch_states(InstanceIds=[a])["InstancePatchStates"][0]
    assert (s["MissingCount"], s["InstalledPendingRebootCount"]) == (0, 3), s
    s = ssm.describe_instance_patch_states(InstanceIds=[b])["InstancePatchStates"][0]
    assert (s["MissingCount"], s["InstalledPendingRebootCount"]) == (0, 2), s
    # After a reboot and a scan, both are compliant.
    fleet["reboot"]()
    rescan = ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[a, b], Parameters={"Operation": ["Scan"]})
    wait_for(ssm, rescan["Command"]["CommandId"], [a, b])
    summary = server.aws("list-compliance-summaries")["ComplianceSummaryItems"][0]
    assert summary["CompliantSummary"]["CompliantCount"] == 2, summary
    assert summary["NonCompliantSummary"]["NonCompliantCount"] == 0, summary
    s = ssm.describe_instance_patch_states(InstanceIds=[a])["InstancePatchStates"][0]
    assert (s["MissingCount"], s["InstalledCount"], s["InstalledPendingRebootCount"]) == (0, 3, 0), s

    # aws ssm delete-patch-baseline --baseline-id <id>: in use by the group first.
    p = server.aws("delete-patch-baseline", "--baseline-id", bid, check=False)
    assert p.returncode == 255 and "ResourceInUseException" in p.stderr
    server.aws("deregister-patch-baseline-for-patch-group", "--baseline-id", bid, "--patch-group", "web")
    assert server.aws("delete-patch-baseline", "--baseline-id", bid) == {"BaselineId": bid}
    assert ssm.describe_instance_patch_states(InstanceIds=[a])["InstancePatchStates"][0]["BaselineId"] == DEBIAN_DEFAULT

    # aws ssm create-patch-baseline --name RevertedBaseline --approved-patches <ids>:
    # verbatim, SSM makes a Windows baseline (no --operating-system); it is
    # stored and served, and judges none of these Linux nodes.
    win = server.aws("create-patch-baseline", "--name", "RevertedBaseline", "--approved-patches", "tb-hello", "tb-tool")["BaselineId"]
    got = ssm.get_patch_baseline(BaselineId=win)
    assert (got["OperatingSystem"], got["ApprovedPatches"]) == ("WINDOWS", ["tb-hello", "tb-tool"])
    assert ssm.describe_effective_patches_for_patch_baseline(BaselineId=win)["EffectivePatches"] == []
    assert ssm.describe_instance_patch_states(InstanceIds=[a])["InstancePatchStates"][0]["BaselineId"] == DEBIAN_DEFAULT
    # With the nodes' OS, the same list judges them.
    rb = server.aws(
        "create-patch-baseline", "--name", "RevertedBaseline", "--approved-patches", "tb-hello", "tb-tool",
        "--operating-system", "DEBIAN",
    )["BaselineId"]
    assert ssm.get_patch_baseline(BaselineId=rb)["ApprovedPatches"] == ["tb-hello", "tb-tool"]

    # Deregistration: gone from the lists, its agent refused (exit 3).
    server.aws("deregister-managed-instance", "--instance-id", b)
    assert [x["InstanceId"] for x in ssm.describe_instance_information()["InstanceInformationList"]] == [a]
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.deregister_managed_instance(InstanceId=b)
    proc_b = fleet["procs"][1]
    proc_b.wait(timeout=60)
    assert proc_b.returncode == 3
