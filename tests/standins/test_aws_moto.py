"""Tests of the AWS stand-in (aws_moto.py).

For every scenario dump: seed it, read it back through the real APIs (boto3 against the moto
server, filtered the way a client would) and check that every field of the serde models in
functions/doctor/src/aws.rs has the dump's value.  The models are parsed from aws.rs, so a field
added there is checked here without touching this file.  Lists are compared as sets (sorted),
missing values take serde's defaults, exactly as the Rust side would see them.

    ~/.cache/eks-lb-doctor/venv/bin/python -m pytest tests/standins/test_aws_moto.py -q
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCENARIOS = sorted(p.parent for p in (ROOT / "tests" / "scenarios").glob("*/manifest.json"))
AWS_RS = ROOT / "functions" / "doctor" / "src" / "aws.rs"

sys.path.insert(0, str(HERE))
import aws_moto  # noqa: E402

# ---------------------------------------------------------------------------------------------
# the serde models of aws.rs
# ---------------------------------------------------------------------------------------------

STRUCT_RE = re.compile(r"((?:#\[[^\n]*\]\s*\n)+)pub struct (\w+)\s*\{(.*?)\n\}", re.S)
FIELD_RE = re.compile(r"^\s*pub (\w+):\s*(.+?),\s*$")
NUMBERS = {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "usize", "f64"}


def _json_name(field: str, rename_all: str | None) -> str:
    parts = field.split("_")
    if rename_all == "PascalCase":
        return "".join(p[:1].upper() + p[1:] for p in parts)
    if rename_all == "camelCase":
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    return field


def parse_models(text: str) -> dict:
    """struct name -> [(rust field, JSON key, type string)] for every serde struct."""
    models = {}
    for attrs, name, body in STRUCT_RE.findall(text):
        if "Deserialize" not in attrs:
            continue
        m = re.search(r'rename_all\s*=\s*"(\w+)"', attrs)
        rename_all = m.group(1) if m else None
        fields, rename = [], None
        for line in body.splitlines():
            if r := re.search(r'#\[serde\(rename\s*=\s*"([^"]+)"\)\]', line):
                rename = r.group(1)
                continue
            if f := FIELD_RE.match(line):
                fields.append((f.group(1), rename or _json_name(f.group(1), rename_all), f.group(2).strip()))
                rename = None
        models[name] = fields
    return models


MODELS = parse_models(AWS_RS.read_text())


def project(value, ty: str):
    """What serde (with `default`) would deserialize `value` into, as plain sorted JSON data."""
    if m := re.fullmatch(r"Option<(.+)>", ty):
        return None if value is None else project(value, m.group(1))
    if m := re.fullmatch(r"Vec<(.+)>", ty):
        return sorted((project(v, m.group(1)) for v in value or []), key=lambda v: json.dumps(v, sort_keys=True))
    if ty == "String":
        return "" if value is None else str(value)
    if ty == "bool":
        return bool(value)
    if ty in NUMBERS:
        return 0 if value is None else int(value)
    if ty in MODELS:
        value = value or {}
        return {field: project(value.get(key), fty) for field, key, fty in MODELS[ty]}
    raise AssertionError(f"aws.rs type {ty} not understood by this test")


def test_models_parsed():
    outputs = {n for n in MODELS if n.endswith("Output")}
    assert outputs == {k.split(" ")[0] for k in LIVE}, "every *Output of aws.rs has a live query below"
    assert ("dns_name", "DNSName", "Option<String>") in MODELS["LoadBalancer"]
    assert ("resources_vpc_config", "resourcesVpcConfig", "Option<ClusterVpcConfig>") in MODELS["Cluster"]


# ---------------------------------------------------------------------------------------------
# live queries, the way a client finds things from the target group ARN
# ---------------------------------------------------------------------------------------------


def _dump(d: Path, name: str) -> dict:
    return json.loads((d / "aws" / name).read_text())


def _instance_ids(d: Path) -> list:
    return [i["InstanceId"] for r in _dump(d, "ec2-describe-instances.json")["Reservations"] for i in r["Instances"]]


def _describe_instances(c, d) -> dict:
    """As the tool asks: every instance ID, the ones EC2 says do not exist taken out and
    recorded (`InstanceIdsNotFound`, the project's addition to the output)."""
    wanted = _instance_ids(d) + _dump(d, "ec2-describe-instances.json").get("InstanceIdsNotFound", [])
    missing = []
    while True:
        try:
            out = c["ec2"].describe_instances(InstanceIds=[i for i in wanted if i not in missing])
            break
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidInstanceID.NotFound", e
            named = [i for i in wanted if i in e.response["Error"]["Message"] and i not in missing]
            assert named, e.response["Error"]["Message"]
            missing += named
    if missing:
        out["InstanceIdsNotFound"] = missing
    return out


def _tg(c, d):
    return c["elbv2"].describe_target_groups(TargetGroupArns=[_manifest(d)["targetGroupArn"]])["TargetGroups"][0]


def _vpc_filter(c, d):
    return [{"Name": "vpc-id", "Values": [_tg(c, d)["VpcId"]]}]


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


LIVE = {
    # output struct: (dump file, live call)
    "DescribeTargetGroupsOutput": ("elbv2-describe-target-groups.json", lambda c, d: c["elbv2"].describe_target_groups(
        TargetGroupArns=[_manifest(d)["targetGroupArn"]])),
    "DescribeTargetHealthOutput": ("elbv2-describe-target-health.json", lambda c, d: c["elbv2"].describe_target_health(
        TargetGroupArn=_manifest(d)["targetGroupArn"])),
    "DescribeTagsOutput": ("elbv2-describe-tags.json", lambda c, d: c["elbv2"].describe_tags(
        ResourceArns=[_manifest(d)["targetGroupArn"]])),
    "DescribeLoadBalancersOutput": ("elbv2-describe-load-balancers.json", lambda c, d: c["elbv2"].describe_load_balancers(
        LoadBalancerArns=_tg(c, d)["LoadBalancerArns"])),
    "DescribeSecurityGroupsOutput": ("ec2-describe-security-groups.json", lambda c, d: c["ec2"].describe_security_groups(
        GroupIds=[g["GroupId"] for g in _dump(d, "ec2-describe-security-groups.json")["SecurityGroups"]])),
    "DescribeNetworkAclsOutput": ("ec2-describe-network-acls.json", lambda c, d: c["ec2"].describe_network_acls(
        Filters=_vpc_filter(c, d))),
    "DescribeRouteTablesOutput": ("ec2-describe-route-tables.json", lambda c, d: c["ec2"].describe_route_tables(
        Filters=_vpc_filter(c, d))),
    "DescribeSubnetsOutput": ("ec2-describe-subnets.json", lambda c, d: c["ec2"].describe_subnets(
        Filters=_vpc_filter(c, d))),
    "DescribeVpcsOutput": ("ec2-describe-vpcs.json", lambda c, d: c["ec2"].describe_vpcs(VpcIds=[_tg(c, d)["VpcId"]])),
    "DescribeInstancesOutput": ("ec2-describe-instances.json", lambda c, d: _describe_instances(c, d)),
    "DescribeNetworkInterfacesOutput": ("ec2-describe-network-interfaces.json", lambda c, d: c["ec2"].describe_network_interfaces(
        NetworkInterfaceIds=[e["NetworkInterfaceId"]
                             for e in _dump(d, "ec2-describe-network-interfaces.json")["NetworkInterfaces"]])),
    "DescribeClusterOutput": ("eks-describe-cluster.json", lambda c, d: c["eks"].describe_cluster(
        name=_manifest(d)["clusterName"])),
    # the load balancer's own interfaces, by the description ELB gives them
    "DescribeNetworkInterfacesOutput (load balancer)": (
        "ec2-describe-network-interfaces-load-balancer.json", lambda c, d: c["ec2"].describe_network_interfaces(
            Filters=[{"Name": "description", "Values": [
                "ELB " + a.split(":loadbalancer/", 1)[1] for a in _tg(c, d)["LoadBalancerArns"]]}])),
    "DescribeTargetGroupAttributesOutput": (
        "elbv2-describe-target-group-attributes.json", lambda c, d: c["elbv2"].describe_target_group_attributes(
            TargetGroupArn=_manifest(d)["targetGroupArn"])),
    "DescribeLoadBalancerAttributesOutput": (
        "elbv2-describe-load-balancer-attributes.json", lambda c, d: c["elbv2"].describe_load_balancer_attributes(
            LoadBalancerArn=_tg(c, d)["LoadBalancerArns"][0])),
}

# One file per referenced prefix list: (ec2-get-managed-prefix-list-entries/<id>.json, live call).
PREFIX_LISTS = ("GetManagedPrefixListEntriesOutput", lambda c, pl: c["ec2"].get_managed_prefix_list_entries(PrefixListId=pl))
LIVE["GetManagedPrefixListEntriesOutput"] = (None, None)

# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clients():
    aws_moto.start()
    yield {s: aws_moto.client(s) for s in ("ec2", "elbv2", "eks")}
    aws_moto.stop()


@pytest.fixture
def fresh(clients):
    aws_moto.reset()
    yield clients
    aws_moto.reset()


def _diff(a, b, path="") -> list:
    """Paths where two projected values differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [x for k in a.keys() | b.keys() for x in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [x for i, (p, q) in enumerate(zip(a, b)) for x in _diff(p, q, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: live={json.dumps(a)} dump={json.dumps(b)}"]


# ---------------------------------------------------------------------------------------------
# every scenario round-trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_round_trips(fresh, scenario):
    answer = aws_moto.seed(scenario)
    manifest = _manifest(scenario)
    assert answer == {"ok": True, "targetGroupArn": manifest["targetGroupArn"], "clusterName": manifest["clusterName"]}
    problems = []
    for key, (file, call) in LIVE.items():
        output = key.split(" ")[0]
        if file is None or not (scenario / "aws" / file).exists():
            continue
        want = project(_dump(scenario, file), output)
        got = project(call(fresh, scenario), output)
        problems += [f"{key}{p}" for p in _diff(got, want)]
    for path in sorted((scenario / "aws" / "ec2-get-managed-prefix-list-entries").glob("pl-*.json")):
        output, call = PREFIX_LISTS
        want = project(json.loads(path.read_text()), output)
        got = project(call(fresh, path.stem), output)
        problems += [f"{output}[{path.stem}]{p}" for p in _diff(got, want)]
    assert not problems, "\n".join(problems)

    # the tool finds the node ENI of a pod IP (a secondary address) by filtering on it
    for eni in _dump(scenario, "ec2-describe-network-interfaces.json")["NetworkInterfaces"]:
        for addr in eni["PrivateIpAddresses"]:
            found = fresh["ec2"].describe_network_interfaces(
                Filters=[{"Name": "addresses.private-ip-address", "Values": [addr["PrivateIpAddress"], "10.9.9.9"]}])
            assert [e["NetworkInterfaceId"] for e in found["NetworkInterfaces"]] == [eni["NetworkInterfaceId"]]


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

HEALTHY = ROOT / "tests" / "scenarios" / "healthy"
TG = _manifest(HEALTHY)["targetGroupArn"]


def _health(c) -> dict:
    out = c["elbv2"].describe_target_health(TargetGroupArn=TG)["TargetHealthDescriptions"]
    return {h["Target"]["Id"]: h["TargetHealth"] for h in out}


def test_set_target_health(fresh):
    aws_moto.seed(HEALTHY)
    answer = aws_moto.handle({"cmd": "set-target-health", "targetGroupArn": TG, "targetId": "i-0a1b2c3d4e5f6a001",
                              "state": "unhealthy", "reason": "Target.Timeout", "description": "Request timed out"})
    assert answer == {"ok": True}
    health = _health(fresh)
    assert health["i-0a1b2c3d4e5f6a001"] == {"State": "unhealthy", "Reason": "Target.Timeout",
                                             "Description": "Request timed out"}
    assert health["i-0a1b2c3d4e5f6a002"] == {"State": "healthy"}
    aws_moto.handle({"cmd": "set-target-health", "targetGroupArn": TG, "targetId": "i-0a1b2c3d4e5f6a001",
                     "state": "draining", "reason": "Target.DeregistrationInProgress"})
    assert _health(fresh)["i-0a1b2c3d4e5f6a001"] == {"State": "draining", "Reason": "Target.DeregistrationInProgress"}


def test_set_cluster_and_seed_options(fresh):
    answer = aws_moto.handle({"cmd": "seed", "scenario": str(HEALTHY), "clusterEndpoint": "https://127.0.0.1:6443",
                              "clusterCaData": "Q0EtMQ=="})
    assert answer["ok"], answer
    cluster = fresh["eks"].describe_cluster(name="demo-cluster")["cluster"]
    assert (cluster["endpoint"], cluster["certificateAuthority"]["data"]) == ("https://127.0.0.1:6443", "Q0EtMQ==")
    assert aws_moto.handle({"cmd": "set-cluster", "name": "demo-cluster", "endpoint": "https://127.0.0.1:7443",
                            "caData": "Q0EtMg=="}) == {"ok": True}
    cluster = fresh["eks"].describe_cluster(name="demo-cluster")["cluster"]
    assert (cluster["endpoint"], cluster["certificateAuthority"]["data"]) == ("https://127.0.0.1:7443", "Q0EtMg==")
    assert cluster["resourcesVpcConfig"]["clusterSecurityGroupId"] == "sg-0c1000000000000c1"
    assert aws_moto.handle({"cmd": "set-cluster", "name": "nope", "endpoint": "x"})["ok"] is False


def test_reset(fresh):
    aws_moto.seed(HEALTHY)
    aws_moto.set_target_health(TG, "i-0a1b2c3d4e5f6a001", "unhealthy", "Target.Timeout")
    assert aws_moto.handle({"cmd": "reset"}) == {"ok": True}
    with pytest.raises(ClientError):
        fresh["elbv2"].describe_target_groups(TargetGroupArns=[TG])
    with pytest.raises(ClientError):
        fresh["ec2"].describe_vpcs(VpcIds=["vpc-0a1b2c3d4e5f60001"])
    with pytest.raises(ClientError):
        fresh["eks"].describe_cluster(name="demo-cluster")
    assert not aws_moto._HEALTH and not aws_moto._FORCED_ARNS
    aws_moto.seed(HEALTHY)  # seeding again after a reset gives the same IDs
    assert _health(fresh)["i-0a1b2c3d4e5f6a001"] == {"State": "healthy"}


def test_bad_commands(clients):
    assert aws_moto.handle({"cmd": "bogus"})["ok"] is False
    answer = aws_moto.handle({"cmd": "seed", "scenario": "/nonexistent"})
    assert answer["ok"] is False and "error" in answer


# ---------------------------------------------------------------------------------------------
# binding and the line protocol of `python aws_moto.py`
# ---------------------------------------------------------------------------------------------


def _listeners(port: int) -> set:
    """Local addresses of the TCP sockets listening on `port` (from /proc, no network use)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            addr, p = cols[1].split(":")
            if cols[3] == "0A" and int(p, 16) == port:
                found.add(addr)
    return found


def test_bound_to_loopback_only(clients):
    host, port = aws_moto._server.get_host_and_port()
    assert host == "127.0.0.1"
    assert aws_moto.endpoint() == f"http://127.0.0.1:{port}"
    assert _listeners(port) == {"0100007F"}  # 127.0.0.1, little-endian hex


def _readline(proc, timeout=60.0) -> dict:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no answer from aws_moto.py"
    return json.loads(proc.stdout.readline())


def test_line_protocol():
    proc = subprocess.Popen([sys.executable, str(HERE / "aws_moto.py"), "--port", "0"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _readline(proc)["endpoint"]
        port = int(url.rsplit(":", 1)[1])
        assert url.startswith("http://127.0.0.1:") and _listeners(port) == {"0100007F"}

        def ask(cmd):
            proc.stdin.write(json.dumps(cmd) + "\n")
            proc.stdin.flush()
            return _readline(proc)

        assert ask({"cmd": "seed", "scenario": str(HEALTHY)}) == {"ok": True, "targetGroupArn": TG,
                                                                  "clusterName": "demo-cluster"}
        assert ask({"cmd": "set-target-health", "targetGroupArn": TG, "targetId": "i-0a1b2c3d4e5f6a002",
                    "state": "unhealthy", "reason": "Target.FailedHealthChecks"}) == {"ok": True}
        assert ask({"cmd": "set-cluster", "name": "demo-cluster", "endpoint": "https://127.0.0.1:1",
                    "caData": "eA=="}) == {"ok": True}
        import boto3

        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        health = boto3.client("elbv2", **kw).describe_target_health(TargetGroupArn=TG)["TargetHealthDescriptions"]
        assert {h["Target"]["Id"]: h["TargetHealth"]["State"] for h in health} == {
            "i-0a1b2c3d4e5f6a001": "healthy", "i-0a1b2c3d4e5f6a002": "unhealthy"}
        assert boto3.client("eks", **kw).describe_cluster(name="demo-cluster")["cluster"]["endpoint"] == "https://127.0.0.1:1"
        assert ask({"cmd": "nope"})["ok"] is False
        proc.stdin.write("not json\n")
        proc.stdin.flush()
        assert _readline(proc)["ok"] is False
        assert ask({"cmd": "reset"}) == {"ok": True}
        with pytest.raises(ClientError):
            boto3.client("eks", **kw).describe_cluster(name="demo-cluster")
        proc.stdin.close()  # EOF ends it
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_exits():
    proc = subprocess.Popen([sys.executable, str(HERE / "aws_moto.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _readline(proc)["endpoint"].startswith("http://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - start < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
