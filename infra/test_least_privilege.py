"""Least-privilege checks for infra/template.yaml and infra/k8s/rbac.yaml.

Run: pytest infra/test_least_privilege.py   (stdlib + PyYAML; infra/check runs it)

The diagnose function's IAM role may only read, apart from a short list of writes it needs
(notify, write its logs, hand failed events to its queue, and ENI management when it runs in a
VPC), and no write may have Resource "*". The diagnose ClusterRole may only get / list / watch.
"""

import copy
import re
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parent
TEMPLATE = INFRA / "template.yaml"
RBAC = INFRA / "k8s" / "rbac.yaml"
LIB_RS = INFRA.parent / "functions" / "diagnose" / "src" / "lib.rs"

FUNCTION = "DiagnoseFunction"
VPC_CONDITION = "HasVpcConfig"
READ_VERBS = ("Describe", "Get", "List")
# Non-read actions the diagnose role may have, never on Resource "*".
ALLOWED_WRITES = {
    "sns:Publish",
    "kms:GenerateDataKey",
    "kms:Decrypt",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    # Lambda writes the on-failure destination (EventInvokeConfig) with the execution role.
    "sqs:SendMessage",
}
# AWSLambdaVPCAccessExecutionRole's writes: only inside Fn::If [HasVpcConfig, ...].
ENI_WRITES = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
# The remediate role's one AWS write (authorize-health-check-ingress), only on security
# groups EKS tagged with one of the clusters.
REMEDIATE_FUNCTION = "RemediateFunction"
REMEDIATE_WRITES = {"ec2:AuthorizeSecurityGroupIngress": "aws:ResourceTag/aws:eks:cluster-name"}
# Reads that do support resource-level permissions and so must name their resources.
SCOPED_READS = {
    "eks:DescribeCluster",
    "secretsmanager:GetSecretValue",
    "cloudwatch:DescribeAlarms",
    "ec2:GetManagedPrefixListEntries",
}


# ------------------------------------------------------------------ CloudFormation YAML


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns the short-form intrinsic tags into their long form."""


def _construct_tag(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {"Fn::" + tag_suffix: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path=TEMPLATE):
    return yaml.load(path.read_text(), Loader=CfnLoader)


def iter_resources(resources):
    """(logical id, resource) pairs, looking inside Fn::ForEach blocks (ids left templated)."""
    for key, value in resources.items():
        if key.startswith("Fn::ForEach::"):
            yield from iter_resources(value[2])
        else:
            yield key, value


def _refers_to(value, logical_id):
    if isinstance(value, list):
        return any(_refers_to(v, logical_id) for v in value)
    return value == {"Ref": logical_id}


def _as_list(value):
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ IAM checker


def role_of_function(template, function=FUNCTION):
    props = template["Resources"][function]["Properties"]
    role = props.get("Role")
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise AssertionError(f"{function} must use an explicit role (Role: !GetAtt X.Arn), got {role!r}")
    return role["Fn::GetAtt"][0]


def role_policy_documents(template, role_id):
    """(where, document) for every policy attached to role_id: inline, IAM::Policy, RolePolicy."""
    resources = dict(iter_resources(template["Resources"]))
    docs = []
    for policy in resources[role_id]["Properties"].get("Policies", []):
        docs.append((f"{role_id}.Policies[{policy['PolicyName']}]", policy["PolicyDocument"]))
    for rid, res in resources.items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::IAM::RolePolicy" and _refers_to(props.get("RoleName"), role_id):
            docs.append((rid, props["PolicyDocument"]))
        elif res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and _refers_to(
            props.get("Roles", []), role_id
        ):
            docs.append((rid, props["PolicyDocument"]))
    return docs


def iter_statements(statements, conditions=()):
    """(statement, conditions it sits under) with Fn::If branches expanded, NoValue dropped."""
    for item in _as_list(statements):
        if isinstance(item, dict) and "Fn::If" in item:
            cond, when_true, when_false = item["Fn::If"]
            yield from iter_statements(when_true, conditions + (cond,))
            yield from iter_statements(when_false, conditions + ("!" + cond,))
        elif item == {"Ref": "AWS::NoValue"}:
            continue
        else:
            yield item, conditions


def is_read(action):
    _, _, verb = action.partition(":")
    return verb.startswith(READ_VERBS)


def check_iam(template, function=FUNCTION, conditioned_writes=None):
    """Every least-privilege violation of the function's role, as readable strings.
    conditioned_writes: {action: condition key} writes allowed only on named resources and
    under a StringEquals on that key (the remediate role's fix)."""
    conditioned_writes = conditioned_writes or {}
    problems = []
    role_id = role_of_function(template, function)
    role_props = template["Resources"][role_id]["Properties"]
    if role_props.get("ManagedPolicyArns"):
        problems.append(f"{role_id}: managed policies attached: {role_props['ManagedPolicyArns']}")
    if "Policies" in template["Resources"][function]["Properties"]:
        problems.append(f"{function}: SAM Policies next to an explicit Role")
    for where, doc in role_policy_documents(template, role_id):
        for stmt, conds in iter_statements(doc["Statement"]):
            sid = f"{where}/{stmt.get('Sid', '?')}"
            if stmt.get("Effect") != "Allow":
                continue
            for key in ("NotAction", "NotResource"):
                if key in stmt:
                    problems.append(f"{sid}: {key} is not allowed")
            resources = _as_list(stmt.get("Resource", []))
            star = "*" in resources
            for action in _as_list(stmt.get("Action", [])):
                if not isinstance(action, str) or "*" in action:
                    problems.append(f"{sid}: wildcard or computed action {action!r}")
                    continue
                if action in ENI_WRITES:
                    if VPC_CONDITION not in conds:
                        problems.append(f"{sid}: {action} outside Fn::If {VPC_CONDITION}")
                elif action in conditioned_writes:
                    key = conditioned_writes[action]
                    if key not in (stmt.get("Condition") or {}).get("StringEquals", {}):
                        problems.append(f"{sid}: {action} without a StringEquals condition on {key}")
                elif not is_read(action) and action not in ALLOWED_WRITES:
                    problems.append(f"{sid}: {action} is not a read action")
                if star and (action in SCOPED_READS or not is_read(action)):
                    problems.append(f'{sid}: {action} on Resource "*"')
    return problems


# ------------------------------------------------------------------ RBAC checker

READ_K8S_VERBS = {"get", "list", "watch"}


def load_rbac(path=RBAC):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def find(docs, kind, name):
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def check_diagnose_cluster_role(docs):
    problems = []
    role = find(docs, "ClusterRole", "eks-lb-doctor-diagnose")
    granted = set()
    for rule in role["rules"]:
        verbs = set(rule["verbs"])
        if not verbs <= READ_K8S_VERBS:
            problems.append(f"non-read verbs {sorted(verbs - READ_K8S_VERBS)} on {rule['resources']}")
        for field in ("apiGroups", "resources", "verbs"):
            if "*" in rule.get(field, []):
                problems.append(f"wildcard in {field}: {rule}")
        for group in rule["apiGroups"]:
            granted.update((group, r) for r in rule["resources"])
    if ("", "pods/log") not in granted:
        problems.append("pods/log is not granted")
    return problems


# ------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def template():
    return load_template()


def _diagnose_policy(template):
    role_id = role_of_function(template)
    return template["Resources"][role_id]["Properties"]["Policies"][0]["PolicyDocument"]


def test_loader_understands_intrinsics(template):
    props = template["Resources"][FUNCTION]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["DiagnoseRole", "Arn"]}
    assert props["Environment"]["Variables"]["SNS_TOPIC_ARN"] == {"Ref": "NotificationTopic"}
    assert "Fn::If" in props["VpcConfig"]


def test_diagnose_role_is_least_privilege(template):
    assert check_iam(template) == []


# Every AWS action the diagnose function calls (gather/aws.rs, gather/eks_auth.rs,
# functions/diagnose): both templates must grant each of them.
FUNCTION_CALLS = (
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeRouteTables",
    "ec2:GetManagedPrefixListEntries",
    "eks:DescribeCluster",
    "cloudwatch:DescribeAlarms",
    "sns:Publish",
)


def test_diagnose_role_grants_what_gathering_calls(template):
    role_id = role_of_function(template)
    actions = {
        a
        for _, doc in role_policy_documents(template, role_id)
        for stmt, _ in iter_statements(doc["Statement"])
        for a in _as_list(stmt["Action"])
    }
    for needed in (*FUNCTION_CALLS, "secretsmanager:GetSecretValue"):
        assert needed in actions, needed


def test_checker_catches_a_write_action(template):
    """Test of the test: an added ec2:AuthorizeSecurityGroupIngress must be reported."""
    bad = copy.deepcopy(template)
    _diagnose_policy(bad)["Statement"].append(
        {"Sid": "Sneaky", "Effect": "Allow", "Action": "ec2:AuthorizeSecurityGroupIngress", "Resource": "*"}
    )
    problems = check_iam(bad)
    assert any("ec2:AuthorizeSecurityGroupIngress is not a read action" in p for p in problems), problems
    assert any('ec2:AuthorizeSecurityGroupIngress on Resource "*"' in p for p in problems), problems


def test_checker_catches_star_resource_eni_outside_vpc_and_managed_policies(template):
    bad = copy.deepcopy(template)
    statements = _diagnose_policy(bad)["Statement"]
    statements.append({"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"})
    statements.append({"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "arn:x"})
    statements.append({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})
    bad["Resources"]["DiagnoseRole"]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    problems = "\n".join(check_iam(bad))
    assert 'sns:Publish on Resource "*"' in problems
    assert "ec2:CreateNetworkInterface outside Fn::If HasVpcConfig" in problems
    assert "wildcard or computed action 'ec2:Describe*'" in problems
    assert "managed policies attached" in problems


def test_checker_sees_separate_role_policies(template):
    bad = copy.deepcopy(template)
    notify = bad["Resources"]["DiagnoseNotifyPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    notify.append({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})
    assert any("iam:PassRole is not a read action" in p for p in check_iam(bad))


def test_environment_is_what_lib_rs_reads(template):
    read = set(re.findall(r'(?:nonempty|flag|list|get)\("([A-Z_]+)"\)', LIB_RS.read_text()))
    env = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    assert set(env) <= read, set(env) - read
    logging = template["Resources"][FUNCTION]["Properties"]["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"  # sets AWS_LAMBDA_LOG_FORMAT=JSON


def test_remediate_resources_are_behind_the_condition(template):
    remediate = [
        (rid, res)
        for rid, res in iter_resources(template["Resources"])
        if "Remediate" in rid and not rid.startswith("Fn::")
    ]
    assert remediate
    for rid, res in remediate:
        assert res.get("Condition") == "RemediateEnabled", rid


def test_rbac_diagnose_only_reads():
    docs = load_rbac()
    assert check_diagnose_cluster_role(docs) == []
    binding = find(docs, "ClusterRoleBinding", "eks-lb-doctor-diagnose")
    assert binding["roleRef"]["name"] == "eks-lb-doctor-diagnose"
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eks-lb-doctor-diagnose"}
    ]


def test_rbac_checker_catches_patch():
    docs = copy.deepcopy(load_rbac())
    find(docs, "ClusterRole", "eks-lb-doctor-diagnose")["rules"][0]["verbs"].append("patch")
    assert any("non-read verbs ['patch']" in p for p in check_diagnose_cluster_role(docs))


def test_rbac_addon_config_role_reads_two_configmaps_by_name():
    docs = load_rbac()
    role = find(docs, "Role", "eks-lb-doctor-diagnose-addon-config")
    assert role["metadata"]["namespace"] == "kube-system"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["amazon-vpc-cni", "cilium-config"],
         "verbs": ["get"]}
    ]
    binding = find(docs, "RoleBinding", "eks-lb-doctor-diagnose-addon-config")
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eks-lb-doctor-diagnose"}
    ]


def test_rbac_kube_proxy_role_is_pinned():
    role = find(load_rbac(), "Role", "eks-lb-doctor-remediate-kube-proxy")
    assert role["metadata"]["namespace"] == "kube-system"
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": ["kube-proxy"], "verbs": ["get", "patch"]}
    ]


# ------------------------------------------------------------------ remediate


def test_remediate_role_writes_only_the_fix_under_a_tag_condition(template):
    assert check_iam(template, REMEDIATE_FUNCTION, REMEDIATE_WRITES) == []


def test_checker_catches_an_unconditioned_or_unlisted_fix_write(template):
    bad = copy.deepcopy(template)
    stmts = bad["Resources"]["RemediateRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    opener = next(s for s in stmts if isinstance(s, dict) and s.get("Sid") == "OpenHealthCheckPort")
    del opener["Condition"]
    assert any("without a StringEquals condition" in p for p in check_iam(bad, REMEDIATE_FUNCTION, REMEDIATE_WRITES))
    opener["Resource"] = "*"
    assert any('on Resource "*"' in p for p in check_iam(bad, REMEDIATE_FUNCTION, REMEDIATE_WRITES))
    # The same write in the diagnose role is refused outright.
    _diagnose_policy(bad)["Statement"].append(
        {"Effect": "Allow", "Action": "ec2:AuthorizeSecurityGroupIngress", "Resource": "arn:aws:ec2:*:*:security-group/*"})
    assert any("AuthorizeSecurityGroupIngress is not a read action" in p for p in check_iam(bad))


# What the remediate function calls: the re-diagnosis (no composite alarms) and the fix.
REMEDIATE_CALLS = tuple(a for a in FUNCTION_CALLS if a != "cloudwatch:DescribeAlarms") + tuple(REMEDIATE_WRITES)


def test_remediate_role_grants_what_it_calls(template):
    actions = {
        a
        for _, doc in role_policy_documents(template, role_of_function(template, REMEDIATE_FUNCTION))
        for stmt, _ in iter_statements(doc["Statement"])
        for a in _as_list(stmt["Action"])
    }
    for needed in REMEDIATE_CALLS:
        assert needed in actions, needed
    env = template["Resources"][REMEDIATE_FUNCTION]["Properties"]["Environment"]["Variables"]
    read = set(re.findall(r'(?:nonempty|flag|list|get)\("([A-Z_]+)"\)', LIB_RS.read_text()))
    assert set(env) <= read, set(env) - read
    assert env["FIX_MODE"] == {"Ref": "FixMode"}


def test_both_roles_may_use_the_topic_key(template):
    key = template["Resources"]["NotificationKey"]["Properties"]["KeyPolicy"]["Statement"]
    publish = next(s for s in key if s.get("Sid") == "FunctionsPublishToTopic")
    principal = publish["Principal"]["AWS"]["Fn::If"]
    assert principal[0] == "RemediateEnabled"
    assert {"Fn::GetAtt": ["RemediateRole", "Arn"]} in principal[1]
