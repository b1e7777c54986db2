"""End to end: the real `diagnose` Lambda under `cargo lambda watch`, invoked with every
example event in events/, against moto, the Kubernetes stand-in and the Slack sink
(tests/e2e/harness.py). One watch process serves the whole module.

Run: `~/.cache/eks-lb-doctor/venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e`
(the first run compiles the function; allow several minutes on a cold cache).
"""

from __future__ import annotations

import json

import pytest

from harness import ACCOUNT, CLUSTER, TOPIC_ARN, Stack

ALB_TG = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/k8s-default-albinsta-6b1c1d4f2e/73e2d6bc24d8a067"
NLB_TG = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/k8s-default-echonlb-1a2b3c4d5e/0f1e2d3c4b5a6978"
COLOURS = {"critical": "#d00000", "warning": "#f2c744"}  # the attachment colour of the root cause (notify.rs)
SNS_MAX_SUBJECT = 100


@pytest.fixture(scope="module")
def stack():
    with Stack() as s:
        yield s


class Run:
    """One invocation and what it delivered, with everything a failure message needs."""

    def __init__(self, stack: Stack, scenario: str | None, event: str, prepare=None):
        if scenario is not None and stack.scenario != scenario:
            stack.serve(scenario)
        stack.reset_deliveries()
        if prepare is not None:
            prepare()
        mark = stack.log_mark()
        self.event = event
        self.scenario = stack.scenario
        self.response = stack.invoke(event)
        self.slack = stack.slack_received()
        self.sns = stack.sns_delivered()
        self.log = stack.function_log(mark)

    def why(self, what: str) -> str:
        response = json.dumps(self.response, indent=1)
        if len(response) > 6000:
            response = response[:6000] + "\n... (truncated)"
        return (f"{what}\n  event: {self.event} (scenario {self.scenario})\n  response: {response}\n"
                f"  slack received: {json.dumps(self.slack)[:3000]}\n"
                f"  sns delivered: {json.dumps(self.sns)[:3000]}\n"
                f"  function log (this invocation):\n{self.log[-6000:]}")


def attribute(envelope: dict, name: str) -> str | None:
    attr = (envelope.get("MessageAttributes") or {}).get(name)
    return attr.get("Value") if isinstance(attr, dict) else None


def first_section_text(payload: dict) -> str:
    blocks = payload["attachments"][0]["blocks"]
    return next(b["text"]["text"] for b in blocks if b.get("type") == "section")


DIAGNOSED = [
    # event, scenario served, expected root cause, its severity, target group
    ("example-eventbridge-alb-alarm.json", "selector-matches-no-pods", "selector-matches-no-pods", "critical", ALB_TG),
    ("example-eventbridge-metric-math-alarm.json", "selector-matches-no-pods", "selector-matches-no-pods", "critical",
     ALB_TG),
    ("example-eventbridge-composite-alarm.json", "selector-matches-no-pods", "selector-matches-no-pods", "critical",
     ALB_TG),
    ("example-sns-alb-alarm.json", "selector-matches-no-pods", "selector-matches-no-pods", "critical", ALB_TG),
    # The health-check port is one the pods do not declare; without the replay (off here)
    # declared ports are only a hint, so this is a warning, not a proven fault.
    ("example-eventbridge-nlb-alarm.json", "service-annotation-invalid", "service-annotation-invalid", "warning",
     NLB_TG),
]


@pytest.mark.parametrize("event,scenario,root_cause,severity,target_group", DIAGNOSED, ids=[d[0] for d in DIAGNOSED])
def test_alarm_is_diagnosed_and_notified(stack, event, scenario, root_cause, severity, target_group):
    run = Run(stack, scenario, event)
    r = run.response
    assert r.get("status") == "diagnosed", run.why("status is not 'diagnosed'")
    assert len(r.get("reports") or []) == 1, run.why("expected exactly one report")
    report = r["reports"][0]
    assert report.get("rootCause") == root_cause, run.why(f"rootCause is not {root_cause}")
    assert report["targetGroup"]["arn"] == target_group, run.why("diagnosed the wrong target group")
    if "composite" in event:
        assert "DescribeAlarms" in stack.cloudwatch.calls, run.why("the composite alarm's children were not described")
    assert report["cluster"] == CLUSTER, run.why("cluster not resolved")
    assert report["findings"][0]["check"] == root_cause, run.why("the first finding is not the root cause")
    assert report["findings"][0]["severity"] == severity, run.why(f"the root cause is not {severity}")
    deliveries = {d["channel"]: d for d in r.get("deliveries") or []}
    assert set(deliveries) == {"sns", "slack"}, run.why("expected one SNS and one Slack delivery")
    assert all(d["ok"] for d in deliveries.values()), run.why("a delivery failed")

    # Slack: one payload naming the root cause, coloured by its severity.
    assert len(run.slack) == 1, run.why(f"the Slack sink received {len(run.slack)} payloads, expected 1")
    payload = run.slack[0]
    assert root_cause in payload.get("text", ""), run.why("the Slack fallback text does not name the root cause")
    assert root_cause in first_section_text(payload), run.why("the first Slack section does not name the root cause")
    assert payload["attachments"][0].get("color") == COLOURS[severity], \
        run.why(f"the Slack attachment is not coloured {severity}")

    # SNS: one message, subject naming the root cause within SNS's limit, filterable attributes.
    assert len(run.sns) == 1, run.why(f"SNS delivered {len(run.sns)} messages, expected 1")
    envelope = run.sns[0]
    assert envelope.get("TopicArn") == TOPIC_ARN, run.why("published to another topic")
    subject = envelope.get("Subject") or ""
    assert len(subject) <= SNS_MAX_SUBJECT, run.why(f"SNS subject is {len(subject)} characters")
    assert root_cause in subject, run.why(f"the SNS subject {subject!r} does not name the root cause")
    assert attribute(envelope, "rootCause") == root_cause, run.why("SNS attribute rootCause")
    assert attribute(envelope, "namespace") == report["backend"]["namespace"], run.why("SNS attribute namespace")
    assert attribute(envelope, "cluster") == CLUSTER, run.why("SNS attribute cluster")
    assert root_cause in envelope.get("Message", ""), run.why("the SNS body does not name the root cause")


def test_alarm_back_to_ok_sends_a_recovery_note(stack):
    run = Run(stack, "selector-matches-no-pods", "example-eventbridge-alb-ok.json")
    r = run.response
    assert r.get("status") == "recovered", run.why("status is not 'recovered'")
    assert r["alarm"]["name"] == "alb-instance-unhealthy-hosts", run.why("wrong alarm")
    assert all(d["ok"] for d in r.get("deliveries") or []) and len(r["deliveries"]) == 2, run.why("deliveries")
    assert len(run.slack) == 1, run.why("expected one Slack recovery note")
    assert "alb-instance-unhealthy-hosts" in run.slack[0].get("text", ""), run.why("the Slack note does not name the alarm")
    assert "recovered" in run.slack[0]["text"].lower(), run.why("the Slack note does not say recovered")
    assert len(run.sns) == 1, run.why("expected one SNS recovery note")
    assert "recovered" in (run.sns[0].get("Subject") or ""), run.why("the SNS subject does not say recovered")
    assert attribute(run.sns[0], "rootCause") == "recovered", run.why("SNS attribute rootCause")


SKIPPED = [
    ("example-eventbridge-other-metric.json", "not on an ELB UnHealthyHostCount"),
    ("example-eventbridge-insufficient-data.json", "INSUFFICIENT_DATA"),
]


@pytest.mark.parametrize("event,reason", SKIPPED, ids=[s[0] for s in SKIPPED])
def test_other_alarms_are_skipped_silently(stack, event, reason):
    run = Run(stack, "selector-matches-no-pods", event)
    assert run.response.get("status") == "skipped", run.why("status is not 'skipped'")
    assert reason in run.response.get("reason", ""), run.why(f"the reason does not say {reason!r}")
    assert run.slack == [], run.why("a skipped alarm posted to Slack")
    assert run.sns == [], run.why("a skipped alarm published to SNS")


def test_unsupported_event_is_an_error(stack):
    run = Run(stack, None, "example-malformed-event.json")
    assert run.response.get("errorType") == "UnsupportedEvent", run.why("expected errorType UnsupportedEvent")
    assert "status" not in run.response, run.why("an error must not look like a result")
    assert run.slack == [] and run.sns == [], run.why("an unsupported event delivered something")


def test_slack_is_retried_on_5xx(stack):
    run = Run(stack, "selector-matches-no-pods", "example-eventbridge-alb-alarm.json",
              prepare=lambda: stack.slack_fail(500, 2))
    slack = [d for d in run.response.get("deliveries") or [] if d["channel"] == "slack"]
    assert slack and slack[0]["ok"] and slack[0]["attempts"] == 3, run.why("expected Slack delivered on the 3rd attempt")
    assert len(run.slack) == 1, run.why("expected the payload recorded once")
    assert stack.slack_url not in run.log, run.why("the webhook URL leaked into the function's log")
