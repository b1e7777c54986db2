"""The EventBridge rules of infra/template.yaml against the sample events in events/:
evaluated with moto's implementation of EventBridge pattern matching, for each setting of
the parameters that shape the patterns (NotifyOnRecovery, AlarmNamePrefix).

moto's matcher does not descend into arrays of objects, which EventBridge does (AWS's own
CloudWatch alarm examples match `configuration.metrics.metricStat...`): the subclass below
flattens them the way EventBridge does, collecting the leaf values of every element."""

import json
from pathlib import Path

import pytest
from moto.events.models import EventPattern

from test_least_privilege import load_template

EVENTS = Path(__file__).resolve().parent.parent / "events"


class EventBridgePattern(EventPattern):
    @staticmethod
    def _flatten_dict(node, prefix="", result=None):
        result = {} if result is None else result

        def add(key, value):
            if key in result:
                existing = result[key] if isinstance(result[key], list) else [result[key]]
                result[key] = existing + (value if isinstance(value, list) else [value])
            else:
                result[key] = value

        def walk(value, key):
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(v, f"{key}.{k}" if key else k)
            elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
                for v in value:
                    walk(v, key)
            else:
                add(key, value)

        walk(node, prefix)
        return result


def resolve(value, conditions, params):
    """Evaluates Fn::If / Ref AWS::NoValue / Ref <parameter> for the given settings."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            name, yes, no = value["Fn::If"]
            return resolve(yes if conditions[name] else no, conditions, params)
        if value == {"Ref": "AWS::NoValue"}:
            return None
        if set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        out = {}
        for k, v in value.items():
            r = resolve(v, conditions, params)
            if r is not None:
                out[k] = r
        return out
    if isinstance(value, list):
        return [r for r in (resolve(v, conditions, params) for v in value) if r is not None]
    return value


def rules(recovery: bool, prefix: str):
    conditions = {"NotifyOnRecoveryEnabled": recovery, "HasAlarmNamePrefix": bool(prefix)}
    params = {"AlarmNamePrefix": prefix}
    resources = load_template()["Resources"]
    out = {}
    for name, res in resources.items():
        if isinstance(res, dict) and res.get("Type") == "AWS::Events::Rule":
            pattern = resolve(res["Properties"]["EventPattern"], conditions, params)
            out[name] = EventBridgePattern.load(json.dumps(pattern))
    return out


def matching(event_file, recovery=False, prefix=""):
    event = json.loads((EVENTS / event_file).read_text())
    return sorted(name for name, p in rules(recovery, prefix).items() if p.matches_event(event))


@pytest.mark.parametrize(
    "event_file",
    ["example-eventbridge-alb-alarm.json", "example-eventbridge-nlb-alarm.json", "example-eventbridge-metric-math-alarm.json"],
)
def test_metric_alarms_on_unhealthy_host_count_trigger_the_function(event_file):
    assert matching(event_file) == ["AlarmStateChangeRule"]


def test_composite_alarms_trigger_the_function():
    assert matching("example-eventbridge-composite-alarm.json") == ["CompositeAlarmStateChangeRule"]


@pytest.mark.parametrize("event_file", ["example-eventbridge-other-metric.json", "example-eventbridge-insufficient-data.json"])
def test_other_alarms_do_not(event_file):
    assert matching(event_file) == []


def test_ok_transitions_only_when_recovery_notes_are_on():
    assert matching("example-eventbridge-alb-ok.json") == []
    assert matching("example-eventbridge-alb-ok.json", recovery=True) == ["AlarmStateChangeRule"]


def test_alarm_name_prefix_filters():
    assert matching("example-eventbridge-alb-alarm.json", prefix="alb-instance-") == ["AlarmStateChangeRule"]
    assert matching("example-eventbridge-alb-alarm.json", prefix="payments-") == []
