"""Tests of the kube-apiserver stand-in: the real kubectl as the yardstick, plus plain HTTP.

Run: ~/.cache/eks-lb-doctor/venv/bin/python -m pytest tests/standins -q
Needs moto[server], boto3, pyyaml, cryptography and kubectl (kubectl tests skip without it).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVER = HERE / "kube_apiserver.py"
SCENARIOS = HERE.parent / "scenarios"
HEALTHY = SCENARIOS / "healthy" / "k8s"
LB_ERRORS = SCENARIOS / "lb-controller-errors" / "k8s"
sys.path.insert(0, str(HERE))

from eks_token import make_token, write_kubeconfig  # noqa: E402

CLUSTER = "demo-cluster"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
USER_ARN = "arn:aws:sts::123456789012:user/moto"  # moto's caller for credentials it did not issue
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")

APP_PODS = ["alb-instance-7d9c6b5f4-abcde", "alb-instance-7d9c6b5f4-fghij"]
# Evicted under memory pressure: still listed (terminal pods stay until garbage-collected).
EVICTED = "alb-instance-7d9c6b5f4-zx8vq"
CONTROLLER_POD = "aws-load-balancer-controller-5d8f7c9b6d-q2w4e"
NODE_A = "ip-192-168-70-10.ec2.internal"


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("KUBE")}
    env.update(AWS_ENV, NO_PROXY="127.0.0.1,localhost", **extra)
    return env


class StandIn:
    """The stand-in as a child process: ready line, control commands, clean stop."""

    def __init__(self, sts_endpoint, workdir: Path, *extra, state=HEALTHY):
        workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = workdir / "stderr.log"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--state", str(state), "--sts-endpoint", sts_endpoint,
             "--cluster-name", CLUSTER, "--workdir", str(workdir), "--verbose", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=_clean_env())
        ready = self._read(20)
        self.url, self.ca_file, self.ca_data = ready["url"], ready["caFile"], ready["caData"]
        ctx = ssl.create_default_context(cafile=self.ca_file)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPSHandler(context=ctx))

    def _read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(f"stand-in said nothing; stderr:\n{self.stderr_path.read_text()[-3000:]}")
        return json.loads(line)

    def control(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        answer = self._read(10)
        assert answer.get("ok"), answer
        return answer

    def log(self) -> str:
        return self.stderr_path.read_text()

    def call(self, method, path, token=None, body=None, ctype=None, accept="application/json"):
        """-> (status, content type, parsed JSON or text)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if ctype:
            req.add_header("Content-Type", ctype)
        if accept:
            req.add_header("Accept", accept)
        try:
            with self.opener.open(req, timeout=10) as r:
                status, ct, raw = r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            status, ct, raw = e.code, e.headers.get("Content-Type", ""), e.read()
        return status, ct, (json.loads(raw) if ct.startswith("application/json") else raw.decode())

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sts():
    """moto's server on 127.0.0.1 (ephemeral port) standing in for STS."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def token(sts):
    return make_token(sts, CLUSTER)


@pytest.fixture(scope="module")
def api(sts, tmp_path_factory):
    s = StandIn(sts, tmp_path_factory.mktemp("apiserver"))
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fresh(api):
    """Every test starts from the healthy dump, with no faults, policy or request log."""
    api.control(cmd="load", state=str(HEALTHY))
    api.control(cmd="clear-faults")
    api.control(cmd="authz", rules=None)
    api.control(cmd="reset-requests")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")  # kubectl's discovery cache lives here


@pytest.fixture(scope="module")
def kubeconfig(api, token, tmp_path_factory):
    return write_kubeconfig(tmp_path_factory.mktemp("kc") / "config", api.url, api.ca_data, token=token)


@pytest.fixture
def kubectl(kubeconfig, home):
    def run(*args, config=None, check=True):
        r = subprocess.run([KUBECTL, "--kubeconfig", str(config or kubeconfig), *args], capture_output=True,
                           text=True, timeout=30, env=_clean_env(HOME=str(home)))
        if check:
            assert r.returncode == 0, f"kubectl {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
        return r
    return run


def rows(output: str) -> list:
    return [line.split() for line in output.strip().splitlines()]


# ---------------------------------------------------------------------------------------------
# kubectl yardstick
# ---------------------------------------------------------------------------------------------

@needs_kubectl
def test_kubectl_get_pods_by_label(kubectl, api):
    out = rows(kubectl("get", "pods", "-l", "app=alb-instance").stdout)
    assert out[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[0] for r in out[1:]] == APP_PODS + [EVICTED]
    # app + log-router sidecar; the evicted pod's containers were killed (printPod's reason)
    assert [r[1:4] for r in out[1:]] == [["2/2", "Running", "0"]] * 2 + [["0/2", "ContainerStatusUnknown", "0"]]
    requests = api.control(cmd="requests")["requests"]
    assert any(r.startswith("GET /api/v1/namespaces/default/pods?labelSelector=app%3Dalb-instance") for r in requests)
    assert not any(r.startswith("GET /api/v1/pods") for r in requests), "listed pods cluster-wide"


@needs_kubectl
def test_kubectl_jsonpath_selector(kubectl):
    assert kubectl("get", "svc", "alb-instance", "-o", "jsonpath={.spec.selector}").stdout == '{"app":"alb-instance"}'


@needs_kubectl
def test_kubectl_describe_service(kubectl):
    out = kubectl("describe", "svc", "alb-instance").stdout
    assert "Selector:                 app=alb-instance" in out
    endpoints = next(line for line in out.splitlines() if line.startswith("Endpoints:"))
    assert "192.168.72.31:80" in endpoints and "192.168.101.44:80" in endpoints
    assert "External Traffic Policy:  Cluster" in out
    assert "Events:" in out


@needs_kubectl
def test_kubectl_get_endpoints(kubectl):
    out = rows(kubectl("get", "endpoints", "alb-instance").stdout)
    assert out[0] == ["NAME", "ENDPOINTS", "AGE"]
    assert out[1][:2] == ["alb-instance", "192.168.72.31:80,192.168.101.44:80"]


@needs_kubectl
def test_kubectl_logs(kubectl):
    expected = (HEALTHY / "logs" / "kube-system" / f"{CONTROLLER_POD}.log").read_text()
    assert kubectl("-n", "kube-system", "logs", CONTROLLER_POD).stdout == expected
    pod_log = (HEALTHY / "logs" / "default" / f"{APP_PODS[0]}.log").read_text()
    assert kubectl("logs", APP_PODS[0], "--tail=1").stdout == pod_log.splitlines(keepends=True)[-1]


@needs_kubectl
def test_kubectl_patch_dry_run_does_not_persist(kubectl):
    out = kubectl("patch", "svc", "alb-instance", "-p", '{"spec":{"externalTrafficPolicy":"Local"}}',
                  "--dry-run=server", "-o", "jsonpath={.spec.externalTrafficPolicy}").stdout
    assert out == "Local"
    assert kubectl("get", "svc", "alb-instance", "-o", "jsonpath={.spec.externalTrafficPolicy}").stdout == "Cluster"


@needs_kubectl
def test_kubectl_rollout_restart_daemonset(kubectl):
    before = json.loads(kubectl("-n", "kube-system", "get", "ds", "kube-proxy", "-o", "json").stdout)
    assert kubectl("-n", "kube-system", "rollout", "restart", "daemonset", "kube-proxy").stdout.strip() == \
        "daemonset.apps/kube-proxy restarted"
    after = json.loads(kubectl("-n", "kube-system", "get", "ds", "kube-proxy", "-o", "json").stdout)
    assert "kubectl.kubernetes.io/restartedAt" in after["spec"]["template"]["metadata"]["annotations"]
    assert after["metadata"]["generation"] == before["metadata"].get("generation", 1) + 1
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["spec"]["template"]["spec"] == before["spec"]["template"]["spec"]  # merged, not replaced


@needs_kubectl
def test_kubectl_crd_short_name(kubectl):
    out = rows(kubectl("get", "tgb", "-A").stdout)
    assert out[0] == ["NAMESPACE", "NAME", "SERVICE-NAME", "SERVICE-PORT", "TARGET-TYPE", "AGE"]
    assert out[1][:5] == ["default", "k8s-default-albinsta-6b1c1d4f2e", "alb-instance", "80", "instance"]


@needs_kubectl
def test_kubectl_field_selector(kubectl):
    out = rows(kubectl("get", "pods", "--field-selector", f"spec.nodeName={NODE_A}").stdout)
    assert [r[0] for r in out[1:]] == [APP_PODS[0], EVICTED]
    out = rows(kubectl("get", "pods", "--field-selector", f"spec.nodeName={NODE_A},status.phase=Running").stdout)
    assert [r[0] for r in out[1:]] == [APP_PODS[0]]
    out = rows(kubectl("get", "pods", "-A", "--field-selector", f"spec.nodeName={NODE_A}").stdout)
    assert sorted(r[1] for r in out[1:]) == sorted([APP_PODS[0], EVICTED, CONTROLLER_POD, "kube-proxy-7xk2m"])


@needs_kubectl
def test_kubectl_not_found(kubectl):
    r = kubectl("get", "pod", "nope", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'


@needs_kubectl
def test_kubectl_forbidden_by_authz_file(sts, token, home, tmp_path):
    policy = tmp_path / "authz.json"
    policy.write_text(json.dumps({"arn:aws:sts::*:user/*": {"allow": [
        {"verbs": ["get", "list"], "resources": ["services", "endpoints"], "namespaces": ["*"]}]}}))
    # Also the legacy discovery path: kubectl must be as happy with plain APIResourceLists.
    s = StandIn(sts, tmp_path / "srv", "--authz", str(policy), "--discovery", "legacy")
    try:
        kc = write_kubeconfig(tmp_path / "kc", s.url, s.ca_data, token=token)
        run = lambda *a: subprocess.run([KUBECTL, "--kubeconfig", str(kc), *a], capture_output=True,  # noqa: E731
                                        text=True, timeout=30, env=_clean_env(HOME=str(tmp_path)))
        r = run("get", "pods")
        assert r.returncode == 1
        assert r.stderr.strip() == (f'Error from server (Forbidden): pods is forbidden: User "{USER_ARN}" cannot '
                                    'list resource "pods" in API group "" in the namespace "default"')
        r = run("-n", "kube-system", "logs", CONTROLLER_POD)
        assert f'pods "{CONTROLLER_POD}" is forbidden' in r.stderr
        r = run("get", "nodes")
        assert 'cannot list resource "nodes" in API group "" at the cluster scope' in r.stderr
        r = run("get", "svc")
        assert r.returncode == 0 and "alb-instance" in r.stdout
        assert run("auth", "can-i", "list", "pods").stdout.strip() == "no"
        assert run("auth", "can-i", "get", "services", "-n", "kube-system").stdout.strip() == "yes"
        assert any(q.startswith("GET /api/v1?") for q in s.control(cmd="requests")["requests"])
    finally:
        s.stop()


@needs_kubectl
def test_shipped_rbac_as_seen_by_kubectl(kubectl, api):
    """infra/k8s/rbac.yaml, enforced by the stand-in (authz-rbac): the diagnose group only
    reads; the remediate group patches Services and Ingresses, and only the kube-proxy
    DaemonSet (resourceNames)."""
    rbac = str(HERE.parents[1] / "infra" / "k8s" / "rbac.yaml")
    can = lambda *a: kubectl("auth", "can-i", *a, check=False).stdout.strip()  # noqa: E731
    assert api.control(cmd="authz-rbac", file=rbac, groups=["eks-lb-doctor-diagnose"])["ok"]
    assert can("list", "pods", "-A") == "yes"
    assert can("get", "pods/log", "-n", "kube-system") == "yes"
    assert can("list", "targetgroupbindings.elbv2.k8s.aws", "-A") == "yes"
    assert can("patch", "services", "-n", "default") == "no"
    assert can("watch", "pods") == "no"
    assert can("get", "secrets") == "no"
    r = kubectl("patch", "service", "alb-instance", "-p", '{"spec":{"externalTrafficPolicy":"Cluster"}}',
                "--dry-run=server", check=False)
    assert r.returncode == 1 and "cannot patch resource" in r.stderr
    api.control(cmd="authz-rbac", file=rbac, groups=["eks-lb-doctor-diagnose", "eks-lb-doctor-remediate"])
    assert can("patch", "services", "-n", "default") == "yes"
    assert can("patch", "ingresses.networking.k8s.io", "-n", "default") == "yes"
    assert can("patch", "daemonsets.apps/kube-proxy", "-n", "kube-system") == "yes"
    assert can("patch", "daemonsets.apps/aws-node", "-n", "kube-system") == "no"
    assert can("delete", "services", "-n", "default") == "no"
    kubectl("-n", "kube-system", "rollout", "restart", "daemonset", "kube-proxy")
    kubectl("patch", "service", "alb-instance", "-p", '{"spec":{"externalTrafficPolicy":"Cluster"}}',
            "--dry-run=server")


def test_kubectl_unauthorized_with_bad_token(kubectl, api, tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", api.url, api.ca_data, token="k8s-aws-v1.bm90LWEtdXJs")
    r = kubectl("get", "pods", config=kc, check=False)
    assert r.returncode == 1
    assert "error: You must be logged in to the server" in r.stderr


@needs_kubectl
def test_kubectl_exec_plugin_kubeconfig(kubectl, api, sts, tmp_path):
    """Like `aws eks update-kubeconfig`: kubectl runs the token command itself."""
    kc = write_kubeconfig(tmp_path / "kc", api.url, api.ca_data,
                          exec_command=[sys.executable, str(HERE / "eks_token.py"), "--sts-endpoint", sts,
                                        "--cluster", CLUSTER, "--exec-credential"])
    assert "alb-instance" in kubectl("get", "svc", config=kc).stdout


@needs_kubectl
def test_kubectl_auth_whoami(kubectl):
    assert USER_ARN in kubectl("auth", "whoami").stdout


@needs_kubectl
def test_kubectl_injected_500(kubectl, api):
    api.control(cmd="fault", path=r"^/api/v1/namespaces/default/pods\?", status=500, times=1)
    r = kubectl("get", "pods", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error from server (InternalError): Internal error occurred: injected fault"
    assert len(rows(kubectl("get", "pods").stdout)) == 4  # the fault was used up: header + 3 pods


@needs_kubectl
def test_kubectl_after_load(kubectl, api):
    api.control(cmd="load", state=str(LB_ERRORS))
    names = [r[0] for r in rows(kubectl("get", "pods", "-l", "app=alb-instance").stdout)[1:]]
    assert names == ["alb-instance-7d9c6b5f4-k2v9x", "alb-instance-7d9c6b5f4-m4n8p", EVICTED]


# ---------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------

def _token_url(tok: str) -> str:
    b64 = tok[len("k8s-aws-v1."):]
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode()


def _url_token(url: str) -> str:
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def test_token_looks_like_aws_eks_get_token(token, sts):
    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    url = urllib.parse.urlsplit(_token_url(token))
    q = dict(urllib.parse.parse_qsl(url.query))
    assert f"{url.scheme}://{url.netloc}" == sts and url.path == "/"
    assert q["Action"] == "GetCallerIdentity" and q["X-Amz-Expires"] == "60"
    assert q["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id" and q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"


def test_health_is_public_but_api_is_not(api, token):
    assert api.call("GET", "/healthz", accept=None)[::2] == (200, "ok")
    assert api.call("GET", "/version")[2]["gitVersion"].startswith("v1.32")
    status, _, body = api.call("GET", "/api")
    assert status == 401
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert api.call("GET", "/api", token)[0] == 200


def test_token_for_another_cluster_is_refused(api, sts):
    other = make_token(sts, "other-cluster")
    assert api.call("GET", "/api/v1/namespaces/default/pods", other)[0] == 401
    assert "signature does not match" in api.log()


def test_token_pointing_elsewhere_is_refused_without_contacting_it(api, token):
    url = urllib.parse.urlsplit(_token_url(token))
    for host in ("sts.us-east-1.amazonaws.com", "127.0.0.2:" + str(url.port), "localhost.evil:" + str(url.port)):
        forged = _url_token(urllib.parse.urlunsplit(url._replace(scheme="https", netloc=host)))
        assert api.call("GET", "/api/v1/namespaces", forged)[0] == 401
        assert f"token's STS host https://{host} is not" in api.log()


def test_expired_and_malformed_tokens_are_refused(api, sts, token):
    # A key the stand-in has no secret for: moto's word is taken, but the date is still checked.
    unknown = make_token(sts, CLUSTER, credentials={"aws_access_key_id": "AKIAUNKNOWN", "aws_secret_access_key": "x"})
    assert api.call("GET", "/api/v1/namespaces", unknown)[0] == 200
    old = re.sub(r"X-Amz-Date=\d{8}T\d{6}Z", "X-Amz-Date=20200101T000000Z", _token_url(unknown))
    assert api.call("GET", "/api/v1/namespaces", _url_token(old))[0] == 401
    assert "X-Amz-Date parameter is expired" in api.log()
    for bad in (token.replace("k8s-aws-v1.", "k8s-aws-v2."), "k8s-aws-v1.!!!",
                _url_token(_token_url(token).replace("Action=GetCallerIdentity", "Action=GetSessionToken")),
                _url_token(_token_url(token).replace("X-Amz-Expires=60", "X-Amz-Expires=3600")),
                _url_token(_token_url(token).replace("host%3Bx-k8s-aws-id", "host"))):
        assert api.call("GET", "/api/v1/namespaces", bad)[0] == 401


def test_assumed_role_arn_comes_from_sts(api, sts):
    import boto3

    creds = boto3.client("sts", endpoint_url=sts, region_name="us-east-1").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/reader", RoleSessionName="alice")["Credentials"]
    role_token = make_token(sts, CLUSTER, credentials={"aws_access_key_id": creds["AccessKeyId"],
                                                       "aws_secret_access_key": creds["SecretAccessKey"],
                                                       "aws_session_token": creds["SessionToken"]})
    api.control(cmd="authz", rules={"arn:aws:sts::123456789012:assumed-role/reader/*": {"allow": [
        {"verbs": ["get", "list"], "resources": ["services", "pods/log"], "namespaces": ["default"]}]}})
    assert api.call("GET", "/api/v1/namespaces/default/services", role_token)[0] == 200
    assert api.call("GET", f"/api/v1/namespaces/default/pods/{APP_PODS[0]}/log?container=nginx", role_token)[0] == 200
    status, _, body = api.call("GET", f"/api/v1/namespaces/default/pods/{APP_PODS[0]}", role_token)
    assert status == 403
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f'pods "{APP_PODS[0]}" is forbidden: User "arn:aws:sts::123456789012:assumed-role/'
                               'reader/alice" cannot get resource "pods" in API group "" in the namespace "default"',
                    "reason": "Forbidden", "details": {"name": APP_PODS[0], "kind": "pods"}, "code": 403}
    status, _, body = api.call("GET", "/api/v1/namespaces/kube-system/services", role_token)
    assert status == 403 and body["details"] == {"kind": "services"}


# ---------------------------------------------------------------------------------------------
# Reads, selectors, printing
# ---------------------------------------------------------------------------------------------

def _names(body):
    return sorted(i["metadata"]["name"] for i in body["items"])


@pytest.mark.parametrize("path, selector, expected", [
    ("/api/v1/pods", "app in (alb-instance, other)", APP_PODS + [EVICTED]),
    ("/api/v1/pods", "app=alb-instance,pod-template-hash==7d9c6b5f4", APP_PODS + [EVICTED]),
    ("/api/v1/namespaces/kube-system/pods", "k8s-app", ["kube-proxy-7xk2m", "kube-proxy-9pl4n"]),
    ("/api/v1/namespaces/kube-system/pods", "app notin (alb-instance)",
     ["aws-load-balancer-controller-5d8f7c9b6d-q2w4e", "aws-load-balancer-controller-5d8f7c9b6d-r5t6y",
      "kube-proxy-7xk2m", "kube-proxy-9pl4n"]),
    ("/api/v1/pods", "!k8s-app,app!=alb-instance",
     ["aws-load-balancer-controller-5d8f7c9b6d-q2w4e", "aws-load-balancer-controller-5d8f7c9b6d-r5t6y"]),
    ("/api/v1/pods", "k8s-app in (kube-proxy),controller-revision-hash,pod-template-generation>0",
     ["kube-proxy-7xk2m", "kube-proxy-9pl4n"]),
    ("/api/v1/namespaces/default/pods", "app in ()", []),
])
def test_label_selectors(api, token, path, selector, expected):
    status, _, body = api.call("GET", f"{path}?labelSelector={urllib.parse.quote(selector)}", token)
    assert status == 200, body
    assert _names(body) == sorted(expected)


def test_bad_selectors_are_400(api, token):
    for query in ("labelSelector=" + urllib.parse.quote("app in (a b)"), "labelSelector=" + urllib.parse.quote("=x"),
                  "fieldSelector=spec.foo%3Dbar"):
        status, _, body = api.call("GET", f"/api/v1/pods?{query}", token)
        assert status == 400 and body["reason"] == "BadRequest", body
    assert api.call("GET", "/api/v1/pods?fieldSelector=spec.foo%3Dbar", token)[2]["message"] == \
        "field label not supported: spec.foo"


def test_field_selectors(api, token):
    q = urllib.parse.quote(f"status.phase=Running,spec.nodeName!={NODE_A}")
    assert _names(api.call("GET", f"/api/v1/pods?fieldSelector={q}", token)[2]) == \
        ["alb-instance-7d9c6b5f4-fghij", "aws-load-balancer-controller-5d8f7c9b6d-r5t6y", "kube-proxy-9pl4n"]
    q = urllib.parse.quote(f"involvedObject.kind=Pod,involvedObject.name=={APP_PODS[0]}")
    body = api.call("GET", f"/api/v1/namespaces/default/events?fieldSelector={q}", token)[2]
    assert len(body["items"]) == 4
    q = urllib.parse.quote("metadata.name=kube-system")
    assert _names(api.call("GET", f"/api/v1/namespaces?fieldSelector={q}", token)[2]) == ["kube-system"]


def test_list_and_object_shapes(api, token):
    body = api.call("GET", "/api/v1/namespaces/default/pods", token)[2]
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    assert all("kind" not in i and "apiVersion" not in i for i in body["items"])  # like the real server
    tgbs = api.call("GET", "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings", token)[2]
    assert tgbs["kind"] == "TargetGroupBindingList"
    assert tgbs["items"][0]["kind"] == "TargetGroupBinding"  # custom resources keep them
    for path in ("/api/v1/nodes", "/apis/networking.k8s.io/v1/ingressclasses", "/api/v1/namespaces"):
        for item in api.call("GET", path, token)[2]["items"]:
            md = item["metadata"]
            assert md["uid"] and md["resourceVersion"] and md["creationTimestamp"] and "namespace" not in md
    pod = api.call("GET", f"/api/v1/namespaces/default/pods/{APP_PODS[0]}", token)[2]
    assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"
    assert api.call("GET", f"/api/v1/pods/{APP_PODS[0]}", token)[0] == 404  # no cluster-wide get


def test_not_found_status_shapes(api, token):
    status, _, body = api.call("GET", "/api/v1/namespaces/default/pods/nope", token)
    assert status == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "nope" not found', "reason": "NotFound",
                    "details": {"name": "nope", "kind": "pods"}, "code": 404}
    body = api.call("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/nope", token)[2]
    assert body["message"] == 'daemonsets.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "daemonsets"}
    body = api.call("GET", "/apis/example.com/v1/widgets", token)[2]
    assert body["code"] == 404 and body["message"] == "the server could not find the requested resource"


def test_discovery(api, token):
    core = api.call("GET", "/api/v1", token)[2]
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["shortNames"] == ["po"] and pods["namespaced"] and pods["kind"] == "Pod" and "list" in pods["verbs"]
    assert {"pods/log", "pods/status"} <= {r["name"] for r in core["resources"]}
    groups = {g["name"] for g in api.call("GET", "/apis", token)[2]["groups"]}
    assert {"apps", "discovery.k8s.io", "networking.k8s.io", "elbv2.k8s.aws"} <= groups
    elb = api.call("GET", "/apis/elbv2.k8s.aws/v1beta1", token)[2]
    assert next(r for r in elb["resources"] if r["name"] == "targetgroupbindings")["shortNames"] == ["tgb"]
    status, ct, agg = api.call("GET", "/apis", token,
                               accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                                      "application/json")
    assert status == 200 and "as=APIGroupDiscoveryList" in ct and agg["kind"] == "APIGroupDiscoveryList"
    assert api.call("GET", "/openapi/v2", token)[0] == 404


def test_tables(api, token):
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = api.call("GET", "/api/v1/namespaces/default/services", token, accept=accept)[2]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    assert table["rows"][0]["cells"][:5] == ["alb-instance", "NodePort", "10.100.142.37", "<none>", "80:30080/TCP"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    full = api.call("GET", "/api/v1/namespaces/default/services/alb-instance?includeObject=Object", token,
                    accept=accept)[2]
    assert full["rows"][0]["object"]["spec"]["type"] == "NodePort"
    meta = api.call("GET", "/api/v1/namespaces/default/pods", token,
                    accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")[2]
    assert meta["kind"] == "PartialObjectMetadataList" and "spec" not in meta["items"][0]


def test_pod_logs(api, token):
    base = f"/api/v1/namespaces/default/pods/{APP_PODS[0]}/log"
    text = (HEALTHY / "logs" / "default" / f"{APP_PODS[0]}.log").read_text()
    # Two containers (and an init container): the API server wants to be told which.
    status, _, body = api.call("GET", base, token, accept=None)
    assert status == 400 and body["message"] == (
        f"a container name must be specified for pod {APP_PODS[0]}, choose one of: [nginx log-router] "
        "or one of the init containers: [render-config]"), body
    status, ct, body = api.call("GET", base + "?container=nginx", token, accept=None)
    assert (status, ct, body) == (200, "text/plain", text)
    assert api.call("GET", base + "?tailLines=2&container=nginx", token)[2] == \
        "".join(text.splitlines(keepends=True)[-2:])
    status, _, body = api.call("GET", base + "?previous=true&container=nginx", token)
    assert status == 400 and body["message"] == f'previous terminated container "nginx" in pod "{APP_PODS[0]}" not found'
    assert api.call("GET", base + "?container=sidecar", token)[2]["message"] == \
        f"container sidecar is not valid for pod {APP_PODS[0]}"
    assert api.call("GET", "/api/v1/namespaces/default/pods/nope/log", token)[0] == 404


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------

SVC = "/api/v1/namespaces/default/services/alb-instance"
DS = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"
MERGE, JSONP, SMP = "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json"


def test_merge_patch_semantics_and_resource_version(api, token):
    before = api.call("GET", SVC, token)[2]
    status, _, after = api.call("PATCH", SVC, token, {"metadata": {"annotations": {"a": "1", "b": "2"}},
                                                       "spec": {"externalTrafficPolicy": "Local"}}, MERGE)
    assert status == 200
    assert after["metadata"]["annotations"] == {"a": "1", "b": "2"}
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["spec"]["ports"] == before["spec"]["ports"]  # untouched fields stay
    assert api.call("GET", SVC, token)[2] == after
    removed = api.call("PATCH", SVC, token, {"metadata": {"annotations": {"a": None}}}, MERGE)[2]
    assert removed["metadata"]["annotations"] == {"b": "2"}
    noop = api.call("PATCH", SVC, token, {"metadata": {"annotations": {"b": "2"}}}, MERGE)[2]
    assert noop["metadata"]["resourceVersion"] == removed["metadata"]["resourceVersion"]  # a no-op is no write
    replaced = api.call("PATCH", SVC, token, {"spec": {"ports": [{"port": 8080, "protocol": "TCP"}]}}, MERGE)[2]
    assert replaced["spec"]["ports"] == [{"port": 8080, "protocol": "TCP"}]  # merge patch replaces lists


def test_json_patch_semantics(api, token):
    ops = [{"op": "test", "path": "/spec/externalTrafficPolicy", "value": "Cluster"},
           {"op": "replace", "path": "/spec/externalTrafficPolicy", "value": "Local"},
           {"op": "add", "path": "/metadata/annotations", "value": {}},
           {"op": "add", "path": "/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-type",
            "value": "nlb"},
           {"op": "add", "path": "/spec/ports/-", "value": {"name": "https", "port": 443, "protocol": "TCP"}},
           {"op": "copy", "from": "/spec/selector", "path": "/metadata/labels"},
           {"op": "remove", "path": "/spec/sessionAffinity"}]
    status, _, svc = api.call("PATCH", SVC, token, ops, JSONP)
    assert status == 200, svc
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["metadata"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 443]
    assert svc["metadata"]["labels"] == {"app": "alb-instance"} and "sessionAffinity" not in svc["spec"]
    for bad in ([{"op": "test", "path": "/spec/type", "value": "LoadBalancer"}],
                [{"op": "remove", "path": "/metadata/annotations/nope"}],
                [{"op": "replace", "path": "/spec/nope", "value": 1}]):
        status, _, body = api.call("PATCH", SVC, token, bad, JSONP)
        assert status == 422 and body["reason"] == "Invalid" and body["kind"] == "Status", body
        assert body["message"] == "the server rejected our request due to an error in our request"
    assert api.call("GET", SVC, token)[2] == svc  # failed patches change nothing


def test_strategic_merge_patch(api, token):
    before = api.call("GET", DS, token)[2]
    container = before["spec"]["template"]["spec"]["containers"][0]
    patch = {"spec": {"template": {"metadata": {"annotations": {"x": "y"}},
                                   "spec": {"containers": [{"name": container["name"], "image": "kube-proxy:v2"}]}}}}
    status, _, after = api.call("PATCH", DS, token, patch, SMP)
    assert status == 200, after
    merged = after["spec"]["template"]["spec"]["containers"]
    assert len(merged) == 1 and merged[0]["image"] == "kube-proxy:v2"
    assert {k: v for k, v in merged[0].items() if k != "image"} == {k: v for k, v in container.items() if k != "image"}
    assert after["spec"]["template"]["metadata"]["annotations"] == {"x": "y"}
    assert after["metadata"]["generation"] == before["metadata"].get("generation", 1) + 1
    svc = api.call("PATCH", SVC, token, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}, SMP)[2]
    assert svc["spec"]["ports"] == [{"name": "http", "nodePort": 30080, "port": 80, "protocol": "TCP",
                                     "targetPort": 8080}]  # merged by port
    status, _, body = api.call("PATCH", "/apis/elbv2.k8s.aws/v1beta1/namespaces/default/targetgroupbindings/"
                                        "k8s-default-albinsta-6b1c1d4f2e", token, {"spec": {}}, SMP)
    assert status == 415 and body["reason"] == "UnsupportedMediaType"  # no SMP for custom resources


def test_dry_run_does_not_persist(api, token):
    before = api.call("GET", SVC, token)[2]
    status, _, dry = api.call("PATCH", SVC + "?dryRun=All", token, {"spec": {"externalTrafficPolicy": "Local"}}, MERGE)
    assert status == 200 and dry["spec"]["externalTrafficPolicy"] == "Local"
    assert api.call("GET", SVC, token)[2] == before
    assert api.call("DELETE", SVC + "?dryRun=All", token)[0] == 200
    assert api.call("GET", SVC, token)[0] == 200


def test_write_errors(api, token):
    status, _, body = api.call("PATCH", SVC, token, {"spec": {}}, "application/json")
    assert status == 415 and body["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: ")
    status, _, body = api.call("PATCH", SVC, token, {"metadata": {"resourceVersion": "1"}, "spec": {}}, MERGE)
    assert status == 409
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'Operation cannot be fulfilled on services "alb-instance": the object has been '
                               "modified; please apply your changes to the latest version and try again",
                    "reason": "Conflict", "details": {"name": "alb-instance", "kind": "services"}, "code": 409}
    status, _, body = api.call("PATCH", SVC, token, {"spec": {"externalTrafficPolicy": "Bogus"}}, MERGE)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == ('Service "alb-instance" is invalid: spec.externalTrafficPolicy: Unsupported value: '
                               '"Bogus": supported values: "Cluster", "Local"')
    assert body["details"]["causes"][0]["field"] == "spec.externalTrafficPolicy"
    assert api.call("PATCH", SVC, token, b"{not json", MERGE)[0] == 400
    assert api.call("PATCH", "/api/v1/namespaces/default/services/nope", token, {}, MERGE)[0] == 404


def test_update_create_delete(api, token):
    svc = api.call("GET", SVC, token)[2]
    svc["metadata"].setdefault("labels", {})["tier"] = "web"
    status, _, updated = api.call("PUT", SVC, token, svc)
    assert status == 200 and updated["metadata"]["labels"]["tier"] == "web"
    assert api.call("PUT", SVC, token, svc)[0] == 409  # stale resourceVersion
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "v"}}
    status, _, created = api.call("POST", "/api/v1/namespaces/default/configmaps", token, cm)
    assert status == 201 and created["metadata"]["uid"] and created["metadata"]["namespace"] == "default"
    status, _, body = api.call("POST", "/api/v1/namespaces/default/configmaps", token, cm)
    assert status == 409 and body["reason"] == "AlreadyExists"
    assert api.call("DELETE", "/api/v1/namespaces/default/configmaps/cfg", token)[0] == 200
    assert api.call("GET", "/api/v1/namespaces/default/configmaps/cfg", token)[0] == 404


# ---------------------------------------------------------------------------------------------
# Control channel and lifecycle
# ---------------------------------------------------------------------------------------------

def test_latency_and_faults(api, token):
    api.control(cmd="latency", path="^/version", ms=300)
    t = time.monotonic()
    assert api.call("GET", "/version", token)[0] == 200
    assert time.monotonic() - t >= 0.3
    api.control(cmd="fault", path="/services", status=503)
    for _ in range(2):  # no `times`: until cleared
        status, _, body = api.call("GET", SVC, token)
        assert status == 503 and body["reason"] == "ServiceUnavailable"
    api.control(cmd="clear-faults")
    assert api.call("GET", SVC, token)[0] == 200
    requests = api.control(cmd="requests")["requests"]
    assert requests[0] == "GET /version" and requests.count(f"GET {SVC}") == 3


def test_exits_on_stdin_eof_and_sigterm(sts, tmp_path):
    for how in ("eof", "sigterm"):
        s = StandIn(sts, tmp_path / how)
        if how == "eof":
            s.proc.stdin.close()
        else:
            s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(5) == 0
        s.stop()
