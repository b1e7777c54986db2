"""End to end: the safe fixes through the real functions under `cargo lambda watch`, against
moto and the Kubernetes stand-in (tests/e2e/harness.py), in a deployment with fixes on
(FIX_MODE=auto, every namespace allowed).

- diagnose offers an approval-only fix with the command that approves it and writes nothing;
- remediate, invoked with that approval, re-diagnoses, applies it through the guards and
  notifies; approved again, it finds nothing left to fix (security group) or holds back
  inside the cooldown (Ingress annotation);
- diagnose applies an unattended fix itself (externalTrafficPolicy), and the next alarm finds
  the fault gone.

moto does not change target health when a rule is added or a Service patched (its target
health is the scenario's, set by tests/standins/aws_moto.py), so verification here reports
the targets as still unhealthy; tests/live.rs covers verification against a healthy group.
"""

from __future__ import annotations

import json

import pytest

from harness import Stack

REMEDIATE = "remediate"


@pytest.fixture(scope="module")
def stack():
    env = {"FIX_MODE": "auto", "ALLOWED_NAMESPACES": "*", "REMEDIATE_FUNCTION_NAME": REMEDIATE,
           "FIX_VERIFY_SECONDS": "0"}
    with Stack(extra_env=env) as s:
        yield s


def why(*responses) -> str:
    return "\n".join(json.dumps(r, indent=1)[:5000] for r in responses)


def fixes_of(diagnosed: dict) -> list[dict]:
    return diagnosed["reports"][0]["fixes"]


def test_approved_security_group_rule_is_applied_once(stack):
    tg = stack.serve("security-group-blocks-health-check")["targetGroupArn"]
    diagnosed = stack.invoke_payload("diagnose", {"targetGroupArn": tg})
    fixes = fixes_of(diagnosed)
    assert [(f["fixId"], f["status"]) for f in fixes] == [("authorize-health-check-ingress", "awaiting-approval")], \
        why(diagnosed)
    assert f"aws lambda invoke --function-name {REMEDIATE}" in fixes[0]["detail"], fixes[0]["detail"]
    change = fixes[0]["change"]
    ec2 = stack.client("ec2")

    def admits() -> bool:
        group = ec2.describe_security_groups(GroupIds=[change["groupId"]])["SecurityGroups"][0]
        return any(p.get("FromPort") == change["port"]
                   and any(g.get("GroupId") == change["sourceGroupId"] for g in p.get("UserIdGroupPairs", []))
                   for p in group["IpPermissions"])

    assert not admits(), "diagnose wrote a security-group rule"
    stack.reset_deliveries()
    approval = {"targetGroupArn": tg, "fixId": "authorize-health-check-ingress", "approvedBy": "alice"}
    applied = stack.invoke_payload(REMEDIATE, approval)
    assert applied["status"] == "applied", why(applied)
    assert admits(), why(applied)
    sns = stack.sns_delivered()
    assert any("approved by alice" in m["Message"] and "authorize-health-check-ingress" in m["Subject"]
               for m in sns), sns
    assert any("Safe fixes" in json.dumps(p) for p in stack.slack_received())
    again = stack.invoke_payload(REMEDIATE, approval)
    assert again["status"] == "not-applicable", why(again)
    assert "does not offer authorize-health-check-ingress" in again["detail"]


def test_approved_ingress_annotation_then_cooldown(stack):
    tg = stack.serve("health-check-response-mismatch")["targetGroupArn"]
    approval = {"targetGroupArn": tg, "fixId": "set-alb-health-check", "approvedBy": "bob"}
    applied = stack.invoke_payload(REMEDIATE, approval)
    assert applied["status"] == "applied", why(applied)
    change = applied["fixes"][0]["change"]
    assert change["resourceKind"] == "Ingress"
    # Target health in moto still reports the mismatch: the finding stays, the cooldown holds.
    again = stack.invoke_payload(REMEDIATE, approval)
    assert again["status"] == "cooldown", why(again)
    assert "approved by bob" in again["detail"], again["detail"]


def test_unattended_fix_is_applied_by_diagnose_and_the_fault_is_gone(stack):
    tg = stack.serve("external-traffic-policy-local")["targetGroupArn"]
    first = stack.invoke_payload("diagnose", {"targetGroupArn": tg})
    fixes = fixes_of(first)
    assert [(f["fixId"], f["status"]) for f in fixes] == [("set-external-traffic-policy-cluster", "applied")], \
        why(first)
    assert fixes[0]["verification"], why(first)
    second = stack.invoke_payload("diagnose", {"targetGroupArn": tg})
    checks = [f["check"] for f in second["reports"][0]["findings"]]
    assert "external-traffic-policy-local" not in checks, why(second)


def test_malformed_approval_is_an_error_with_a_stable_type(stack):
    out = stack.invoke_payload(REMEDIATE, {"fixId": "set-target-port"})
    assert out.get("errorType") == "MalformedApproval", out
