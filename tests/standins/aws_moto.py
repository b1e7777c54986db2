#!/usr/bin/env python3
"""AWS stand-in for eks-lb-doctor tests: a moto server seeded from a scenario dump.

    python aws_moto.py [--port 0]

Starts moto's ThreadedMotoServer in this process, bound to 127.0.0.1 only, prints one line
`{"endpoint": "http://127.0.0.1:PORT"}` and then answers line-delimited JSON commands on stdin,
one JSON line each on stdout, until stdin EOF or SIGTERM:

    {"cmd": "reset"}
    {"cmd": "seed", "scenario": "/abs/dump", "clusterEndpoint": "https://127.0.0.1:N", "clusterCaData": "<b64 PEM>"}
    {"cmd": "set-target-health", "targetGroupArn": ..., "targetId": ..., "state": ..., "reason": ..., "description": ...}
    {"cmd": "set-cluster", "name": ..., "endpoint": ..., "caData": ...}

The same operations are exported for in-process use: start(), stop(), reset(), seed(),
set_target_health(), set_cluster(), handle(cmd).

Seeding goes through the real APIs (boto3 against the server) wherever moto can express the
state; moto's generated IDs and ARNs are replaced by the dump's ones while they are generated
(see the "moto extensions" section).  What the API cannot express is set on moto's in-process
models, each place commented with why.  Account 123456789012 (moto's default) only.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import boto3
import moto
import requests
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2 import utils as ec2_utils
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_network_interfaces import NetworkInterface, NetworkInterfaceBackend
from moto.ec2.models import vpcs as vpcs_models
from moto.ec2.models.route_tables import Route
from moto.eks.models import eks_backends
from moto.elbv2 import models as elbv2_models
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup, elbv2_backends
from moto.server import ThreadedMotoServer

MOTO_VERSION = moto.__version__

# ---------------------------------------------------------------------------------------------
# moto extensions (class / module level patches, installed once by _install_patches())
# ---------------------------------------------------------------------------------------------

# 1. Custom EC2 IDs.  moto has no custom-id mechanism for EC2 (`_custom_id_` tags only work for
#    a few services), but every EC2 ID comes from moto.ec2.utils.random_id(prefix), looked up as
#    a module global at call time.  While seeding, the IDs a call is expected to create are queued
#    per prefix ("vpc", "rtb", "eni", ...) and handed out instead of random ones, so every
#    reference moto stores (subnet -> VPC, ENI -> subnet, ...) is consistent from the start.
_FORCED_IDS: dict[str, list[str]] = {}
_orig_random_id = ec2_utils.random_id


def _random_id(prefix: str = "", size: int = 17) -> str:
    queue = _FORCED_IDS.get(prefix)
    if queue:
        return queue.pop(0)
    return _orig_random_id(prefix=prefix, size=size)


@contextlib.contextmanager
def _forced_ids(*ids: str | None):
    """Make the EC2 calls inside the block generate `ids` (per prefix, in order)."""
    wanted = [i for i in ids if i]
    for i in wanted:
        _FORCED_IDS.setdefault(i.rsplit("-", 1)[0], []).append(i)
    try:
        yield
        left = [i for q in _FORCED_IDS.values() for i in q]
        if left:
            raise RuntimeError(f"moto did not generate the expected ids {left}")
    finally:
        _FORCED_IDS.clear()


# 1b. Amazon-provided IPv6 blocks.  moto draws a random /56 (moto.ec2.models.vpcs.random_ipv6_cidr);
#     the dump's block is handed out instead while seeding.
_FORCED_IPV6: list[str] = []
_orig_random_ipv6_cidr = vpcs_models.random_ipv6_cidr


def _random_ipv6_cidr() -> str:
    return _FORCED_IPV6.pop(0) if _FORCED_IPV6 else _orig_random_ipv6_cidr()


# 2. Custom ELBv2 ARNs.  moto builds them from a random hex id and always uses `loadbalancer/app/`
#    (an NLB's ARN must say `loadbalancer/net/`).  The ARN builders imported by moto.elbv2.models
#    are wrapped to return the dump's ARN for a given name.
_FORCED_ARNS: dict[tuple[str, str], str] = {}
_orig_lb_arn = elbv2_models.make_arn_for_load_balancer
_orig_tg_arn = elbv2_models.make_arn_for_target_group


def _lb_arn(account_id, lb_id, name, region_name):
    return _FORCED_ARNS.get(("loadbalancer", name)) or _orig_lb_arn(account_id, lb_id, name, region_name)


def _tg_arn(account_id, tg_id, name, region_name):
    return _FORCED_ARNS.get(("targetgroup", name)) or _orig_tg_arn(account_id, tg_id, name, region_name)


# 3. Target health.  moto reports every registered target `healthy` (or `unused` for a stopped
#    instance), without the AvailabilityZone of an IP target and with HealthCheckPort
#    "traffic-port" where AWS prints the port.  Overrides (from the dump's
#    TargetHealthDescriptions or set-target-health) replace State / Reason / Description /
#    HealthCheckPort of a target; the AZ given at registration is kept.
_HEALTH: dict[tuple[str, str], dict] = {}  # (target group ARN, target id) -> TargetHealthDescription fields
_orig_register = FakeTargetGroup.register
_orig_health_for = FakeTargetGroup.health_for


def _status_target(self) -> dict:  # replaces FakeHealthStatus.target: adds the AZ
    target = {"Id": self.instance_id, "Port": self.port}
    if getattr(self, "availability_zone", None):
        target["AvailabilityZone"] = self.availability_zone
    return target


def _register(self, targets):
    _orig_register(self, targets)
    for t in targets:  # moto drops the AvailabilityZone of a registration
        if t.get("AvailabilityZone") and t["Id"] in self.targets:
            self.targets[t["Id"]]["AvailabilityZone"] = t["AvailabilityZone"]


def _health_for(self, target, ec2_backend):
    status = _orig_health_for(self, target, ec2_backend)
    registered = self.targets.get(target["Id"], {})
    hc_port = status.health_check_port
    if hc_port == "traffic-port":
        hc_port = str(status.port)
    override = _HEALTH.get((self.arn, target["Id"]), {})
    health = override.get("TargetHealth") or {"State": status.status, "Reason": status.reason,
                                               "Description": status.description}
    status = FakeHealthStatus(status.instance_id, status.port, override.get("HealthCheckPort", hc_port),
                              health["State"], health.get("Reason"), health.get("Description"))
    status.availability_zone = registered.get("AvailabilityZone")
    return status


# 4. Route state.  moto's Route.state is always "active"; AWS shows "blackhole" once the target
#    ENI / NAT gateway is gone.  Computed here, plus an explicit override (`_standin_state`) for
#    a state the dump has but the computation does not give.
def _route_state(self) -> str:
    forced = getattr(self, "_standin_state", None)
    if forced:
        return forced
    backend = self.route_table.ec2_backend
    if self.interface is not None and self.interface.id not in backend.enis:
        return "blackhole"
    if self.nat_gateway is not None and self.nat_gateway.id not in backend.nat_gateways:
        return "blackhole"
    return "active"


# 5. ENI lookup by IP.  moto's `addresses.private-ip-address` filter only matches the primary
#    address; AWS matches any private IPv4 address of the ENI (the VPC CNI's pod IPs are
#    secondary addresses).  Applied before moto's own filtering, with AWS's any-value semantics.
_orig_get_all_enis = NetworkInterfaceBackend.get_all_network_interfaces


def _get_all_enis(self, eni_ids=None, filters=None):
    filters = dict(filters or {})
    wanted = filters.pop("addresses.private-ip-address", None)
    enis = _orig_get_all_enis(self, eni_ids, filters)
    if wanted is not None:
        enis = [e for e in enis if any(a.get("PrivateIpAddress") in wanted for a in e.private_ip_addresses)]
    return enis


# 6. Requester-managed ENIs (a Fargate pod's, a load balancer's) are attached to something AWS
#    owns, with no instance of the account; moto's Attachment requires an instance. The dump's
#    attachment is kept on the model (`_standin_attachment`) and served as it is.
_orig_eni_attachment = NetworkInterface.attachment


class _ServiceAttachment:
    def __init__(self, att: dict):
        self.attach_time = att.get("AttachTime")
        self.attachment_id = att.get("AttachmentId")
        self.delete_on_termination = att.get("DeleteOnTermination", False)
        self.device_index = att.get("DeviceIndex", 1)
        self.network_card_index = att.get("NetworkCardIndex", 0)
        self.instance_owner_id = att.get("InstanceOwnerId")
        self.status = att.get("Status", "attached")


def _eni_attachment(self):
    att = getattr(self, "_standin_attachment", None)
    if att is not None:
        return _ServiceAttachment(att)
    return _orig_eni_attachment.fget(self)


_PATCHED = False


def _install_patches() -> None:
    global _PATCHED
    if _PATCHED:
        return
    ec2_utils.random_id = _random_id
    vpcs_models.random_ipv6_cidr = _random_ipv6_cidr
    elbv2_models.make_arn_for_load_balancer = _lb_arn
    elbv2_models.make_arn_for_target_group = _tg_arn
    FakeTargetGroup.register = _register
    FakeTargetGroup.health_for = _health_for
    FakeHealthStatus.target = property(_status_target)
    Route.state = property(_route_state)
    NetworkInterfaceBackend.get_all_network_interfaces = _get_all_enis
    NetworkInterface.attachment = property(_eni_attachment)
    _PATCHED = True


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

_server: ThreadedMotoServer | None = None
_endpoint: str | None = None
_lock = threading.RLock()
_seeded_region = "us-east-1"


def start(port: int = 0) -> str:
    """Start the server on 127.0.0.1 (port 0: an ephemeral one) and return its endpoint URL."""
    global _server, _endpoint
    _install_patches()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log lines
    if _server is None:
        _server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        _server.start()
        host, bound = _server.get_host_and_port()
        _endpoint = f"http://{host}:{bound}"
    return _endpoint


def stop() -> None:
    global _server, _endpoint
    if _server is not None:
        _server.stop()
    _server = _endpoint = None


def endpoint() -> str:
    if _endpoint is None:
        raise RuntimeError("server not started")
    return _endpoint


@functools.lru_cache(maxsize=None)
def _client(url: str, service: str, region: str):
    return boto3.client(service, endpoint_url=url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


def client(service: str, region: str = "us-east-1"):
    """A boto3 client for the stand-in (dummy credentials; moto's default account)."""
    return _client(endpoint(), service, region)


def reset() -> dict:
    with _lock:
        requests.post(f"{endpoint()}/moto-api/reset", timeout=30).raise_for_status()
        _FORCED_IDS.clear()
        _FORCED_ARNS.clear()
        _HEALTH.clear()
    return {"ok": True}


def set_target_health(target_group_arn: str, target_id: str, state: str, reason: str | None = None,
                      description: str | None = None, health_check_port: str | None = None) -> dict:
    with _lock:
        override = _HEALTH.setdefault((target_group_arn, target_id), {})
        override["TargetHealth"] = {"State": state, "Reason": reason, "Description": description}
        if health_check_port is not None:
            override["HealthCheckPort"] = str(health_check_port)
    return {"ok": True}


def set_cluster(name: str, endpoint: str | None = None, ca_data: str | None = None, region: str | None = None) -> dict:
    """Point the cluster at a (stand-in) API server.  moto gives a random endpoint and a random,
    invalid CA, and UpdateClusterConfig cannot change either: set on the model."""
    with _lock:
        cluster = eks_backends[DEFAULT_ACCOUNT_ID][region or _seeded_region].clusters.get(name)
        if cluster is None:
            raise KeyError(f"no cluster named {name}")
        if endpoint is not None:
            cluster.endpoint = endpoint
        if ca_data is not None:
            cluster.certificate_authority = {"data": ca_data}
    return {"ok": True}


# ---------------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------------


def _load(d: Path, name: str) -> dict:
    path = d / "aws" / name
    return json.loads(path.read_text()) if path.exists() else {}


def _tag_spec(kind: str, tags: list | None) -> list:
    tags = [t for t in tags or [] if t.get("Key")]
    return [{"ResourceType": kind, "Tags": tags}] if tags else []


def _clean_permission(p: dict) -> dict:
    keep = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs")
    p = {k: copy.deepcopy(v) for k, v in p.items() if k in keep}
    p["UserIdGroupPairs"] = [{k: v for k, v in g.items() if k in ("GroupId", "UserId", "Description")}
                             for g in p.get("UserIdGroupPairs", [])]
    return p


ROUTE_TARGETS = ("GatewayId", "NatGatewayId", "NetworkInterfaceId", "TransitGatewayId",
                 "VpcPeeringConnectionId", "InstanceId", "EgressOnlyInternetGatewayId")


def _route_key(r: dict) -> tuple:
    return tuple(r.get(k) for k in ("DestinationCidrBlock", "DestinationIpv6CidrBlock") + ROUTE_TARGETS)


def _route_dest(r: dict) -> tuple:
    """(API keyword, destination) of a route: an IPv4 or an IPv6 block."""
    if r.get("DestinationCidrBlock"):
        return "DestinationCidrBlock", r["DestinationCidrBlock"]
    return "DestinationIpv6CidrBlock", r.get("DestinationIpv6CidrBlock")


def seed(scenario_dir: str | Path, cluster_endpoint: str | None = None, cluster_ca_data: str | None = None) -> dict:
    """Reset the server and create the scenario; returns {"ok": true, "targetGroupArn", "clusterName"}."""
    global _seeded_region
    d = Path(scenario_dir)
    manifest = json.loads((d / "manifest.json").read_text())
    region = manifest.get("region", "us-east-1")
    account = manifest.get("accountId", DEFAULT_ACCOUNT_ID)
    if account != DEFAULT_ACCOUNT_ID:
        raise ValueError(f"only account {DEFAULT_ACCOUNT_ID} is supported (dump says {account})")
    with _lock:
        reset()
        _seeded_region = region
        # instantiate the region's EC2 backend (and its default VPC) before any ID is forced
        ec2_backends[account][region]
        not_running = _seed_ec2(d, region)
        _seed_elbv2(d, region)
        _set_instance_states(region, not_running)
        cluster = _seed_eks(d, region, cluster_endpoint, cluster_ca_data)
    return {"ok": True, "targetGroupArn": manifest.get("targetGroupArn"),
            "clusterName": manifest.get("clusterName") or cluster}


def _seed_ec2(d: Path, region: str) -> list:
    ec2 = client("ec2", region)
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    vpcs = _load(d, "ec2-describe-vpcs.json").get("Vpcs", [])
    subnets = _load(d, "ec2-describe-subnets.json").get("Subnets", [])
    groups = _load(d, "ec2-describe-security-groups.json").get("SecurityGroups", [])
    acls = _load(d, "ec2-describe-network-acls.json").get("NetworkAcls", [])
    tables = _load(d, "ec2-describe-route-tables.json").get("RouteTables", [])
    reservations = _load(d, "ec2-describe-instances.json").get("Reservations", [])
    enis = {e["NetworkInterfaceId"]: e for e in _load(d, "ec2-describe-network-interfaces.json").get("NetworkInterfaces", [])}
    # The load balancer's own interfaces (moto's ELBv2 creates none): made like any other
    # requester-managed ENI below, with the description ELB gives them.
    for e in _load(d, "ec2-describe-network-interfaces-load-balancer.json").get("NetworkInterfaces", []):
        enis.setdefault(e["NetworkInterfaceId"], e)

    # --- VPCs, with the main route table and default network ACL AWS creates alongside
    for vpc in vpcs:
        vid = vpc["VpcId"]
        main_rtb = next((t["RouteTableId"] for t in tables if t.get("VpcId") == vid
                         and any(a.get("Main") for a in t.get("Associations", []))), None)
        default_acl = next((a["NetworkAclId"] for a in acls if a.get("VpcId") == vid and a.get("IsDefault")), None)
        primary_assoc = next((a.get("AssociationId") for a in vpc.get("CidrBlockAssociationSet", [])
                              if a["CidrBlock"] == vpc["CidrBlock"]), None)
        with _forced_ids(vid, main_rtb, default_acl, primary_assoc):
            ec2.create_vpc(CidrBlock=vpc["CidrBlock"], TagSpecifications=_tag_spec("vpc", vpc.get("Tags")))
        for assoc in vpc.get("CidrBlockAssociationSet", []):
            state = assoc.get("CidrBlockState", {}).get("State", "associated")
            if assoc["CidrBlock"] != vpc["CidrBlock"] and state in ("associated", "associating"):
                with _forced_ids(assoc.get("AssociationId")):
                    ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock=assoc["CidrBlock"])
        for assoc in vpc.get("Ipv6CidrBlockAssociationSet", []):
            _FORCED_IPV6.append(assoc["Ipv6CidrBlock"])
            with _forced_ids(assoc.get("AssociationId")):
                ec2.associate_vpc_cidr_block(VpcId=vid, AmazonProvidedIpv6CidrBlock=True)

    for sn in subnets:
        v6 = [a["Ipv6CidrBlock"] for a in sn.get("Ipv6CidrBlockAssociationSet", [])]
        with _forced_ids(sn["SubnetId"]):
            ec2.create_subnet(VpcId=sn["VpcId"], CidrBlock=sn["CidrBlock"], AvailabilityZone=sn["AvailabilityZone"],
                              TagSpecifications=_tag_spec("subnet", sn.get("Tags")),
                              **({"Ipv6CidrBlock": v6[0]} if v6 else {}))

    # --- managed prefix lists (rules may refer to them), with the dump's IDs and entries
    pl_dir = d / "aws" / "ec2-get-managed-prefix-list-entries"
    for path in sorted(pl_dir.glob("pl-*.json")) if pl_dir.is_dir() else []:
        entries = json.loads(path.read_text()).get("Entries", [])
        family = "IPv6" if any(":" in e["Cidr"] for e in entries) else "IPv4"
        with _forced_ids(path.stem):
            ec2.create_managed_prefix_list(PrefixListName=path.stem, AddressFamily=family,
                                           MaxEntries=max(len(entries), 1),
                                           Entries=[{k: e[k] for k in ("Cidr", "Description") if k in e}
                                                    for e in entries])

    # --- security groups first, then their rules (rules may reference any group)
    for g in groups:
        with _forced_ids(g["GroupId"]):
            ec2.create_security_group(GroupName=g["GroupName"], Description=g.get("Description") or g["GroupName"],
                                      VpcId=g["VpcId"], TagSpecifications=_tag_spec("security-group", g.get("Tags")))
    for g in groups:
        current = ec2.describe_security_groups(GroupIds=[g["GroupId"]])["SecurityGroups"][0]
        if current.get("IpPermissionsEgress"):
            ec2.revoke_security_group_egress(GroupId=g["GroupId"], IpPermissions=current["IpPermissionsEgress"])
        if g.get("IpPermissionsEgress"):
            ec2.authorize_security_group_egress(GroupId=g["GroupId"],
                                                IpPermissions=[_clean_permission(p) for p in g["IpPermissionsEgress"]])
        if g.get("IpPermissions"):
            ec2.authorize_security_group_ingress(GroupId=g["GroupId"],
                                                 IpPermissions=[_clean_permission(p) for p in g["IpPermissions"]])

    # --- network ACLs: entries reconciled by (egress, rule number), then subnet associations
    for acl in acls:
        aid = acl["NetworkAclId"]
        if not acl.get("IsDefault"):
            with _forced_ids(aid):
                ec2.create_network_acl(VpcId=acl["VpcId"], TagSpecifications=_tag_spec("network-acl", acl.get("Tags")))
        elif acl.get("Tags"):
            ec2.create_tags(Resources=[aid], Tags=acl["Tags"])
        have = ec2.describe_network_acls(NetworkAclIds=[aid])["NetworkAcls"][0]["Entries"]
        for e in have:
            ec2.delete_network_acl_entry(NetworkAclId=aid, RuleNumber=e["RuleNumber"], Egress=e["Egress"])
        # moto does not add the implicit `*` (32767) deny entries to a new custom ACL; the dump's
        # ones are created like any other entry (moto accepts rule number 32767)
        for e in acl.get("Entries", []):
            kw = {k: e[k] for k in ("CidrBlock", "Ipv6CidrBlock", "PortRange", "IcmpTypeCode") if k in e}
            ec2.create_network_acl_entry(NetworkAclId=aid, RuleNumber=e["RuleNumber"], Protocol=e["Protocol"],
                                         RuleAction=e["RuleAction"], Egress=e["Egress"], **kw)
    for acl in acls:
        for assoc in acl.get("Associations", []):
            found = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [assoc["SubnetId"]]}])
            current = next(a for n in found["NetworkAcls"] for a in n["Associations"] if a["SubnetId"] == assoc["SubnetId"])
            if current["NetworkAclId"] != acl["NetworkAclId"]:
                with _forced_ids(assoc.get("NetworkAclAssociationId")):
                    ec2.replace_network_acl_association(AssociationId=current["NetworkAclAssociationId"],
                                                        NetworkAclId=acl["NetworkAclId"])

    # --- instances with their primary ENI (and the pod IPs the VPC CNI puts on it)
    stop_later = []
    for res in reservations:
        for inst in res.get("Instances", []):
            primary = next((n for n in inst.get("NetworkInterfaces", []) if n.get("Attachment", {}).get("DeviceIndex") == 0), None)
            eni_id = primary["NetworkInterfaceId"] if primary else None
            with _forced_ids(inst["InstanceId"], eni_id, res.get("ReservationId")):
                ec2.run_instances(ImageId=inst.get("ImageId", "ami-12c6146b"), InstanceType=inst.get("InstanceType", "m5.large"),
                                  MinCount=1, MaxCount=1, SubnetId=inst["SubnetId"],
                                  PrivateIpAddress=inst["PrivateIpAddress"],
                                  SecurityGroupIds=[g["GroupId"] for g in inst.get("SecurityGroups", [])],
                                  TagSpecifications=_tag_spec("instance", inst.get("Tags")))
            if eni_id:
                _shape_eni(ec2, backend, enis.get(eni_id, primary))
            state = inst.get("State", {}).get("Name", "running")
            if state != "running":
                stop_later.append((inst["InstanceId"], state))
    attached = {n["NetworkInterfaceId"] for r in reservations for i in r.get("Instances", [])
                for n in i.get("NetworkInterfaces", []) if n.get("Attachment", {}).get("DeviceIndex") == 0}
    for eid, eni in enis.items():  # ENIs that are not a described instance's primary one
        if eid in attached:
            continue
        with _forced_ids(eid):
            ec2.create_network_interface(SubnetId=eni["SubnetId"], PrivateIpAddress=eni["PrivateIpAddress"],
                                         Groups=[g["GroupId"] for g in eni.get("Groups", [])],
                                         Description=eni.get("Description") or "",
                                         TagSpecifications=_tag_spec("network-interface", eni.get("TagSet")))
        _shape_eni(ec2, backend, eni)
        att = eni.get("Attachment") or {}
        if att.get("InstanceId"):
            ec2.attach_network_interface(NetworkInterfaceId=eid, InstanceId=att["InstanceId"],
                                         DeviceIndex=att.get("DeviceIndex", 1))
        elif att:
            backend.enis[eid]._standin_attachment = att

    # --- route tables (after the instances: routes may point at their ENIs)
    for t in tables:
        rid = t["RouteTableId"]
        if not any(a.get("Main") for a in t.get("Associations", [])):
            with _forced_ids(rid):
                ec2.create_route_table(VpcId=t["VpcId"], TagSpecifications=_tag_spec("route-table", t.get("Tags")))
        elif t.get("Tags"):
            ec2.create_tags(Resources=[rid], Tags=t["Tags"])
        for a in t.get("Associations", []):
            if a.get("SubnetId"):
                with _forced_ids(a.get("RouteTableAssociationId")):
                    ec2.associate_route_table(RouteTableId=rid, SubnetId=a["SubnetId"])
        _seed_routes(ec2, backend, t)

    return stop_later


def _shape_eni(ec2, backend, eni: dict) -> None:
    eid = eni["NetworkInterfaceId"]
    secondary = [a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", []) if not a.get("Primary")]
    if secondary:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eid, PrivateIpAddresses=secondary)
    v6 = [a["Ipv6Address"] for a in eni.get("Ipv6Addresses", [])]
    if v6:
        ec2.assign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6Addresses=v6)
    model = backend.enis[eid]
    # moto names a primary ENI "Primary network interface" and ModifyNetworkInterfaceAttribute
    # ignores an empty description, so the dump's description is set on the model.
    model.description = eni.get("Description") or ""
    # VPC CNI prefix delegation: moto has no AssignPrivateIpAddresses --ipv4-prefixes; the
    # prefixes are set on the model, which moto's serializer renders as Ipv4Prefixes.
    model.ipv4_prefixes = [{"Ipv4Prefix": p["Ipv4Prefix"]} for p in eni.get("Ipv4Prefixes", [])]
    model.ipv6_prefixes = [{"Ipv6Prefix": p["Ipv6Prefix"]} for p in eni.get("Ipv6Prefixes", [])]
    if eni.get("InterfaceType"):
        model.interface_type = eni["InterfaceType"]  # not settable through the API
    if "Groups" in eni and not eni["Groups"]:
        # An NLB created without security groups has interfaces without any; moto puts the
        # VPC's default group on an ENI created without groups.
        model._group_set = []


def _seed_routes(ec2, backend, table: dict) -> None:
    rid = table["RouteTableId"]
    want = {_route_dest(r)[1]: r for r in table.get("Routes", []) if _route_dest(r)[1]}
    have = {_route_dest(r)[1]: r for r in ec2.describe_route_tables(RouteTableIds=[rid])["RouteTables"][0]["Routes"]
            if _route_dest(r)[1]}
    for dest, r in have.items():
        if dest not in want or _route_key(want[dest]) != _route_key(r):
            key, _ = _route_dest(r)
            ec2.delete_route(RouteTableId=rid, **{key: dest})
    model = backend.route_tables[rid]
    for dest, r in want.items():
        key, _ = _route_dest(r)
        if dest in have and _route_key(have[dest]) == _route_key(r):
            pass
        elif r.get("GatewayId") == "local":
            # CreateRoute cannot make a `local` route (moto adds them only when the table is created)
            if key == "DestinationCidrBlock":
                backend.create_route(rid, dest, local=True)
            else:
                backend.create_route(rid, None, destination_ipv6_cidr_block=dest, local=True)
        else:
            cleanup = _ensure_route_target(ec2, backend, table, r)
            kw = {k: r[k] for k in ROUTE_TARGETS if r.get(k)}
            ec2.create_route(RouteTableId=rid, **{key: dest}, **kw)
            if cleanup and r.get("State") == "blackhole":
                cleanup()  # the target is gone: AWS (and _route_state) now say blackhole
        route = next(x for x in model.routes
                     if (x.destination_cidr_block if key == "DestinationCidrBlock" else x.destination_ipv6_cidr_block) == dest)
        if r.get("State") and route.state != r["State"]:
            route._standin_state = r["State"]  # a state the API cannot reach (e.g. detached gateway)


def _has_eigw(ec2, eigw: str) -> bool:
    found = ec2.describe_egress_only_internet_gateways()["EgressOnlyInternetGateways"]
    return any(g["EgressOnlyInternetGatewayId"] == eigw for g in found)


def _ensure_route_target(ec2, backend, table: dict, r: dict):
    """Create a route target that the dump does not describe (IGW, NAT gateway, firewall ENI).
    Returns a function deleting it again (used for blackhole routes), or None."""
    vpc_id = table["VpcId"]
    subnet_id = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"][0]["SubnetId"]
    gw = r.get("GatewayId")
    if gw and gw.startswith("igw-") and gw not in backend.internet_gateways:
        with _forced_ids(gw):
            ec2.create_internet_gateway()
        ec2.attach_internet_gateway(InternetGatewayId=gw, VpcId=vpc_id)
        return lambda: (ec2.detach_internet_gateway(InternetGatewayId=gw, VpcId=vpc_id),
                        ec2.delete_internet_gateway(InternetGatewayId=gw))
    eigw = r.get("EgressOnlyInternetGatewayId")
    if eigw and not _has_eigw(ec2, eigw):
        with _forced_ids(eigw):
            ec2.create_egress_only_internet_gateway(VpcId=vpc_id)
        return lambda: ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=eigw)
    nat = r.get("NatGatewayId")
    if nat and nat not in backend.nat_gateways:
        with _forced_ids(nat):
            ec2.create_nat_gateway(SubnetId=subnet_id, ConnectivityType="private")
        return lambda: ec2.delete_nat_gateway(NatGatewayId=nat)
    if gw and gw.startswith("vpce-") and gw not in backend.vpc_end_points:
        # A Gateway Load Balancer endpoint of an inspection appliance (middlebox routing).
        with _forced_ids(gw):
            ec2.create_vpc_endpoint(VpcId=vpc_id, VpcEndpointType="GatewayLoadBalancer", SubnetIds=[subnet_id],
                                    ServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-0inspection00000001")
        return lambda: ec2.delete_vpc_endpoints(VpcEndpointIds=[gw])
    eni = r.get("NetworkInterfaceId")
    if eni and eni not in backend.enis:
        with _forced_ids(eni):
            ec2.create_network_interface(SubnetId=subnet_id, Description="stand-in route target")
        return lambda: ec2.delete_network_interface(NetworkInterfaceId=eni)
    return None


def _seed_elbv2(d: Path, region: str) -> None:
    elb = client("elbv2", region)
    lbs = _load(d, "elbv2-describe-load-balancers.json").get("LoadBalancers", [])
    tgs = _load(d, "elbv2-describe-target-groups.json").get("TargetGroups", [])
    health = _load(d, "elbv2-describe-target-health.json").get("TargetHealthDescriptions", [])
    tags = _load(d, "elbv2-describe-tags.json").get("TagDescriptions", [])
    backend = elbv2_backends[DEFAULT_ACCOUNT_ID][region]

    for lb in lbs:
        _FORCED_ARNS[("loadbalancer", lb["LoadBalancerName"])] = lb["LoadBalancerArn"]
        kw = {"SecurityGroups": lb["SecurityGroups"]} if lb.get("SecurityGroups") else {}
        elb.create_load_balancer(Name=lb["LoadBalancerName"], Subnets=[z["SubnetId"] for z in lb.get("AvailabilityZones", [])],
                                 Scheme=lb.get("Scheme", "internet-facing"), Type=lb.get("Type", "application"),
                                 IpAddressType=lb.get("IpAddressType", "ipv4"), **kw)
        model = backend.load_balancers[lb["LoadBalancerArn"]]
        # moto derives the DNS name as "<name>-1.<region>.elb.amazonaws.com"; the state starts
        # as "provisioning".  Neither can be set through the API.
        if lb.get("DNSName"):
            model.dns_name = lb["DNSName"]
        model.state = lb.get("State", {}).get("Code", "active")

    listener_port = {}
    for tg in tgs:
        _FORCED_ARNS[("targetgroup", tg["TargetGroupName"])] = tg["TargetGroupArn"]
        keys = ("Protocol", "ProtocolVersion", "Port", "VpcId", "HealthCheckProtocol", "HealthCheckPort",
                "HealthCheckEnabled", "HealthCheckPath", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds",
                "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher", "TargetType", "IpAddressType")
        elb.create_target_group(Name=tg["TargetGroupName"], **{k: tg[k] for k in keys if k in tg})
        for lb_arn in tg.get("LoadBalancerArns", []):
            # a target group lists a load balancer once a listener (or rule) forwards to it
            port = listener_port.get(lb_arn, 80)
            listener_port[lb_arn] = port + 1
            protocol = tg.get("Protocol") or "HTTP"
            if ":loadbalancer/app/" in lb_arn and protocol not in ("HTTP", "HTTPS"):
                protocol = "HTTP"
            elb.create_listener(LoadBalancerArn=lb_arn, Protocol=protocol, Port=port,
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])

    for td in tags:
        if td.get("Tags"):
            elb.add_tags(ResourceArns=[td["ResourceArn"]], Tags=td["Tags"])

    # Attributes as the dump lists them: moto's defaults lack most (no preserve_client_ip,
    # cross-zone "false" for an ALB) and its Modify* calls accept only some keys, so the
    # models' attribute maps are replaced.
    tg_attrs = _load(d, "elbv2-describe-target-group-attributes.json").get("Attributes")
    if tgs and tg_attrs is not None:
        backend.target_groups[tgs[0]["TargetGroupArn"]].attributes = {a["Key"]: a["Value"] for a in tg_attrs}
    lb_attrs = _load(d, "elbv2-describe-load-balancer-attributes.json").get("Attributes")
    if tgs and lb_attrs is not None and tgs[0].get("LoadBalancerArns"):
        backend.load_balancers[tgs[0]["LoadBalancerArns"][0]].attrs = {a["Key"]: a["Value"] for a in lb_attrs}

    # targets (from the health dump) belong to the first target group of the dump
    if tgs and health:
        tg_arn = tgs[0]["TargetGroupArn"]
        targets = []
        for h in health:
            t = {k: h["Target"][k] for k in ("Id", "Port", "AvailabilityZone") if k in h["Target"]}
            targets.append(t)
            _HEALTH[(tg_arn, t["Id"])] = {k: copy.deepcopy(h[k]) for k in ("TargetHealth", "HealthCheckPort") if k in h}
        elb.register_targets(TargetGroupArn=tg_arn, Targets=targets)



def _set_instance_states(region: str, not_running: list) -> None:
    """Stop / terminate what the dump says is (after target registration: moto refuses to
    register an instance that is not running)."""
    ec2 = client("ec2", region)
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    for iid, state in not_running:
        if state in ("stopped", "stopping"):
            ec2.stop_instances(InstanceIds=[iid])
        elif state == "shutting-down":
            # moto terminates at once (and drops the target group registration); AWS shows
            # "shutting-down" (code 32) for a while first, the target still listed as draining.
            model = backend.get_instance(iid)
            model._state.name, model._state.code = "shutting-down", 32
        elif state == "terminated":
            ec2.terminate_instances(InstanceIds=[iid])
        else:
            raise ValueError(f"instance {iid}: state {state} not supported")


def _seed_eks(d: Path, region: str, endpoint_url: str | None, ca_data: str | None) -> str | None:
    cluster = _load(d, "eks-describe-cluster.json").get("cluster")
    if not cluster:
        return None
    eks = client("eks", region)
    vpc = cluster.get("resourcesVpcConfig", {})
    req_vpc = {k: vpc[k] for k in ("subnetIds", "securityGroupIds", "endpointPublicAccess",
                                   "endpointPrivateAccess", "publicAccessCidrs") if k in vpc}
    kw = {"version": cluster["version"]} if cluster.get("version") else {}
    eks.create_cluster(name=cluster["name"], roleArn=cluster.get("roleArn", "arn:aws:iam::123456789012:role/eks"),
                       resourcesVpcConfig=req_vpc, **kw)
    model = eks_backends[DEFAULT_ACCOUNT_ID][region].clusters[cluster["name"]]
    # Output-only fields moto cannot take through CreateCluster: the cluster security group and
    # VPC id EKS fills into resourcesVpcConfig, the network config EKS chose (ipFamily), the endpoint and CA (random in moto, invalid PEM),
    # status and platform version.
    model.resources_vpc_config = copy.deepcopy(vpc)
    if cluster.get("kubernetesNetworkConfig"):
        model.kubernetes_network_config = copy.deepcopy(cluster["kubernetesNetworkConfig"])
    model.endpoint = endpoint_url or cluster.get("endpoint")
    model.certificate_authority = {"data": ca_data or cluster.get("certificateAuthority", {}).get("data")}
    if cluster.get("status"):
        model.status = cluster["status"]
    if cluster.get("platformVersion"):
        model.platformVersion = cluster["platformVersion"]
    if cluster.get("arn"):
        model.arn = cluster["arn"]
    return cluster["name"]


# ---------------------------------------------------------------------------------------------
# line protocol
# ---------------------------------------------------------------------------------------------


def handle(cmd: dict) -> dict:
    try:
        name = cmd.get("cmd")
        if name == "reset":
            return reset()
        if name == "seed":
            return seed(cmd["scenario"], cmd.get("clusterEndpoint"), cmd.get("clusterCaData"))
        if name == "set-target-health":
            return set_target_health(cmd["targetGroupArn"], cmd["targetId"], cmd["state"], cmd.get("reason"),
                                     cmd.get("description"), cmd.get("healthCheckPort"))
        if name == "set-cluster":
            return set_cluster(cmd["name"], cmd.get("endpoint"), cmd.get("caData"))
        return {"ok": False, "error": f"unknown cmd {name!r}"}
    except Exception as e:  # noqa: BLE001 - every failure becomes an answer line
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args()

    def on_term(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    url = start(args.port)
    print(json.dumps({"endpoint": url}), flush=True)
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
                answer = handle(cmd) if isinstance(cmd, dict) else {"ok": False, "error": "not a JSON object"}
            except json.JSONDecodeError as e:
                answer = {"ok": False, "error": f"bad JSON: {e}"}
            print(json.dumps(answer), flush=True)
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
