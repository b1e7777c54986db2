"""The demo (`./demo`): the real `diagnose` Lambda under `cargo lambda watch`, fed a
CloudWatch alarm on the seed scenario `selector-matches-no-pods` (a Service selector that
matches no pod), against the local stand-ins only (moto, the Kubernetes API stand-in and a
Slack webhook sink, all on 127.0.0.1). Prints the report, the Slack payload and the SNS
message, then shuts everything down. Exit 0 on success, 1 with a message otherwise.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import HarnessError, Stack  # noqa: E402

SCENARIO = "selector-matches-no-pods"
EVENT = "example-eventbridge-alb-alarm.json"
WIDTH = 100


def heading(title: str) -> None:
    print()
    print("=" * WIDTH)
    print(f"  {title}")
    print("=" * WIDTH)


def wrap(text: str, indent: str = "  ") -> str:
    lines = []
    for para in str(text).splitlines() or [""]:
        lines.extend(textwrap.wrap(para, WIDTH - len(indent), break_long_words=False, break_on_hyphens=False) or [""])
    return "\n".join(indent + line for line in lines)


def compact(value) -> str:
    s = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return s if len(s) <= 400 else s[:397] + "..."


def render_report(response: dict) -> str:
    out = []
    alarm = response.get("alarm") or {}
    for report in response.get("reports", []):
        tg = report.get("targetGroup", {})
        lb = tg.get("loadBalancer") or {}
        backend = report.get("backend") or {}
        health = report.get("targetHealth", {})
        out.append(f"Alarm         {alarm.get('name')} ({alarm.get('state')}, via {alarm.get('source')})")
        out.append(f"Target group  {tg.get('name')} ({tg.get('targetType')} targets, {tg.get('protocol')}:{tg.get('port')}"
                   f", {lb.get('type')} load balancer)")
        out.append(f"Cluster       {report.get('cluster')}   backend: {backend.get('namespace')}/{backend.get('service')}"
                   f":{backend.get('servicePort')} (resolved by {backend.get('resolvedBy')})")
        states = ", ".join(f"{v} {k}" for k, v in (health.get("byState") or {}).items())
        out.append(f"Targets       {health.get('total')}: {states}" + ("  (fail-open)" if health.get("failOpen") else ""))
        findings = report.get("findings", [])
        out.append("")
        if report.get("rootCause") and findings:
            root = findings[0]
            out.append(f"ROOT CAUSE    {root['check']}  [{root['severity']}]  on {root['resource']}")
            out.append(wrap(root["message"]))
            if root.get("evidence"):
                out.append("  Evidence:")
                for k, v in root["evidence"].items():
                    out.append(wrap(f"{k}: {compact(v)}", "    "))
            if root.get("fix"):
                fix_id = root["fix"].get("fixId")
                out.append("  Fix" + (f" (safe fix {fix_id})" if fix_id else "") + ":")
                out.append(f"    $ {root['fix']['command']}")  # one line: copy-pasteable
            rest = findings[1:]
        else:
            out.append("No root cause: nothing critical or warning was found.")
            rest = findings
        if rest:
            out.append("")
            out.append("Other findings:")
            for f in rest:
                why = f"  (explained by {f['explainedBy']})" if f.get("explainedBy") else ""
                out.append(f"  - {f['check']} [{f['severity']}] on {f['resource']}{why}")
                out.append(wrap(f["message"], "      "))
        for title, key, fmt in (("Inconclusive", "inconclusive", lambda i: f"{i['check']}: {i['reason']}"),
                                ("Not collected", "notCollected", lambda i: f"{i['item']}: {i['reason']}")):
            items = report.get(key) or []
            if items:
                out.append("")
                out.append(f"{title}:")
                out.extend(wrap(fmt(i), "  - ") for i in items)
        if report.get("notes"):
            out.append("")
            out.append("Notes:")
            out.extend(wrap(n, "  - ") for n in report["notes"])
        calls = ", ".join(f"{k} {v}" for k, v in (report.get("apiCalls") or {}).items())
        out.append("")
        out.append(f"API calls     {calls}")
    deliveries = ", ".join(f"{d['channel']} {'ok' if d['ok'] else 'FAILED'} ({d['detail'] if not d['ok'] else d['attempts']})"
                           for d in response.get("deliveries", []))
    out.append(f"Deliveries    {deliveries}")
    return "\n".join(out)


def main() -> int:
    started = time.monotonic()
    print(f"eks-lb-doctor demo: the diagnose Lambda, alarm {EVENT} on scenario {SCENARIO}")
    print("Starting moto, the Kubernetes API stand-in, the Slack sink and `cargo lambda watch`")
    print("(127.0.0.1 only; the first run compiles the function, which takes a few minutes)...", flush=True)
    try:
        with Stack(verbose=True) as stack:
            stack.serve(SCENARIO)
            mark = stack.log_mark()
            response = stack.invoke(EVENT)
            slack = stack.slack_received()
            sns = stack.sns_delivered()
            log = stack.function_log(mark)

            if response.get("status") != "diagnosed":
                print(f"\ndemo: the function did not diagnose: {json.dumps(response, indent=2)}", file=sys.stderr)
                print(log[-4000:], file=sys.stderr)
                return 1

            heading(f"1. The diagnosis (Lambda response for {EVENT}, rendered)")
            print(render_report(response))

            heading(f"2. Slack: the payload the webhook sink received ({len(slack)} message(s))")
            for payload in slack:
                print(json.dumps(payload, indent=2, ensure_ascii=False))

            heading(f"3. SNS: the message moto delivered to the topic's SQS subscriber ({len(sns)} message(s))")
            for env in sns:
                print(f"Topic:       {env.get('TopicArn')}")
                print(f"Subject:     {env.get('Subject')}")
                print("Attributes:  " + ", ".join(f"{k}={v.get('Value')}" for k, v in (env.get("MessageAttributes") or {}).items()))
                print("Body:")
                print(textwrap.indent(env.get("Message", ""), "  "))

            heading("4. The function's log for this invocation (cargo lambda watch)")
            print(log.rstrip()[-4000:])

            problems = []
            if len(slack) != 1:
                problems.append(f"the Slack sink received {len(slack)} payloads, expected 1")
            if len(sns) != 1:
                problems.append(f"SNS delivered {len(sns)} messages, expected 1")
            failed = [d for d in response.get("deliveries", []) if not d.get("ok")]
            if failed:
                problems.append(f"failed deliveries: {failed}")
            if problems:
                print("\ndemo: " + "; ".join(problems), file=sys.stderr)
                return 1
    except HarnessError as e:
        print(f"\ndemo failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr)
        return 130
    print(f"\nDemo done in {time.monotonic() - started:.0f}s; every process stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
