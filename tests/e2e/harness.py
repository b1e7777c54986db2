"""End-to-end harness: the real `diagnose` Lambda under the Lambda Runtime API emulator
(`cargo lambda watch`), against the local stand-ins only (127.0.0.1):

- AWS: the moto server (tests/standins/aws_moto.py), seeded from a scenario dump, plus what the
  function's deployment provides: the SNS topic `eks-lb-doctor-notifications` (with an SQS
  queue subscribed to it, so tests can read what SNS delivered), the Secrets Manager secret
  `eks-lb-doctor/slack-webhook` holding the Slack webhook URL, and the CloudWatch metric alarm
  `alb-instance-unhealthy-hosts` (a composite alarm's child, resolved with DescribeAlarms);
- Kubernetes: the API server stand-in (tests/standins/kube_apiserver.py), serving the
  scenario's k8s/ objects; EKS DescribeCluster in moto points at it;
- Slack: the incoming-webhook sink (tests/standins/slack_sink.py);
- CloudWatch for the function: tests/e2e/cbor_shim.py, an RPC v2 CBOR front for moto's
  CloudWatch (the Rust SDK speaks CBOR to CloudWatch, moto 5.2.5 does not).

    with Stack() as stack:               # starts everything, waits until the function answers
        stack.serve("selector-matches-no-pods")
        response = stack.invoke("example-eventbridge-alb-alarm.json")
        stack.slack_received(); stack.sns_delivered()

Used by tests/e2e/test_lambda_e2e.py and tests/e2e/demo.py. Runs under the project's
virtualenv (tests/run creates it): the stand-ins run on this interpreter, and `cargo-lambda`
is taken from `EKS_LB_DOCTOR_CARGO_LAMBDA`, else next to this interpreter, else the PATH.
`CARGO_TARGET_DIR` defaults to ~/.cache/eks-lb-doctor/target (shared with tests/run).

One `cargo lambda watch` process serves every invocation; the function's settings are fixed
when it starts (deterministic in moto: the topic ARN, and the secret by name, which
GetSecretValue accepts as SecretId), so `serve()` can switch scenarios without restarting it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cbor_shim import CborCloudWatchShim  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "standins"
SCENARIOS = REPO / "tests" / "scenarios"
EVENTS = REPO / "events"
FUNCTION = "diagnose"

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "demo-cluster"
TOPIC_NAME = "eks-lb-doctor-notifications"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"
TAP_QUEUE = "eks-lb-doctor-notifications-tap"
SECRET_NAME = "eks-lb-doctor/slack-webhook"
ALARM = {
    "AlarmName": "alb-instance-unhealthy-hosts",
    "AlarmDescription": "Unhealthy targets behind the alb-instance Ingress",
    "Namespace": "AWS/ApplicationELB",
    "MetricName": "UnHealthyHostCount",
    "Dimensions": [
        {"Name": "TargetGroup", "Value": "targetgroup/k8s-default-albinsta-6b1c1d4f2e/73e2d6bc24d8a067"},
        {"Name": "LoadBalancer", "Value": "app/k8s-default-albinsta-7f3a1e9c2b/50dc6c495c0c9188"},
    ],
    "Statistic": "Maximum",
    "Period": 60,
    "EvaluationPeriods": 1,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
}
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}

# First start on a cold target directory compiles the whole dependency tree.
BUILD_TIMEOUT = float(os.environ.get("EKS_LB_DOCTOR_BUILD_TIMEOUT", 15 * 60))
INVOKE_TIMEOUT = 120.0


class HarnessError(RuntimeError):
    """Something in the harness (not an assertion of a test) went wrong."""


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def cargo_lambda() -> str:
    explicit = os.environ.get("EKS_LB_DOCTOR_CARGO_LAMBDA")
    if explicit:
        return explicit
    beside = _venv_bin() / "cargo-lambda"
    if beside.exists():
        return str(beside)
    found = shutil.which("cargo-lambda")
    if not found:
        raise HarnessError("cargo-lambda not found: run ./tests/run (it installs it into the virtualenv)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


class StandIn:
    """A stand-in process speaking line-delimited JSON on stdin / stdout; stderr goes to a log
    file. It exits on stdin EOF; close() also signals its process group if it lingers."""

    def __init__(self, name: str, args: list[str], logdir: Path, startup_timeout: float = 60.0):
        self.name = name
        self.log = logdir / f"{name}.log"
        self._log_fh = open(self.log, "wb")
        env = {**os.environ, **TEST_CREDENTIALS}
        env.pop("AWS_PROFILE", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(STANDINS / args[0]), *args[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_fh,
            text=True,
            env=env,
            cwd=str(REPO),
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, name=f"{name}-stdout", daemon=True).start()
        self._lock = threading.Lock()
        self.ready = self._read(startup_timeout, "its ready line")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read(self, timeout: float, what: str) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise HarnessError(f"{self.name}: no answer ({what}) within {timeout:.0f}s\n{_tail(self.log)}") from None
        if line is None:
            raise HarnessError(f"{self.name} exited (code {self.proc.poll()}) before {what}\n{_tail(self.log)}")
        try:
            return json.loads(line)
        except json.JSONDecodeError as e:
            raise HarnessError(f"{self.name}: {what} is not JSON: {line!r} ({e})") from None

    def command(self, cmd: dict, timeout: float = 120.0) -> dict:
        with self._lock:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps(cmd) + "\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                raise HarnessError(f"{self.name} is gone (code {self.proc.poll()})\n{_tail(self.log)}") from None
            return self._read(timeout, f"the reply to {cmd.get('cmd')!r}")

    def checked(self, cmd: dict, timeout: float = 120.0) -> dict:
        answer = self.command(cmd, timeout)
        if answer.get("ok") is not True:
            raise HarnessError(f"{self.name}: {cmd.get('cmd')!r} failed: {answer}\n{_tail(self.log, 3000)}")
        return answer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.stdin:
                self.proc.stdin.close()
        _stop(self.proc, grace=10.0)
        self._log_fh.close()


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """Waits `grace` seconds for the process to exit by itself, then SIGTERM, then SIGKILL its
    whole process group (each process here is started in its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the group outlives its leader: always signal it
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        if sig == signal.SIGTERM and proc.poll() is not None:
            # leader gone; make sure no child (the function binary, cargo) lingers
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return


class Stack:
    """moto + Kubernetes stand-in + Slack sink + the function under `cargo lambda watch`."""

    def __init__(self, *, notify_on_recovery: bool = True, extra_env: dict[str, str] | None = None,
                 verbose: bool = False):
        self.notify_on_recovery = notify_on_recovery
        self.extra_env = extra_env or {}
        self.verbose = verbose
        self.workdir: Path | None = None
        self.moto: StandIn | None = None
        self.kube: StandIn | None = None
        self.sink: StandIn | None = None
        self.watch: subprocess.Popen | None = None
        self.cloudwatch: CborCloudWatchShim | None = None
        self.watch_log: Path | None = None
        self._watch_fh = None
        self.port: int | None = None
        self.scenario: str | None = None
        self._boto = {}
        self.queue_url: str | None = None
        self.secret_arn: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _say(self, msg: str) -> None:
        if self.verbose:
            print(f"[harness] {msg}", file=sys.stderr, flush=True)

    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="eks-lb-doctor-e2e-"))
        self._say("starting moto, the Kubernetes stand-in and the Slack sink")
        self.moto = StandIn("moto", ["aws_moto.py", "--port", "0"], self.workdir)
        self.endpoint = self.moto.ready["endpoint"]
        if not self.endpoint.startswith("http://127.0.0.1:"):
            raise HarnessError(f"moto is not on 127.0.0.1: {self.endpoint}")
        self.kube = StandIn(
            "kube",
            ["kube_apiserver.py", "--state", str(SCENARIOS / "healthy" / "k8s"), "--sts-endpoint", self.endpoint,
             "--cluster-name", CLUSTER, "--port", "0", "--workdir", str(self.workdir / "kube")],
            self.workdir,
        )
        self.sink = StandIn("slack", ["slack_sink.py", "--port", "0"], self.workdir)
        # The function's CloudWatch client speaks RPC v2 CBOR, which moto does not: see cbor_shim.py.
        self.cloudwatch = CborCloudWatchShim(self.endpoint, REGION).start()
        self.slack_url = self.sink.ready["url"]
        self._sink_base = self.slack_url.split("/services/")[0]
        self._start_watch()

    def close(self) -> None:
        if self.watch is not None:
            self._say("stopping cargo lambda watch")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.watch.pid, signal.SIGTERM)
            _stop(self.watch, grace=0.0)
            self.watch = None
        if self._watch_fh is not None:
            self._watch_fh.close()
            self._watch_fh = None
        if self.cloudwatch is not None:
            self.cloudwatch.stop()
            self.cloudwatch = None
        for s in (self.sink, self.kube, self.moto):
            if s is not None:
                s.close()
        self.sink = self.kube = self.moto = None
        if self.workdir is not None and not os.environ.get("EKS_LB_DOCTOR_KEEP_LOGS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the function -------------------------------------------------------------------------

    def function_env(self) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_CLOUDWATCH": self.cloudwatch.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SNS_TOPIC_ARN": TOPIC_ARN,
            # GetSecretValue takes the name as SecretId; the ARN has a random suffix in moto.
            "SLACK_WEBHOOK_SECRET_ARN": SECRET_NAME,
            "NOTIFY_ON_RECOVERY": "true" if self.notify_on_recovery else "false",
            "RUST_LOG": "info",
        }
        env.update(self.extra_env)
        return env

    def _start_watch(self) -> None:
        assert self.workdir is not None
        env_file = self.workdir / "function.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in self.function_env().items()))
        self.port = free_port()
        env = dict(os.environ)
        for k in list(env):
            # Nothing of the caller's AWS setup may leak into the function.
            if k.startswith("AWS_") and k not in ("AWS_CA_BUNDLE",):
                del env[k]
        env.update(self.function_env())
        env["PATH"] = os.pathsep.join([str(_venv_bin()), str(Path.home() / ".cargo" / "bin"), env.get("PATH", "")])
        env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "eks-lb-doctor" / "target"))
        env["CARGO_TERM_COLOR"] = "never"
        self.watch_log = self.workdir / "watch.log"
        self._watch_fh = open(self.watch_log, "wb")
        cmd = [cargo_lambda(), "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port),
               "--env-file", str(env_file), "--ignore-changes", "--color", "never"]
        self._say(f"starting {' '.join(cmd[1:])} (port {self.port}; the first start compiles the function)")
        # From the workspace root: the one watch process serves both functions (diagnose,
        # remediate), each built on its first invocation.
        self.watch = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                                      stdout=self._watch_fh, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Polls the emulator's port, then probes the function with the malformed event (no side
        effects: rejected before any I/O) until the function itself answers."""
        deadline = time.monotonic() + BUILD_TIMEOUT
        while True:
            self._check_watch_alive()
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            if time.monotonic() > deadline:
                raise HarnessError(f"cargo lambda watch does not listen on {self.port}\n{self.function_log_tail()}")
            time.sleep(0.3)
        self._say("emulator up; waiting for the function (compiling on a cold cache)")
        probe = json.dumps({"hello": "this is not an alarm"}).encode()
        while True:
            self._check_watch_alive()
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"the function did not answer within {BUILD_TIMEOUT:.0f}s\n{self.function_log_tail()}")
            try:
                status, body = self._post_invoke(probe, timeout=min(left, BUILD_TIMEOUT))
            except (OSError, urllib.error.URLError):
                time.sleep(1)
                continue
            if b"UnsupportedEvent" in body:
                self._say("function ready")
                return
            if status >= 500 and b"errorType" not in body:
                time.sleep(1)  # emulator up, function not yet
                continue
            raise HarnessError(f"unexpected answer to the readiness probe: HTTP {status} {body[:500]!r}\n"
                               f"{self.function_log_tail()}")

    def _post_invoke(self, payload: bytes, timeout: float) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/{FUNCTION}/invocations"
        req = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def _check_watch_alive(self) -> None:
        if self.watch is not None and self.watch.poll() is not None:
            raise HarnessError(f"cargo lambda watch exited with code {self.watch.returncode}\n{self.function_log_tail()}")

    def log_mark(self) -> int:
        """A position in the function's log (cargo lambda watch's output: the function's
        stderr logs and stdout metrics), for function_log(since=mark)."""
        return self.watch_log.stat().st_size if self.watch_log and self.watch_log.exists() else 0

    def function_log(self, since: int = 0) -> str:
        if not self.watch_log:
            return ""
        with open(self.watch_log, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def function_log_tail(self, limit: int = 6000) -> str:
        return "--- cargo lambda watch output (tail) ---\n" + (_tail(self.watch_log, limit) if self.watch_log else "")

    def invoke_payload(self, function: str, payload: dict) -> dict:
        """Invokes `function` (diagnose, remediate) with a JSON payload; see invoke()."""
        path = self.workdir / f"payload-{function}.json"
        path.write_text(json.dumps(payload))
        return self.invoke(path, function=function)

    def invoke(self, event_file: str | os.PathLike, function: str = FUNCTION) -> dict:
        """Invokes the function with `cargo lambda invoke` and returns the parsed response, or,
        when the function returned an error, its error payload ({"errorType", "errorMessage"})."""
        self._check_watch_alive()
        path = Path(event_file)
        if not path.is_absolute():
            path = EVENTS / path
        cmd = [cargo_lambda(), "lambda", "invoke", function, "--data-file", str(path),
               "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port),
               "--output-format", "json", "--color", "never"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=INVOKE_TIMEOUT, env=env,
                                 cwd=str(REPO), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"cargo lambda invoke {path.name} timed out\n{self.function_log_tail()}") from None
        return self._parse_invoke_output(path.name, out)

    def _parse_invoke_output(self, name: str, out: subprocess.CompletedProcess) -> dict:
        text = out.stdout.strip()
        if out.returncode == 0 and text:
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                pass
        # A function error: cargo lambda invoke fails and renders the error payload on stderr
        # ("Error: <errorType>" then the errorMessage, wrapped, behind "×" / "│").
        for stream in (out.stderr, out.stdout):
            found = _find_error_payload(stream) or _parse_rendered_error(stream)
            if found is not None:
                return found
        raise HarnessError(
            f"cargo lambda invoke {name}: exit {out.returncode}\nstdout: {out.stdout[-3000:]}\n"
            f"stderr: {out.stderr[-3000:]}\n{self.function_log_tail()}")

    # -- scenarios and the deployment's resources -----------------------------------------------

    def client(self, service: str):
        if service not in self._boto:
            import boto3
            from botocore.config import Config

            self._boto[service] = boto3.client(
                service, region_name=REGION, endpoint_url=self.endpoint, aws_access_key_id="testing",
                aws_secret_access_key="testing", config=Config(retries={"max_attempts": 2}))
        return self._boto[service]

    def serve(self, scenario: str) -> dict:
        """Serves tests/scenarios/<scenario>: moto reset and seeded (EKS pointing at the
        Kubernetes stand-in), the stand-in's state replaced, then the deployment's resources
        created again (the seed resets moto). Returns moto's seed answer."""
        d = SCENARIOS / scenario
        if not (d / "manifest.json").exists():
            raise HarnessError(f"no scenario {scenario!r} under {SCENARIOS}")
        seeded = self.moto.checked({"cmd": "seed", "scenario": str(d), "clusterEndpoint": self.kube.ready["url"],
                                    "clusterCaData": self.kube.ready["caData"]}, timeout=300)
        self.kube.checked({"cmd": "load", "state": str(d / "k8s")})
        self.kube.checked({"cmd": "reset-requests"})
        self._create_deployment_resources()
        self.reset_deliveries()
        self.scenario = scenario
        return seeded

    def _create_deployment_resources(self) -> None:
        sns, sqs = self.client("sns"), self.client("sqs")
        topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        if topic != TOPIC_ARN:
            raise HarnessError(f"moto made the topic {topic}, the function is configured with {TOPIC_ARN}")
        self.queue_url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        self.secret_arn = self.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=self.slack_url)["ARN"]
        self.client("cloudwatch").put_metric_alarm(**ALARM)

    # -- what the function delivered ----------------------------------------------------------

    def reset_deliveries(self) -> None:
        self.sink.checked({"cmd": "reset"})
        self.sns_delivered()

    def slack_received(self) -> list[dict]:
        with urllib.request.urlopen(f"{self._sink_base}/_received", timeout=10) as r:
            return json.loads(r.read())

    def slack_fail(self, status: int, times: int) -> None:
        self.sink.checked({"cmd": "fail", "status": status, "times": times})

    def sns_delivered(self) -> list[dict]:
        """Drains the SQS queue subscribed to the topic; returns the SNS envelopes (Type,
        Subject, Message, MessageAttributes, ...), oldest first."""
        if not self.queue_url:
            return []
        sqs = self.client("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                      VisibilityTimeout=30).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


_RENDERED_ERROR = re.compile(r"^\s*Error:\s*(?P<type>[A-Za-z0-9_.:]+)\s*$", re.M)
_RENDERED_LINE = re.compile(r"^\s*[×x│|]\s?(?P<text>.*)$")


def _parse_rendered_error(text: str) -> dict | None:
    """cargo lambda invoke's rendering of an error payload -> {"errorType", "errorMessage"}."""
    m = _RENDERED_ERROR.search(text or "")
    if not m:
        return None
    message = []
    for line in text[m.end():].splitlines():
        if not line.strip():
            if message:
                break
            continue
        part = _RENDERED_LINE.match(line)
        if not part:
            break
        message.append(part.group("text").strip())
    return {"errorType": m.group("type"), "errorMessage": " ".join(message)}


def _find_error_payload(text: str) -> dict | None:
    """The first JSON object in `text` that has an errorType."""
    if not text:
        return None
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, _ = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "errorType" in obj:
            return obj
        i = text.find("{", i + 1)
    return None
