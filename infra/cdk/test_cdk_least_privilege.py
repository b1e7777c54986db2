"""Least-privilege checks for the CDK app's synthesized template(s), reusing the checker of
infra/test_least_privilege.py (the SAM template's test).

Run by ./check after `cdk synth`; the templates come from EKS_LB_DOCTOR_CDK_TEMPLATES
(os.pathsep-separated), default cdk.out-check*/eks-lb-doctor.template.json next to this file.

The CDK app resolves the SAM conditions at synth time, so there is no Fn::If HasVpcConfig
around the ENI writes: they are accepted outside it only when the synthesized function really
has a VpcConfig (and are then still held to "no Resource '*'").
"""

import copy
import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import test_least_privilege as lp  # noqa: E402  (infra/test_least_privilege.py)

FUNCTION_PATH_SUFFIX = "/DiagnoseFunction/Resource"  # aws:cdk:path of the RustFunction's CfnFunction


def template_paths():
    env = os.environ.get("EKS_LB_DOCTOR_CDK_TEMPLATES")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return sorted(HERE.glob("cdk.out-check*/eks-lb-doctor.template.json"))


PATHS = template_paths()


@pytest.fixture(params=PATHS, ids=[p.parent.name for p in PATHS] or None)
def template(request):
    return json.loads(request.param.read_text())


def function_ids(template, suffix):
    """Logical IDs of the functions whose construct path ends with suffix (not by name)."""
    return [
        rid
        for rid, res in template["Resources"].items()
        if res.get("Type") == "AWS::Lambda::Function"
        and res.get("Metadata", {}).get("aws:cdk:path", "").endswith(suffix)
    ]


def diagnose_function_id(template):
    ids = function_ids(template, FUNCTION_PATH_SUFFIX)
    assert len(ids) == 1, f"expected one diagnose function, found {ids}"
    return ids[0]


def has_vpc_config(template, function_id):
    vpc = template["Resources"][function_id]["Properties"].get("VpcConfig") or {}
    return bool(vpc.get("SubnetIds")) and bool(vpc.get("SecurityGroupIds"))


def check_cdk_iam(template, function_id=None, conditioned_writes=None):
    function_id = function_id or diagnose_function_id(template)
    problems = lp.check_iam(template, function_id, conditioned_writes)
    if has_vpc_config(template, function_id):
        problems = [p for p in problems if not p.endswith(f"outside Fn::If {lp.VPC_CONDITION}")]
    return problems


def granted_actions(template):
    role_id = lp.role_of_function(template, diagnose_function_id(template))
    return {
        action
        for _, doc in lp.role_policy_documents(template, role_id)
        for stmt, _ in lp.iter_statements(doc["Statement"])
        for action in lp._as_list(stmt["Action"])
    }


def test_templates_were_synthesized():
    assert PATHS, "no synthesized template found: run ./check (cdk synth) first"


def test_diagnose_role_is_least_privilege(template):
    assert check_cdk_iam(template) == []


def test_diagnose_role_grants_what_gathering_calls(template):
    actions = granted_actions(template)
    for needed in (*lp.FUNCTION_CALLS, "sqs:SendMessage", "logs:PutLogEvents"):
        assert needed in actions, needed


def test_same_statements_as_sam_template(template):
    """Every SAM diagnose-role statement (by Sid) exists in the CDK role with the same actions."""
    sam = lp.load_template()
    def by_sid(tpl, fn):
        role_id = lp.role_of_function(tpl, fn)
        return {
            stmt.get("Sid"): sorted(lp._as_list(stmt["Action"]))
            for _, doc in lp.role_policy_documents(tpl, role_id)
            for stmt, _ in lp.iter_statements(doc["Statement"])
        }
    sam_sids = by_sid(sam, lp.FUNCTION)
    cdk_sids = by_sid(template, diagnose_function_id(template))
    function_id = diagnose_function_id(template)
    optional = {"SlackWebhookSecret", "VpcNetworkInterfaces"}  # SAM: behind Fn::If
    for sid, actions in sam_sids.items():
        if sid in optional and sid not in cdk_sids:
            continue
        assert cdk_sids.get(sid) == actions, (sid, cdk_sids.get(sid), actions)
    assert set(cdk_sids) <= set(sam_sids), set(cdk_sids) - set(sam_sids)
    assert ("VpcNetworkInterfaces" in cdk_sids) == has_vpc_config(template, function_id)


def test_no_grant_helper_policies(template):
    """Only the explicit policies: no CDK DefaultPolicy, no managed policies on the role."""
    role_id = lp.role_of_function(template, diagnose_function_id(template))
    where = [w for w, _ in lp.role_policy_documents(template, role_id)]
    assert not [w for w in where if "DefaultPolicy" in w], where
    assert not template["Resources"][role_id]["Properties"].get("ManagedPolicyArns")


def test_checker_catches_a_write_action(template):
    """Test of the test: a grant added the way CDK grant helpers do is reported."""
    bad = copy.deepcopy(template)
    role_id = lp.role_of_function(bad, diagnose_function_id(bad))
    bad["Resources"]["SneakyDefaultPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "sneaky",
            "Roles": [{"Ref": role_id}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "ec2:AuthorizeSecurityGroupIngress", "Resource": "*"},
                    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
                ],
            },
        },
    }
    problems = check_cdk_iam(bad)
    assert any("ec2:AuthorizeSecurityGroupIngress is not a read action" in p for p in problems), problems
    assert any('sqs:SendMessage on Resource "*"' in p for p in problems), problems


def test_checker_catches_eni_writes_without_vpc(template):
    bad = copy.deepcopy(template)
    function_id = diagnose_function_id(bad)
    bad["Resources"][function_id]["Properties"].pop("VpcConfig", None)
    role = bad["Resources"][lp.role_of_function(bad, function_id)]
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "arn:x"}
    )
    assert any("ec2:CreateNetworkInterface outside Fn::If" in p for p in check_cdk_iam(bad))


def test_environment_matches_sam(template):
    sam_env = lp.load_template()["Resources"][lp.FUNCTION]["Properties"]["Environment"]["Variables"]
    props = template["Resources"][diagnose_function_id(template)]["Properties"]
    assert set(props["Environment"]["Variables"]) == set(sam_env)
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["Runtime"] == "provided.al2023" and props["Architectures"] == ["arm64"]
    assert props["Handler"] == "bootstrap"


# ------------------------------------------------------------------ remediate (fixMode != off)


def test_remediate_function_exists_exactly_when_fixes_are_on(template):
    remediate = function_ids(template, "/RemediateFunction/Resource")
    env = template["Resources"][diagnose_function_id(template)]["Properties"]["Environment"]["Variables"]
    fixes_on = env["FIX_MODE"] != "off"
    assert len(remediate) == (1 if fixes_on else 0), remediate
    assert bool(env["REMEDIATE_FUNCTION_NAME"]) == fixes_on


def test_remediate_role_writes_only_the_fix_under_a_tag_condition(template):
    for function_id in function_ids(template, "/RemediateFunction/Resource"):
        assert check_cdk_iam(template, function_id, lp.REMEDIATE_WRITES) == []
        role_id = lp.role_of_function(template, function_id)
        actions = {
            a
            for _, doc in lp.role_policy_documents(template, role_id)
            for stmt, _ in lp.iter_statements(doc["Statement"])
            for a in lp._as_list(stmt["Action"])
        }
        for needed in lp.REMEDIATE_CALLS:
            assert needed in actions, needed
        bad = copy.deepcopy(template)
        for _, doc in lp.role_policy_documents(bad, role_id):
            for stmt, _ in lp.iter_statements(doc["Statement"]):
                stmt.pop("Condition", None)
        assert any("without a StringEquals condition" in p for p in check_cdk_iam(bad, function_id, lp.REMEDIATE_WRITES))
