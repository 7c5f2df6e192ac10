"""Every served operation without nodes, success and error paths, on SQLite
and PostgreSQL: SigV4 (bad, unknown, expired, future, wrong scope, any
region), roles, validation, pagination, baselines, patch groups,
activations, tags, idempotency."""

import datetime
import json
import subprocess
import time
import uuid

import botocore.exceptions
import pytest

from conftest import binary

UBUNTU_RULES = {
    "PatchRules": [
        {
            "PatchFilterGroup": {
                "PatchFilters": [{"Key": "PRIORITY", "Values": ["Required", "Important"]}]
            },
            "ComplianceLevel": "HIGH",
        }
    ]
}


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def message(excinfo):
    return excinfo.value.response["Error"]["Message"]


# --- SigV4 ------------------------------------------------------------------


def test_signed_raw_request_and_answer_headers(server):
    status, headers, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b'{"OperatingSystem": "UBUNTU"}')
    assert status == 200, body
    assert body["OperatingSystem"] == "UBUNTU"
    assert body["BaselineId"].startswith("pb-") and len(body["BaselineId"]) == 20
    assert headers["content-type"] == "application/x-amz-json-1.1"
    uuid.UUID(headers["x-amzn-requestid"])
    assert headers["date"].endswith(" GMT")


def test_missing_and_malformed_signatures(server):
    status, h, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b"{}", sign=False)
    assert (status, body["__type"]) == (400, "MissingAuthenticationTokenException")
    assert h["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    uuid.UUID(h["x-amzn-requestid"])
    status, _, body = server.raw(
        "AmazonSSM.GetDefaultPatchBaseline",
        b"{}",
        sign=False,
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm, Signature=00"},
    )
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")


def test_bad_secret_unknown_key_wrong_scope(server):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client(secret="x" * 40).get_default_patch_baseline()
    assert code(e) == "InvalidSignatureException"
    assert message(e).startswith("The request signature we calculated does not match")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client(key="PFAKAAAAAAAAAAAAAAAA").get_default_patch_baseline()
    assert code(e) == "UnrecognizedClientException"
    assert message(e) == "The security token included in the request is invalid."
    status, _, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b"{}", service="ec2")
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert body["message"] == "Credential should be scoped to correct service: 'ssm'."
    # The body is covered by the signature.
    h = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.GetDefaultPatchBaseline", "Host": f"127.0.0.1:{server.port}"}
    from conftest import sigv4

    signed = sigv4(h, b"{}", server.key, server.secret, "us-east-1", "ssm", datetime.datetime.now(datetime.timezone.utc))
    status, _, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b'{"OperatingSystem": "DEBIAN"}', sign=False, headers=signed)
    assert (status, body["__type"]) == (400, "InvalidSignatureException")


def test_expired_and_future_requests(server):
    now = datetime.datetime.now(datetime.timezone.utc)
    status, _, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b"{}", when=now - datetime.timedelta(minutes=10))
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert body["message"].startswith("Signature expired: ")
    assert body["message"].endswith(" - 5 min.)")
    status, _, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b"{}", when=now + datetime.timedelta(minutes=10))
    assert body["message"].startswith("Signature not yet current: ")
    # Within the window: fine.
    status, _, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b'{"OperatingSystem": "DEBIAN"}', when=now - datetime.timedelta(minutes=4))
    assert status == 200, body


def test_any_region(server):
    for region in ["eu-west-3", "ap-southeast-2", "us-gov-west-1"]:
        r = server.client(region=region).get_default_patch_baseline(OperatingSystem="DEBIAN")
        assert r["OperatingSystem"] == "DEBIAN"


# --- protocol -----------------------------------------------------------------


def test_unknown_and_unsupported_operations(server):
    status, _, body = server.raw("AmazonSSM.FlyToTheMoon", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, _, body = server.raw("", b"{}")
    assert body["__type"] == "UnknownOperationException"
    # Maintenance windows are not served yet: the unknown-operation error,
    # for the CLI too (exit 255, the code in the message).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client().describe_maintenance_windows()
    assert code(e) == "UnknownOperationException"
    p = server.aws("describe-maintenance-windows", check=False)
    assert p.returncode == 255
    assert "(UnknownOperationException) when calling the DescribeMaintenanceWindows operation" in p.stderr


def test_run_command_errors(server):
    ssm = server.client()
    node = "mi-0123456789abcdef0"
    with pytest.raises(ssm.exceptions.InvalidDocument):
        ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[node], Parameters={"commands": ["id"]})
    with pytest.raises(ssm.exceptions.InvalidParameters) as e:
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[node], Parameters={"Operation": ["Reboot"]})
    assert "Operation" in str(e.value)
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[node], Parameters={"Operation": ["Scan"]})
    with pytest.raises(ssm.exceptions.InvalidDocumentVersion):
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", DocumentVersion="7", InstanceIds=[node], Parameters={"Operation": ["Scan"]})
    with pytest.raises(ssm.exceptions.InvalidOutputFolder):
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[node], Parameters={"Operation": ["Scan"]},
                         OutputS3BucketName="someone-elses-bucket")
    # A MaxConcurrency the model's pattern refuses, before anything runs.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[node], Parameters={"Operation": ["Scan"]},
                         MaxConcurrency="0")
    assert code(e) == "ValidationException"
    # Targets that match nothing: the command ends at once.
    c = ssm.send_command(DocumentName="AWS-RunPatchBaseline", Targets=[{"Key": "tag:Environment", "Values": ["Nowhere"]}],
                         Parameters={"Operation": ["Scan"]})["Command"]
    assert (c["Status"], c["StatusDetails"], c["TargetCount"]) == ("Failed", "NoInstancesInTag", 0)
    assert c["Parameters"]["Operation"] == ["Scan"] and c["Parameters"]["RebootOption"] == ["RebootIfNeeded"]
    listed = ssm.list_commands(CommandId=c["CommandId"])["Commands"]
    assert [x["CommandId"] for x in listed] == [c["CommandId"]]
    assert ssm.list_commands(Filters=[{"key": "ExecutionStage", "value": "Executing"}])["Commands"] == []
    with pytest.raises(ssm.exceptions.InvalidCommandId):
        ssm.list_commands(CommandId="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ssm.exceptions.InvalidCommandId):
        ssm.get_command_invocation(CommandId="00000000-0000-0000-0000-000000000000", InstanceId=node)
    with pytest.raises(ssm.exceptions.InvocationDoesNotExist):
        ssm.get_command_invocation(CommandId=c["CommandId"], InstanceId=node)
    with pytest.raises(ssm.exceptions.InvalidCommandId):
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")
    # Cancelling a finished command is a no-op.
    assert ssm.cancel_command(CommandId=c["CommandId"])["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_serialization_and_validation_errors(server):
    status, _, body = server.raw("AmazonSSM.GetPatchBaseline", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, _, body = server.raw("AmazonSSM.GetPatchBaseline", b'{"BaselineId": 7}')
    assert body["__type"] == "SerializationException"
    status, _, body = server.raw("AmazonSSM.GetPatchBaseline", b"{}")
    assert body == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value null at 'baselineId' failed to satisfy constraint: Member must not be null",
    }
    # max, enum and pattern are the server's to check (botocore does min only).
    ssm = server.client()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.create_patch_baseline(Name="bad name!", OperatingSystem="UBUNTU", ApprovalRules=UBUNTU_RULES)
    assert code(e) == "ValidationException"
    assert message(e) == (
        "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$"
    )
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_patch_properties(OperatingSystem="BEOS", Property="PRODUCT")
    assert "Member must satisfy enum value set" in message(e)
    # core's semantic rules, in the same words.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.create_patch_baseline(
            Name="no-delay", OperatingSystem="AMAZON_LINUX_2023",
            ApprovalRules={"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["*"]}]}}]},
        )
    assert code(e) == "ValidationException"
    assert message(e).startswith("1 validation error detected: ")
    assert "approveAfterDays" in message(e)
    # Unknown members are ignored, as AWS does.
    status, _, body = server.raw("AmazonSSM.GetDefaultPatchBaseline", b'{"OperatingSystem": "DEBIAN", "Bogus": 1}')
    assert status == 200 and body["OperatingSystem"] == "DEBIAN"
    # Nothing was created by the refused requests.
    names = [b["BaselineName"] for b in ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["Self"]}])["BaselineIdentities"]]
    assert "no-delay" not in names and "bad name!" not in names


def test_non_post_is_refused_with_json(server):
    import http.client
    import ssl

    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl.create_default_context(cafile=server.ca))
    conn.request("GET", "/")
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 405 and body["__type"] == "UnknownOperationException"


# --- roles --------------------------------------------------------------------


@pytest.fixture(scope="module")
def auditor(server):
    env = {
        "PATCHFLEET_SERVER": server.url,
        "PATCHFLEET_ACCESS_KEY_ID": server.key,
        "PATCHFLEET_SECRET_ACCESS_KEY": server.secret,
        "PATCHFLEET_CA_FILE": server.ca,
        "PATH": "/usr/bin:/bin",
        "HOME": str(server.data.parent),
    }
    out = subprocess.run(
        [str(binary("PATCHFLEET_BIN", "patchfleet")), "api-key", "create", "--name", "audit", "--role", "auditor", "--output", "json"],
        env=env, capture_output=True, text=True, check=True,
    )
    k = json.loads(out.stdout)
    return k["access_key_id"], k["secret_access_key"]


def test_auditor_reads_but_may_not_change(server, auditor):
    ssm = server.client(*auditor)
    assert ssm.describe_patch_baselines(MaxResults=1)["BaselineIdentities"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.create_patch_baseline(Name="by-auditor", OperatingSystem="UBUNTU", ApprovalRules=UBUNTU_RULES)
    assert code(e) == "AccessDeniedException"
    assert f"User: {auditor[0]} is not authorized to perform: ssm:CreatePatchBaseline" in message(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.create_activation(IamRole="r")
    assert code(e) == "AccessDeniedException"
    p = server.aws("create-patch-baseline", "--name", "by-auditor", "--approved-patches", "x", key=auditor[0], secret=auditor[1], check=False)
    assert p.returncode == 255 and "AccessDeniedException" in p.stderr


# --- baselines and patch groups ----------------------------------------------------


def test_baseline_life_cycle_with_the_cli(server, tmp_path):
    (tmp_path / "rules.json").write_text(json.dumps(UBUNTU_RULES))
    created = server.aws(
        "create-patch-baseline", "--name", "cli-ubuntu", "--operating-system", "UBUNTU",
        "--approval-rules", "file://rules.json", "--description", "made by the CLI",
        "--tags", "Key=Team,Value=Ops", cwd=tmp_path,
    )
    bid = created["BaselineId"]
    assert bid.startswith("pb-") and len(bid) == 20
    got = server.aws("get-patch-baseline", "--baseline-id", bid)
    assert got["Name"] == "cli-ubuntu"
    assert got["OperatingSystem"] == "UBUNTU"
    assert got["ApprovalRules"]["PatchRules"][0]["ComplianceLevel"] == "HIGH"
    assert got["PatchGroups"] == []
    assert isinstance(got["CreatedDate"], (int, float))
    tags = server.aws("list-tags-for-resource", "--resource-type", "PatchBaseline", "--resource-id", bid)
    assert tags["TagList"] == [{"Key": "Team", "Value": "Ops"}]
    upd = server.aws("update-patch-baseline", "--baseline-id", bid, "--rejected-patches", "tb-bad", "--description", "edited")
    assert upd["RejectedPatches"] == ["tb-bad"]
    assert upd["Description"] == "edited"
    assert upd["ApprovalRules"] == got["ApprovalRules"], "members not given are kept"
    ssm = server.client()
    # Replace resets what is not given.
    r = ssm.update_patch_baseline(BaselineId=bid, Name="cli-ubuntu", ApprovedPatches=["tb-ok"], Replace=True)
    assert r["ApprovedPatches"] == ["tb-ok"] and r["RejectedPatches"] == [] and r["ApprovalRules"]["PatchRules"] == []
    server.aws("register-patch-baseline-for-patch-group", "--baseline-id", bid, "--patch-group", "web")
    with pytest.raises(ssm.exceptions.AlreadyExistsException):
        ssm.register_patch_baseline_for_patch_group(BaselineId=bid, PatchGroup="web")
    assert ssm.get_patch_baseline_for_patch_group(PatchGroup="web", OperatingSystem="UBUNTU")["BaselineId"] == bid
    # No group registered for Debian: the default judges.
    other = ssm.get_patch_baseline_for_patch_group(PatchGroup="web", OperatingSystem="DEBIAN")["BaselineId"]
    assert other == ssm.get_default_patch_baseline(OperatingSystem="DEBIAN")["BaselineId"]
    groups = ssm.describe_patch_groups(Filters=[{"Key": "NAME_PREFIX", "Values": ["we"]}])["Mappings"]
    assert [(g["PatchGroup"], g["BaselineIdentity"]["BaselineId"]) for g in groups] == [("web", bid)]
    assert ssm.get_patch_baseline(BaselineId=bid)["PatchGroups"] == ["web"]
    with pytest.raises(ssm.exceptions.ResourceInUseException):
        ssm.delete_patch_baseline(BaselineId=bid)
    ssm.deregister_patch_baseline_for_patch_group(BaselineId=bid, PatchGroup="web")
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.deregister_patch_baseline_for_patch_group(BaselineId=bid, PatchGroup="web")
    # The default for Ubuntu, then back.
    old = ssm.get_default_patch_baseline(OperatingSystem="UBUNTU")["BaselineId"]
    assert ssm.register_default_patch_baseline(BaselineId=bid)["BaselineId"] == bid
    assert ssm.get_default_patch_baseline(OperatingSystem="UBUNTU")["BaselineId"] == bid
    ids = {b["BaselineId"]: b for b in ssm.describe_patch_baselines(Filters=[{"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}])["BaselineIdentities"]}
    assert ids[bid]["DefaultBaseline"] is True and ids[old]["DefaultBaseline"] is False
    with pytest.raises(ssm.exceptions.ResourceInUseException):
        ssm.delete_patch_baseline(BaselineId=bid)
    ssm.register_default_patch_baseline(BaselineId=old)
    assert server.aws("delete-patch-baseline", "--baseline-id", bid) == {"BaselineId": bid}
    with pytest.raises(ssm.exceptions.DoesNotExistException) as e:
        ssm.get_patch_baseline(BaselineId=bid)
    assert message(e) == f"Patch Baseline {bid} does not exist."
    # Deleting what is not there succeeds (no error is modelled).
    assert ssm.delete_patch_baseline(BaselineId=bid)["BaselineId"] == bid


def test_missing_and_malformed_baselines(server):
    ssm = server.client()
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.get_patch_baseline(BaselineId="pb-0123456789abcdef0")
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.update_patch_baseline(BaselineId="pb-0123456789abcdef0", Description="x")
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.register_default_patch_baseline(BaselineId="pb-0123456789abcdef0")
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.get_patch_baseline(BaselineId="not-a-baseline-id-at-all")
    p = server.aws("get-patch-baseline", "--baseline-id", "pb-0123456789abcdef0", check=False)
    assert p.returncode == 255
    assert "An error occurred (DoesNotExistException) when calling the GetPatchBaseline operation" in p.stderr
    # Predefined baselines are read-only.
    debian = ssm.get_default_patch_baseline(OperatingSystem="DEBIAN")["BaselineId"]
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.update_patch_baseline(BaselineId=debian, Description="mine now")
    assert ssm.get_patch_baseline(BaselineId=debian)["Name"].startswith("AWS-")


def test_filters_and_a_pagination_walk(server):
    ssm = server.client()
    made = [
        ssm.create_patch_baseline(Name=f"walk-{i:02d}", OperatingSystem="DEBIAN", ApprovedPatches=[f"pkg{i}"])["BaselineId"]
        for i in range(7)
    ]
    pages = list(
        ssm.get_paginator("describe_patch_baselines").paginate(
            Filters=[{"Key": "NAME_PREFIX", "Values": ["walk-"]}], PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["BaselineIdentities"]) for p in pages] == [2, 2, 2, 1]
    tokens = [p["NextToken"] for p in pages[:-1]]
    assert len(set(tokens)) == 3 and "NextToken" not in pages[-1]
    seen = [b["BaselineId"] for p in pages for b in p["BaselineIdentities"]]
    assert sorted(seen) == sorted(made)
    # The CLI walks it too, with --page-size.
    out = server.aws("describe-patch-baselines", "--filters", "Key=NAME_PREFIX,Values=walk-", "--page-size", "3")
    assert sorted(b["BaselineId"] for b in out["BaselineIdentities"]) == sorted(made)
    # A token is bound to its operation and filters, and cannot be forged.
    with pytest.raises(ssm.exceptions.InvalidNextToken):
        ssm.describe_patch_baselines(Filters=[{"Key": "NAME_PREFIX", "Values": ["other"]}], NextToken=tokens[0])
    with pytest.raises(ssm.exceptions.InvalidNextToken):
        ssm.describe_patch_groups(NextToken=tokens[0])
    with pytest.raises(ssm.exceptions.InvalidNextToken):
        ssm.describe_patch_baselines(NextToken="garbage")
    # Owner and OS filters; a bad key.
    own = ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["AWS"]}])["BaselineIdentities"]
    assert own and all(b["BaselineName"].startswith("AWS-") for b in own)
    with pytest.raises(ssm.exceptions.InvalidFilter):
        ssm.describe_patch_baselines(Filters=[{"Key": "COLOUR", "Values": ["blue"]}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_patch_baselines(MaxResults=101)
    assert code(e) == "ValidationException"
    for b in made:
        ssm.delete_patch_baseline(BaselineId=b)


def test_client_token_idempotency(server):
    ssm = server.client()
    token = str(uuid.uuid4())
    a = ssm.create_patch_baseline(Name="idem", OperatingSystem="DEBIAN", ApprovedPatches=["x"], ClientToken=token)
    b = ssm.create_patch_baseline(Name="idem", OperatingSystem="DEBIAN", ApprovedPatches=["x"], ClientToken=token)
    assert a["BaselineId"] == b["BaselineId"]
    with pytest.raises(ssm.exceptions.IdempotentParameterMismatch):
        ssm.create_patch_baseline(Name="idem", OperatingSystem="DEBIAN", ApprovedPatches=["y"], ClientToken=token)
    ssm.delete_patch_baseline(BaselineId=a["BaselineId"])


def test_patch_properties_and_effective_patches(server):
    ssm = server.client()
    props = ssm.describe_patch_properties(OperatingSystem="AMAZON_LINUX_2023", Property="CLASSIFICATION")["Properties"]
    assert {"Name": "Security"} in props and {"Name": "Bugfix"} in props
    pri = ssm.describe_patch_properties(OperatingSystem="UBUNTU", Property="PRIORITY", MaxResults=2)
    assert len(pri["Properties"]) == 2 and pri["NextToken"]
    # Not a property of that OS: none.
    assert ssm.describe_patch_properties(OperatingSystem="UBUNTU", Property="MSRC_SEVERITY")["Properties"] == []
    debian = ssm.get_default_patch_baseline(OperatingSystem="DEBIAN")["BaselineId"]
    with pytest.raises(ssm.exceptions.UnsupportedOperatingSystem):
        ssm.describe_effective_patches_for_patch_baseline(BaselineId=debian)
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.describe_effective_patches_for_patch_baseline(BaselineId="pb-0123456789abcdef0")
    with pytest.raises(ssm.exceptions.InvalidFilter):
        ssm.describe_available_patches(Filters=[{"Key": "COLOUR", "Values": ["x"]}])
    # No Windows default here: said plainly.
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.get_default_patch_baseline()


# --- activations and tags -------------------------------------------------------------


def test_activations(server):
    ssm = server.client()
    a = ssm.create_activation(
        IamRole="SSMServiceRole", Description="test", RegistrationLimit=5, DefaultInstanceName="web",
        Tags=[{"Key": "Environment", "Value": "Development"}],
    )
    aid = a["ActivationId"]
    uuid.UUID(aid)
    assert len(a["ActivationCode"]) == 20
    got = ssm.describe_activations(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [aid]}])["ActivationList"]
    assert len(got) == 1
    assert got[0]["IamRole"] == "SSMServiceRole"
    assert got[0]["RegistrationLimit"] == 5 and got[0]["RegistrationsCount"] == 0
    assert got[0]["Expired"] is False
    assert got[0]["Tags"] == [{"Key": "Environment", "Value": "Development"}]
    assert ssm.describe_activations(Filters=[{"FilterKey": "IamRole", "FilterValues": ["nobody"]}])["ActivationList"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_activations(Filters=[{"FilterKey": "Colour", "FilterValues": ["x"]}])
    assert code(e) == "ValidationException"
    with pytest.raises(ssm.exceptions.InvalidParameters):
        ssm.create_activation(IamRole="r", ExpirationDate=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.create_activation(IamRole="r", RegistrationLimit=1001)
    assert code(e) == "ValidationException"
    server.aws("delete-activation", "--activation-id", aid)
    assert ssm.describe_activations(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [aid]}])["ActivationList"] == []
    with pytest.raises(ssm.exceptions.InvalidActivationId):
        ssm.delete_activation(ActivationId=aid)


def test_an_expired_activation(server, tmp_path):
    ssm = server.client()
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    a = ssm.create_activation(IamRole="r", ExpirationDate=soon)
    time.sleep(3)
    got = ssm.describe_activations(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [a["ActivationId"]]}])["ActivationList"]
    assert got[0]["Expired"] is True
    # An agent cannot register with it.
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    p = subprocess.run(
        [str(binary("PATCHFLEET_AGENT_BIN", "patchfleet-agent")), "register", "--server", server.url,
         "--activation-id", a["ActivationId"], "--ca-fingerprint", server.ca_fingerprint,
         "--state-dir", str(tmp_path / "state"), "--root", str(root)],
        env={"PATCHFLEET_ACTIVATION_CODE": a["ActivationCode"], "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode != 0
    assert "expired" in p.stderr.lower(), p.stderr


def test_tags_on_unknown_resources(server):
    ssm = server.client()
    with pytest.raises(ssm.exceptions.InvalidResourceType):
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="p", Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId="mi-0123456789abcdef0", Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId="pb-0123456789abcdef0")
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.deregister_managed_instance(InstanceId="mi-0123456789abcdef0")
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": ["mi-0123456789abcdef0"]}])
    with pytest.raises(ssm.exceptions.InvalidFilterKey):
        ssm.describe_instance_information(Filters=[{"Key": "Colour", "Values": ["x"]}])
    with pytest.raises(ssm.exceptions.InvalidFilterKey):
        ssm.describe_instance_information(Filters=[{"Key": "tag-key", "Values": ["x"]}, {"Key": "PingStatus", "Values": ["Online"]}])
    with pytest.raises(ssm.exceptions.InvalidInstanceInformationFilterValue):
        ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Busy"]}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Online"]}], InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}])
    assert code(e) == "ValidationException"
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.list_compliance_items(ResourceIds=["mi-0123456789abcdef0"], ResourceTypes=["ManagedInstance"])
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.describe_instance_patches(InstanceId="mi-0123456789abcdef0")
    assert ssm.describe_instance_patch_states(InstanceIds=["mi-0123456789abcdef0"])["InstancePatchStates"] == []
