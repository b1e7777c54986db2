#!/usr/bin/env python3
"""Generate the eks-lb-doctor scenario dump directories.

Every scenario is a "dump directory": the files the AWS CLI v2 and kubectl print
for one target group, plus `manifest.json` and the test metadata `expected.json`.

    python3 tests/scenarios/generate.py           # delete and rewrite every scenario dir
    python3 tests/scenarios/generate.py --check   # exit 1 if the committed files are stale

Design: `base_state()` builds the healthy cluster as plain Python dicts; each
scenario is a small function that receives a deep copy of the base and mutates
it.  `render()` derives the few things that must always agree (Endpoints and
EndpointSlices from the Service selector and the Pods, the pod IPs on the node
ENIs), checks the dump is self-consistent and serialises it.

Standard library only; output is deterministic (UUIDs are uuid5, resource
versions and ids are hashes of the object's identity).
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import hashlib
import ipaddress
import json
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Fixed identities of the demo environment
# --------------------------------------------------------------------------

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "demo-cluster"
VPC_ID = "vpc-0a1b2c3d4e5f60001"
VPC_CIDR = "192.168.0.0/16"
IGW_ID = "igw-0a1b2c3d4e5f00031"
NAT_ID = "nat-0a1b2c3d4e5f00041"
DHCP_ID = "dopt-0a1b2c3d4e5f00071"
DEFAULT_ACL = "acl-0a1b2c3d4e5f00061"
PRIVATE_ACL = "acl-0priv0000000000p1"
RTB_MAIN = "rtb-0a1b2c3d4e5f00051"
RTB_PUBLIC = "rtb-0a1b2c3d4e5f00052"
RTB_PRIVATE = "rtb-0a1b2c3d4e5f00053"
FIREWALL_ENI = "eni-0fw00000000000001"

SG_ALB = "sg-0alb00000000000a1"
SG_BACKEND = "sg-0bk000000000000b1"
SG_CLUSTER = "sg-0c1000000000000c1"
SG_NG2 = "sg-0ng200000000000d1"
SG_NAMES = {
    SG_ALB: "k8s-default-albinsta-3b4c5d6e7f",
    SG_BACKEND: "k8s-traffic-demo-cluster-4f3e2d1c0b",
    SG_CLUSTER: "eks-cluster-sg-demo-cluster-1234567890",
    SG_NG2: "demo-cluster-ng-2-node-sg",
}
TGB_RULE_DESC = "elbv2.k8s.aws/targetGroupBinding=shared"

ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
ALB_NAME = "k8s-default-albinsta-7f3a1e9c2b"
ALB_ARN = f"{ELB}:loadbalancer/app/{ALB_NAME}/50dc6c495c0c9188"
ALB_DNS = f"{ALB_NAME}-1187654321.{REGION}.elb.amazonaws.com"
ALB_TG_NAME = "k8s-default-albinsta-6b1c1d4f2e"
ALB_TG_ARN = f"{ELB}:targetgroup/{ALB_TG_NAME}/73e2d6bc24d8a067"
NLB_NAME = "k8s-default-echonlb-3c4d5e6f7a"
NLB_ARN = f"{ELB}:loadbalancer/net/{NLB_NAME}/8a9b0c1d2e3f4a5b"
NLB_DNS = f"{NLB_NAME}-8a9b0c1d2e3f4a5b.elb.{REGION}.amazonaws.com"
NLB_TG_NAME = "k8s-default-echonlb-1a2b3c4d5e"
NLB_TG_ARN = f"{ELB}:targetgroup/{NLB_TG_NAME}/0f1e2d3c4b5a6978"

NGINX_IMAGE = "public.ecr.aws/nginx/nginx:1.27"
LBC_IMAGE = "public.ecr.aws/eks/aws-load-balancer-controller:v2.14.1"
KUBE_PROXY_IMAGE = "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.33.3-minimal-eksbuild.6"
LBC_ROLE = "AmazonEKSLoadBalancerControllerRole"

# The ALB's own private addresses in the public subnets (seen as client IPs
# when the source address is preserved), one interface per zone.
ALB_NODE_IPS = ["192.168.14.201", "192.168.47.18"]
ALB_ENIS = ["eni-0a1b2c3d4e5f80001", "eni-0a1b2c3d4e5f80002"]
# The NLB's (one static private address per zone).
NLB_NODE_IPS = ["192.168.22.117", "192.168.53.8"]
NLB_ENIS = ["eni-0a1b2c3d4e5f80011", "eni-0a1b2c3d4e5f80012"]

AZ_IDS = {"us-east-1a": "use1-az1", "us-east-1b": "use1-az2", "us-east-1c": "use1-az4"}


@dataclasses.dataclass(frozen=True)
class Subnet:
    key: str
    id: str
    cidr: str
    az: str
    public: bool
    free_ips: int


SUBNETS = [
    Subnet("public-1a", "subnet-0a1b2c3d4e5f00011", "192.168.0.0/19", "us-east-1a", True, 8184),
    Subnet("public-1b", "subnet-0a1b2c3d4e5f00012", "192.168.32.0/19", "us-east-1b", True, 8185),
    Subnet("private-1a", "subnet-0a1b2c3d4e5f00021", "192.168.64.0/19", "us-east-1a", False, 8150),
    Subnet("private-1b", "subnet-0a1b2c3d4e5f00022", "192.168.96.0/19", "us-east-1b", False, 8163),
    Subnet("private-1c", "subnet-0a1b2c3d4e5f00023", "192.168.128.0/19", "us-east-1c", False, 8186),
]
SUBNET = {s.key: s for s in SUBNETS}
PUBLIC_SUBNETS = [s for s in SUBNETS if s.public]
PRIVATE_SUBNETS = [s for s in SUBNETS if not s.public]


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One EC2 worker node: the instance, its primary ENI and its Node object."""

    instance_id: str
    ip: str
    subnet: str
    eni: str
    nodegroup: str = "ng-1"
    security_groups: tuple = (SG_CLUSTER,)
    launched: str = "2026-11-27T02:02:55+00:00"
    registered: str = "2026-11-27T02:03:40Z"
    # VPC CNI prefix delegation: pod IPs come from /28 prefixes on the ENI, not secondary IPs.
    prefix_delegation: bool = False
    # A Fargate "node": one pod, no EC2 instance, no kube-proxy pod.
    fargate: bool = False

    @property
    def name(self) -> str:
        if self.fargate:
            return "fargate-ip-" + self.ip.replace(".", "-") + ".ec2.internal"
        return "ip-" + self.ip.replace(".", "-") + ".ec2.internal"

    @property
    def az(self) -> str:
        return SUBNET[self.subnet].az

    @property
    def subnet_id(self) -> str:
        return SUBNET[self.subnet].id


NODE1 = NodeSpec("i-0a1b2c3d4e5f6a001", "192.168.70.10", "private-1a", "eni-0a1b2c3d4e5f70001")
NODE2 = NodeSpec("i-0a1b2c3d4e5f6a002", "192.168.100.20", "private-1b", "eni-0a1b2c3d4e5f70002")
NODE3 = NodeSpec("i-0a1b2c3d4e5f6a003", "192.168.130.30", "private-1c", "eni-0a1b2c3d4e5f70003")
# A Karpenter node in us-east-1b (scenarios with a node being replaced).
NODE4 = NodeSpec("i-0a1b2c3d4e5f6a004", "192.168.99.140", "private-1b", "eni-0a1b2c3d4e5f70004",
                 nodegroup="karpenter-default", launched="2026-11-26T19:44:02+00:00",
                 registered="2026-11-26T19:44:51Z")
# A node with VPC CNI prefix delegation (ENABLE_PREFIX_DELEGATION=true).
NODE5_PD = NodeSpec("i-0a1b2c3d4e5f6a005", "192.168.71.205", "private-1a", "eni-0a1b2c3d4e5f70005",
                    nodegroup="ng-pd", prefix_delegation=True)
NODE6_PD = NodeSpec("i-0a1b2c3d4e5f6a006", "192.168.102.77", "private-1b", "eni-0a1b2c3d4e5f70006",
                    nodegroup="ng-pd", prefix_delegation=True)
# A Fargate "node" (one per pod): its IP is the pod's.
FARGATE1 = NodeSpec("fargate-0f9e8d7c6b5a4f3e2", "192.168.109.53", "private-1b", "eni-0fa100000000000f1",
                    nodegroup="fp-default", fargate=True, launched="2026-11-27T02:50:11+00:00",
                    registered="2026-11-27T02:50:59Z")
FARGATE2 = NodeSpec("fargate-0e8d7c6b5a4f3e2d1", "192.168.75.190", "private-1a", "eni-0fa200000000000f2",
                    nodegroup="fp-default", fargate=True, launched="2026-11-27T02:49:37+00:00",
                    registered="2026-11-27T02:50:21Z")
ALL_NODES = [NODE1, NODE2, NODE3, NODE4, NODE5_PD, NODE6_PD, FARGATE1, FARGATE2]

# Long-lived objects were created with the cluster / load balancer; the node
# group was rolled this morning, so nodes and pods are recent.
T_CLUSTER_K8S = "2026-10-01T08:55:41Z"
T_ADDONS = "2026-10-01T09:04:58Z"
T_APP = "2026-10-01T09:12:01Z"
T_APP_POD = "2026-11-27T02:31:07Z"
T_APP_POD_RECREATED = "2026-11-27T02:48:20Z"
T_LBC_POD = "2026-11-27T02:09:51Z"
T_KUBE_PROXY_POD = "2026-11-27T02:03:45Z"
# When the dumps were taken: three minutes after the alarm.
COLLECTED_AT = "2026-11-27T03:06:12Z"

# --------------------------------------------------------------------------
# Deterministic ids
# --------------------------------------------------------------------------

UUID_NS = uuid.UUID("6f1c5b0e-2a4d-4c1e-9b7a-0d3e5f7a9c21")


def digest(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def uid(*parts: str) -> str:
    return str(uuid.uuid5(UUID_NS, "/".join(parts)))


def resource_version(*parts: str) -> str:
    return str(1_000_000 + int(digest(*parts, n=8), 16) % 8_000_000)


# --------------------------------------------------------------------------
# Small generic helpers
# --------------------------------------------------------------------------


def aws_tags(d: dict) -> list:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def only(items, pred, what="item"):
    found = [i for i in items if pred(i)]
    if len(found) != 1:
        raise LookupError(f"expected exactly one {what}, found {len(found)}")
    return found[0]


def klog(level: str, hms: str, micro: int, src: str, msg: str) -> str:
    """A klog header line as kube-proxy prints it."""
    return f"{level}1127 {hms}.{micro:06d}       1 {src}] {msg}"


# --------------------------------------------------------------------------
# AWS builders
# --------------------------------------------------------------------------


def sg_rule(protocol="tcp", port=None, *, cidrs=(), groups=(), description=None) -> dict:
    """One IpPermission. `port` is an int or a (from, to) tuple; None with protocol -1."""
    rule = {}
    if protocol != "-1":
        lo, hi = port if isinstance(port, tuple) else (port, port)
        rule["FromPort"] = lo
    rule["IpProtocol"] = protocol
    rule["IpRanges"] = [{"CidrIp": c, **({"Description": description} if description else {})} for c in cidrs]
    rule["Ipv6Ranges"] = []
    rule["PrefixListIds"] = []
    if protocol != "-1":
        rule["ToPort"] = hi
    rule["UserIdGroupPairs"] = [
        {**({"Description": description} if description else {}), "GroupId": g, "UserId": ACCOUNT} for g in groups
    ]
    return rule


def security_group(group_id, description, ingress, tags) -> dict:
    return {
        "Description": description,
        "GroupName": SG_NAMES[group_id],
        "IpPermissions": ingress,
        "OwnerId": ACCOUNT,
        "GroupId": group_id,
        "IpPermissionsEgress": [sg_rule("-1", cidrs=["0.0.0.0/0"])],
        "Tags": aws_tags(tags),
        "VpcId": VPC_ID,
    }


def alb_security_group() -> dict:
    return security_group(
        SG_ALB,
        "[k8s] Managed SecurityGroup for LoadBalancer",
        [sg_rule("tcp", 80, cidrs=["0.0.0.0/0"])],
        {
            "elbv2.k8s.aws/cluster": CLUSTER,
            "ingress.k8s.aws/stack": "default/alb-instance",
            "ingress.k8s.aws/resource": "ManagedLBSecurityGroup",
        },
    )


def backend_security_group() -> dict:
    return security_group(
        SG_BACKEND,
        "[k8s] Shared Backend SecurityGroup for LoadBalancer",
        [],
        {"elbv2.k8s.aws/cluster": CLUSTER, "elbv2.k8s.aws/resource": "backend-sg"},
    )


def cluster_security_group(extra_rules) -> dict:
    return security_group(
        SG_CLUSTER,
        "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, "
        "as well as any managed workloads.",
        [sg_rule("-1", groups=[SG_CLUSTER])] + list(extra_rules),
        {
            "Name": SG_NAMES[SG_CLUSTER],
            f"kubernetes.io/cluster/{CLUSTER}": "owned",
            "aws:eks:cluster-name": CLUSTER,
        },
    )


def nacl_entry(number, action, *, egress, cidr="0.0.0.0/0", protocol="-1", ports=None) -> dict:
    entry = {"Ipv6CidrBlock" if ":" in cidr else "CidrBlock": cidr, "Egress": egress}
    if ports is not None:
        entry["PortRange"] = {"From": ports[0], "To": ports[1]}
    entry["Protocol"] = protocol
    entry["RuleAction"] = action
    entry["RuleNumber"] = number
    return entry


def network_acl(acl_id, subnets, inbound, outbound, *, is_default, tags=None) -> dict:
    """`inbound`/`outbound` are the custom entries; the 32767 deny-all is appended like AWS does."""
    entries = (
        list(outbound)
        + [nacl_entry(32767, "deny", egress=True)]
        + list(inbound)
        + [nacl_entry(32767, "deny", egress=False)]
    )
    return {
        "Associations": [
            {
                "NetworkAclAssociationId": "aclassoc-" + digest(acl_id, sn.id, n=17),
                "NetworkAclId": acl_id,
                "SubnetId": sn.id,
            }
            for sn in subnets
        ],
        "Entries": entries,
        "IsDefault": is_default,
        "NetworkAclId": acl_id,
        "Tags": aws_tags(tags or {}),
        "VpcId": VPC_ID,
        "OwnerId": ACCOUNT,
    }


def allow_all_nacl(acl_id, subnets, **kw) -> dict:
    return network_acl(
        acl_id,
        subnets,
        inbound=[nacl_entry(100, "allow", egress=False)],
        outbound=[nacl_entry(100, "allow", egress=True)],
        **kw,
    )


def route(destination, *, origin="CreateRoute", state="active", **target) -> dict:
    return {"DestinationCidrBlock": destination, **target, "Origin": origin, "State": state}


def local_route() -> dict:
    return route(VPC_CIDR, GatewayId="local", origin="CreateRouteTable")


def route_table(rtb_id, subnets, routes, name, *, main=False) -> dict:
    assocs = []
    if main:
        assocs.append(
            {
                "Main": True,
                "RouteTableAssociationId": "rtbassoc-" + digest(rtb_id, "main", n=17),
                "RouteTableId": rtb_id,
                "AssociationState": {"State": "associated"},
            }
        )
    for sn in subnets:
        assocs.append(
            {
                "Main": False,
                "RouteTableAssociationId": "rtbassoc-" + digest(rtb_id, sn.id, n=17),
                "RouteTableId": rtb_id,
                "SubnetId": sn.id,
                "AssociationState": {"State": "associated"},
            }
        )
    return {
        "Associations": assocs,
        "PropagatingVgws": [],
        "RouteTableId": rtb_id,
        "Routes": routes,
        "Tags": aws_tags({"Name": name}),
        "VpcId": VPC_ID,
        "OwnerId": ACCOUNT,
    }


def subnet(sn: Subnet) -> dict:
    kind = "Public" if sn.public else "Private"
    role = "kubernetes.io/role/elb" if sn.public else "kubernetes.io/role/internal-elb"
    return {
        "AvailabilityZone": sn.az,
        "AvailabilityZoneId": AZ_IDS[sn.az],
        "AvailableIpAddressCount": sn.free_ips,
        "CidrBlock": sn.cidr,
        "DefaultForAz": False,
        "MapPublicIpOnLaunch": sn.public,
        "MapCustomerOwnedIpOnLaunch": False,
        "State": "available",
        "SubnetId": sn.id,
        "VpcId": VPC_ID,
        "OwnerId": ACCOUNT,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "Tags": aws_tags(
            {
                "Name": f"eksctl-{CLUSTER}-cluster/Subnet{kind}{sn.az.replace('-', '').upper()}",
                role: "1",
                f"kubernetes.io/cluster/{CLUSTER}": "shared",
            }
        ),
        "SubnetArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{sn.id}",
        "EnableDns64": False,
        "Ipv6Native": False,
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": False,
            "EnableResourceNameDnsAAAARecord": False,
        },
    }


def vpc() -> dict:
    return {
        "CidrBlock": VPC_CIDR,
        "DhcpOptionsId": DHCP_ID,
        "State": "available",
        "VpcId": VPC_ID,
        "OwnerId": ACCOUNT,
        "InstanceTenancy": "default",
        "CidrBlockAssociationSet": [
            {
                "AssociationId": "vpc-cidr-assoc-0a1b2c3d4e5f00091",
                "CidrBlock": VPC_CIDR,
                "CidrBlockState": {"State": "associated"},
            }
        ],
        "IsDefault": False,
        "Tags": aws_tags({"Name": f"eksctl-{CLUSTER}-cluster/VPC"}),
    }


def sg_refs(node: NodeSpec) -> list:
    return [{"GroupId": g, "GroupName": SG_NAMES[g]} for g in node.security_groups]


def reservation(node: NodeSpec, *, state="running") -> dict:
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
    instance = {
        "AmiLaunchIndex": 0,
        "ImageId": "ami-0c1d2e3f4a5b6c7d8",
        "InstanceId": node.instance_id,
        "InstanceType": "m5.large",
        "LaunchTime": node.launched,
        "Monitoring": {"State": "disabled"},
        "Placement": {"AvailabilityZone": node.az, "GroupName": "", "Tenancy": "default"},
        "PrivateDnsName": node.name,
        "PrivateIpAddress": node.ip,
        "ProductCodes": [],
        "PublicDnsName": "",
        "State": {"Code": codes[state], "Name": state},
        "StateTransitionReason": "",
        "SubnetId": node.subnet_id,
        "VpcId": VPC_ID,
        "Architecture": "x86_64",
        "NetworkInterfaces": [
            {
                "Attachment": {
                    "AttachTime": node.launched,
                    "AttachmentId": "eni-attach-" + digest(node.eni, n=17),
                    "DeleteOnTermination": True,
                    "DeviceIndex": 0,
                    "Status": "attached",
                    "NetworkCardIndex": 0,
                },
                "Description": "",
                "Groups": sg_refs(node),
                "Ipv6Addresses": [],
                "MacAddress": mac_address(node),
                "NetworkInterfaceId": node.eni,
                "OwnerId": ACCOUNT,
                "PrivateDnsName": node.name,
                "PrivateIpAddress": node.ip,
                "SourceDestCheck": True,
                "Status": "in-use",
                "SubnetId": node.subnet_id,
                "VpcId": VPC_ID,
                "InterfaceType": "interface",
            }
        ],
        "SecurityGroups": sg_refs(node),
        "Tags": aws_tags(
            {
                "Name": f"{CLUSTER}-{node.nodegroup}-Node",
                "eks:cluster-name": CLUSTER,
                "eks:nodegroup-name": node.nodegroup,
                f"kubernetes.io/cluster/{CLUSTER}": "owned",
                "aws:autoscaling:groupName": f"eks-{node.nodegroup}-" + uid("asg", node.nodegroup),
            }
        ),
    }
    if state == "shutting-down":
        instance["StateTransitionReason"] = "User initiated (2026-11-27 03:01:12 GMT)"
        instance["StateReason"] = {"Code": "Client.UserInitiatedShutdown",
                                   "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
    elif state != "running":
        instance["StateTransitionReason"] = "User initiated (2026-11-27 02:41:07 GMT)"
        instance["StateReason"] = {
            "Code": "Client.UserInitiatedShutdown",
            "Message": "Client.UserInitiatedShutdown: User initiated shutdown",
        }
    return {
        "ReservationId": "r-" + digest("reservation", node.instance_id, n=17),
        "OwnerId": ACCOUNT,
        "Groups": [],
        "Instances": [instance],
    }


def mac_address(node: NodeSpec) -> str:
    h = digest("mac", node.eni, n=10)
    return "0a:" + ":".join(h[i : i + 2] for i in range(0, 10, 2))


def network_interface(node: NodeSpec) -> dict:
    """The node's primary ENI; pod IPs are filled in by `render()` from the Pods. A Fargate
    pod's ENI belongs to no instance of the account (requester-managed)."""
    if node.fargate:
        eni = network_interface(dataclasses.replace(node, fargate=False))
        eni["Attachment"] = {
            "AttachTime": node.launched,
            "AttachmentId": "ela-attach-" + digest(node.eni, n=17),
            "DeleteOnTermination": False,
            "DeviceIndex": 1,
            "NetworkCardIndex": 0,
            "InstanceOwnerId": "amazon-aws",
            "Status": "attached",
        }
        eni["Description"] = f"[Fargate] pod {node.ip}"
        eni["RequesterId"] = "amazon-aws"
        eni["RequesterManaged"] = True
        return eni
    return {
        "Attachment": {
            "AttachTime": node.launched,
            "AttachmentId": "eni-attach-" + digest(node.eni, n=17),
            "DeleteOnTermination": True,
            "DeviceIndex": 0,
            "NetworkCardIndex": 0,
            "InstanceId": node.instance_id,
            "InstanceOwnerId": ACCOUNT,
            "Status": "attached",
        },
        "AvailabilityZone": node.az,
        "Description": "",
        "Groups": sg_refs(node),
        "InterfaceType": "interface",
        "Ipv6Addresses": [],
        "MacAddress": mac_address(node),
        "NetworkInterfaceId": node.eni,
        "OwnerId": ACCOUNT,
        "PrivateDnsName": node.name,
        "PrivateIpAddress": node.ip,
        "PrivateIpAddresses": [{"Primary": True, "PrivateDnsName": node.name, "PrivateIpAddress": node.ip}],
        "RequesterManaged": False,
        "SourceDestCheck": True,
        "Status": "in-use",
        "SubnetId": node.subnet_id,
        "TagSet": [],
        "VpcId": VPC_ID,
    }


def application_load_balancer() -> dict:
    return {
        "LoadBalancerArn": ALB_ARN,
        "DNSName": ALB_DNS,
        "CanonicalHostedZoneId": "Z35SXDOTRQ7X7K",
        "CreatedTime": "2026-10-01T09:12:33.120000+00:00",
        "LoadBalancerName": ALB_NAME,
        "Scheme": "internet-facing",
        "VpcId": VPC_ID,
        "State": {"Code": "active"},
        "Type": "application",
        "AvailabilityZones": [
            {"ZoneName": sn.az, "SubnetId": sn.id, "LoadBalancerAddresses": []} for sn in PUBLIC_SUBNETS
        ],
        "SecurityGroups": [SG_ALB, SG_BACKEND],
        "IpAddressType": "ipv4",
    }


def network_load_balancer() -> dict:
    return {
        "LoadBalancerArn": NLB_ARN,
        "DNSName": NLB_DNS,
        "CanonicalHostedZoneId": "Z26RNL4JYFTOTI",
        "CreatedTime": "2026-10-01T09:14:52.803000+00:00",
        "LoadBalancerName": NLB_NAME,
        "Scheme": "internet-facing",
        "VpcId": VPC_ID,
        "State": {"Code": "active"},
        "Type": "network",
        "AvailabilityZones": [
            {"ZoneName": sn.az, "SubnetId": sn.id, "LoadBalancerAddresses": []} for sn in PUBLIC_SUBNETS
        ],
        "IpAddressType": "ipv4",
    }


def lb_network_interface(eni_id, ip, sn: Subnet, *, lb_arn, groups, nlb) -> dict:
    """A load balancer node's interface, as `describe-network-interfaces --filters
    Name=description,Values="ELB app/..."` prints it: requester-managed by ELB."""
    description = "ELB " + lb_arn.split(":loadbalancer/", 1)[1]
    name = "ip-" + ip.replace(".", "-") + ".ec2.internal"
    public = "3.92." + str(int(digest("pub", eni_id, n=2), 16) % 250) + "." + str(int(digest("pub2", eni_id, n=2), 16) % 250)
    association = {"IpOwnerId": "amazon", "PublicDnsName": f"ec2-{public.replace('.', '-')}.compute-1.amazonaws.com",
                   "PublicIp": public}
    return {
        "Association": association,
        "Attachment": {
            "AttachTime": "2026-10-01T09:12:36+00:00",
            "AttachmentId": ("ela-attach-" if nlb else "eni-attach-") + digest(eni_id, n=17),
            "DeleteOnTermination": False,
            "DeviceIndex": 1,
            "NetworkCardIndex": 0,
            "InstanceOwnerId": "amazon-aws" if nlb else "amazon-elb",
            "Status": "attached",
        },
        "AvailabilityZone": sn.az,
        "Description": description,
        "Groups": [{"GroupId": g, "GroupName": SG_NAMES[g]} for g in groups],
        "InterfaceType": "network_load_balancer" if nlb else "interface",
        "Ipv6Addresses": [],
        "MacAddress": "0a:" + ":".join(digest("mac", eni_id, n=10)[i:i + 2] for i in range(0, 10, 2)),
        "NetworkInterfaceId": eni_id,
        "OwnerId": ACCOUNT,
        "PrivateDnsName": name,
        "PrivateIpAddress": ip,
        "PrivateIpAddresses": [{"Association": association, "Primary": True, "PrivateDnsName": name,
                                "PrivateIpAddress": ip}],
        "RequesterId": "amazon-elb",
        "RequesterManaged": True,
        "SourceDestCheck": True,
        "Status": "in-use",
        "SubnetId": sn.id,
        "TagSet": [],
        "VpcId": VPC_ID,
    }


def alb_interfaces() -> list:
    return [lb_network_interface(e, ip, sn, lb_arn=ALB_ARN, groups=[SG_ALB, SG_BACKEND], nlb=False)
            for e, ip, sn in zip(ALB_ENIS, ALB_NODE_IPS, PUBLIC_SUBNETS)]


def nlb_interfaces(groups=()) -> list:
    return [lb_network_interface(e, ip, sn, lb_arn=NLB_ARN, groups=list(groups), nlb=True)
            for e, ip, sn in zip(NLB_ENIS, NLB_NODE_IPS, PUBLIC_SUBNETS)]


def attributes(d: dict) -> list:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def alb_attributes() -> list:
    return attributes({
        "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "", "access_logs.s3.prefix": "",
        "idle_timeout.timeout_seconds": "60", "deletion_protection.enabled": "false",
        "routing.http2.enabled": "true", "routing.http.drop_invalid_header_fields.enabled": "false",
        "routing.http.xff_client_port.enabled": "false", "routing.http.preserve_host_header.enabled": "false",
        "routing.http.xff_header_processing.mode": "append", "load_balancing.cross_zone.enabled": "true",
        "routing.http.desync_mitigation_mode": "defensive", "client_keep_alive.seconds": "3600",
        "waf.fail_open.enabled": "false", "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
        "connection_logs.s3.enabled": "false", "zonal_shift.config.enabled": "false",
    })


def nlb_attributes() -> list:
    return attributes({
        "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "", "access_logs.s3.prefix": "",
        "deletion_protection.enabled": "false", "load_balancing.cross_zone.enabled": "false",
        "ipv6.deny_all_igw_traffic": "false", "dns_record.client_routing_policy": "any_availability_zone",
        "zonal_shift.config.enabled": "false",
    })


TG_HEALTH_ATTRIBUTES = {
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": "1",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off",
    "target_group_health.dns_failover.minimum_healthy_targets.count": "1",
    "target_group_health.dns_failover.minimum_healthy_targets.percentage": "off",
}


def alb_tg_attributes() -> list:
    return attributes({
        "stickiness.enabled": "false", "deregistration_delay.timeout_seconds": "300",
        "stickiness.app_cookie.cookie_name": "", "stickiness.type": "lb_cookie",
        "stickiness.lb_cookie.duration_seconds": "86400", "slow_start.duration_seconds": "0",
        "stickiness.app_cookie.duration_seconds": "86400", "load_balancing.algorithm.type": "round_robin",
        "load_balancing.algorithm.anomaly_mitigation": "off",
        "load_balancing.cross_zone.enabled": "use_load_balancer_configuration", **TG_HEALTH_ATTRIBUTES,
    })


def nlb_tg_attributes(*, preserve_client_ip: bool) -> list:
    return attributes({
        "proxy_protocol_v2.enabled": "false", "preserve_client_ip.enabled": str(preserve_client_ip).lower(),
        "stickiness.enabled": "false", "deregistration_delay.timeout_seconds": "300",
        "stickiness.type": "source_ip", "deregistration_delay.connection_termination.enabled": "false",
        "load_balancing.cross_zone.enabled": "use_load_balancer_configuration", **TG_HEALTH_ATTRIBUTES,
        "target_health_state.unhealthy.connection_termination.enabled": "true",
        "target_health_state.unhealthy.draining_interval_seconds": "0",
    })


def alb_target_group(*, port=30080, target_type="instance", hc_port="traffic-port", hc_path="/") -> dict:
    return {
        "TargetGroupArn": ALB_TG_ARN,
        "TargetGroupName": ALB_TG_NAME,
        "Protocol": "HTTP",
        "Port": port,
        "VpcId": VPC_ID,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPort": hc_port,
        "HealthCheckEnabled": True,
        "HealthCheckIntervalSeconds": 15,
        "HealthCheckTimeoutSeconds": 5,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 2,
        "HealthCheckPath": hc_path,
        "Matcher": {"HttpCode": "200"},
        "LoadBalancerArns": [ALB_ARN],
        "TargetType": target_type,
        "ProtocolVersion": "HTTP1",
        "IpAddressType": "ipv4",
    }


def nlb_target_group(*, port, target_type, hc_port, hc_path) -> dict:
    return {
        "TargetGroupArn": NLB_TG_ARN,
        "TargetGroupName": NLB_TG_NAME,
        "Protocol": "TCP",
        "Port": port,
        "VpcId": VPC_ID,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPort": hc_port,
        "HealthCheckEnabled": True,
        "HealthCheckIntervalSeconds": 10,
        "HealthCheckTimeoutSeconds": 6,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 2,
        "HealthCheckPath": hc_path,
        "Matcher": {"HttpCode": "200-399"},
        "LoadBalancerArns": [NLB_ARN],
        "TargetType": target_type,
        "IpAddressType": "ipv4",
    }


TARGET_REASONS = {
    # reason -> (state, default description)
    "Target.FailedHealthChecks": ("unhealthy", "Health checks failed"),
    "Target.Timeout": ("unhealthy", "Request timed out"),
    "Target.ResponseCodeMismatch": ("unhealthy", "Health checks failed with these codes: [404]"),
    "Target.NotInUse": ("unused", "Target is in an Availability Zone that is not enabled for the load balancer"),
    "Target.InvalidState": ("unused", "Target is in the stopped state"),
    "Elb.InternalError": ("unhealthy", "Health checks failed due to an internal error"),
}


def target_health(target_id, port, *, hc_port=None, az=None, reason=None, description=None) -> dict:
    """One TargetHealthDescription; healthy unless `reason` is given."""
    target = {"Id": target_id, "Port": port}
    if az:
        target["AvailabilityZone"] = az
    health = {"State": "healthy"}
    if reason:
        state, default_description = TARGET_REASONS[reason]
        health = {"State": state, "Reason": reason, "Description": description or default_description}
    return {"Target": target, "HealthCheckPort": hc_port or str(port), "TargetHealth": health}


def tag_description(arn, tags: dict) -> dict:
    return {"ResourceArn": arn, "Tags": aws_tags(tags)}


def alb_tg_tags() -> dict:
    return {
        "elbv2.k8s.aws/cluster": CLUSTER,
        "ingress.k8s.aws/stack": "default/alb-instance",
        "ingress.k8s.aws/resource": "default/alb-instance-alb-instance:80",
    }


def eks_cluster() -> dict:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC").decode()
    return {
        "name": CLUSTER,
        "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
        "createdAt": "2026-10-01T08:47:19.412000+00:00",
        "version": "1.33",
        "endpoint": "https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eksctl-{CLUSTER}-cluster-ServiceRole-1A2B3C4D5E6F",
        "resourcesVpcConfig": {
            "subnetIds": [sn.id for sn in SUBNETS],
            "securityGroupIds": [],
            "clusterSecurityGroupId": SG_CLUSTER,
            "vpcId": VPC_ID,
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["0.0.0.0/0"],
        },
        "kubernetesNetworkConfig": {
            "serviceIpv4Cidr": "10.100.0.0/16",
            "ipFamily": "ipv4",
            "elasticLoadBalancing": {"enabled": False},
        },
        "logging": {
            "clusterLogging": [
                {"types": ["api", "audit", "authenticator", "controllerManager", "scheduler"], "enabled": False}
            ]
        },
        "identity": {"oidc": {"issuer": f"https://oidc.eks.{REGION}.amazonaws.com/id/ABCDEF0123456789"}},
        "status": "ACTIVE",
        "certificateAuthority": {"data": ca},
        "platformVersion": "eks.9",
        "tags": {},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
        "upgradePolicy": {"supportType": "STANDARD"},
    }


# --------------------------------------------------------------------------
# Kubernetes builders
# --------------------------------------------------------------------------


def meta(kind, name, namespace=None, *, created, labels=None, annotations=None, **extra) -> dict:
    m = {
        "creationTimestamp": created,
        "name": name,
        "resourceVersion": resource_version(kind, namespace or "", name),
        "uid": uid(kind, namespace or "", name),
    }
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    m.update(extra)
    return m


def owner_ref(kind, name, namespace, api_version="apps/v1") -> dict:
    return {
        "apiVersion": api_version,
        "blockOwnerDeletion": True,
        "controller": True,
        "kind": kind,
        "name": name,
        "uid": uid(kind, namespace, name),
    }


def obj_ref(obj) -> dict:
    """targetRef as the endpoints controllers write it."""
    m = obj["metadata"]
    return {"kind": obj["kind"], "name": m["name"], "namespace": m["namespace"], "uid": m["uid"]}


def k8s_list(items) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def condition(ctype, status, when, *, reason=None, message=None, heartbeat=None) -> dict:
    c = {"lastProbeTime": None, "lastTransitionTime": when, "status": status, "type": ctype}
    if heartbeat is not None:  # node conditions carry heartbeats, not probe times
        c = {"lastHeartbeatTime": heartbeat, "lastTransitionTime": when, "status": status, "type": ctype}
    if message:
        c["message"] = message
    if reason:
        c["reason"] = reason
    return c


def namespace(name) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(
            "Namespace", name, created=T_CLUSTER_K8S, labels={"kubernetes.io/metadata.name": name}
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def fargate_node(node: NodeSpec) -> dict:
    """A Fargate node as EKS registers it: compute-type fargate, tainted, one pod, no instance."""
    n = k8s_node(dataclasses.replace(node, fargate=False))
    n["metadata"] = meta(
        "Node", node.name, created=node.registered,
        annotations={"node.alpha.kubernetes.io/ttl": "0",
                     "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        labels={
            "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "eks.amazonaws.com/compute-type": "fargate",
            "eks.amazonaws.com/fargate-profile": node.nodegroup,
            "failure-domain.beta.kubernetes.io/region": REGION, "failure-domain.beta.kubernetes.io/zone": node.az,
            "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": node.ip,
            "kubernetes.io/os": "linux", "topology.k8s.aws/zone-id": AZ_IDS[node.az],
            "topology.kubernetes.io/region": REGION, "topology.kubernetes.io/zone": node.az,
        },
    )
    n["metadata"]["name"] = node.name
    n["spec"] = {
        "podCIDR": None,
        "providerID": f"aws:///{node.az}/{node.instance_id}/{node.name}",
        "taints": [{"effect": "NoSchedule", "key": "eks.amazonaws.com/compute-type", "value": "fargate"}],
    }
    del n["spec"]["podCIDR"]
    n["status"]["nodeInfo"]["kubeletVersion"] = "v1.33.5-eks-3025e55"
    return n


def k8s_node(node: NodeSpec) -> dict:
    if node.fargate:
        return fargate_node(node)
    zone = node.az
    hb = "2026-11-27T03:04:12Z"
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    conditions = [
        condition(t, "False", node.registered, reason=r, message=m, heartbeat=hb) for t, r, m in pressure
    ]
    conditions.append(
        condition(
            "Ready", "True", "2026-11-27T02:04:01Z", reason="KubeletReady",
            message="kubelet is posting ready status", heartbeat=hb,
        )
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(
            "Node",
            node.name,
            created=node.registered,
            annotations={
                "alpha.kubernetes.io/provided-node-ip": node.ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            labels={
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": "m5.large",
                "beta.kubernetes.io/os": "linux",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": node.nodegroup,
                "eks.amazonaws.com/nodegroup-image": "ami-0c1d2e3f4a5b6c7d8",
                "failure-domain.beta.kubernetes.io/region": REGION,
                "failure-domain.beta.kubernetes.io/zone": zone,
                "k8s.io/cloud-provider-aws": digest("cloud-provider", CLUSTER, n=32),
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.k8s.aws/zone-id": AZ_IDS[zone],
                "topology.kubernetes.io/region": REGION,
                "topology.kubernetes.io/zone": zone,
            },
        ),
        "spec": {"providerID": f"aws:///{zone}/{node.instance_id}"},
        "status": {
            "addresses": [
                {"address": node.ip, "type": "InternalIP"},
                {"address": node.name, "type": "InternalDNS"},
                {"address": node.name, "type": "Hostname"},
            ],
            "allocatable": {
                "cpu": "1930m", "ephemeral-storage": "76224326324", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "7220184Ki", "pods": "29",
            },
            "capacity": {
                "cpu": "2", "ephemeral-storage": "83873772Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "7910360Ki", "pods": "29",
            },
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uid("boot", node.instance_id),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.155-176.282.amzn2023.x86_64",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.33.5-eks-113cf36",
                "machineID": digest("machine", node.instance_id, n=32),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.9.20251110",
                "systemUUID": "ec2" + digest("sys", node.instance_id, n=5) + "-" + uid("sysuuid", node.instance_id)[9:],
            },
        },
    }


def container(name, image, *, ports=(), readiness=None, liveness=None, args=None, command=None, env=None,
              resources=None, security_context=None) -> dict:
    c = {"image": image, "imagePullPolicy": "IfNotPresent", "name": name}
    if args:
        c["args"] = list(args)
    if command:
        c["command"] = list(command)
    if env:
        c["env"] = list(env)
    if ports:
        c["ports"] = [{"containerPort": p, "name": n, "protocol": "TCP"} for p, n in ports]
    if readiness:
        c["readinessProbe"] = readiness
    if liveness:
        c["livenessProbe"] = liveness
    c["resources"] = resources or {}
    if security_context:
        c["securityContext"] = security_context
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    return c


def http_probe(path, port, *, period=10, timeout=1, initial_delay=None) -> dict:
    p = {
        "failureThreshold": 3,
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": period,
        "successThreshold": 1,
        "timeoutSeconds": timeout,
    }
    if initial_delay:
        p["initialDelaySeconds"] = initial_delay
    return p


def nginx_container(name="nginx") -> dict:
    return container(name, NGINX_IMAGE, ports=[(80, "http")], readiness=http_probe("/", 80))


def image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0]
    return f"{repo}@sha256:" + digest("image", image, n=64)


def add_seconds(ts: str, seconds: int) -> str:
    """Add seconds to a 2026-11-27THH:MM:SSZ timestamp."""
    day, clock = ts.rstrip("Z").split("T")
    h, m, s = (int(x) for x in clock.split(":"))
    total = h * 3600 + m * 60 + s + seconds
    return f"{day}T{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}Z"


def make_pod(name, namespace_, node: NodeSpec, ip, *, labels, containers, owner, created,
             service_account="default", host_network=False, priority_class=None, qos="BestEffort",
             extra_tolerations=(), init_containers=(), readiness_gates=()) -> dict:
    """A Running, Ready pod. `owner` is (kind, name). Init containers ran to completion;
    readiness gates (condition types) are True."""
    started = add_seconds(created, 2 + 2 * len(init_containers))
    ready_at = add_seconds(started, 2)
    vol = "kube-api-access-" + digest("vol", namespace_, name, n=5)
    containers = copy.deepcopy(containers)
    init_containers = copy.deepcopy(list(init_containers))
    for c in containers + init_containers:
        c.setdefault("volumeMounts", []).append(
            {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": vol, "readOnly": True}
        )
    priority = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}.get(priority_class, 0)
    spec = {
        "containers": containers,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": node.name,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": priority,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": service_account,
        "serviceAccountName": service_account,
        "terminationGracePeriodSeconds": 30,
        "tolerations": list(extra_tolerations) + [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
        ],
        "volumes": [
            {
                "name": vol,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
                    ],
                },
            }
        ],
    }
    if host_network:
        spec["hostNetwork"] = True
    if priority_class:
        spec["priorityClassName"] = priority_class
    if init_containers:
        spec["initContainers"] = init_containers
    if readiness_gates:
        spec["readinessGates"] = [{"conditionType": g} for g in readiness_gates]
    statuses = [
        {
            "containerID": "containerd://" + digest("ctr", namespace_, name, c["name"], n=64),
            "image": c["image"],
            "imageID": image_id(c["image"]),
            "lastState": {},
            "name": c["name"],
            "ready": True,
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": started}},
        }
        for c in containers
    ]
    init_statuses = [
        {
            "containerID": "containerd://" + digest("ctr", namespace_, name, c["name"], n=64),
            "image": c["image"],
            "imageID": image_id(c["image"]),
            "lastState": {},
            "name": c["name"],
            "ready": True,
            "restartCount": 0,
            "started": False,
            "state": {"terminated": {
                "containerID": "containerd://" + digest("ctr", namespace_, name, c["name"], n=64),
                "exitCode": 0, "finishedAt": add_seconds(created, 2 + 2 * i), "reason": "Completed",
                "startedAt": add_seconds(created, 1 + 2 * i),
            }},
        }
        for i, c in enumerate(init_containers)
    ]
    kind, owner_name = owner
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            "Pod", name, namespace_, created=created, labels=labels,
            generateName=name.rsplit("-", 1)[0] + "-",
            ownerReferences=[owner_ref(kind, owner_name, namespace_)],
        ),
        "spec": spec,
        "status": {
            "conditions": [
                condition("PodReadyToStartContainers", "True", started),
                condition("Initialized", "True", created),
                condition("Ready", "True", ready_at),
                condition("ContainersReady", "True", ready_at),
                condition("PodScheduled", "True", created),
            ],
            "containerStatuses": statuses,
            "hostIP": node.ip,
            "hostIPs": [{"ip": node.ip}],
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": qos,
            "startTime": created,
        },
    }
    if init_statuses:
        pod["status"]["initContainerStatuses"] = init_statuses
    for g in readiness_gates:
        pod["status"]["conditions"].insert(0, condition(g, "True", add_seconds(ready_at, 12)))
    return pod


def set_pod_condition(pod, ctype, status, when, *, reason=None, message=None):
    for i, c in enumerate(pod["status"]["conditions"]):
        if c["type"] == ctype:
            pod["status"]["conditions"][i] = condition(ctype, status, when, reason=reason, message=message)


def crashloop(pod, *, restarts, finished, exit_code=1, only=None):
    """Turn a running pod into one whose containers (or only the one named) are in CrashLoopBackOff."""
    m = pod["metadata"]
    names = []
    for cs in pod["status"]["containerStatuses"]:
        if only and cs["name"] != only:
            continue
        names.append(cs["name"])
        cs.update(
            ready=False,
            started=False,
            restartCount=restarts,
            lastState={
                "terminated": {
                    "containerID": cs["containerID"],
                    "exitCode": exit_code,
                    "finishedAt": finished,
                    "reason": "Error",
                    "startedAt": add_seconds(finished, -1),
                }
            },
            state={
                "waiting": {
                    "message": f"back-off 5m0s restarting failed container={cs['name']} "
                    f"pod={m['name']}_{m['namespace']}({m['uid']})",
                    "reason": "CrashLoopBackOff",
                }
            },
        )
    msg = "containers with unready status: [" + " ".join(names) + "]"
    first_fail = add_seconds(m["creationTimestamp"], 40)
    set_pod_condition(pod, "Ready", "False", first_fail, reason="ContainersNotReady", message=msg)
    set_pod_condition(pod, "ContainersReady", "False", first_fail, reason="ContainersNotReady", message=msg)


FLUENT_BIT_IMAGE = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.34.3"
BUSYBOX_IMAGE = "public.ecr.aws/docker/library/busybox:1.37"


def log_router_container() -> dict:
    """A log-shipping sidecar with its own metrics port: its port is not the app's."""
    return container("log-router", FLUENT_BIT_IMAGE, ports=[(2020, "fb-metrics")],
                     resources={"limits": {"memory": "64Mi"}, "requests": {"cpu": "20m", "memory": "32Mi"}})


def config_init_container() -> dict:
    return container("render-config", BUSYBOX_IMAGE,
                     command=["sh", "-c", "cp /config-src/* /etc/nginx/conf.d/"])


def app_pod(name, node, ip, *, app="alb-instance", rs_hash="7d9c6b5f4", created=T_APP_POD, container_name="nginx",
            app_container=None, readiness_gates=()):
    return make_pod(
        name, "default", node, ip,
        labels={"app": app, "pod-template-hash": rs_hash},
        containers=[app_container or nginx_container(container_name), log_router_container()],
        init_containers=[config_init_container()],
        owner=("ReplicaSet", f"{app}-{rs_hash}"),
        created=created,
        qos="Burstable",
        readiness_gates=readiness_gates,
    )


def evict(pod, *, at, message):
    """The kubelet evicted the pod: phase Failed, reason Evicted, containers terminated."""
    pod["status"].update(phase="Failed", reason="Evicted", message=message)
    for c in pod["status"]["conditions"]:
        if c["type"] in ("Ready", "ContainersReady"):
            c.update(status="False", lastTransitionTime=at, reason="PodFailed")
    for cs in pod["status"]["containerStatuses"]:
        cs.update(ready=False, started=False, state={"terminated": {
            "containerID": cs["containerID"], "exitCode": 137, "finishedAt": at, "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated",
            "startedAt": cs["state"]["running"]["startedAt"],
        }})
    return pod


def make_deployment(name, *, replicas, selector, created=T_APP, revision=2, ready=None):
    ready = replicas if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("Deployment", name, "default", created=created, generation=revision,
                         annotations={"deployment.kubernetes.io/revision": str(revision)}),
        "spec": {
            "progressDeadlineSeconds": 600, "replicas": replicas, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(selector)},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": {"metadata": {"labels": dict(selector)}, "spec": {"containers": [nginx_container()]}},
        },
        "status": {"availableReplicas": ready, "observedGeneration": revision, "readyReplicas": ready,
                   "replicas": replicas, "updatedReplicas": replicas},
    }


def make_replicaset(deployment, rs_hash, *, replicas, labels, created, revision, ready=None):
    ready = replicas if ready is None else ready
    name = f"{deployment}-{rs_hash}"
    template_labels = {**labels, "pod-template-hash": rs_hash}
    status = {"observedGeneration": 1, "replicas": ready, "fullyLabeledReplicas": ready}
    if ready:
        status.update(availableReplicas=ready, readyReplicas=ready)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta("ReplicaSet", name, "default", created=created, generation=1,
                         labels=template_labels,
                         annotations={"deployment.kubernetes.io/desired-replicas": str(replicas),
                                      "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                                      "deployment.kubernetes.io/revision": str(revision)},
                         ownerReferences=[owner_ref("Deployment", deployment, "default")]),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": template_labels},
            "template": {"metadata": {"labels": template_labels}, "spec": {"containers": [nginx_container()]}},
        },
        "status": status,
    }


def service_port(*, port=80, target_port=80, node_port=30080) -> dict:
    return {"name": "http", "nodePort": node_port, "port": port, "protocol": "TCP", "targetPort": target_port}


def make_service(name, *, cluster_ip, ports, selector, svc_type="NodePort", etp="Cluster", annotations=None,
                 created=T_APP) -> dict:
    spec = {
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "externalTrafficPolicy": etp,
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": ports,
        "selector": selector,
        "sessionAffinity": "None",
        "type": svc_type,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("Service", name, "default", created=created, annotations=annotations),
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def make_endpoints(service_name, created=T_APP) -> dict:
    """Controller-managed Endpoints; `render()` fills in subsets from the Pods."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta(
            "Endpoints", service_name, "default", created=created,
            labels={"endpointslice.kubernetes.io/skip-mirror": "true"},
            annotations={"endpoints.kubernetes.io/last-change-trigger-time": T_APP_POD},
        ),
    }


def make_endpoint_slice(name, service_name, created=T_APP) -> dict:
    """Controller-managed EndpointSlice; `render()` fills in endpoints/ports from the Pods."""
    return {
        "addressType": "IPv4",
        "apiVersion": "discovery.k8s.io/v1",
        "endpoints": None,
        "kind": "EndpointSlice",
        "metadata": meta(
            "EndpointSlice", name, "default", created=created,
            generateName=service_name + "-",
            generation=1,
            labels={
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": service_name,
            },
            annotations={"endpoints.kubernetes.io/last-change-trigger-time": T_APP_POD},
            ownerReferences=[owner_ref("Service", service_name, "default", api_version="v1")],
        ),
        "ports": None,
    }


def make_ingress(*, target_type="instance", extra_annotations=None) -> dict:
    annotations = {
        "alb.ingress.kubernetes.io/healthcheck-path": "/",
        "alb.ingress.kubernetes.io/scheme": "internet-facing",
        "alb.ingress.kubernetes.io/target-type": target_type,
    }
    annotations.update(extra_annotations or {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(
            "Ingress", "alb-instance", "default", created="2026-10-01T09:12:02Z",
            annotations=annotations, finalizers=["ingress.k8s.aws/resources"], generation=1,
        ),
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "backend": {"service": {"name": "alb-instance", "port": {"number": 80}}},
                                "path": "/",
                                "pathType": "Prefix",
                            }
                        ]
                    }
                }
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"hostname": ALB_DNS}]}},
    }


def tgb_rule(port, *, group=None, cidr=None) -> dict:
    peer = {"securityGroup": {"groupID": group}} if group else {"ipBlock": {"cidr": cidr}}
    return {"from": [peer], "ports": [{"port": port, "protocol": "TCP"}]}


def make_tgb(name, *, tg_arn, service, target_type, rules, stack_labels) -> dict:
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": meta(
            "TargetGroupBinding", name, "default", created="2026-10-01T09:12:36Z",
            labels=stack_labels, finalizers=["elbv2.k8s.aws/resources"], generation=1,
        ),
        "spec": {
            "ipAddressType": "ipv4",
            "networking": {"ingress": rules},
            "serviceRef": {"name": service, "port": 80},
            "targetGroupARN": tg_arn,
            "targetType": target_type,
        },
        "status": {"observedGeneration": 1},
    }


def ingress_class_alb() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta(
            "IngressClass", "alb", created=T_ADDONS, generation=1,
            annotations={
                "meta.helm.sh/release-name": "aws-load-balancer-controller",
                "meta.helm.sh/release-namespace": "kube-system",
            },
            labels={
                "app.kubernetes.io/instance": "aws-load-balancer-controller",
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/name": "aws-load-balancer-controller",
                "app.kubernetes.io/version": "v2.14.1",
                "helm.sh/chart": "aws-load-balancer-controller-1.14.1",
            },
        ),
        "spec": {"controller": "ingress.k8s.aws/alb"},
    }


LBC_LABELS = {
    "app.kubernetes.io/instance": "aws-load-balancer-controller",
    "app.kubernetes.io/name": "aws-load-balancer-controller",
}
LBC_RS_HASH = "5d8f7c9b6d"
LBC_LEADER = f"aws-load-balancer-controller-{LBC_RS_HASH}-q2w4e"
LBC_FOLLOWER = f"aws-load-balancer-controller-{LBC_RS_HASH}-r5t6y"


def lbc_container() -> dict:
    return container(
        "aws-load-balancer-controller", LBC_IMAGE,
        args=[f"--cluster-name={CLUSTER}", "--ingress-class=alb", f"--aws-region={REGION}", f"--aws-vpc-id={VPC_ID}"],
        ports=[(9443, "webhook-server"), (8080, "metrics-server")],
        readiness=http_probe("/readyz", 61779, timeout=10),
        liveness=http_probe("/healthz", 61779, timeout=10, initial_delay=30),
        security_context={"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True},
    )


def lbc_deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(
            "Deployment", "aws-load-balancer-controller", "kube-system", created=T_ADDONS, generation=1,
            annotations={
                "deployment.kubernetes.io/revision": "1",
                "meta.helm.sh/release-name": "aws-load-balancer-controller",
                "meta.helm.sh/release-namespace": "kube-system",
            },
            labels={
                **LBC_LABELS,
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/version": "v2.14.1",
                "helm.sh/chart": "aws-load-balancer-controller-1.14.1",
            },
        ),
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(LBC_LABELS)},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(LBC_LABELS)},
                "spec": {
                    "containers": [lbc_container()],
                    "dnsPolicy": "ClusterFirst",
                    "priorityClassName": "system-cluster-critical",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {"fsGroup": 65534},
                    "serviceAccountName": "aws-load-balancer-controller",
                    "terminationGracePeriodSeconds": 10,
                },
            },
        },
        "status": {
            "availableReplicas": 2,
            "conditions": [
                {
                    "lastTransitionTime": "2026-11-27T02:10:03Z", "lastUpdateTime": "2026-11-27T02:10:03Z",
                    "message": "Deployment has minimum availability.", "reason": "MinimumReplicasAvailable",
                    "status": "True", "type": "Available",
                },
                {
                    "lastTransitionTime": "2026-10-01T09:04:58Z", "lastUpdateTime": "2026-10-01T09:05:21Z",
                    "message": 'ReplicaSet "aws-load-balancer-controller-5d8f7c9b6d" has successfully progressed.',
                    "reason": "NewReplicaSetAvailable", "status": "True", "type": "Progressing",
                },
            ],
            "observedGeneration": 1,
            "readyReplicas": 2,
            "replicas": 2,
            "updatedReplicas": 2,
        },
    }


def lbc_pod(name, node, ip, created=T_LBC_POD) -> dict:
    return make_pod(
        name, "kube-system", node, ip,
        labels={**LBC_LABELS, "pod-template-hash": LBC_RS_HASH},
        containers=[lbc_container()],
        owner=("ReplicaSet", f"aws-load-balancer-controller-{LBC_RS_HASH}"),
        created=created,
        service_account="aws-load-balancer-controller",
        priority_class="system-cluster-critical",
    )


KUBE_PROXY_LABELS = {"controller-revision-hash": "6b9d4c8f7", "k8s-app": "kube-proxy", "pod-template-generation": "1"}


def kube_proxy_container() -> dict:
    return container(
        "kube-proxy", KUBE_PROXY_IMAGE,
        command=["kube-proxy", "--v=2", "--config=/var/lib/kube-proxy-config/config",
                 "--hostname-override=$(NODE_NAME)"],
        env=[{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
        resources={"requests": {"cpu": "100m"}},
        security_context={"privileged": True},
    )


def kube_proxy_daemonset(desired=2) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(
            "DaemonSet", "kube-proxy", "kube-system", created="2026-10-01T08:56:03Z", generation=1,
            annotations={"deprecated.daemonset.template.generation": "1"},
            labels={"eks.amazonaws.com/component": "kube-proxy", "k8s-app": "kube-proxy"},
        ),
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
                            {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn",
                             "values": ["fargate", "hybrid", "auto"]},
                        ]}]}}},
                    "containers": [kube_proxy_container()],
                    "dnsPolicy": "ClusterFirst",
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "serviceAccountName": "kube-proxy",
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [{"operator": "Exists"}],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}, "type": "RollingUpdate"},
        },
        "status": {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberAvailable": desired,
            "numberMisscheduled": 0,
            "numberReady": desired,
            "observedGeneration": 1,
            "updatedNumberScheduled": desired,
        },
    }


VPC_CNI_IMAGE = "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2-eksbuild.1"
NP_AGENT_IMAGE = "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon/aws-network-policy-agent:v1.1.6-eksbuild.1"


def aws_node_daemonset(desired=2, *, network_policy=False) -> dict:
    """The VPC CNI add-on's DaemonSet: the CNI and its network policy agent (aws-eks-nodeagent),
    which enforces NetworkPolicies only with --enable-network-policy=true."""
    env = [{"name": k, "value": v} for k, v in [
        ("ADDITIONAL_ENI_TAGS", "{}"), ("AWS_VPC_CNI_NODE_PORT_SUPPORT", "true"),
        ("AWS_VPC_ENI_MTU", "9001"), ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "false"),
        ("AWS_VPC_K8S_CNI_EXTERNALSNAT", "false"), ("ENABLE_IPv4", "true"), ("ENABLE_IPv6", "false"),
        ("ENABLE_PREFIX_DELEGATION", "false"), ("NETWORK_POLICY_ENFORCING_MODE", "standard"),
        ("VPC_CNI_VERSION", "v1.19.2"), ("WARM_ENI_TARGET", "1"),
    ]]
    agent_args = ["--enable-ipv6=false", f"--enable-network-policy={str(network_policy).lower()}",
                  "--enable-cloudwatch-logs=false", "--enable-policy-event-logs=false",
                  "--log-file=/var/log/aws-routed-eni/network-policy-agent.log", "--metrics-bind-addr=:8162",
                  "--health-probe-bind-addr=:8163", "--conntrack-cache-cleanup-period=300"]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(
            "DaemonSet", "aws-node", "kube-system", created="2026-10-01T08:56:05Z", generation=2,
            annotations={"deprecated.daemonset.template.generation": "2"},
            labels={"app.kubernetes.io/instance": "aws-vpc-cni", "app.kubernetes.io/name": "aws-node",
                    "app.kubernetes.io/version": "v1.19.2", "k8s-app": "aws-node"},
        ),
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/instance": "aws-vpc-cni",
                                        "app.kubernetes.io/name": "aws-node", "k8s-app": "aws-node"}},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                            {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn",
                             "values": ["fargate", "hybrid", "auto"]},
                        ]}]}}},
                    "containers": [
                        container("aws-node", VPC_CNI_IMAGE, ports=[(61678, "metrics")], env=env,
                                  resources={"requests": {"cpu": "25m"}}),
                        container("aws-eks-nodeagent", NP_AGENT_IMAGE, args=agent_args,
                                  resources={"requests": {"cpu": "25m"}}),
                    ],
                    "hostNetwork": True,
                    "initContainers": [container("aws-vpc-cni-init", VPC_CNI_IMAGE.replace("amazon-k8s-cni:",
                                                                                         "amazon-k8s-cni-init:"))],
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "aws-node",
                    "terminationGracePeriodSeconds": 10,
                    "tolerations": [{"operator": "Exists"}],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}, "type": "RollingUpdate"},
        },
        "status": {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberAvailable": desired,
                   "numberMisscheduled": 0, "numberReady": desired, "observedGeneration": 2,
                   "updatedNumberScheduled": desired},
    }


def vpc_cni_configmap(*, network_policy=False) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("ConfigMap", "amazon-vpc-cni", "kube-system", created="2026-10-01T08:56:05Z",
                         labels={"app.kubernetes.io/instance": "aws-vpc-cni", "app.kubernetes.io/name": "aws-node",
                                 "app.kubernetes.io/version": "v1.19.2", "k8s-app": "aws-node"}),
        "data": {
            "branch-eni-cooldown": "60",
            "enable-network-policy-controller": str(network_policy).lower(),
            "enable-windows-ipam": "false",
            "enable-windows-prefix-delegation": "false",
            "minimumWindowsIPTarget": "3",
            "warmIPTarget": "1",
            "warmPrefixTarget": "0",
        },
    }


def kube_proxy_pod(name, node: NodeSpec, *, boot_restart=False) -> dict:
    pod = _kube_proxy_pod(name, node)
    if boot_restart:
        # kube-proxy often exits once at boot (node not registered yet) and never again
        cs = pod["status"]["containerStatuses"][0]
        cs["restartCount"] = 1
        cs["lastState"] = {"terminated": {
            "containerID": "containerd://" + digest("ctr-prev", name, n=64), "exitCode": 1,
            "finishedAt": add_seconds(T_KUBE_PROXY_POD, 4), "reason": "Error",
            "startedAt": add_seconds(T_KUBE_PROXY_POD, 2),
        }}
    return pod


def _kube_proxy_pod(name, node: NodeSpec) -> dict:
    return make_pod(
        name, "kube-system", node, node.ip,
        labels=KUBE_PROXY_LABELS,
        containers=[kube_proxy_container()],
        owner=("DaemonSet", "kube-proxy"),
        created=T_KUBE_PROXY_POD,
        service_account="kube-proxy",
        host_network=True,
        priority_class="system-node-critical",
        qos="Burstable",
        extra_tolerations=[{"operator": "Exists"}],
    )


def event(obj, reason, message, *, when, type_="Normal", component="kubelet", host=None, count=1,
          first=None, field_path=None) -> dict:
    """A core/v1 Event about `obj` (a full object)."""
    m = obj["metadata"]
    ns = m.get("namespace", "default")
    involved = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": m["name"]}
    if "namespace" in m:
        involved["namespace"] = ns
    involved["resourceVersion"] = m["resourceVersion"]
    involved["uid"] = m["uid"]
    if field_path:
        involved["fieldPath"] = field_path
    name = f"{m['name']}." + digest("event", ns, m["name"], reason, when)
    first = first or when
    source = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "count": count,
        "eventTime": None,
        "firstTimestamp": first,
        "involvedObject": involved,
        "kind": "Event",
        "lastTimestamp": when,
        "message": message,
        "metadata": meta("Event", name, ns, created=first),
        "reason": reason,
        "reportingComponent": component,
        "reportingInstance": host or "",
        "source": source,
        "type": type_,
    }


def scheduled_event(pod) -> dict:
    """The scheduler writes events.k8s.io events: eventTime set, first/lastTimestamp null."""
    m = pod["metadata"]
    node = pod["spec"]["nodeName"]
    e = event(pod, "Scheduled", f"Successfully assigned {m['namespace']}/{m['name']} to {node}",
              when=m["creationTimestamp"], component="default-scheduler")
    del e["count"]
    e.update(
        action="Binding",
        eventTime=m["creationTimestamp"].replace("Z", ".412377Z"),
        firstTimestamp=None,
        lastTimestamp=None,
        reportingInstance="default-scheduler-" + "ip-172-16-54-12.ec2.internal",
        source={},
    )
    return e


def pod_start_events(pod) -> list:
    created = pod["metadata"]["creationTimestamp"]
    node = pod["spec"]["nodeName"]
    out = [scheduled_event(pod)]
    for c in pod["spec"]["containers"]:
        fp = f"spec.containers{{{c['name']}}}"
        at = add_seconds(created, 1)
        out += [
            event(pod, "Pulled", f'Container image "{c["image"]}" already present on machine',
                  when=at, host=node, field_path=fp),
            event(pod, "Created", f"Created container: {c['name']}", when=at, host=node, field_path=fp),
            event(pod, "Started", f"Started container {c['name']}", when=add_seconds(at, 1), host=node,
                  field_path=fp),
        ]
    return out


# --------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------


def lbc_line(ts, msg, *, level="info", logger=None, **fields) -> str:
    d = {"level": level, "ts": ts}
    if logger:
        d["logger"] = logger
    d["msg"] = msg
    d.update(fields)
    return json.dumps(d, separators=(",", ":"))


def lbc_startup(leader: bool, start="2026-11-27T02:09:58Z") -> list:
    hms = start[11:19]
    lines = [
        lbc_line(start, "version", GitVersion="v2.14.1", GitCommit="3b6e1f4a9c2d8e7f0a1b2c3d4e5f60718293a4b5",
                 BuildDate="2025-10-09T18:21:07+0000"),
        lbc_line(start, "adding health check for controller", logger="setup"),
        lbc_line(start, "adding readiness check for webhook", logger="setup"),
        lbc_line(start, "Registering webhook", logger="controller-runtime.webhook", path="/mutate-v1-pod"),
        lbc_line(start, "Registering webhook", logger="controller-runtime.webhook",
                 path="/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding"),
        lbc_line(start, "starting podInfo repo", logger="setup"),
        f"I1127 {hms}.412345       1 leaderelection.go:257] attempting to acquire leader lease "
        "kube-system/aws-load-balancer-controller-leader...",
    ]
    if leader:
        t = add_seconds(start, 3)
        lines += [
            f"I1127 {t[11:19]}.498765       1 leaderelection.go:271] successfully acquired lease "
            "kube-system/aws-load-balancer-controller-leader",
            lbc_line(t, "Starting Controller", controller="ingress"),
            lbc_line(t, "Starting Controller", controller="service"),
            lbc_line(t, "Starting Controller", controller="targetGroupBinding", controllerGroup="elbv2.k8s.aws",
                     controllerKind="TargetGroupBinding"),
            lbc_line(t, "Starting workers", controller="ingress", **{"worker count": 3}),
            lbc_line(t, "Starting workers", controller="service", **{"worker count": 3}),
            lbc_line(t, "Starting workers", controller="targetGroupBinding", controllerGroup="elbv2.k8s.aws",
                     controllerKind="TargetGroupBinding", **{"worker count": 3}),
        ]
    return lines


def lbc_targets(targets) -> list:
    return [{"AvailabilityZone": None, "Id": tid, "Port": port} for tid, port in targets]


def lbc_deployed_line(ts, model) -> str:
    if model == "ingress":
        return lbc_line(ts, "successfully deployed model", logger="controllers.ingress",
                        ingressGroup="default/alb-instance")
    return lbc_line(ts, "successfully deployed model", logger="controllers.service",
                    service={"namespace": "default", "name": "echo-nlb"})


def lbc_reconcile_error(ts, i, *, tgb_name, error) -> str:
    """controller-runtime's "Reconciler error" for a TargetGroupBinding, as v2.14 prints it."""
    return lbc_line(
        ts, "Reconciler error", level="error",
        controller="targetGroupBinding", controllerGroup="elbv2.k8s.aws", controllerKind="TargetGroupBinding",
        TargetGroupBinding={"name": tgb_name, "namespace": "default"},
        namespace="default", name=tgb_name,
        reconcileID=uid("reconcile", tgb_name, str(i)),
        error=error,
    )


def unrelated_controller_errors() -> list:
    """Errors every busy cluster's controller logs about other teams' objects: context only."""
    out = []
    for i, ts in enumerate(["2026-11-27T02:31:44Z", "2026-11-27T02:47:06Z", "2026-11-27T02:58:02Z"]):
        out.append((ts, lbc_line(
            ts, "Reconciler error", level="error", controller="ingress",
            object={"name": "blog", "namespace": "cms"}, namespace="cms", name="blog",
            reconcileID=uid("reconcile", "cms-blog", str(i)),
            error="ingress: cms/blog: none certificate found for host: blog.example.com",
        )))
    out.append(("2026-11-27T02:52:19Z", lbc_line(
        "2026-11-27T02:52:19Z", "Reconciler error", level="error", controller="service",
        object={"name": "grpc-gw", "namespace": "payments"}, namespace="payments", name="grpc-gw",
        reconcileID=uid("reconcile", "payments-grpc-gw"),
        error="failed to resolve 2 subnets: InvalidSubnetID.NotFound: The subnet ID 'subnet-0deadbeef0000c0ff' does not exist",
    )))
    return out


def lbc_leader_log(*, model="ingress", tg_arn=ALB_TG_ARN, registered, registered_at="2026-11-27T02:10:03Z",
                   failing=None, tgb_name=ALB_TG_NAME, noise=True, extra=()) -> str:
    """The leader's log: startup, deploy, registration; optional repeated RegisterTargets
    AccessDenied; with `noise`, recent errors about other namespaces' objects; `extra` adds
    (timestamp, line) pairs."""
    lines = lbc_startup(leader=True)
    later = [("2026-11-27T02:10:02Z", lbc_deployed_line("2026-11-27T02:10:02Z", model)),
             (registered_at, lbc_line(registered_at, "registering targets", arn=tg_arn, targets=lbc_targets(registered))),
             (registered_at, lbc_line(registered_at, "registered targets", arn=tg_arn))]
    if noise:
        later += unrelated_controller_errors()
    later += list(extra)
    if failing:
        # controller-runtime's per-item exponential backoff, as seen at one-second log resolution
        offsets = [2, 3, 5, 9, 17, 33, 65, 129, 257, 513, 769]
        for i, off in enumerate(offsets):
            ts = add_seconds(T_APP_POD_RECREATED, off)
            request_id = uid("request", str(i))
            later.append((ts, lbc_line(ts, "registering targets", arn=tg_arn, targets=lbc_targets(failing))))
            later.append((ts, lbc_reconcile_error(ts, i, tgb_name=tgb_name,
                                                  error=access_denied_error(request_id, tg_arn))))
    lines += [line for _, line in sorted(later, key=lambda x: x[0])]
    return "\n".join(lines) + "\n"


def access_denied_error(request_id, tg_arn) -> str:
    return (
        "operation error Elastic Load Balancing v2: RegisterTargets, https response error StatusCode: 403, "
        f"RequestID: {request_id}, api error AccessDenied: User: arn:aws:sts::{ACCOUNT}:assumed-role/"
        f"{LBC_ROLE}/1764212345 is not authorized to perform: elasticloadbalancing:RegisterTargets on "
        f"resource: {tg_arn} because no identity-based policy allows the "
        "elasticloadbalancing:RegisterTargets action"
    )


def lbc_follower_log(start="2026-11-27T02:09:58Z") -> str:
    return "\n".join(lbc_startup(leader=False, start=start)) + "\n"


def kube_proxy_log(node: NodeSpec, *, died_at=None) -> str:
    """Normal kube-proxy startup; with `died_at` (a timestamp) the process dies on a bad feature gate."""
    if died_at:
        flags = add_seconds(died_at, -1)[11:19]
        return "\n".join([
            klog("I", flags, 912345, "flags.go:64", 'FLAG: --config="/var/lib/kube-proxy-config/config"'),
            klog("I", flags, 913002, "flags.go:64", f'FLAG: --hostname-override="{node.name}"'),
            klog("E", died_at[11:19], 0, "run.go:74",
                 '"command failed" err="failed complete: unrecognized feature gate: Foo"'),
        ]) + "\n"
    hms = "02:03:51"
    return "\n".join([
        klog("I", hms, 118204, "server_linux.go:66", '"Using iptables proxy"'),
        klog("I", hms, 402117, "server.go:704", f'"Successfully retrieved node IP(s)" IPs=["{node.ip}"]'),
        klog("I", hms, 409345, "conntrack.go:60", '"Setting nf_conntrack_max" nfConntrackMax=131072'),
        klog("I", hms, 512087, "server.go:254", '"kube-proxy running in single-stack mode" ipFamily="IPv4"'),
        klog("I", hms, 534561, "server_linux.go:170", '"Using iptables Proxier"'),
        klog("I", hms, 601234, "server.go:516", '"Version info" version="v1.33.3-eks-9b1c1f4"'),
        klog("I", hms, 601301, "config.go:199", '"Starting service config controller"'),
        klog("I", hms, 601322, "shared_informer.go:350", '"Waiting for caches to sync" controller="service config"'),
        klog("I", hms, 601354, "config.go:105", '"Starting endpoint slice config controller"'),
        klog("I", hms, 701456, "shared_informer.go:357", '"Caches are synced" controller="service config"'),
        klog("I", hms, 701512, "shared_informer.go:357", '"Caches are synced" controller="endpoint slice config"'),
        klog("I", hms, 702871, "proxier.go:825", '"Syncing iptables rules"'),
    ]) + "\n"


def nginx_clock(ts: str) -> str:
    return ts[:10].replace("-", "/") + " " + ts[11:19]


def nginx_access_time(ts: str) -> str:
    return f"27/Nov/2026:{ts[11:19]} +0000"


def nginx_startup(started: str) -> list:
    c = nginx_clock(started)
    return [
        "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
        "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
        "/docker-entrypoint.sh: Launching /docker-entrypoint.d/10-listen-on-ipv6-by-default.sh",
        "10-listen-on-ipv6-by-default.sh: info: Getting the checksum of /etc/nginx/conf.d/default.conf",
        "10-listen-on-ipv6-by-default.sh: info: Enabled listen on IPv6 in /etc/nginx/conf.d/default.conf",
        "/docker-entrypoint.sh: Configuration complete; ready for start up",
        f'{c} [notice] 1#1: using the "epoll" event method',
        f"{c} [notice] 1#1: nginx/1.27.5",
        f"{c} [notice] 1#1: start worker processes",
    ]


def nginx_log(pod, *, hc_sources=(), hc_path="/", hc_status=200) -> str:
    """Startup, kubelet readiness probes and (optionally) load balancer health checks."""
    started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    node_ip = pod["status"]["hostIP"]
    lines = nginx_startup(started)
    for i in range(3):
        t = add_seconds("2026-11-27T03:03:40Z", i * 10)
        lines.append(f'{node_ip} - - [{nginx_access_time(t)}] "GET / HTTP/1.1" 200 615 "-" "kube-probe/1.33+" "-"')
        for j, src in enumerate(hc_sources):
            t2 = add_seconds(t, 3 + j)
            size = 615 if hc_status == 200 else 153
            if hc_status == 404:
                lines.append(
                    f"{nginx_clock(t2)} [error] 29#29: *{41 + i * 4 + j} open() \"/usr/share/nginx/html"
                    f"{hc_path}\" failed (2: No such file or directory), client: {src}, server: localhost, "
                    f'request: "GET {hc_path} HTTP/1.1", host: "{src}"'
                )
            lines.append(
                f'{src} - - [{nginx_access_time(t2)}] "GET {hc_path} HTTP/1.1" {hc_status} {size} "-" '
                '"ELB-HealthChecker/2.0" "-"'
            )
    return "\n".join(lines) + "\n"


def nginx_crash_log(pod) -> str:
    finished = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["finishedAt"]
    c = nginx_clock(finished)
    return "\n".join([
        "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
        "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
        "/docker-entrypoint.sh: Configuration complete; ready for start up",
        f'{c} [emerg] 1#1: unknown directive "servr" in /etc/nginx/conf.d/default.conf:2',
        'nginx: [emerg] unknown directive "servr" in /etc/nginx/conf.d/default.conf:2',
    ]) + "\n"


# --------------------------------------------------------------------------
# Probe replay
# --------------------------------------------------------------------------


def probe_result(target_id, address, port, *, path, outcome, status=None, latency=3, detail="",
                 protocol="HTTP") -> dict:
    r = {"targetId": target_id, "address": address, "port": port, "protocol": protocol, "path": path,
         "outcome": outcome}
    if outcome == "response":
        r["statusCode"] = status
    r["latencyMs"] = latency
    r["detail"] = detail
    return r


# --------------------------------------------------------------------------
# State accessors used by the scenarios
# --------------------------------------------------------------------------


def objs(s, bucket, kind):
    return [o for o in s[bucket] if o["kind"] == kind]


def get(s, bucket, kind, name):
    return only(s[bucket], lambda o: o["kind"] == kind and o["metadata"]["name"] == name, f"{kind}/{name}")


BUCKET_NAMESPACE = {"app": "default", "kube_system": "kube-system"}


def remove(s, bucket, kind, name):
    """Delete a namespaced object (and, for a pod, its log)."""
    s[bucket].remove(get(s, bucket, kind, name))
    s["logs"].pop(f"{BUCKET_NAMESPACE[bucket]}/{name}", None)


def app_pods(s):
    """The app's live pods (terminal ones, like the evicted pod, left out)."""
    return [p for p in objs(s, "app", "Pod") if not pod_is_terminal(p)]


def sg(s, group_id):
    return only(s["security_groups"], lambda g: g["GroupId"] == group_id, group_id)


def drop_rules(s, group_id, port):
    g = sg(s, group_id)
    g["IpPermissions"] = [r for r in g["IpPermissions"] if r.get("FromPort") != port]


def th_entry(s, target_id):
    return only(s["target_health"], lambda t: t["Target"]["Id"] == target_id, target_id)


def fail_target(s, target_id, reason, description=None):
    entry = th_entry(s, target_id)
    replacement = target_health(
        entry["Target"]["Id"], entry["Target"]["Port"], hc_port=entry["HealthCheckPort"],
        az=entry["Target"].get("AvailabilityZone"), reason=reason, description=description,
    )
    entry.clear()
    entry.update(replacement)


def fail_all_targets(s, reason, description=None):
    for t in s["target_health"]:
        fail_target(s, t["Target"]["Id"], reason, description)


def set_node(s, node: NodeSpec, *, state="running"):
    """(Re)build the instance, ENI and Node object of `node`, adding it if new (a Fargate node
    has no instance)."""
    s["node_specs"][node.eni] = node
    for key, build, match in (
        ("reservations", lambda: reservation(node, state=state),
         lambda r: r["Instances"][0]["InstanceId"] == node.instance_id),
        ("network_interfaces", lambda: network_interface(node), lambda e: e["NetworkInterfaceId"] == node.eni),
        ("nodes", lambda: k8s_node(node), lambda n: n["metadata"]["name"] == node.name),
    ):
        if key == "reservations" and node.fargate:
            continue
        existing = [i for i, x in enumerate(s[key]) if match(x)]
        if existing:
            s[key][existing[0]] = build()
        else:
            s[key].append(build())


def set_app_logs(s, **kw):
    """Regenerate the nginx logs of every app pod (see `nginx_log` for the keywords)."""
    for key in [k for k in s["logs"] if k.startswith("default/")]:
        del s["logs"][key]
    for pod in app_pods(s):
        running = "running" in pod["status"]["containerStatuses"][0]["state"]
        s["logs"][f"default/{pod['metadata']['name']}"] = nginx_log(pod, **kw) if running else nginx_crash_log(pod)


def reset_events(s, extra=()):
    evicted = [
        event(p, "Evicted", p["status"]["message"], type_="Warning",
              when=next(c["lastTransitionTime"] for c in p["status"]["conditions"] if c["type"] == "Ready"),
              host=p["spec"]["nodeName"])
        for p in objs(s, "app", "Pod") if p["status"].get("reason") == "Evicted"
    ]
    s["events"] = [e for pod in app_pods(s) for e in pod_start_events(pod)] + evicted + list(extra)


def expect(s, root_cause, description, first_finding=None, *, inconclusive=(), no_fix=False, partial_dump=False):
    """Test metadata: the root cause diagnosis must rank first (None: no fault, and then no
    critical finding), optionally the check of the first finding when it is not a fault, the
    checks that must be inconclusive, that no catalogue fix is offered, and that the dump is
    partial (a live cluster is never partial, so the live comparison skips it)."""
    s["expected"] = {"description": description, "rootCause": root_cause}
    if first_finding:
        s["expected"]["firstFinding"] = first_finding
    if inconclusive:
        s["expected"]["inconclusive"] = list(inconclusive)
    if no_fix:
        s["expected"]["noFix"] = True
    if partial_dump:
        s["expected"]["partialDump"] = True


# --------------------------------------------------------------------------
# The healthy base state
# --------------------------------------------------------------------------

APP_POD_1 = "alb-instance-7d9c6b5f4-abcde"
APP_POD_2 = "alb-instance-7d9c6b5f4-fghij"
EVICTED_POD = "alb-instance-7d9c6b5f4-zx8vq"


def base_state() -> dict:
    """The AWS Knowledge Center "alb-instance" example, everything healthy."""
    nodes = [NODE1, NODE2]
    pods = [app_pod(APP_POD_1, NODE1, "192.168.72.31"), app_pod(APP_POD_2, NODE2, "192.168.101.44")]
    s = {
        "manifest": {"targetGroupArn": ALB_TG_ARN, "region": REGION, "accountId": ACCOUNT, "clusterName": CLUSTER,
                     "collectedAt": COLLECTED_AT,
                     # `kubectl get ds -n kube-system` and `-n calico-system` (none there)
                     "kubeScope": {"DaemonSet": [{"namespace": "kube-system"}, {"namespace": "calico-system"}]}},
        "expected": {},
        # aws/
        "target_groups": [alb_target_group()],
        "target_health": [target_health(n.instance_id, 30080) for n in nodes],
        "tags": [tag_description(ALB_TG_ARN, alb_tg_tags())],
        "load_balancers": [application_load_balancer()],
        "security_groups": [
            alb_security_group(),
            backend_security_group(),
            cluster_security_group([sg_rule("tcp", 30080, groups=[SG_BACKEND], description=TGB_RULE_DESC)]),
        ],
        "network_acls": [allow_all_nacl(DEFAULT_ACL, SUBNETS, is_default=True)],
        "route_tables": [
            route_table(RTB_MAIN, [], [local_route()], f"{CLUSTER}-main", main=True),
            route_table(RTB_PUBLIC, PUBLIC_SUBNETS, [local_route(), route("0.0.0.0/0", GatewayId=IGW_ID)],
                        f"eksctl-{CLUSTER}-cluster/PublicRouteTable"),
            route_table(RTB_PRIVATE, PRIVATE_SUBNETS, [local_route(), route("0.0.0.0/0", NatGatewayId=NAT_ID)],
                        f"eksctl-{CLUSTER}-cluster/PrivateRouteTable"),
        ],
        "subnets": [subnet(sn) for sn in SUBNETS],
        "vpcs": [vpc()],
        "reservations": [reservation(n) for n in nodes],
        "network_interfaces": [network_interface(n) for n in nodes],
        "lb_interfaces": alb_interfaces(),
        "tg_attributes": alb_tg_attributes(),
        "lb_attributes": alb_attributes(),
        "prefix_lists": {},
        "cluster": eks_cluster(),
        # k8s/
        "nodes": [k8s_node(n) for n in nodes],
        "namespaces": [namespace(n) for n in ("default", "kube-node-lease", "kube-public", "kube-system")],
        "app": [
            make_deployment("alb-instance", replicas=2, selector={"app": "alb-instance"}),
            make_replicaset("alb-instance", "7d9c6b5f4", replicas=2, labels={"app": "alb-instance"},
                            created=T_APP_POD, revision=2),
            make_replicaset("alb-instance", "5b6f8c7d9", replicas=0, labels={"app": "alb-instance"},
                            created=T_APP, revision=1),
            make_service("alb-instance", cluster_ip="10.100.142.37", ports=[service_port()],
                         selector={"app": "alb-instance"}),
            make_endpoints("alb-instance"),
            make_endpoint_slice("alb-instance-x7k2p", "alb-instance"),
            *pods,
            # evicted under memory pressure; its ReplicaSet replaced it (terminal: never a backend)
            evict(app_pod(EVICTED_POD, NODE1, "192.168.85.203"), at="2026-11-27T02:44:31Z",
                  message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 92748Ki. "
                          "Container nginx was using 412880Ki, request is 0, has larger consumption of request."),
            make_ingress(),
            make_tgb(
                ALB_TG_NAME, tg_arn=ALB_TG_ARN, service="alb-instance", target_type="instance",
                rules=[tgb_rule(30080, group=SG_BACKEND)],
                stack_labels={"ingress.k8s.aws/stack-name": "alb-instance",
                              "ingress.k8s.aws/stack-namespace": "default"},
            ),
        ],
        "events": [],
        "ingressclasses": [ingress_class_alb()],
        "kube_system": [
            lbc_deployment(),
            kube_proxy_daemonset(),
            aws_node_daemonset(),
            vpc_cni_configmap(),
            lbc_pod(LBC_LEADER, NODE1, "192.168.88.140"),
            lbc_pod(LBC_FOLLOWER, NODE2, "192.168.115.62"),
            kube_proxy_pod("kube-proxy-7xk2m", NODE1),
            kube_proxy_pod("kube-proxy-9pl4n", NODE2, boot_restart=True),
        ],
        "network_policies": [],
        "node_specs": {n.eni: n for n in nodes},
        "logs": {
            f"kube-system/{LBC_LEADER}": lbc_leader_log(
                registered=[(n.instance_id, 30080) for n in nodes]),
            f"kube-system/{LBC_FOLLOWER}": lbc_follower_log(),
            "kube-system/kube-proxy-7xk2m": kube_proxy_log(NODE1),
            "kube-system/kube-proxy-9pl4n": kube_proxy_log(NODE2),
        },
        "probe": None,
    }
    reset_events(s)
    # instance mode, externalTrafficPolicy Cluster: every node forwards to every pod (SNAT to the node IP)
    set_app_logs(s, hc_sources=[NODE1.ip, NODE2.ip])
    return s


# --------------------------------------------------------------------------
# Reusable scenario transformations
# --------------------------------------------------------------------------

RECREATED_PODS = [
    ("alb-instance-7d9c6b5f4-k2v9x", NODE1, "192.168.75.12"),
    ("alb-instance-7d9c6b5f4-m4n8p", NODE2, "192.168.110.7"),
]
OLD_POD_TARGETS = [("192.168.72.31", "us-east-1a"), ("192.168.101.44", "us-east-1b")]


def use_ip_mode(s):
    """Switch the ALB example to target-type ip (TG on port 80, SG rule tcp 80 from the backend SG)."""
    s["target_groups"] = [alb_target_group(port=80, target_type="ip")]
    get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] = "ip"
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    tgb["spec"]["targetType"] = "ip"
    tgb["spec"]["networking"]["ingress"] = [tgb_rule(80, group=SG_BACKEND)]
    drop_rules(s, SG_CLUSTER, 30080)
    sg(s, SG_CLUSTER)["IpPermissions"].append(sg_rule("tcp", 80, groups=[SG_BACKEND], description=TGB_RULE_DESC))
    s["target_health"] = [
        target_health(pod["status"]["podIP"], 80, az=node_of(pod).az) for pod in app_pods(s)
    ]


def node_of(pod) -> NodeSpec:
    return next(n for n in ALL_NODES if n.name == pod["spec"]["nodeName"])


def recreate_app_pods(s):
    """The Deployment's pods were replaced: same ReplicaSet, new names and IPs."""
    for pod in app_pods(s):
        remove(s, "app", "Pod", pod["metadata"]["name"])
    for name, node, ip in RECREATED_PODS:
        s["app"].append(app_pod(name, node, ip, created=T_APP_POD_RECREATED))
    reset_events(s)


def stale_ip_targets(s, reason):
    """Registered targets are the old pod IPs, which no longer belong to any pod."""
    s["target_health"] = [target_health(ip, 80, az=az, reason=reason) for ip, az in OLD_POD_TARGETS]


def use_nlb(s, *, target_type, pods, service, tg, tgb_rules, target_port, open_ports):
    """Replace the ALB example by the LBC's NLB for Service `echo-nlb` (no security groups on the NLB)."""
    s["manifest"]["targetGroupArn"] = NLB_TG_ARN
    s["target_groups"] = [tg]
    s["tags"] = [tag_description(NLB_TG_ARN, {
        "elbv2.k8s.aws/cluster": CLUSTER,
        "service.k8s.aws/stack": "default/echo-nlb",
        "service.k8s.aws/resource": "default/echo-nlb:80",
    })]
    s["load_balancers"] = [network_load_balancer()]
    s["lb_interfaces"] = nlb_interfaces()
    s["lb_attributes"] = nlb_attributes()
    # AWS's default: client IPs preserved for instance targets, not for IP targets (TCP)
    s["tg_attributes"] = nlb_tg_attributes(preserve_client_ip=target_type == "instance")
    s["security_groups"] = [cluster_security_group(
        [sg_rule("tcp", p, cidrs=[VPC_CIDR], description=TGB_RULE_DESC) for p in open_ports]
    )]
    s["app"] = [
        service,
        make_endpoints("echo-nlb"),
        make_endpoint_slice("echo-nlb-6hq2v", "echo-nlb"),
        *pods,
        make_tgb(
            NLB_TG_NAME, tg_arn=NLB_TG_ARN, service="echo-nlb", target_type=target_type, rules=tgb_rules,
            stack_labels={"service.k8s.aws/stack-name": "echo-nlb", "service.k8s.aws/stack-namespace": "default"},
        ),
    ]
    if target_type == "instance":
        registered = [(r["Instances"][0]["InstanceId"], target_port) for r in s["reservations"]]
        registered_at = "2026-11-27T02:10:03Z"
    else:
        registered = [(p["status"]["podIP"], target_port) for p in pods]
        registered_at = add_seconds(T_APP_POD, 5)
    s["logs"] = {k: v for k, v in s["logs"].items() if not k.startswith("default/")}
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        model="service", tg_arn=NLB_TG_ARN, tgb_name=NLB_TG_NAME, registered=registered,
        registered_at=registered_at)
    reset_events(s)


def echo_service(*, etp, annotations, hc_node_port=None) -> dict:
    svc = make_service(
        "echo-nlb", cluster_ip="10.100.61.201", svc_type="LoadBalancer", etp=etp,
        ports=[service_port(node_port=31080)], selector={"app": "echo-nlb"},
        annotations={
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            **annotations,
        },
    )
    svc["metadata"]["finalizers"] = ["service.k8s.aws/resources"]
    svc["spec"]["allocateLoadBalancerNodePorts"] = True
    svc["spec"]["loadBalancerClass"] = "service.k8s.aws/nlb"
    if hc_node_port:
        svc["spec"]["healthCheckNodePort"] = hc_node_port
    svc["status"] = {"loadBalancer": {"ingress": [{"hostname": NLB_DNS}]}}
    return svc


def echo_pod(name, node, ip):
    return app_pod(name, node, ip, app="echo-nlb", rs_hash="6c8d9f7b5", container_name="echo")


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


@scenario("healthy")
def healthy(s):
    expect(s, None, "Nothing is broken: both instance targets of the ALB target group are healthy.")


@scenario("pod-not-ready")
def pod_not_ready(s):
    expect(s, "pod-not-ready",
           "Both app pods are Running but their nginx container is in CrashLoopBackOff, so the Service has "
           "no ready endpoints and the NodePort health checks fail.")
    finished = {APP_POD_1: "2026-11-27T03:01:47Z", APP_POD_2: "2026-11-27T03:02:19Z"}
    extra = []
    for pod in app_pods(s):
        name = pod["metadata"]["name"]
        crashloop(pod, restarts=7, finished=finished[name])
        s["logs"][f"default/{name}"] = nginx_crash_log(pod)
        extra.append(event(
            pod, "BackOff", f"Back-off restarting failed container nginx in pod {name}_default({pod['metadata']['uid']})",
            type_="Warning", when=add_seconds(finished[name], 75), first=add_seconds(T_APP_POD, 20), count=31,
            host=pod["spec"]["nodeName"], field_path="spec.containers{nginx}",
        ))
    reset_events(s, extra)
    fail_all_targets(s, "Target.FailedHealthChecks")


@scenario("selector-matches-no-pods")
def selector_matches_no_pods(s):
    expect(s, "selector-matches-no-pods",
           "The Service selects app=alb-instance-1 but the pods are labelled app=alb-instance, so the Service "
           "has no endpoints.")
    get(s, "app", "Service", "alb-instance")["spec"]["selector"] = {"app": "alb-instance-1"}
    fail_all_targets(s, "Target.FailedHealthChecks")
    set_app_logs(s)


@scenario("endpoints-missing")
def endpoints_missing(s):
    expect(s, "endpoints-missing",
           "The Service has no selector and its hand-managed Endpoints object has no addresses, so the "
           "NodePort has nowhere to send traffic.")
    del get(s, "app", "Service", "alb-instance")["spec"]["selector"]
    remove(s, "app", "EndpointSlice", "alb-instance-x7k2p")
    ep = get(s, "app", "Endpoints", "alb-instance")
    ep["metadata"] = meta("Endpoints", "alb-instance", "default", created=T_APP)
    fail_all_targets(s, "Target.FailedHealthChecks")
    set_app_logs(s)


@scenario("external-traffic-policy-local")
def external_traffic_policy_local(s):
    expect(s, "external-traffic-policy-local",
           "The Service uses externalTrafficPolicy Local and its only pod runs on node 1, so kube-proxy on "
           "node 2 drops the ALB's health checks to the NodePort.")
    get(s, "app", "Service", "alb-instance")["spec"]["externalTrafficPolicy"] = "Local"
    remove(s, "app", "Pod", APP_POD_2)
    reset_events(s)
    fail_target(s, NODE2.instance_id, "Target.Timeout")
    # source IPs are preserved: the pod sees the ALB's own addresses
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


@scenario("nlb-local-by-design")
def nlb_local_by_design(s):
    expect(s, None,
           "NLB instance targets with externalTrafficPolicy Local: the node without a local pod fails the "
           "healthCheckNodePort check by design, which is how the NLB avoids the extra hop.",
           first_finding="external-traffic-policy-local")
    use_nlb(
        s,
        target_type="instance",
        pods=[echo_pod("echo-nlb-6c8d9f7b5-h4j6k", NODE1, "192.168.77.21")],
        service=echo_service(etp="Local", hc_node_port=32123, annotations={
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "instance",
        }),
        tg=nlb_target_group(port=31080, target_type="instance", hc_port="32123", hc_path="/healthz"),
        tgb_rules=[tgb_rule(31080, cidr=VPC_CIDR), tgb_rule(32123, cidr=VPC_CIDR)],
        target_port=31080,
        open_ports=[31080, 32123],
    )
    s["target_health"] = [
        target_health(NODE1.instance_id, 31080, hc_port="32123"),
        target_health(NODE2.instance_id, 31080, hc_port="32123", reason="Target.FailedHealthChecks"),
    ]
    set_app_logs(s)

    def healthz(n):
        return ('{"service":{"namespace":"default","name":"echo-nlb"},"localEndpoints":%d,'
                '"serviceProxyHealthy":true}' % n)

    s["probe"] = {"results": [
        probe_result(NODE1.instance_id, NODE1.ip, 32123, path="/healthz", outcome="response", status=200,
                     latency=2, detail=healthz(1)),
        probe_result(NODE2.instance_id, NODE2.ip, 32123, path="/healthz", outcome="response", status=503,
                     latency=2, detail=healthz(0)),
    ]}


@scenario("node-security-groups-mismatch")
def node_security_groups_mismatch(s):
    expect(s, "node-security-groups-mismatch",
           "Node 2 (node group ng-2) carries only its own security group, which does not admit node 1's "
           "cluster security group, so node 1 cannot forward NodePort traffic to the only pod, on node 2.")
    s["security_groups"].append(security_group(
        SG_NG2, "Security group for demo-cluster node group ng-2",
        [sg_rule("tcp", 30080, groups=[SG_BACKEND], description=TGB_RULE_DESC)],
        {"Name": SG_NAMES[SG_NG2], f"kubernetes.io/cluster/{CLUSTER}": "owned"},
    ))
    set_node(s, dataclasses.replace(NODE2, nodegroup="ng-2", security_groups=(SG_NG2,)))
    remove(s, "app", "Pod", APP_POD_1)
    reset_events(s)
    fail_target(s, NODE1.instance_id, "Target.Timeout")
    set_app_logs(s, hc_sources=[NODE2.ip])


@scenario("target-port-mismatch")
def target_port_mismatch(s):
    expect(s, "target-port-mismatch",
           "The Service's targetPort is 8080 but the containers listen on port 80, so forwarded health "
           "checks are refused by the pods.")
    get(s, "app", "Service", "alb-instance")["spec"]["ports"][0]["targetPort"] = 8080
    fail_all_targets(s, "Target.FailedHealthChecks")
    set_app_logs(s)
    # The replay: the NodePort forwards to pod:8080 and the pods refuse; a direct probe of each
    # pod answers on 80 (its declared port and readiness-probe port) and refuses 8080.
    results = [probe_result(n.instance_id, n.ip, 30080, path="/", outcome="refused", latency=1,
                            detail="connection refused") for n in (NODE1, NODE2)]
    for pod in app_pods(s):
        ip, ref = pod["status"]["podIP"], f"default/{pod['metadata']['name']}"
        results.append(dict(probe_result(ip, ip, 8080, path="/", outcome="refused", latency=1,
                                         detail="connection refused"), pod=ref))
        results.append(dict(probe_result(ip, ip, 80, path="/", outcome="response", status=200, latency=2,
                                         detail="HTTP 200 OK (nginx/1.27.5)"), pod=ref))
    s["probe"] = {"results": results}


@scenario("lb-controller-errors")
def lb_controller_errors(s):
    expect(s, "lb-controller-errors",
           "The pods were re-created with new IPs but the Load Balancer Controller gets AccessDenied on "
           "RegisterTargets, so the target group still holds the old, dead pod IPs.")
    recreate_app_pods(s)
    use_ip_mode(s)
    stale_ip_targets(s, "Target.Timeout")
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        registered=[(ip, 80) for ip, _ in OLD_POD_TARGETS],
        registered_at=add_seconds(T_APP_POD, 5),
        failing=[(ip, 80) for _, _, ip in RECREATED_PODS],
    )
    ingress = get(s, "app", "Ingress", "alb-instance")
    last = add_seconds(T_APP_POD_RECREATED, 769)
    reset_events(s, [event(
        ingress, "FailedDeployModel",
        "Failed deploy model due to " + access_denied_error(uid("request", "10"), ALB_TG_ARN),
        type_="Warning", component="ingress", when=last, first=add_seconds(T_APP_POD_RECREATED, 2), count=11,
    )])
    set_app_logs(s)


@scenario("ingress-annotation-invalid")
def ingress_annotation_invalid(s):
    expect(s, "ingress-annotation-invalid",
           'The Ingress sets alb.ingress.kubernetes.io/healthcheck-port: "8081", a port nothing listens on '
           "(neither the NodePort nor a container port), so every health check fails.")
    get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/healthcheck-port"] = "8081"
    s["target_groups"][0]["HealthCheckPort"] = "8081"
    # the controller opens the health-check port too, so the SG is not the problem
    get(s, "app", "TargetGroupBinding", ALB_TG_NAME)["spec"]["networking"]["ingress"].append(
        tgb_rule(8081, group=SG_BACKEND))
    sg(s, SG_CLUSTER)["IpPermissions"].append(sg_rule("tcp", 8081, groups=[SG_BACKEND], description=TGB_RULE_DESC))
    for t in s["target_health"]:
        t["HealthCheckPort"] = "8081"
    fail_all_targets(s, "Target.FailedHealthChecks")
    set_app_logs(s)


@scenario("service-annotation-invalid")
def service_annotation_invalid(s):
    expect(s, "service-annotation-invalid",
           'The Service sets aws-load-balancer-healthcheck-port: "9090" but the pods only listen on port 80, '
           "so the NLB's HTTP health checks to the pod IPs fail.")
    pods = [
        echo_pod("echo-nlb-6c8d9f7b5-h4j6k", NODE1, "192.168.77.21"),
        echo_pod("echo-nlb-6c8d9f7b5-w2x8z", NODE2, "192.168.104.18"),
    ]
    use_nlb(
        s,
        target_type="ip",
        pods=pods,
        service=echo_service(etp="Cluster", annotations={
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/healthz",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": "9090",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "http",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        }),
        tg=nlb_target_group(port=80, target_type="ip", hc_port="9090", hc_path="/healthz"),
        tgb_rules=[tgb_rule(80, cidr=VPC_CIDR), tgb_rule(9090, cidr=VPC_CIDR)],
        target_port=80,
        open_ports=[80, 9090],
    )
    s["target_health"] = [
        target_health(p["status"]["podIP"], 80, hc_port="9090", az=node_of(p).az, reason="Target.FailedHealthChecks")
        for p in pods
    ]
    set_app_logs(s)
    # The replay of the health check (pod:9090) is refused; the pods answer on 80.
    results = [probe_result(p["status"]["podIP"], p["status"]["podIP"], 9090, path="/healthz", outcome="refused",
                            latency=1, detail="connection refused") for p in pods]
    for p in pods:
        ip, ref = p["status"]["podIP"], f"default/{p['metadata']['name']}"
        results.append(dict(probe_result(ip, ip, 80, path="/healthz", outcome="response", status=404, latency=2,
                                         detail="HTTP 404 Not Found (nginx/1.27.5)"), pod=ref))
    s["probe"] = {"results": results}


@scenario("health-check-response-mismatch")
def health_check_response_mismatch(s):
    expect(s, "health-check-response-mismatch",
           "The health check path /healthz does not exist in nginx, so the pods answer 404 while the "
           "matcher expects 200.")
    get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/healthcheck-path"] = "/healthz"
    s["target_groups"][0]["HealthCheckPath"] = "/healthz"
    fail_all_targets(s, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")
    set_app_logs(s, hc_sources=[NODE1.ip, NODE2.ip], hc_path="/healthz", hc_status=404)
    s["probe"] = {"results": [
        probe_result(n.instance_id, n.ip, 30080, path="/healthz", outcome="response", status=404, latency=3,
                     detail="HTTP/1.1 404 Not Found (nginx/1.27.5)")
        for n in (NODE1, NODE2)
    ]}


@scenario("health-check-unreachable")
def health_check_unreachable(s):
    expect(s, "health-check-unreachable",
           "Configuration looks correct everywhere, yet the health checks to both nodes time out and the "
           "replayed probes time out too.")
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)
    s["probe"] = {"results": [
        probe_result(n.instance_id, n.ip, 30080, path="/", outcome="timeout", latency=5000,
                     detail="no response within 5s (HealthCheckTimeoutSeconds)")
        for n in (NODE1, NODE2)
    ]}


@scenario("security-group-blocks-health-check")
def security_group_blocks_health_check(s):
    expect(s, "security-group-blocks-health-check",
           "The cluster security group on the nodes lost the tcp 30080 rule from the load balancer's "
           "backend security group, so health checks are dropped.")
    drop_rules(s, SG_CLUSTER, 30080)
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("network-acl-blocks-traffic")
def network_acl_blocks_traffic(s):
    expect(s, "network-acl-blocks-traffic",
           "A network ACL on the private subnets denies tcp 30000-32767 from the public subnets where the "
           "ALB lives, so health checks to the NodePort are dropped.")
    s["network_acls"] = [
        allow_all_nacl(DEFAULT_ACL, PUBLIC_SUBNETS, is_default=True),
        network_acl(
            PRIVATE_ACL, PRIVATE_SUBNETS,
            inbound=[
                nacl_entry(90, "deny", egress=False, cidr="192.168.0.0/18", protocol="6", ports=(30000, 32767)),
                nacl_entry(100, "allow", egress=False),
            ],
            outbound=[nacl_entry(100, "allow", egress=True)],
            is_default=False,
            tags={"Name": f"{CLUSTER}-private"},
        ),
    ]
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("route-table-missing-local-route")
def route_table_missing_local_route(s):
    expect(s, "route-table-missing-local-route",
           "The private route table sends the VPC CIDR to a deleted firewall ENI (blackhole) instead of the "
           "local route, so replies to the ALB never arrive.")
    rt = only(s["route_tables"], lambda r: r["RouteTableId"] == RTB_PRIVATE, "private route table")
    rt["Routes"] = [
        route(VPC_CIDR, NetworkInterfaceId=FIREWALL_ENI, state="blackhole"),
        route("0.0.0.0/0", NatGatewayId=NAT_ID),
    ]
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("kube-proxy-unhealthy")
def kube_proxy_unhealthy(s):
    expect(s, "kube-proxy-unhealthy",
           "kube-proxy crash-loops on both nodes (unrecognized feature gate), so the NodePort is not "
           "served and the health checks fail.")
    died = {"kube-proxy-7xk2m": ("2026-11-27T02:58:41Z", NODE1), "kube-proxy-9pl4n": ("2026-11-27T03:00:13Z", NODE2)}
    extra = []
    for name, (died_at, node) in died.items():
        pod = get(s, "kube_system", "Pod", name)
        crashloop(pod, restarts=12, finished=died_at)
        s["logs"][f"kube-system/{name}"] = kube_proxy_log(node, died_at=died_at)
        extra.append(event(
            pod, "BackOff",
            f"Back-off restarting failed container kube-proxy in pod {name}_kube-system({pod['metadata']['uid']})",
            type_="Warning", when=add_seconds(died_at, 12), first="2026-11-27T02:04:10Z", count=262,
            host=node.name, field_path="spec.containers{kube-proxy}",
        ))
    ds = get(s, "kube_system", "DaemonSet", "kube-proxy")["status"]
    del ds["numberAvailable"]
    ds.update(numberReady=0, numberUnavailable=2)
    reset_events(s, extra)
    fail_all_targets(s, "Target.FailedHealthChecks")
    set_app_logs(s)


@scenario("target-registration-drift")
def target_registration_drift(s):
    expect(s, "target-registration-drift",
           "No TargetGroupBinding manages the target group any more, so it still holds the old pod IPs "
           "while the live pods have new ones.")
    recreate_app_pods(s)
    use_ip_mode(s)
    remove(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    stale_ip_targets(s, "Target.FailedHealthChecks")
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        registered=[(ip, 80) for ip, _ in OLD_POD_TARGETS], registered_at=add_seconds(T_APP_POD, 5))
    set_app_logs(s)


@scenario("target-in-disabled-az")
def target_in_disabled_az(s):
    expect(s, "target-in-disabled-az",
           "Node 3 is in us-east-1c, an Availability Zone the ALB is not enabled in, so its target is unused.")
    set_node(s, NODE3)
    s["kube_system"].append(kube_proxy_pod("kube-proxy-2hd8w", NODE3))
    s["logs"]["kube-system/kube-proxy-2hd8w"] = kube_proxy_log(NODE3)
    ds = get(s, "kube_system", "DaemonSet", "kube-proxy")["status"]
    for k in ("currentNumberScheduled", "desiredNumberScheduled", "numberAvailable", "numberReady",
              "updatedNumberScheduled"):
        ds[k] = 3
    s["target_health"].append(target_health(NODE3.instance_id, 30080, reason="Target.NotInUse"))
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        registered=[(n.instance_id, 30080) for n in (NODE1, NODE2, NODE3)])


@scenario("target-instance-not-running")
def target_instance_not_running(s):
    expect(s, "target-instance-not-running",
           "The EC2 instance behind node 2 is stopped, so its target is in an invalid state and the node is "
           "NotReady.")
    set_node(s, NODE2, state="stopped")
    node = get(s, "nodes", "Node", NODE2.name)
    lost = "2026-11-27T02:41:52Z"
    msg = "Kubelet stopped posting node status."
    node["status"]["conditions"] = [
        condition(c["type"], "Unknown", lost, reason="NodeStatusUnknown", message=msg,
                  heartbeat="2026-11-27T02:40:58Z")
        for c in node["status"]["conditions"]
    ]
    node["spec"]["taints"] = [
        {"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable", "timeAdded": lost},
        {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": add_seconds(lost, 5)},
    ]
    evicted_pod = get(s, "app", "Pod", APP_POD_2)
    evicted_at = add_seconds(lost, 305)
    remove(s, "app", "Pod", APP_POD_2)
    # the LBC replica on node 2 was evicted too and replaced on node 1
    remove(s, "kube_system", "Pod", LBC_FOLLOWER)
    replacement = f"aws-load-balancer-controller-{LBC_RS_HASH}-k8m3n"
    s["kube_system"].append(lbc_pod(replacement, NODE1, "192.168.83.77", created=add_seconds(evicted_at, 1)))
    s["logs"][f"kube-system/{replacement}"] = lbc_follower_log(start=add_seconds(evicted_at, 8))
    # DaemonSet pods tolerate unreachable; the node controller only marks them not ready
    set_pod_condition(get(s, "kube_system", "Pod", "kube-proxy-9pl4n"), "Ready", "False", add_seconds(lost, 1))
    del s["logs"]["kube-system/kube-proxy-9pl4n"]  # kubectl logs cannot reach a stopped node's kubelet
    ds = get(s, "kube_system", "DaemonSet", "kube-proxy")["status"]
    ds.update(numberAvailable=1, numberReady=1, numberUnavailable=1)
    reset_events(s, [
        event(node, "NodeNotReady", f"Node {NODE2.name} status is now: NodeNotReady", when=lost,
              component="node-controller"),
        event(evicted_pod, "TaintManagerEviction", f"Marking for deletion Pod default/{APP_POD_2}",
              when=evicted_at, component="taint-eviction-controller"),
    ])
    fail_target(s, NODE2.instance_id, "Target.InvalidState")
    set_app_logs(s, hc_sources=[NODE1.ip])


# ---- realistic variants: healthy ones every check must stay quiet on, and failing ones

GATE = f"target-health.elbv2.k8s.aws/{ALB_TG_NAME}"
NEW_RS = "6f4d8b9c7"


def label_namespace(s, name, labels):
    ns = only(s["namespaces"], lambda n: n["metadata"]["name"] == name, name)
    ns["metadata"]["labels"].update(labels)


def advance_clock(s, collected_at):
    """The dump was taken later: node heartbeats follow (kubelets post status every few minutes)."""
    s["manifest"]["collectedAt"] = collected_at
    beat = add_seconds(collected_at, -95)
    for n in s["nodes"]:
        for c in n["status"]["conditions"]:
            if "lastHeartbeatTime" in c:
                c["lastHeartbeatTime"] = beat


@scenario("healthy-rollout-ip-readiness-gates")
def healthy_rollout_ip_readiness_gates(s):
    expect(s, None,
           "IP targets in a namespace with the controller's pod readiness gates, mid-rollout: the new pod "
           "(on Fargate) waits on its gate while its target is in its initial checks, a scaled-down pod's "
           "target drains, an evicted pod lingers. Nothing is broken.")
    use_ip_mode(s)
    label_namespace(s, "default", {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"})
    for name, node, ip in [(APP_POD_1, NODE1, "192.168.72.31"), (APP_POD_2, NODE2, "192.168.101.44")]:
        remove(s, "app", "Pod", name)
        s["app"].append(app_pod(name, node, ip, readiness_gates=[GATE]))
    set_node(s, FARGATE1)
    new = app_pod(f"alb-instance-{NEW_RS}-p3q8r", FARGATE1, FARGATE1.ip, rs_hash=NEW_RS,
                  created="2026-11-27T03:04:31Z", readiness_gates=[GATE])
    new["spec"]["schedulerName"] = "fargate-scheduler"
    # the controller sets the gate's condition only once the target is healthy
    new["status"]["conditions"] = [c for c in new["status"]["conditions"] if c["type"] != GATE]
    set_pod_condition(new, "Ready", "False", "2026-11-27T03:04:35Z", reason="ReadinessGatesNotReady",
                      message=f'corresponding condition of pod readiness gate "{GATE}" does not exist.')
    s["app"].append(new)
    dep = get(s, "app", "Deployment", "alb-instance")
    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    dep["status"].update(replicas=3, updatedReplicas=1)
    s["app"].append(make_replicaset("alb-instance", NEW_RS, replicas=1, labels={"app": "alb-instance"},
                                    created="2026-11-27T03:04:30Z", revision=3, ready=0))
    s["target_health"] = [
        target_health("192.168.72.31", 80, az="us-east-1a"),
        target_health("192.168.101.44", 80, az="us-east-1b"),
        {"Target": {"Id": FARGATE1.ip, "Port": 80, "AvailabilityZone": FARGATE1.az}, "HealthCheckPort": "80",
         "TargetHealth": {"State": "initial", "Reason": "Elb.InitialHealthChecking",
                          "Description": "Initial health checks in progress"}},
        {"Target": {"Id": "192.168.79.14", "Port": 80, "AvailabilityZone": "us-east-1a"}, "HealthCheckPort": "80",
         "TargetHealth": {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                          "Description": "Target deregistration is in progress"}},
    ]
    reset_events(s)
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


@scenario("healthy-node-rotation")
def healthy_node_rotation(s):
    expect(s, None,
           "Karpenter is replacing a node: its instance is shutting down, the Node carries "
           "karpenter.sh/disrupted and its target drains. Normal rotation, not a fault.",
           first_finding="target-instance-not-running")
    set_node(s, NODE4, state="shutting-down")
    node = get(s, "nodes", "Node", NODE4.name)
    node["spec"]["taints"] = [{"effect": "NoSchedule", "key": "karpenter.sh/disrupted", "timeAdded": "2026-11-27T03:01:09Z"}]
    node["spec"]["unschedulable"] = True
    node["metadata"]["labels"]["karpenter.sh/nodepool"] = "default"
    s["kube_system"].append(kube_proxy_pod("kube-proxy-c8v2q", NODE4))
    s["logs"]["kube-system/kube-proxy-c8v2q"] = kube_proxy_log(NODE4)
    ds = get(s, "kube_system", "DaemonSet", "kube-proxy")["status"]
    for k in ("currentNumberScheduled", "desiredNumberScheduled", "numberAvailable", "numberReady",
              "updatedNumberScheduled"):
        ds[k] = 3
    s["target_health"].append({
        "Target": {"Id": NODE4.instance_id, "Port": 30080}, "HealthCheckPort": "30080",
        "TargetHealth": {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                         "Description": "Target deregistration is in progress"},
    })
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        registered=[(n.instance_id, 30080) for n in (NODE1, NODE2, NODE4)],
        extra=[("2026-11-27T03:01:10Z", lbc_line("2026-11-27T03:01:10Z", "deRegistering targets", arn=ALB_TG_ARN,
                                                 targets=lbc_targets([(NODE4.instance_id, 30080)]))),
               ("2026-11-27T03:01:10Z", lbc_line("2026-11-27T03:01:10Z", "deRegistered targets", arn=ALB_TG_ARN))])
    reset_events(s, [event(node, "DisruptionTerminating", "Disrupting Node: Drifted/Delete",
                           when="2026-11-27T03:01:09Z", component="karpenter")])


def istio_app_container():
    """nginx under Istio: no declared port, its HTTP probe rewritten to the agent's port 15020."""
    c = container("nginx", NGINX_IMAGE, readiness={
        "failureThreshold": 3, "httpGet": {"path": "/app-health/nginx/readyz", "port": 15020, "scheme": "HTTP"},
        "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1})
    return c


def istio_proxy_container():
    return container("istio-proxy", "docker.io/istio/proxyv2:1.24.1",
                     args=["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                     ports=[(15090, "http-envoy-prom")],
                     readiness={"failureThreshold": 4, "httpGet": {"path": "/healthz/ready", "port": 15021,
                                                                   "scheme": "HTTP"},
                                "periodSeconds": 15, "successThreshold": 1, "timeoutSeconds": 3},
                     resources={"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}})


@scenario("healthy-sidecar-undeclared-port")
def healthy_sidecar_undeclared_port(s):
    expect(s, None,
           "The app container declares no port (it listens on 80 anyway: declared ports are informational) "
           "and an Istio sidecar declares 15090. The targets are healthy: no target-port finding, no fix.",
           no_fix=True)
    for pod in app_pods(s):
        pod["spec"]["containers"][0] = istio_app_container() | {"volumeMounts": pod["spec"]["containers"][0]["volumeMounts"]}
        pod["spec"]["containers"].insert(1, istio_proxy_container() | {"volumeMounts": pod["spec"]["containers"][0]["volumeMounts"]})
        first = pod["status"]["containerStatuses"][0]
        pod["status"]["containerStatuses"].insert(1, dict(copy.deepcopy(first), name="istio-proxy",
                                                           image="docker.io/istio/proxyv2:1.24.1",
                                                           imageID=image_id("docker.io/istio/proxyv2:1.24.1")))
        pod["metadata"]["labels"]["security.istio.io/tlsMode"] = "istio"
        pod["metadata"].setdefault("annotations", {})["sidecar.istio.io/status"] = (
            '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"]}')


@scenario("healthy-partial-dump")
def healthy_partial_dump(s):
    expect(s, None,
           "A dump made in a hurry: the AWS side and `kubectl get all -n default -o json` only. What it does "
           "not hold (the controller in kube-system, kube-proxy, Nodes, Endpoints) is not collected, never absent.",
           inconclusive=["lb-controller-errors", "kube-proxy-unhealthy", "endpoints-missing",
                         "target-registration-drift"],
           partial_dump=True)
    s["layout"] = "get-all"


@scenario("healthy-multiport-named-rollout")
def healthy_multiport_named_rollout(s):
    expect(s, None,
           "A two-port Service (http and metrics, both named targetPorts) mid-rollout: the new pod's container "
           "port named http is 8080 where the old pods' is 80. Kubernetes resolves the name per pod, so both "
           "are fine.")
    svc = get(s, "app", "Service", "alb-instance")
    svc["spec"]["ports"] = [
        service_port(target_port="http"),
        {"name": "metrics", "nodePort": 31913, "port": 9113, "protocol": "TCP", "targetPort": "metrics"},
    ]

    def app(port):
        return container("nginx", NGINX_IMAGE, ports=[(port, "http"), (9113, "metrics")],
                         readiness=http_probe("/", "http"))

    for name, node, ip in [(APP_POD_1, NODE1, "192.168.72.31"), (APP_POD_2, NODE2, "192.168.101.44")]:
        remove(s, "app", "Pod", name)
        s["app"].append(app_pod(name, node, ip, app_container=app(80)))
    s["app"].append(app_pod(f"alb-instance-{NEW_RS}-t7y5u", NODE2, "192.168.117.9", rs_hash=NEW_RS,
                            created="2026-11-27T03:02:41Z", app_container=app(8080)))
    s["app"].append(make_replicaset("alb-instance", NEW_RS, replicas=1, labels={"app": "alb-instance"},
                                    created="2026-11-27T03:02:40Z", revision=3))
    reset_events(s)
    set_app_logs(s, hc_sources=[NODE1.ip, NODE2.ip])


@scenario("healthy-old-controller-errors")
def healthy_old_controller_errors(s):
    expect(s, None,
           "Two hours ago the controller was denied RegisterTargets for this target group; the IAM policy was "
           "fixed and the targets registered since. Old errors are context, not the cause of anything now.",
           first_finding="lb-controller-errors")
    advance_clock(s, "2026-11-27T05:12:40Z")
    fixed_at = add_seconds(T_APP_POD_RECREATED, 800)
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        registered=[(n.instance_id, 30080) for n in (NODE1, NODE2)],
        failing=[(n.instance_id, 30080) for n in (NODE1, NODE2)],
        extra=[(fixed_at, lbc_line(fixed_at, "registered targets", arn=ALB_TG_ARN))])


@scenario("replicaset-failed-create")
def replicaset_failed_create(s):
    expect(s, "pod-not-ready",
           "The namespace's ResourceQuota is used up: the ReplicaSet cannot create the pods the Service "
           "selects (FailedCreate). The selector is right; there are simply no pods.")
    for pod in app_pods(s):
        remove(s, "app", "Pod", pod["metadata"]["name"])
    rs = get(s, "app", "ReplicaSet", "alb-instance-7d9c6b5f4")
    rs["status"] = {"observedGeneration": 1, "replicas": 0,
                    "conditions": [{"lastTransitionTime": "2026-11-27T02:31:07Z",
                                    "message": 'pods "alb-instance-7d9c6b5f4-k9d2m" is forbidden: exceeded quota: '
                                               "compute-resources, requested: limits.memory=64Mi, used: "
                                               "limits.memory=2Gi, limited: limits.memory=2Gi",
                                    "reason": "FailedCreate", "status": "True", "type": "ReplicaFailure"}]}
    get(s, "app", "Deployment", "alb-instance")["status"].update(availableReplicas=0, readyReplicas=0, replicas=0)
    reset_events(s, [event(rs, "FailedCreate",
                           'Error creating: pods "alb-instance-7d9c6b5f4-k9d2m" is forbidden: exceeded quota: '
                           "compute-resources, requested: limits.memory=64Mi, used: limits.memory=2Gi, limited: "
                           "limits.memory=2Gi",
                           type_="Warning", component="replicaset-controller", when="2026-11-27T03:04:58Z",
                           first="2026-11-27T02:31:07Z", count=19)])
    fail_all_targets(s, "Target.FailedHealthChecks")


@scenario("two-roots")
def two_roots(s):
    expect(s, "security-group-blocks-health-check",
           "Two causes on two targets: node 2 (node group ng-2) carries a security group without the load "
           "balancer's rule, and kube-proxy crash-loops on node 1. Each explains its own target; the report "
           "names both.")
    s["security_groups"].append(security_group(
        SG_NG2, "Security group for demo-cluster node group ng-2",
        # AWS prints the rules of one protocol and port range as one permission with several pairs
        [sg_rule("-1", groups=[SG_CLUSTER, SG_NG2])],
        {"Name": SG_NAMES[SG_NG2], f"kubernetes.io/cluster/{CLUSTER}": "owned"},
    ))
    all_traffic = next(r for r in sg(s, SG_CLUSTER)["IpPermissions"] if r["IpProtocol"] == "-1")
    all_traffic["UserIdGroupPairs"].append({"GroupId": SG_NG2, "UserId": ACCOUNT})
    set_node(s, dataclasses.replace(NODE2, nodegroup="ng-2", security_groups=(SG_NG2,)))
    pod = get(s, "kube_system", "Pod", "kube-proxy-7xk2m")
    crashloop(pod, restarts=9, finished="2026-11-27T03:03:02Z")
    s["logs"]["kube-system/kube-proxy-7xk2m"] = kube_proxy_log(NODE1, died_at="2026-11-27T03:03:02Z")
    ds = get(s, "kube_system", "DaemonSet", "kube-proxy")["status"]
    ds.update(numberAvailable=1, numberReady=1, numberUnavailable=1)
    fail_target(s, NODE1.instance_id, "Target.FailedHealthChecks")
    fail_target(s, NODE2.instance_id, "Target.Timeout")
    set_app_logs(s)


@scenario("load-balancer-internal-error")
def load_balancer_internal_error(s):
    expect(s, "load-balancer-internal-error",
           "Every check in the account and the cluster passes; the ALB reports Elb.InternalError for both "
           "targets: the load balancer's own failure.")
    fail_all_targets(s, "Elb.InternalError", "Health checks failed due to an internal error")
    set_app_logs(s)


@scenario("unexplained-with-side-warnings")
def unexplained_with_side_warnings(s):
    expect(s, "health-check-unreachable",
           "Both targets time out and nothing the tool reads explains it. One of three replicas crash-loops and "
           "the controller logs errors about other namespaces: side warnings that must not be named the cause. "
           "The report says: unexplained, and what was not checked.")
    third = app_pod("alb-instance-7d9c6b5f4-n6b1v", NODE2, "192.168.119.81")
    s["app"].append(third)
    crashloop(third, restarts=14, finished="2026-11-27T03:02:50Z", exit_code=137, only="nginx")
    third["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] = "OOMKilled"
    reset_events(s)
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)
    s["logs"]["default/alb-instance-7d9c6b5f4-n6b1v"] = nginx_crash_log(third)


@scenario("nodes-not-collected")
def nodes_not_collected(s):
    external_traffic_policy_local(s)
    expect(s, "health-check-unreachable",
           "externalTrafficPolicy Local with a failing node, but the dump holds no Nodes: which node lacks a "
           "pod is unknown, so the traffic-policy check is inconclusive and no fix is offered.",
           inconclusive=["external-traffic-policy-local"], no_fix=True, partial_dump=True)
    s["omit"] = ["k8s/nodes.json"]


@scenario("ip-prefix-delegation-security-group")
def ip_prefix_delegation_security_group(s):
    expect(s, "security-group-blocks-health-check",
           "IP targets on nodes with VPC CNI prefix delegation: the pod addresses are inside /28 prefixes of "
           "the node ENIs, not secondary IPs. The node security group lost the rule for tcp 80 from the load "
           "balancer.")
    use_ip_mode(s)
    set_node(s, dataclasses.replace(NODE1, prefix_delegation=True))
    set_node(s, dataclasses.replace(NODE2, prefix_delegation=True))
    drop_rules(s, SG_CLUSTER, 80)
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("instance-gone")
def instance_gone(s):
    expect(s, "target-instance-not-running",
           "Node 2's instance was terminated and no longer exists (DescribeInstances: InvalidInstanceID.NotFound); "
           "its Node object is gone too, but the target is still registered.")
    s["reservations"] = [r for r in s["reservations"] if r["Instances"][0]["InstanceId"] != NODE2.instance_id]
    s["network_interfaces"] = [e for e in s["network_interfaces"] if e["NetworkInterfaceId"] != NODE2.eni]
    s["nodes"] = [n for n in s["nodes"] if n["metadata"]["name"] != NODE2.name]
    del s["node_specs"][NODE2.eni]
    remove(s, "app", "Pod", APP_POD_2)
    remove(s, "kube_system", "Pod", "kube-proxy-9pl4n")
    remove(s, "kube_system", "Pod", LBC_FOLLOWER)
    s["kube_system"].append(lbc_pod(f"aws-load-balancer-controller-{LBC_RS_HASH}-k8m3n", NODE1, "192.168.83.77"))
    s["logs"][f"kube-system/aws-load-balancer-controller-{LBC_RS_HASH}-k8m3n"] = lbc_follower_log()
    ds = get(s, "kube_system", "DaemonSet", "kube-proxy")["status"]
    for k in ("currentNumberScheduled", "desiredNumberScheduled", "numberAvailable", "numberReady",
              "updatedNumberScheduled"):
        ds[k] = 1
    s["instances_not_found"] = [NODE2.instance_id]
    fail_target(s, NODE2.instance_id, "Target.InvalidState", "Target is in the terminated state")
    reset_events(s)
    set_app_logs(s, hc_sources=[NODE1.ip])


# ---- the controller as it really decides (issue 10)


def lbc_args(s, *extra):
    """Adds flags to the controller Deployment (and its pods' spec, as a rollout would)."""
    dep = get(s, "kube_system", "Deployment", "aws-load-balancer-controller")
    dep["spec"]["template"]["spec"]["containers"][0]["args"] += list(extra)
    for pod in objs(s, "kube_system", "Pod"):
        if pod["metadata"]["labels"].get("app.kubernetes.io/name") == "aws-load-balancer-controller":
            pod["spec"]["containers"][0]["args"] += list(extra)


def cluster_ip_service(s):
    svc = get(s, "app", "Service", "alb-instance")
    svc["spec"]["type"] = "ClusterIP"
    del svc["spec"]["externalTrafficPolicy"]
    for p in svc["spec"]["ports"]:
        p.pop("nodePort", None)


def ingress_class_params(name, spec, *, api="elbv2.k8s.aws/v1beta1") -> dict:
    return {"apiVersion": api, "kind": "IngressClassParams",
            "metadata": meta("IngressClassParams", name, created=T_ADDONS, generation=1), "spec": spec}


@scenario("controller-default-target-type-ip")
def controller_default_target_type_ip(s):
    expect(s, None,
           "The controller runs with --default-target-type=ip and the Ingress sets no target-type: IP targets "
           "in front of a ClusterIP Service are exactly what the controller builds. Nothing is broken.")
    use_ip_mode(s)
    del get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"]
    lbc_args(s, "--default-target-type=ip")
    cluster_ip_service(s)
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


@scenario("ingressclassparams-target-type-ip")
def ingressclassparams_target_type_ip(s):
    expect(s, None,
           "The IngressClass's IngressClassParams set targetType ip, which overrides the Ingress's stale "
           "target-type: instance annotation; the Service is ClusterIP. IP targets, healthy: nothing is broken.")
    use_ip_mode(s)
    get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] = "instance"
    cluster_ip_service(s)
    only(s["ingressclasses"], lambda c: c["metadata"]["name"] == "alb", "alb class")["spec"]["parameters"] = {
        "apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": "alb-ip"}
    s["ingressclassparams"] = [ingress_class_params("alb-ip", {"scheme": "internet-facing", "targetType": "ip"})]
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


@scenario("legacy-ingress-class-annotation")
def legacy_ingress_class_annotation(s):
    expect(s, None,
           "An old Ingress classed by the kubernetes.io/ingress.class: alb annotation, with no IngressClass object "
           "in the cluster: the controller matches the annotation against --ingress-class alone. Nothing is broken.")
    ing = get(s, "app", "Ingress", "alb-instance")
    del ing["spec"]["ingressClassName"]
    ing["metadata"]["annotations"]["kubernetes.io/ingress.class"] = "alb"
    s["ingressclasses"] = []


@scenario("eks-auto-mode-alb")
def eks_auto_mode_alb(s):
    expect(s, None,
           "EKS Auto Mode: its built-in load balancing owns the ALB (IngressClass controller eks.amazonaws.com/alb, "
           "IngressClassParams and TargetGroupBinding in eks.amazonaws.com/v1), its nodes run kube-proxy outside any "
           "pod. No controller Deployment and no kube-proxy DaemonSet exist: that is not a fault; the controller is "
           "only unreadable from the cluster.",
           inconclusive=["lb-controller-errors"])
    use_ip_mode(s)
    del get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"]
    cluster_ip_service(s)
    s["ingressclasses"] = [{
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": meta("IngressClass", "alb", created=T_ADDONS, generation=1),
        "spec": {"controller": "eks.amazonaws.com/alb",
                 "parameters": {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": "alb"}},
    }]
    s["ingressclassparams"] = [ingress_class_params("alb", {"scheme": "internet-facing", "targetType": "ip"},
                                                    api="eks.amazonaws.com/v1")]
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    tgb["apiVersion"] = "eks.amazonaws.com/v1"
    for n in s["nodes"]:
        n["metadata"]["labels"]["eks.amazonaws.com/compute-type"] = "auto"
        for k in ("eks.amazonaws.com/nodegroup", "eks.amazonaws.com/nodegroup-image"):
            n["metadata"]["labels"].pop(k, None)
        n["metadata"]["labels"]["karpenter.sh/nodepool"] = "general-purpose"
    # no controller and no kube-proxy in the cluster (`kubectl get ds -n kube-system -l k8s-app=kube-proxy`)
    s["kube_system"] = []
    s["extra_files"] = {"k8s/daemonsets.json": kubectl_json(k8s_list([]))}
    s["logs"] = {k: v for k, v in s["logs"].items() if not k.startswith("kube-system/")}
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


@scenario("service-healthcheck-annotation-override")
def service_healthcheck_annotation_override(s):
    expect(s, "health-check-response-mismatch",
           "The Ingress says healthcheck-path /, but the Service carries alb.ingress.kubernetes.io/healthcheck-path: "
           "/healthz, which the controller reads first: the target group checks /healthz and nginx answers 404. "
           "The fix must change the Service's annotation.")
    svc = get(s, "app", "Service", "alb-instance")
    svc["metadata"]["annotations"] = {"alb.ingress.kubernetes.io/healthcheck-path": "/healthz"}
    s["target_groups"][0]["HealthCheckPath"] = "/healthz"
    fail_all_targets(s, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")
    set_app_logs(s, hc_sources=[NODE1.ip, NODE2.ip], hc_path="/healthz", hc_status=404)


@scenario("nlb-http-health-check-404")
def nlb_http_health_check_404(s):
    expect(s, "health-check-response-mismatch",
           "An NLB with an HTTP health check on /healthz, which the pods answer 404. An NLB reports it as "
           "Target.FailedHealthChecks with the codes in the description (ResponseCodeMismatch is ALB-only): it is "
           "a wrong answer, not a refused connection.")
    pods = [
        echo_pod("echo-nlb-6c8d9f7b5-h4j6k", NODE1, "192.168.77.21"),
        echo_pod("echo-nlb-6c8d9f7b5-w2x8z", NODE2, "192.168.104.18"),
    ]
    use_nlb(
        s,
        target_type="ip",
        pods=pods,
        service=echo_service(etp="Cluster", annotations={
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/healthz",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "http",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        }),
        tg=nlb_target_group(port=80, target_type="ip", hc_port="traffic-port", hc_path="/healthz"),
        tgb_rules=[tgb_rule(80, cidr=VPC_CIDR)],
        target_port=80,
        open_ports=[80],
    )
    s["target_groups"][0]["Matcher"] = {"HttpCode": "200"}
    s["target_health"] = [
        target_health(p["status"]["podIP"], 80, az=node_of(p).az, reason="Target.FailedHealthChecks",
                      description="Health checks failed with these codes: [404]")
        for p in pods
    ]
    set_app_logs(s, hc_sources=[s_ip for s_ip in ALB_NODE_IPS], hc_path="/healthz", hc_status=404)


@scenario("grpc-health-check-code")
def grpc_health_check_code(s):
    expect(s, "health-check-response-mismatch",
           "A gRPC target group (ProtocolVersion GRPC) checks /AWS.ALB/healthcheck and accepts gRPC code 0; the app "
           "does not implement that method and answers 12 (UNIMPLEMENTED). Judged against the GrpcCode matcher, "
           "not HTTP 200; no catalogue fix (which method to check is the app owner's call).",
           no_fix=True)
    ing = get(s, "app", "Ingress", "alb-instance")
    ing["metadata"]["annotations"].update({
        "alb.ingress.kubernetes.io/backend-protocol-version": "GRPC",
        "alb.ingress.kubernetes.io/healthcheck-path": "/AWS.ALB/healthcheck",
        "alb.ingress.kubernetes.io/success-codes": "0",
    })
    tg = s["target_groups"][0]
    tg.update(ProtocolVersion="GRPC", HealthCheckPath="/AWS.ALB/healthcheck", Matcher={"GrpcCode": "0"})
    fail_all_targets(s, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [12]")
    set_app_logs(s)


def other_cluster_instance() -> dict:
    """An instance of another cluster (demo-cluster-b) registered in the same target group."""
    other = NodeSpec("i-0b2c3d4e5f6a7b001", "192.168.76.44", "private-1a", "eni-0b2c3d4e5f6a7b001",
                     nodegroup="ng-b")
    r = reservation(other)
    inst = r["Instances"][0]
    inst["Tags"] = aws_tags({
        "Name": "demo-cluster-b-ng-b-Node", "eks:cluster-name": "demo-cluster-b", "eks:nodegroup-name": "ng-b",
        "kubernetes.io/cluster/demo-cluster-b": "owned",
        "aws:autoscaling:groupName": "eks-ng-b-" + uid("asg", "ng-b"),
    })
    return r


def share_target_group_with_cluster_b(s, *, multi_cluster):
    s["reservations"].append(other_cluster_instance())
    s["target_health"].append(target_health("i-0b2c3d4e5f6a7b001", 30080))
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    if multi_cluster:
        tgb["spec"]["multiClusterTargetGroup"] = True
        get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"][
            "alb.ingress.kubernetes.io/multi-cluster-target-group"] = "true"


@scenario("multi-cluster-target-group")
def multi_cluster_target_group(s):
    expect(s, None,
           "The target group is shared with cluster demo-cluster-b (multiClusterTargetGroup): its node is "
           "registered too. It has no Node here, and that is not stale: it is the other controller's target.")
    share_target_group_with_cluster_b(s, multi_cluster=True)


@scenario("shared-target-group-without-multi-cluster")
def shared_target_group_without_multi_cluster(s):
    expect(s, "target-registration-drift",
           "The same target group is used by demo-cluster-b without multiClusterTargetGroup: each cluster's "
           "controller deregisters the other's targets, which flap.")
    share_target_group_with_cluster_b(s, multi_cluster=False)


@scenario("tgb-node-selector")
def tgb_node_selector(s):
    expect(s, None,
           "The binding's nodeSelector (from target-node-labels) selects only the edge node: only it is "
           "registered, and the other node is not missing.")
    # only the registered target's instance and interface are described
    s["reservations"] = [r for r in s["reservations"] if r["Instances"][0]["InstanceId"] == NODE1.instance_id]
    s["network_interfaces"] = [e for e in s["network_interfaces"] if e["NetworkInterfaceId"] == NODE1.eni]
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    tgb["spec"]["nodeSelector"] = {"matchLabels": {"pool": "edge"}}
    get(s, "nodes", "Node", NODE1.name)["metadata"]["labels"]["pool"] = "edge"
    s["target_health"] = [t for t in s["target_health"] if t["Target"]["Id"] == NODE1.instance_id]
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(registered=[(NODE1.instance_id, 30080)])


@scenario("controller-security-group-tag-ambiguous")
def controller_security_group_tag_ambiguous(s):
    expect(s, "cluster-security-group-tag-ambiguous",
           "The nodes carry two security groups tagged kubernetes.io/cluster/demo-cluster (the cluster group and a "
           "node group's own), so the controller cannot choose which one to open for the load balancer and fails "
           "on every reconcile: the health-check rule is missing.")
    s["security_groups"].append(security_group(
        SG_NG2, "Security group for demo-cluster node group ng-1 (custom)", [sg_rule("-1", groups=[SG_NG2])],
        {"Name": SG_NAMES[SG_NG2], f"kubernetes.io/cluster/{CLUSTER}": "owned"},
    ))
    for node in (NODE1, NODE2):
        set_node(s, dataclasses.replace(node, security_groups=(SG_CLUSTER, SG_NG2)))
    drop_rules(s, SG_CLUSTER, 30080)
    errors = []
    for i, off in enumerate([3, 9, 33, 129, 513]):
        ts = add_seconds("2026-11-27T02:50:00Z", off)
        errors.append((ts, lbc_reconcile_error(ts, i, tgb_name=ALB_TG_NAME, error=(
            f"expected exactly one securityGroup tagged with kubernetes.io/cluster/{CLUSTER} for eni {NODE1.eni}, "
            f"got: [{SG_CLUSTER} {SG_NG2}] (clusterName: {CLUSTER})"))))
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(
        registered=[(n.instance_id, 30080) for n in (NODE1, NODE2)], extra=errors)
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("named-target-port-tg-port-1")
def named_target_port_tg_port_1(s):
    expect(s, None,
           "IP targets behind a named targetPort: the controller cannot know one port for the target group, so it "
           "creates it on port 1 and registers each target with its pod's port. Harmless; nothing is broken.")
    use_ip_mode(s)
    get(s, "app", "Service", "alb-instance")["spec"]["ports"][0]["targetPort"] = "http"
    s["target_groups"][0]["Port"] = 1
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


# ---- the network path as AWS evaluates it (issue 11)

LB_SUBNET_PREFIX_LIST = "pl-0a1b2c3d4e5f000b1"
SG_POD = "sg-0pod0000000000e1"
SG_NAMES[SG_POD] = "demo-cluster-alb-instance-pods"
GWLB_ENDPOINTS = {"us-east-1a": "vpce-0a1b2c3d4e5f000c1", "us-east-1b": "vpce-0a1b2c3d4e5f000c2",
                  "us-east-1c": "vpce-0a1b2c3d4e5f000c3"}


def unmanaged_backend_rules(s):
    """The Ingress opts out of the controller's backend rules (`manage-backend-security-group-rules:
    "false"`): the node group's own rules admit the load balancer, as a Terraform module wrote them."""
    ing = get(s, "app", "Ingress", "alb-instance")
    ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/manage-backend-security-group-rules"] = "false"
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    del tgb["spec"]["networking"]
    drop_rules(s, SG_CLUSTER, 30080)


@scenario("healthy-sg-rules-split-across-subnets")
def healthy_sg_rules_split_across_subnets(s):
    expect(s, None,
           "The node security group admits the ALB through two hand-written rules: tcp 30080 from the first "
           "public subnet and tcp 30000-32767 from the second. Security groups aggregate every rule, so both "
           "load balancer nodes are admitted.")
    unmanaged_backend_rules(s)
    sg(s, SG_CLUSTER)["IpPermissions"] += [
        sg_rule("tcp", 30080, cidrs=[SUBNET["public-1a"].cidr], description="ALB health checks (us-east-1a)"),
        sg_rule("tcp", (30000, 32767), cidrs=[SUBNET["public-1b"].cidr], description="NodePorts from public-1b"),
        sg_rule("tcp", 22, cidrs=["10.20.0.0/16"], description="bastion"),
        sg_rule("tcp", 443, cidrs=["192.168.0.0/16"]),
    ]
    set_app_logs(s, hc_sources=[NODE1.ip, NODE2.ip])


@scenario("healthy-sg-prefix-list")
def healthy_sg_prefix_list(s):
    expect(s, None,
           "The node security group admits the ALB through a customer-managed prefix list holding the two public "
           "subnets (its entries are collected), next to rules for other ports.")
    unmanaged_backend_rules(s)
    rule = sg_rule("tcp", 30080, description="load balancer subnets")
    rule["PrefixListIds"] = [{"Description": "load balancer subnets", "PrefixListId": LB_SUBNET_PREFIX_LIST}]
    sg(s, SG_CLUSTER)["IpPermissions"] += [rule, sg_rule("tcp", 22, cidrs=["10.20.0.0/16"], description="bastion")]
    s["prefix_lists"][LB_SUBNET_PREFIX_LIST] = [
        {"Cidr": sn.cidr, "Description": f"{sn.key} (ALB)"} for sn in PUBLIC_SUBNETS
    ]


def private_acl(inbound, outbound=None):
    return network_acl(
        PRIVATE_ACL, PRIVATE_SUBNETS, inbound=inbound,
        outbound=outbound if outbound is not None else [nacl_entry(100, "allow", egress=True)],
        is_default=False, tags={"Name": f"{CLUSTER}-private"},
    )


@scenario("healthy-acl-host-deny")
def healthy_acl_host_deny(s):
    expect(s, None,
           "The private subnets' ACL denies one foreign host inside the public subnet (rule 50, a scanner at "
           "192.168.20.99/32) before rule 100 allows everything: the ALB's nodes at 192.168.14.201 and "
           "192.168.47.18 are allowed.")
    s["network_acls"] = [
        allow_all_nacl(DEFAULT_ACL, PUBLIC_SUBNETS, is_default=True),
        private_acl([
            nacl_entry(50, "deny", egress=False, cidr="192.168.20.99/32"),
            nacl_entry(100, "allow", egress=False),
        ]),
    ]


@scenario("network-acl-allows-part-of-lb-subnet")
def network_acl_allows_part_of_lb_subnet(s):
    expect(s, "network-acl-blocks-traffic",
           "The private subnets' ACL allows the NodePorts only from 192.168.0.0/24 and 192.168.32.0/24, but the "
           "ALB's nodes sit at 192.168.14.201 and 192.168.47.18: the final * rule drops their health checks.")
    s["network_acls"] = [
        allow_all_nacl(DEFAULT_ACL, PUBLIC_SUBNETS, is_default=True),
        private_acl([
            nacl_entry(100, "allow", egress=False, cidr="192.168.0.0/24", protocol="6", ports=(30000, 32767)),
            nacl_entry(101, "allow", egress=False, cidr="192.168.32.0/24", protocol="6", ports=(30000, 32767)),
            nacl_entry(110, "allow", egress=False, cidr="192.168.64.0/18"),
            nacl_entry(120, "allow", egress=False, cidr="192.168.128.0/19"),
            # replies to the nodes' own outbound connections (Linux ephemeral ports)
            nacl_entry(130, "allow", egress=False, cidr="0.0.0.0/0", protocol="6", ports=(32768, 65535)),
        ]),
    ]
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


def nlb_with_source_ranges(s, *, open_hc_port):
    """NLB instance targets (client IPs preserved), externalTrafficPolicy Local, clients limited by
    loadBalancerSourceRanges: the controller opens the traffic port to those ranges and the
    healthCheckNodePort to the load balancer's subnets."""
    clients = ["203.0.113.0/24", "198.51.100.0/24"]
    pods = [echo_pod("echo-nlb-6c8d9f7b5-h4j6k", NODE1, "192.168.77.21"),
            echo_pod("echo-nlb-6c8d9f7b5-w2x8z", NODE2, "192.168.104.18")]
    service = echo_service(etp="Local", hc_node_port=32123, annotations={
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "instance",
    })
    service["spec"]["loadBalancerSourceRanges"] = clients
    use_nlb(
        s, target_type="instance", pods=pods, service=service,
        tg=nlb_target_group(port=31080, target_type="instance", hc_port="32123", hc_path="/healthz"),
        tgb_rules=[tgb_rule(31080, cidr=c) for c in clients]
        + [tgb_rule(32123, cidr=sn.cidr) for sn in PUBLIC_SUBNETS],
        target_port=31080, open_ports=[],
    )
    rules = [sg_rule("tcp", 31080, cidrs=clients, description=TGB_RULE_DESC)]
    if open_hc_port:
        rules.append(sg_rule("tcp", 32123, cidrs=[sn.cidr for sn in PUBLIC_SUBNETS], description=TGB_RULE_DESC))
    s["security_groups"] = [cluster_security_group(rules)]
    s["target_health"] = [target_health(n.instance_id, 31080, hc_port="32123") for n in (NODE1, NODE2)]
    set_app_logs(s)


@scenario("healthy-nlb-client-ip-preservation")
def healthy_nlb_client_ip_preservation(s):
    expect(s, None,
           "NLB instance targets preserve client IPs: the traffic port 31080 is open to the Service's "
           "loadBalancerSourceRanges only, not to the load balancer, which is right; its health checks go to "
           "healthCheckNodePort 32123, open to the NLB's subnets.")
    nlb_with_source_ranges(s, open_hc_port=True)


@scenario("nlb-health-check-port-closed")
def nlb_health_check_port_closed(s):
    expect(s, "security-group-blocks-health-check",
           "Same NLB, but the rule opening healthCheckNodePort 32123 to the NLB's subnets is gone: its health "
           "checks time out. The NLB has no security groups, so the fix admits its two addresses.")
    nlb_with_source_ranges(s, open_hc_port=False)
    fail_all_targets(s, "Target.Timeout")


@scenario("route-to-blackholed-firewall")
def route_to_blackholed_firewall(s):
    expect(s, "route-table-missing-local-route",
           "The public route table sends the pods' subnet in us-east-1a (192.168.64.0/19) to a firewall ENI that "
           "was deleted (blackhole): the ALB's packets to the pod there are dropped; the pod in us-east-1b is "
           "reached through the local route and is healthy.")
    use_ip_mode(s)
    rt = only(s["route_tables"], lambda r: r["RouteTableId"] == RTB_PUBLIC, "public route table")
    rt["Routes"].insert(1, route(SUBNET["private-1a"].cidr, NetworkInterfaceId=FIREWALL_ENI, state="blackhole"))
    fail_target(s, "192.168.72.31", "Target.Timeout")
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


@scenario("healthy-inspection-local-route")
def healthy_inspection_local_route(s):
    expect(s, None,
           "Every subnet's local route was replaced on purpose by a Gateway Load Balancer endpoint of the "
           "inspection VPC (middlebox routing): traffic between the ALB and the targets goes through "
           "the firewall, and the routes are active.")
    for rt in s["route_tables"]:
        if rt["RouteTableId"] == RTB_MAIN:
            continue
        az = "us-east-1a"
        for a in rt["Associations"]:
            sn = next((x for x in SUBNETS if x.id == a.get("SubnetId")), None)
            if sn:
                az = sn.az
                break
        rt["Routes"][0] = route(VPC_CIDR, GatewayId=GWLB_ENDPOINTS[az], origin="CreateRoute")


def use_security_groups_for_pods(s, pod_rules):
    """IP targets on pods with their own security group (SecurityGroupPolicy): each pod address is a
    branch interface's primary address, associated with the node's trunk interface."""
    use_ip_mode(s)
    s["security_groups"].append(security_group(
        SG_POD, "Pods of alb-instance (SecurityGroupPolicy default/alb-instance)", pod_rules,
        {"Name": SG_NAMES[SG_POD]},
    ))
    trunks = {}
    for node in (NODE1, NODE2):
        trunk = "eni-0a1b2c3d4e5fa" + node.eni[-4:]
        trunks[node.name] = trunk
        eni = network_interface(node)
        eni.update({
            "Description": "aws-k8s-trunk-eni", "InterfaceType": "trunk", "NetworkInterfaceId": trunk,
            "PrivateIpAddress": str(ipaddress.ip_address(node.ip) + 3),
        })
        eni["Attachment"] = dict(eni["Attachment"], DeviceIndex=2,
                                 AttachmentId="eni-attach-" + digest(trunk, n=17))
        name = "ip-" + eni["PrivateIpAddress"].replace(".", "-") + ".ec2.internal"
        eni["PrivateDnsName"] = name
        eni["PrivateIpAddresses"] = [{"Primary": True, "PrivateDnsName": name, "PrivateIpAddress": eni["PrivateIpAddress"]}]
        eni["MacAddress"] = "0a:" + ":".join(digest("mac", trunk, n=10)[i:i + 2] for i in range(0, 10, 2))
        eni["TagSet"] = aws_tags({"eks:eni:owner": "eks-vpc-resource-controller",
                                  f"kubernetes.io/cluster/{CLUSTER}": "owned"})
        s["network_interfaces"].append(eni)
    for i, pod in enumerate(app_pods(s)):
        node = node_of(pod)
        ip = pod["status"]["podIP"]
        branch = f"eni-0a1b2c3d4e5f9{i:04d}"
        name = "ip-" + ip.replace(".", "-") + ".ec2.internal"
        s["network_interfaces"].append({
            "AvailabilityZone": node.az, "Description": "aws-k8s-branch-eni",
            "Groups": [{"GroupId": SG_POD, "GroupName": SG_NAMES[SG_POD]}], "InterfaceType": "branch",
            "Ipv6Addresses": [], "MacAddress": "0a:" + ":".join(digest("mac", branch, n=10)[j:j + 2] for j in range(0, 10, 2)),
            "NetworkInterfaceId": branch, "OwnerId": ACCOUNT, "PrivateDnsName": name, "PrivateIpAddress": ip,
            "PrivateIpAddresses": [{"Primary": True, "PrivateDnsName": name, "PrivateIpAddress": ip}],
            "RequesterId": "895095153028", "RequesterManaged": False, "SourceDestCheck": True, "Status": "in-use",
            "SubnetId": node.subnet_id,
            "TagSet": aws_tags({"vpcresources.k8s.aws/vlan-id": str(i + 1),
                                "vpcresources.k8s.aws/trunk-eni-id": trunks[node.name],
                                "eks:eni:owner": "eks-vpc-resource-controller",
                                f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
            "VpcId": VPC_ID,
        })
        pod["metadata"].setdefault("annotations", {})["vpc.amazonaws.com/pod-eni"] = json.dumps(
            [{"eniId": branch, "ifAddress": "0a:" + ":".join(digest("mac", branch, n=10)[j:j + 2] for j in range(0, 10, 2)),
              "privateIp": ip, "vlanId": i + 1, "subnetCidr": SUBNET[node.subnet].cidr}], separators=(",", ":"))
        for c in pod["spec"]["containers"][:1]:
            c.setdefault("resources", {}).setdefault("limits", {})["vpc.amazonaws.com/pod-eni"] = "1"
            c["resources"].setdefault("requests", {})["vpc.amazonaws.com/pod-eni"] = "1"


@scenario("security-groups-for-pods-blocked")
def security_groups_for_pods_blocked(s):
    expect(s, "security-group-blocks-health-check",
           "Security groups for pods: the pods' own group (on their branch interfaces) admits only the app's "
           "clients inside the VPC on 8443, not the ALB on 80; the node group's rule for the ALB does not apply "
           "to branch interfaces.")
    use_security_groups_for_pods(s, [
        sg_rule("tcp", 8443, cidrs=["192.168.0.0/16"], description="mesh"),
        sg_rule("-1", groups=[SG_POD], description="pod to pod"),
    ])
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("healthy-security-groups-for-pods")
def healthy_security_groups_for_pods(s):
    expect(s, None,
           "Security groups for pods: the pods' own group admits the ALB's backend group on 80 (the controller "
           "adds its rule to the pod's group). The node's group would not matter for these targets.")
    use_security_groups_for_pods(s, [
        sg_rule("tcp", 80, groups=[SG_BACKEND], description=TGB_RULE_DESC),
        sg_rule("-1", groups=[SG_POD], description="pod to pod"),
    ])
    drop_rules(s, SG_CLUSTER, 80)
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


VPC_IPV6 = "2600:1f18:4a2:8c00::/56"
SUBNET_IPV6 = {sn.key: f"2600:1f18:4a2:8c0{i}::/64" for i, sn in enumerate(SUBNETS)}
ALB_NODE_IPV6 = ["2600:1f18:4a2:8c00:9d1e:4b07:21c3:6a10", "2600:1f18:4a2:8c01:51a2:e8f0:7c44:1d2b"]
EIGW_ID = "eigw-0a1b2c3d4e5f00081"


def ipv6_of(sn_key: str, *parts: str) -> str:
    """A stable address in the subnet's /64."""
    net = ipaddress.ip_network(SUBNET_IPV6[sn_key])
    return str(net.network_address + int(digest(*parts, n=15), 16))


def use_ipv6_cluster(s):
    """An IPv6 EKS cluster: the VPC and subnets carry IPv6 blocks, the ALB is dualstack and sends
    to IPv6 IP targets (an ipv6 target group), and the VPC CNI hands pods addresses from /80
    prefixes delegated to the node interfaces."""
    use_ip_mode(s)
    s["vpcs"][0]["Ipv6CidrBlockAssociationSet"] = [{
        "AssociationId": "vpc-cidr-assoc-0a1b2c3d4e5f00092", "Ipv6CidrBlock": VPC_IPV6,
        "Ipv6CidrBlockState": {"State": "associated"}, "NetworkBorderGroup": REGION, "Ipv6Pool": "Amazon",
    }]
    for sn in s["subnets"]:
        key = next(x.key for x in SUBNETS if x.id == sn["SubnetId"])
        sn["AssignIpv6AddressOnCreation"] = True
        sn["Ipv6CidrBlockAssociationSet"] = [{
            "AssociationId": "subnet-cidr-assoc-" + digest("v6", sn["SubnetId"], n=17),
            "Ipv6CidrBlock": SUBNET_IPV6[key], "Ipv6CidrBlockState": {"State": "associated"},
        }]
    for rt in s["route_tables"]:
        rt["Routes"].insert(1, {"DestinationIpv6CidrBlock": VPC_IPV6, "GatewayId": "local",
                                "Origin": "CreateRouteTable", "State": "active"})
        if rt["RouteTableId"] == RTB_PUBLIC:
            rt["Routes"].append({"DestinationIpv6CidrBlock": "::/0", "GatewayId": IGW_ID,
                                 "Origin": "CreateRoute", "State": "active"})
        elif rt["RouteTableId"] == RTB_PRIVATE:
            rt["Routes"].append({"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": EIGW_ID,
                                 "Origin": "CreateRoute", "State": "active"})
    # The default ACL of a VPC with IPv6 allows it too (rules 101) and ends with a `*` per family.
    s["network_acls"] = [network_acl(
        DEFAULT_ACL, SUBNETS,
        inbound=[nacl_entry(100, "allow", egress=False), nacl_entry(101, "allow", egress=False, cidr="::/0"),
                 nacl_entry(32768, "deny", egress=False, cidr="::/0")],
        outbound=[nacl_entry(100, "allow", egress=True), nacl_entry(101, "allow", egress=True, cidr="::/0"),
                  nacl_entry(32768, "deny", egress=True, cidr="::/0")],
        is_default=True)]
    # Every group lets IPv6 out as well (eksctl and the controller create them so in a dualstack VPC).
    for g in s["security_groups"]:
        g["IpPermissionsEgress"][0]["Ipv6Ranges"] = [{"CidrIpv6": "::/0"}]
    lb = s["load_balancers"][0]
    lb["IpAddressType"] = "dualstack"
    for eni, ip6 in zip(s["lb_interfaces"], ALB_NODE_IPV6):
        eni["Ipv6Addresses"] = [{"Ipv6Address": ip6, "IsPrimaryIpv6": False}]
    s["target_groups"][0]["IpAddressType"] = "ipv6"
    get(s, "app", "TargetGroupBinding", ALB_TG_NAME)["spec"]["ipAddressType"] = "ipv6"
    svc = get(s, "app", "Service", "alb-instance")["spec"]
    svc.update(clusterIP="fd5a:9c2b:1d3e::6f2a", clusterIPs=["fd5a:9c2b:1d3e::6f2a"], ipFamilies=["IPv6"])
    for eps in objs(s, "app", "EndpointSlice"):
        eps["addressType"] = "IPv6"
    for node in (NODE1, NODE2):
        v6 = ipv6_of(node.subnet, "node", node.instance_id)
        for eni in s["network_interfaces"]:
            if eni["NetworkInterfaceId"] == node.eni:
                eni["Ipv6Addresses"] = [{"Ipv6Address": v6, "IsPrimaryIpv6": False}]
        for r in s["reservations"]:
            inst = r["Instances"][0]
            if inst["InstanceId"] == node.instance_id:
                inst["NetworkInterfaces"][0]["Ipv6Addresses"] = [{"Ipv6Address": v6, "IsPrimaryIpv6": False}]
    # Pod addresses: one /80 per node, from the node's subnet.
    for bucket in ("app", "kube_system"):
        for i, pod in enumerate(objs(s, bucket, "Pod")):
            if pod["spec"].get("hostNetwork") or pod_is_terminal(pod):
                continue
            node = node_of(pod)
            prefix = ipaddress.ip_network(ipv6_of(node.subnet, "prefix", node.instance_id) + "/80", strict=False)
            ip6 = str(prefix.network_address + 3 + int(digest("pod", pod["metadata"]["name"], n=3), 16))
            pod["status"]["podIP"] = ip6
            pod["status"]["podIPs"] = [{"ip": ip6}]
    s["target_health"] = [target_health(p["status"]["podIP"], 80, az=node_of(p).az) for p in app_pods(s)]
    set_app_logs(s, hc_sources=ALB_NODE_IPV6)


@scenario("healthy-ipv6-cluster")
def healthy_ipv6_cluster(s):
    expect(s, None,
           "An IPv6 cluster: the dualstack ALB health-checks IPv6 pod addresses (from /80 prefixes on the node "
           "interfaces) from its interfaces' IPv6 addresses; the node group admits the ALB's backend group, the "
           "default ACL allows IPv6 (rule 101), and each route table has the IPv6 local route.")
    use_ipv6_cluster(s)


@scenario("ipv6-acl-blocks-traffic")
def ipv6_acl_blocks_traffic(s):
    expect(s, "network-acl-blocks-traffic",
           "An IPv6 cluster whose private subnets got a custom network ACL written for IPv4 only (rule 100 allows "
           "0.0.0.0/0): IPv6 packets match no entry and fall to the final * rule, so every IPv6 health check is "
           "dropped.")
    use_ipv6_cluster(s)
    s["network_acls"] = [
        s["network_acls"][0],
        private_acl([nacl_entry(100, "allow", egress=False)]),
    ]
    s["network_acls"][0]["Associations"] = [a for a in s["network_acls"][0]["Associations"]
                                            if a["SubnetId"] in {sn.id for sn in PUBLIC_SUBNETS}]
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


# VPC CNI custom networking: pods get addresses from a secondary VPC CIDR (100.64.0.0/16), on a
# second interface of each node placed in the ENIConfig's subnet of its zone.
POD_CIDR = "100.64.0.0/16"
POD_SUBNETS = [
    Subnet("pods-1a", "subnet-0a1b2c3d4e5f00031", "100.64.0.0/19", "us-east-1a", False, 8120),
    Subnet("pods-1b", "subnet-0a1b2c3d4e5f00032", "100.64.32.0/19", "us-east-1b", False, 8131),
]
PODS_ACL = "acl-0pods0000000000q1"


def use_custom_networking(s, pods_acl_inbound):
    use_ip_mode(s)
    v = s["vpcs"][0]
    v["CidrBlockAssociationSet"].append({"AssociationId": "vpc-cidr-assoc-0a1b2c3d4e5f00093", "CidrBlock": POD_CIDR,
                                         "CidrBlockState": {"State": "associated"}})
    for sn in POD_SUBNETS:
        doc = subnet(dataclasses.replace(sn, key=sn.key))
        doc["Tags"] = aws_tags({"Name": f"{CLUSTER}-{sn.key}", f"kubernetes.io/cluster/{CLUSTER}": "shared"})
        s["subnets"].append(doc)
    for rt in s["route_tables"]:
        rt["Routes"].insert(1, route(POD_CIDR, GatewayId="local", origin="CreateRouteTable"))
        if rt["RouteTableId"] == RTB_PRIVATE:
            rt["Associations"] += [{
                "Main": False, "RouteTableAssociationId": "rtbassoc-" + digest(RTB_PRIVATE, sn.id, n=17),
                "RouteTableId": RTB_PRIVATE, "SubnetId": sn.id, "AssociationState": {"State": "associated"},
            } for sn in POD_SUBNETS]
    s["network_acls"] = [
        allow_all_nacl(DEFAULT_ACL, SUBNETS, is_default=True),
        network_acl(PODS_ACL, POD_SUBNETS, inbound=pods_acl_inbound,
                    outbound=[nacl_entry(100, "allow", egress=True)], is_default=False,
                    tags={"Name": f"{CLUSTER}-pods"}),
    ]
    # Each node's second interface, in its zone's pod subnet (the ENIConfig's groups: the cluster SG).
    s["pod_enis"] = {}
    for node, sn in ((NODE1, POD_SUBNETS[0]), (NODE2, POD_SUBNETS[1])):
        eni = network_interface(node)
        eni_id = "eni-0a1b2c3d4e5fb" + node.eni[-4:]
        primary = str(ipaddress.ip_network(sn.cidr).network_address + 10 + int(digest("pods", node.eni, n=3), 16) % 4000)
        name = "ip-" + primary.replace(".", "-") + ".ec2.internal"
        eni.update({"NetworkInterfaceId": eni_id, "SubnetId": sn.id, "PrivateIpAddress": primary, "PrivateDnsName": name,
                    "PrivateIpAddresses": [{"Primary": True, "PrivateDnsName": name, "PrivateIpAddress": primary}],
                    "Description": "aws-K8S-" + node.instance_id,
                    "MacAddress": "0a:" + ":".join(digest("mac", eni_id, n=10)[i:i + 2] for i in range(0, 10, 2)),
                    "TagSet": aws_tags({"node.k8s.amazonaws.com/instance_id": node.instance_id,
                                        "cluster.k8s.amazonaws.com/name": CLUSTER})})
        eni["Attachment"] = dict(eni["Attachment"], DeviceIndex=1, AttachmentId="eni-attach-" + digest(eni_id, n=17),
                                 DeleteOnTermination=True)
        s["network_interfaces"].append(eni)
        s["pod_enis"][node.name] = eni_id
    for pod, ip in zip(app_pods(s), ["100.64.12.37", "100.64.40.9"]):
        pod["status"]["podIP"] = ip
        pod["status"]["podIPs"] = [{"ip": ip}]
    for pod, ip in zip([p for p in objs(s, "kube_system", "Pod") if not p["spec"].get("hostNetwork")],
                       ["100.64.17.140", "100.64.51.62"]):
        pod["status"]["podIP"] = ip
        pod["status"]["podIPs"] = [{"ip": ip}]
    s["target_health"] = [target_health(p["status"]["podIP"], 80, az=node_of(p).az) for p in app_pods(s)]


@scenario("custom-networking-pod-subnet-acl")
def custom_networking_pod_subnet_acl(s):
    expect(s, "network-acl-blocks-traffic",
           "VPC CNI custom networking: the pods live in 100.64.0.0/16 subnets, on the nodes' second interfaces, "
           "whose network ACL admits only the VPC's private ranges. The ALB's health checks from the public "
           "subnets are denied there, although the nodes' own subnets allow everything.")
    use_custom_networking(s, [
        nacl_entry(100, "allow", egress=False, cidr=POD_CIDR),
        nacl_entry(110, "allow", egress=False, cidr="192.168.64.0/18"),
        nacl_entry(120, "allow", egress=False, cidr="192.168.128.0/19"),
    ])
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("healthy-custom-networking")
def healthy_custom_networking(s):
    expect(s, None,
           "VPC CNI custom networking with a pod-subnet ACL that admits the public subnets as well: the pods' "
           "subnets decide, and they allow the ALB.")
    use_custom_networking(s, [
        nacl_entry(100, "allow", egress=False, cidr=POD_CIDR),
        nacl_entry(110, "allow", egress=False, cidr="192.168.0.0/16"),
    ])
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


# ---- beyond the runbook (issue 12)


def enable_vpc_cni_network_policy(s):
    """The VPC CNI add-on with enableNetworkPolicy: the agent enforces, the controller is on."""
    for i, o in enumerate(s["kube_system"]):
        if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "aws-node":
            s["kube_system"][i] = aws_node_daemonset(network_policy=True)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "amazon-vpc-cni":
            s["kube_system"][i] = vpc_cni_configmap(network_policy=True)


def network_policy(name, *, pod_selector, ingress, created="2026-11-20T14:02:11Z") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("NetworkPolicy", name, "default", created=created, generation=1,
                         annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"}),
        "spec": {"podSelector": pod_selector, "policyTypes": ["Ingress"], **({"ingress": ingress} if ingress is not None else {})},
    }


DEFAULT_DENY = network_policy("default-deny", pod_selector={}, ingress=None)


@scenario("network-policy-blocks-load-balancer")
def network_policy_blocks_load_balancer(s):
    expect(s, "network-policy-blocks-load-balancer",
           "The VPC CNI enforces NetworkPolicies; the namespace has a default-deny policy and allows the app's port "
           "only from the frontend pods and the monitoring namespace. The ALB is not a pod: its health checks to the "
           "pod IPs are dropped.")
    use_ip_mode(s)
    enable_vpc_cni_network_policy(s)
    s["network_policies"] = [
        DEFAULT_DENY,
        network_policy("allow-frontend", pod_selector={"matchLabels": {"app": "alb-instance"}}, ingress=[
            {"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}},
                      {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
             "ports": [{"port": "http", "protocol": "TCP"}]},
        ]),
    ]
    fail_all_targets(s, "Target.Timeout")
    set_app_logs(s)


@scenario("healthy-network-policy-allows-vpc")
def healthy_network_policy_allows_vpc(s):
    expect(s, None,
           "Enforced NetworkPolicies with a default deny, and a rule admitting the VPC's range (minus a quarantine "
           "subnet) on the named port http: the ALB's addresses are inside it.")
    use_ip_mode(s)
    enable_vpc_cni_network_policy(s)
    s["network_policies"] = [
        DEFAULT_DENY,
        network_policy("allow-vpc", pod_selector={"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["alb-instance", "alb-instance-canary"]}]}, ingress=[
            {"from": [{"ipBlock": {"cidr": VPC_CIDR, "except": ["192.168.200.0/24"]}}],
             "ports": [{"port": "http", "protocol": "TCP"}]},
        ]),
    ]
    set_app_logs(s, hc_sources=ALB_NODE_IPS)


def gunicorn_container(bind) -> dict:
    return container(
        "api", "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders-api:2026.11.3",
        command=["gunicorn"], args=["--bind", bind, "--workers", "4", "orders.wsgi:app"],
        ports=[(8080, "http")],
        readiness={"exec": {"command": ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]},
                   "failureThreshold": 3, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 2},
        env=[{"name": "DJANGO_SETTINGS_MODULE", "value": "orders.settings.prod"}],
    )


@scenario("app-listens-on-loopback")
def app_listens_on_loopback(s):
    expect(s, "app-listens-on-loopback",
           "The API's gunicorn binds 127.0.0.1:8080 and its readiness probe is an exec curl to localhost, so the "
           "pods are Ready while the ALB's health checks to the pod IPs are refused (the replay too).")
    use_ip_mode(s)
    for name, node, ip in [(APP_POD_1, NODE1, "192.168.72.31"), (APP_POD_2, NODE2, "192.168.101.44")]:
        remove(s, "app", "Pod", name)
        s["app"].append(app_pod(name, node, ip, app_container=gunicorn_container("127.0.0.1:8080")))
    get(s, "app", "Service", "alb-instance")["spec"]["ports"][0]["targetPort"] = 8080
    s["target_groups"][0]["Port"] = 8080
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    tgb["spec"]["networking"]["ingress"] = [tgb_rule(8080, group=SG_BACKEND)]
    drop_rules(s, SG_CLUSTER, 80)
    sg(s, SG_CLUSTER)["IpPermissions"].append(sg_rule("tcp", 8080, groups=[SG_BACKEND], description=TGB_RULE_DESC))
    s["target_health"] = [target_health(p["status"]["podIP"], 8080, az=node_of(p).az,
                                        reason="Target.FailedHealthChecks", description="Health checks failed")
                          for p in app_pods(s)]
    reset_events(s)
    s["logs"] = {k: v for k, v in s["logs"].items() if not k.startswith("default/")}
    results = [probe_result(p["status"]["podIP"], p["status"]["podIP"], 8080, path="/", outcome="refused", latency=1,
                            detail="connection refused") for p in app_pods(s)]
    # the replay's direct probe of each pod on its declared port: refused as well
    for p in app_pods(s):
        ip, ref = p["status"]["podIP"], f"default/{p['metadata']['name']}"
        results.append(dict(probe_result(ip, ip, 8080, path="/", outcome="refused", latency=1,
                                         detail="connection refused"), pod=ref))
    s["probe"] = {"results": results}


@scenario("target-ip-family-mismatch")
def target_ip_family_mismatch(s):
    expect(s, "target-ip-family-mismatch",
           "An IPv6 cluster (kubernetesNetworkConfig.ipFamily ipv6, Service ipFamilies [IPv6]) behind an ipv4 target "
           "group of instance targets: kube-proxy serves the NodePort on the nodes' IPv6 addresses, the ALB checks "
           "their IPv4 ones.")
    use_ipv6_cluster(s)
    s["target_groups"] = [alb_target_group()]
    get(s, "app", "Ingress", "alb-instance")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] = "instance"
    tgb = get(s, "app", "TargetGroupBinding", ALB_TG_NAME)
    tgb["spec"].update(targetType="instance", ipAddressType="ipv4")
    tgb["spec"]["networking"]["ingress"] = [tgb_rule(30080, group=SG_BACKEND)]
    sg(s, SG_CLUSTER)["IpPermissions"].append(sg_rule("tcp", 30080, groups=[SG_BACKEND], description=TGB_RULE_DESC))
    s["cluster"]["kubernetesNetworkConfig"] = {"ipFamily": "ipv6", "serviceIpv6Cidr": "fd5a:9c2b:1d3e::/108",
                                               "elasticLoadBalancing": {"enabled": False}}
    s["target_health"] = [target_health(n.instance_id, 30080, reason="Target.Timeout") for n in (NODE1, NODE2)]
    set_app_logs(s)


@scenario("health-check-protocol-version-mismatch")
def health_check_protocol_version_mismatch(s):
    expect(s, "health-check-protocol-version-mismatch",
           "backend-protocol-version GRPC on an Ingress whose pods serve plain HTTP/1.1 (nginx, httpGet readiness "
           "on the port): the ALB's gRPC health checks fail without a gRPC status.")
    use_ip_mode(s)
    ing = get(s, "app", "Ingress", "alb-instance")
    ing["metadata"]["annotations"].update({
        "alb.ingress.kubernetes.io/backend-protocol-version": "GRPC",
        "alb.ingress.kubernetes.io/healthcheck-path": "/AWS.ALB/healthcheck",
        "alb.ingress.kubernetes.io/success-codes": "0-99",
    })
    s["target_groups"][0].update(ProtocolVersion="GRPC", HealthCheckPath="/AWS.ALB/healthcheck",
                                 Matcher={"GrpcCode": "0-99"})
    fail_all_targets(s, "Target.FailedHealthChecks", "Health checks failed")
    set_app_logs(s)


def cilium_daemonset() -> dict:
    ds = kube_proxy_daemonset()
    ds["metadata"] = meta("DaemonSet", "cilium", "kube-system", created="2026-10-01T09:01:44Z", generation=3,
                          labels={"app.kubernetes.io/name": "cilium-agent", "app.kubernetes.io/part-of": "cilium",
                                  "k8s-app": "cilium"})
    spec = ds["spec"]["template"]["spec"]
    ds["spec"]["selector"] = {"matchLabels": {"k8s-app": "cilium"}}
    ds["spec"]["template"]["metadata"] = {"labels": {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent"}}
    spec["containers"] = [container("cilium-agent", "quay.io/cilium/cilium:v1.16.4", command=["cilium-agent"],
                                    args=["--config-dir=/tmp/cilium/config-map"])]
    spec["serviceAccountName"] = "cilium"
    return ds


def cilium_configmap() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("ConfigMap", "cilium-config", "kube-system", created="2026-10-01T09:01:44Z",
                         labels={"app.kubernetes.io/managed-by": "Helm"}),
        "data": {"cluster-name": CLUSTER, "cni-chaining-mode": "aws-cni", "enable-ipv4": "true",
                 "enable-ipv6": "false", "kube-proxy-replacement": "true", "routing-mode": "native",
                 "enable-endpoint-routes": "true", "bpf-lb-sock": "false", "k8s-service-host": "F1E2D3C4B5A6.gr7.us-east-1.eks.amazonaws.com",
                 "k8s-service-port": "443"},
    }


def replace_kube_proxy_with_cilium(s):
    s["kube_system"] = [o for o in s["kube_system"]
                        if not (o["metadata"]["name"].startswith("kube-proxy"))]
    s["kube_system"] += [cilium_daemonset(), cilium_configmap()]
    s["logs"] = {k: v for k, v in s["logs"].items() if "kube-proxy" not in k}


@scenario("kube-proxy-replacement-nodeport-broken")
def kube_proxy_replacement_nodeport_broken(s):
    expect(s, "kube-proxy-replacement-nodeport-broken",
           "No kube-proxy: Cilium replaces it (kube-proxy-replacement: true, chained to the VPC CNI). With "
           "externalTrafficPolicy Cluster the only pod runs on node 1, which passes; node 2 cannot forward its "
           "NodePort to the pod on node 1 and fails.")
    replace_kube_proxy_with_cilium(s)
    remove(s, "app", "Pod", APP_POD_2)
    reset_events(s)
    fail_target(s, NODE2.instance_id, "Target.Timeout")
    set_app_logs(s, hc_sources=[NODE1.ip])


@scenario("healthy-cilium-kube-proxy-replacement")
def healthy_cilium_kube_proxy_replacement(s):
    expect(s, None,
           "Cilium replaces kube-proxy and forwards NodePorts across nodes: both instance targets are healthy, and "
           "no kube-proxy pod is missing by design.")
    replace_kube_proxy_with_cilium(s)


@scenario("fargate-instance-target")
def fargate_instance_target(s):
    expect(s, "fargate-instance-target",
           "An NLB with instance targets and externalTrafficPolicy Local in front of pods that all run on Fargate "
           "(a Fargate profile for the namespace): no registered EC2 node has a pod, so every target fails its "
           "healthCheckNodePort check. Fargate needs IP targets.")
    for node in (FARGATE1, FARGATE2):
        set_node(s, node)
    pods = [echo_pod("echo-nlb-6c8d9f7b5-h4j6k", FARGATE1, FARGATE1.ip),
            echo_pod("echo-nlb-6c8d9f7b5-w2x8z", FARGATE2, FARGATE2.ip)]
    for p in pods:
        p["spec"]["schedulerName"] = "fargate-scheduler"
        p["metadata"]["labels"]["eks.amazonaws.com/fargate-profile"] = "fp-default"
    use_nlb(
        s, target_type="instance", pods=pods,
        service=echo_service(etp="Local", hc_node_port=32123, annotations={
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "instance",
        }),
        tg=nlb_target_group(port=31080, target_type="instance", hc_port="32123", hc_path="/healthz"),
        tgb_rules=[tgb_rule(31080, cidr=VPC_CIDR), tgb_rule(32123, cidr=VPC_CIDR)],
        target_port=31080, open_ports=[31080, 32123],
    )
    s["target_health"] = [
        target_health(n.instance_id, 31080, hc_port="32123", reason="Target.FailedHealthChecks")
        for n in (NODE1, NODE2)
    ]
    set_app_logs(s)


@scenario("service-handled-by-legacy-provider")
def service_handled_by_legacy_provider(s):
    expect(s, "service-handled-by-legacy-provider",
           "The Service says aws-load-balancer-type: nlb, so the in-tree cloud provider built the NLB (no "
           "loadBalancerClass, no TargetGroupBinding); its nlb-target-type: ip, scheme: internal and "
           "target-group-attributes annotations are the controller's and are ignored: instance targets, "
           "internet-facing.")
    pods = [echo_pod("echo-nlb-6c8d9f7b5-h4j6k", NODE1, "192.168.77.21"),
            echo_pod("echo-nlb-6c8d9f7b5-w2x8z", NODE2, "192.168.104.18")]
    svc = echo_service(etp="Cluster", annotations={})
    annotations = svc["metadata"]["annotations"]
    annotations.pop("service.beta.kubernetes.io/aws-load-balancer-scheme", None)
    annotations.update({
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=false",
    })
    svc["metadata"].pop("finalizers", None)
    svc["metadata"]["finalizers"] = ["service.kubernetes.io/load-balancer-cleanup"]
    svc["spec"].pop("loadBalancerClass")
    use_nlb(
        s, target_type="instance", pods=pods, service=svc,
        tg=nlb_target_group(port=31080, target_type="instance", hc_port="traffic-port", hc_path="/"),
        tgb_rules=[], target_port=31080, open_ports=[31080],
    )
    s["app"] = [o for o in s["app"] if o["kind"] != "TargetGroupBinding"]
    tg = s["target_groups"][0]
    tg.update(HealthCheckProtocol="TCP", HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=10,
              HealthyThresholdCount=2, UnhealthyThresholdCount=2)
    tg.pop("HealthCheckPath", None)
    tg.pop("Matcher", None)
    s["tags"] = [tag_description(NLB_TG_ARN, {
        "kubernetes.io/service-name": "default/echo-nlb",
        f"kubernetes.io/cluster/{CLUSTER}": "owned",
    })]
    s["target_health"] = [target_health(n.instance_id, 31080) for n in (NODE1, NODE2)]
    # the controller never reconciles it: its log has no line about this Service
    s["logs"][f"kube-system/{LBC_LEADER}"] = lbc_leader_log(registered=[])
    set_app_logs(s)


@scenario("readiness-gate-not-injected")
def readiness_gate_not_injected(s):
    expect(s, "readiness-gate-not-injected",
           "IP targets in a namespace without the pod readiness gate label, mid-rollout: the new pods are Ready "
           "while their targets are still in their initial checks, and the old pods' targets are already "
           "draining: for a moment no target is healthy.")
    use_ip_mode(s)
    new_pods = [(f"alb-instance-{NEW_RS}-p3q8r", NODE1, "192.168.68.120"),
                (f"alb-instance-{NEW_RS}-t7w2d", NODE2, "192.168.104.77")]
    for name in (APP_POD_1, APP_POD_2):
        remove(s, "app", "Pod", name)
    for name, node, ip in new_pods:
        s["app"].append(app_pod(name, node, ip, rs_hash=NEW_RS, created="2026-11-27T03:05:02Z"))
    dep = get(s, "app", "Deployment", "alb-instance")
    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    s["app"].append(make_replicaset("alb-instance", NEW_RS, replicas=2, labels={"app": "alb-instance"},
                                    created="2026-11-27T03:05:01Z", revision=3))
    rs_old = get(s, "app", "ReplicaSet", "alb-instance-7d9c6b5f4")
    rs_old["spec"]["replicas"] = 0
    rs_old["status"] = {"observedGeneration": 3, "replicas": 0}
    s["target_health"] = [
        {"Target": {"Id": ip, "Port": 80, "AvailabilityZone": node.az}, "HealthCheckPort": "80",
         "TargetHealth": {"State": "initial", "Reason": "Elb.InitialHealthChecking",
                          "Description": "Initial health checks in progress"}}
        for _, node, ip in new_pods
    ] + [
        {"Target": {"Id": ip, "Port": 80, "AvailabilityZone": az}, "HealthCheckPort": "80",
         "TargetHealth": {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                          "Description": "Target deregistration is in progress"}}
        for ip, az in OLD_POD_TARGETS
    ]
    reset_events(s)
    set_app_logs(s)


@scenario("nlb-hairpin-client-ip-preservation")
def nlb_hairpin_client_ip_preservation(s):
    expect(s, "nlb-hairpin-client-ip-preservation",
           "An internal NLB with instance targets (client IPs preserved by default) and a worker in the same "
           "cluster that calls it by its DNS name: whenever the NLB picks the worker's own node the connection "
           "times out. Health checks pass.")
    pods = [echo_pod("echo-nlb-6c8d9f7b5-h4j6k", NODE1, "192.168.77.21"),
            echo_pod("echo-nlb-6c8d9f7b5-w2x8z", NODE2, "192.168.104.18")]
    svc = echo_service(etp="Cluster", annotations={
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "instance",
    })
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] = "internal"
    use_nlb(
        s, target_type="instance", pods=pods, service=svc,
        tg=nlb_target_group(port=31080, target_type="instance", hc_port="traffic-port", hc_path="/"),
        tgb_rules=[tgb_rule(31080, cidr=VPC_CIDR)], target_port=31080, open_ports=[31080],
    )
    s["load_balancers"][0]["Scheme"] = "internal"
    worker = app_pod("orders-worker-5f7d8c9b6-x2k4m", NODE1, "192.168.82.64", app="orders-worker",
                     rs_hash="5f7d8c9b6", app_container=container(
                         "worker", "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders-worker:2026.11.3",
                         env=[{"name": "ECHO_URL", "value": f"http://{NLB_DNS}/"},
                              {"name": "QUEUE", "value": "orders"}]))
    s["app"].append(worker)
    s["target_health"] = [target_health(n.instance_id, 31080) for n in (NODE1, NODE2)]
    set_app_logs(s)


# --------------------------------------------------------------------------
# Derivation, validation, rendering
# --------------------------------------------------------------------------

KIND_ORDER = ["ConfigMap", "Deployment", "ReplicaSet", "DaemonSet", "Service", "Endpoints", "EndpointSlice", "Pod",
              "Ingress", "TargetGroupBinding"]


def pod_is_ready(pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


def pod_is_terminal(pod) -> bool:
    return pod["status"].get("phase") in ("Failed", "Succeeded")


def resolve_target_port(pod, target_port):
    if isinstance(target_port, int):
        return target_port
    for c in pod["spec"]["containers"]:
        for p in c.get("ports", []):
            if p.get("name") == target_port:
                return p["containerPort"]
    return None


def sync_endpoints(s):
    """What the endpoints and endpointslice controllers would write for selector-based Services:
    terminal pods are left out; each pod's ports are resolved on their own (a named port may
    mean different numbers on different pods), and pods are grouped into one EndpointSlice per
    distinct port set; terminating pods stay in the slices (not ready) but leave Endpoints."""
    for svc in objs(s, "app", "Service"):
        selector = svc["spec"].get("selector")
        if not selector:
            continue  # Endpoints are managed by hand
        name = svc["metadata"]["name"]
        sports = svc["spec"]["ports"]
        pods = [
            p for p in app_pods(s)
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
            and p["status"].get("podIP") and not pod_is_terminal(p)
        ]
        pods.sort(key=lambda p: ipaddress.ip_address(p["status"]["podIP"]))
        groups = {}
        for p in pods:
            key = tuple(
                (sp.get("name", ""), port, sp["protocol"])
                for sp in sports
                for port in [resolve_target_port(p, sp.get("targetPort", sp["port"]))]
                if port is not None
            )
            if key:
                groups.setdefault(key, []).append(p)

        def address(p):
            return {"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"], "targetRef": obj_ref(p)}

        def ports_of(key):
            return [{"name": n, "port": port, "protocol": proto} if n else {"port": port, "protocol": proto}
                    for n, port, proto in key]

        ep = get(s, "app", "Endpoints", name)
        ep.pop("subsets", None)
        slices = [e for e in objs(s, "app", "EndpointSlice")
                  if e["metadata"]["labels"]["kubernetes.io/service-name"] == name]
        if pods:
            trigger = max(p["metadata"]["creationTimestamp"] for p in pods)
            for o in [ep] + slices:
                o["metadata"].setdefault("annotations", {})["endpoints.kubernetes.io/last-change-trigger-time"] = trigger
        subsets = []
        for key, members in groups.items():
            live = [p for p in members if "deletionTimestamp" not in p["metadata"]]
            subset = {}
            ready = [address(p) for p in live if pod_is_ready(p)]
            not_ready = [address(p) for p in live if not pod_is_ready(p)]
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            if ready or not_ready:
                subset["ports"] = ports_of(key)
                subsets.append(subset)
        if subsets:
            ep["subsets"] = subsets

        if not slices:
            continue
        if not groups:
            for eps in slices:
                eps["endpoints"], eps["ports"] = None, None
            continue
        # One slice per port set: reuse the existing slices, add one when a new port set appears.
        while len(slices) < len(groups):
            extra = copy.deepcopy(slices[0])
            extra_name = f"{name}-" + digest("slice", name, str(len(slices)), n=5)
            extra["metadata"].update(name=extra_name, uid=uid("EndpointSlice", "default", extra_name),
                                     resourceVersion=resource_version("EndpointSlice", "default", extra_name))
            s["app"].append(extra)
            slices.append(extra)
        for eps, (key, members) in zip(slices, groups.items()):
            eps["endpoints"] = [
                {
                    "addresses": [p["status"]["podIP"]],
                    "conditions": {
                        "ready": pod_is_ready(p) and "deletionTimestamp" not in p["metadata"],
                        "serving": pod_is_ready(p),
                        "terminating": "deletionTimestamp" in p["metadata"],
                    },
                    "nodeName": p["spec"]["nodeName"],
                    "targetRef": obj_ref(p),
                    "zone": node_of(p).az,
                }
                for p in members
            ]
            eps["ports"] = ports_of(key)


def prefix28(ip: str) -> str:
    return str(ipaddress.ip_network(f"{ip}/28", strict=False))


def sync_enis(s):
    """The VPC CNI assigns pod IPs as secondary private IPs of the node's ENI, or, with prefix
    delegation, from /28 prefixes assigned to it. Terminal pods have released their address;
    a Fargate pod's address is its own ENI's primary address."""
    by_node = {}
    for pod in objs(s, "app", "Pod") + objs(s, "kube_system", "Pod"):
        if pod["spec"].get("hostNetwork") or pod_is_terminal(pod):
            continue
        if "vpc.amazonaws.com/pod-eni" in pod["metadata"].get("annotations", {}):
            continue  # security groups for pods: the address is its branch interface's
        by_node.setdefault(pod["spec"]["nodeName"], []).append(pod["status"]["podIP"])
    pod_enis = s.get("pod_enis", {})
    for eni in s["network_interfaces"]:
        node = s["node_specs"].get(eni["NetworkInterfaceId"])
        if node is None:
            # custom networking: the node's second interface holds its pods' addresses
            owner = next((n for n, e in pod_enis.items() if e == eni["NetworkInterfaceId"]), None)
            if owner is not None:
                ips = sorted(by_node.get(owner, []), key=ipaddress.ip_address)
                eni["PrivateIpAddresses"] = eni["PrivateIpAddresses"][:1] + [
                    {"Primary": False, "PrivateDnsName": "ip-" + ip.replace(".", "-") + ".ec2.internal",
                     "PrivateIpAddress": ip} for ip in ips]
            continue
        if node.fargate or node.name in pod_enis:
            continue
        ips = sorted(by_node.get(node.name, []), key=ipaddress.ip_address)
        v6 = [ip for ip in ips if ":" in ip]
        ips = [ip for ip in ips if ":" not in ip]
        if v6:
            eni["Ipv6Prefixes"] = [{"Ipv6Prefix": p} for p in
                                   sorted({str(ipaddress.ip_network(f"{ip}/80", strict=False)) for ip in v6})]
        if node.prefix_delegation:
            eni["Ipv4Prefixes"] = [{"Ipv4Prefix": p} for p in sorted({prefix28(ip) for ip in ips})]
            continue
        eni["PrivateIpAddresses"] = eni["PrivateIpAddresses"][:1] + [
            {"Primary": False, "PrivateDnsName": "ip-" + ip.replace(".", "-") + ".ec2.internal",
             "PrivateIpAddress": ip}
            for ip in ips
        ]


def sort_buckets(s):
    for bucket in ("app", "kube_system"):
        s[bucket].sort(key=lambda o: KIND_ORDER.index(o["kind"]))


def validate(name, s):
    """Cross-file consistency checks; a failure here is a bug in this generator."""

    def check(cond, msg):
        if not cond:
            raise AssertionError(f"{name}: {msg}")

    sg_ids = {g["GroupId"] for g in s["security_groups"]}
    instances = [i for r in s["reservations"] for i in r["Instances"]]
    for i in instances:
        for g in i["SecurityGroups"]:
            check(g["GroupId"] in sg_ids, f"instance SG {g['GroupId']} missing")
    for e in s["network_interfaces"]:
        for g in e["Groups"]:
            check(g["GroupId"] in sg_ids, f"ENI SG {g['GroupId']} missing")
    for lb in s["load_balancers"]:
        for g in lb.get("SecurityGroups", []):
            check(g in sg_ids, f"LB SG {g} missing")
        lb_subnets = {z["SubnetId"] for z in lb["AvailabilityZones"]}
        for e in s["lb_interfaces"]:
            check(e["Description"] == "ELB " + lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1], "LB ENI description")
            check(e["SubnetId"] in lb_subnets, "LB ENI outside the LB's subnets")
            check(sorted(g["GroupId"] for g in e["Groups"]) == sorted(lb.get("SecurityGroups", [])), "LB ENI groups")
    for g in s["security_groups"]:
        for r in g["IpPermissions"]:
            for pair in r["UserIdGroupPairs"]:
                check(pair["GroupId"] in sg_ids, f"rule references missing SG {pair['GroupId']}")

    (tg,) = s["target_groups"]
    check(s["manifest"]["targetGroupArn"] == tg["TargetGroupArn"], "manifest TG")
    check(s["tags"][0]["ResourceArn"] == tg["TargetGroupArn"], "tags TG")
    check(tg["LoadBalancerArns"] == [lb["LoadBalancerArn"] for lb in s["load_balancers"]], "TG LB")

    node_names = {n["metadata"]["name"] for n in s["nodes"]}
    ec2_node_names = {n["metadata"]["name"] for n in s["nodes"]
                      if n["metadata"]["labels"].get("eks.amazonaws.com/compute-type") != "fargate"}
    ours = [i for i in instances if dict((t["Key"], t["Value"]) for t in i.get("Tags", [])).get("eks:cluster-name", CLUSTER) == CLUSTER]
    # Only the targets' instances (and interfaces) are described, so a node may have none.
    check({i["PrivateDnsName"] for i in ours} <= ec2_node_names, "this cluster's instances are nodes")
    check({s["node_specs"][e["NetworkInterfaceId"]].name for e in s["network_interfaces"]
           if e.get("InterfaceType") not in ("branch", "trunk")
           and e["NetworkInterfaceId"] not in s.get("pod_enis", {}).values()} <= node_names, "ENIs belong to nodes")
    instance_ids = {i["InstanceId"] for i in instances}
    target_ids = {t["Target"]["Id"] for t in s["target_health"]}
    if tg["TargetType"] == "instance":
        check(target_ids == instance_ids | set(s.get("instances_not_found", ())),
              "instance targets vs described (or known gone) instances")
        for t in s["target_health"]:
            check("AvailabilityZone" not in t["Target"], "AZ on instance target")
    else:
        pod_nodes = {p["spec"]["nodeName"] for p in app_pods(s)}
        check(pod_nodes <= node_names, "ip targets: the pods' nodes are described")
        for t in s["target_health"]:
            check(any(ipaddress.ip_address(t["Target"]["Id"]) in ipaddress.ip_network(c)
                      for c in (VPC_CIDR, VPC_IPV6, POD_CIDR)),
                  "ip target in VPC")
            check("AvailabilityZone" in t["Target"], "AZ missing on ip target")

    pods = objs(s, "app", "Pod") + objs(s, "kube_system", "Pod")
    pod_keys = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods}
    for p in pods:
        check(p["spec"]["nodeName"] in node_names, f"pod {p['metadata']['name']} on unknown node")
    for key in s["logs"]:
        check(key in pod_keys, f"log for unknown pod {key}")
    subnets = {sn["SubnetId"]: ipaddress.ip_network(sn["CidrBlock"]) for sn in s["subnets"]}
    for e in s["network_interfaces"]:
        for a in e["PrivateIpAddresses"]:
            check(ipaddress.ip_address(a["PrivateIpAddress"]) in subnets[e["SubnetId"]],
                  f"{a['PrivateIpAddress']} outside subnet of {e['NetworkInterfaceId']}")
        for pfx in e.get("Ipv4Prefixes", []):
            check(ipaddress.ip_network(pfx["Ipv4Prefix"]).subnet_of(subnets[e["SubnetId"]]),
                  f"prefix {pfx['Ipv4Prefix']} outside subnet of {e['NetworkInterfaceId']}")
    # Every live pod address on a described node is on some interface (secondary IP, delegated
    # prefix, or primary).
    described = {s["node_specs"][e["NetworkInterfaceId"]].name for e in s["network_interfaces"]
                 if e["NetworkInterfaceId"] in s["node_specs"]}
    for p in pods:
        if p["spec"].get("hostNetwork") or pod_is_terminal(p) or not p["status"].get("podIP"):
            continue
        if p["spec"]["nodeName"] not in described:
            continue
        ip = ipaddress.ip_address(p["status"]["podIP"])
        on_eni = any(
            ip == ipaddress.ip_address(a["PrivateIpAddress"]) for e in s["network_interfaces"]
            for a in e["PrivateIpAddresses"]
        ) or any(ip in ipaddress.ip_network(x["Ipv4Prefix"]) for e in s["network_interfaces"]
                 for x in e.get("Ipv4Prefixes", [])
                 ) or any(ip in ipaddress.ip_network(x["Ipv6Prefix"]) for e in s["network_interfaces"]
                          for x in e.get("Ipv6Prefixes", []))
        check(on_eni, f"pod {p['metadata']['name']} address {ip} is on no interface")
    check({"description", "rootCause"} <= s["expected"].keys()
          <= {"description", "rootCause", "firstFinding", "partialDump", "inconclusive", "noFix"}, "expected.json")


# ---- serialisation


def aws_json(obj) -> str:
    return json.dumps(obj, indent=4) + "\n"


def kubectl_json(obj) -> str:
    # kubectl prints objects as unstructured maps: keys sorted, 4-space indent
    return json.dumps(obj, indent=4, sort_keys=True) + "\n"


YAML_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
YAML_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def yaml_scalar(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    if YAML_PLAIN.fullmatch(v) and v.lower() not in YAML_RESERVED:
        return v
    return json.dumps(v)  # a JSON string is a valid double-quoted YAML scalar


def yaml_lines(value, indent=0):
    """kubectl / sigs.k8s.io/yaml style: sorted keys, list items not indented under their key."""
    pad = " " * indent
    if isinstance(value, dict):
        for k in sorted(value):
            v = value[k]
            if isinstance(v, dict) and v:
                yield f"{pad}{yaml_scalar(k)}:"
                yield from yaml_lines(v, indent + 2)
            elif isinstance(v, list) and v:
                yield f"{pad}{yaml_scalar(k)}:"
                yield from yaml_lines(v, indent)
            else:
                yield f"{pad}{yaml_scalar(k)}: {yaml_scalar(v)}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = list(yaml_lines(item, indent + 2))
                sub[0] = f"{pad}- {sub[0][indent + 2:]}"
                yield from sub
            else:
                yield f"{pad}- {yaml_scalar(item)}"
    else:
        yield pad + yaml_scalar(value)


def to_yaml(obj) -> str:
    return "\n".join(yaml_lines(obj)) + "\n"


def render(name, s) -> dict:
    """Files of one dump directory: relative path -> text."""
    sort_buckets(s)
    sync_endpoints(s)
    sync_enis(s)
    validate(name, s)
    if s.get("layout") == "get-all":
        return render_get_all(s)
    files = {
        "manifest.json": aws_json(s["manifest"]),
        "expected.json": aws_json(s["expected"]),
        "aws/elbv2-describe-target-groups.json": aws_json({"TargetGroups": s["target_groups"]}),
        "aws/elbv2-describe-target-health.json": aws_json({"TargetHealthDescriptions": s["target_health"]}),
        "aws/elbv2-describe-tags.json": aws_json({"TagDescriptions": s["tags"]}),
        "aws/elbv2-describe-load-balancers.json": aws_json({"LoadBalancers": s["load_balancers"]}),
        "aws/ec2-describe-security-groups.json": aws_json({"SecurityGroups": s["security_groups"]}),
        "aws/ec2-describe-network-acls.json": aws_json({"NetworkAcls": s["network_acls"]}),
        "aws/ec2-describe-route-tables.json": aws_json({"RouteTables": s["route_tables"]}),
        "aws/ec2-describe-subnets.json": aws_json({"Subnets": s["subnets"]}),
        "aws/ec2-describe-vpcs.json": aws_json({"Vpcs": s["vpcs"]}),
        "aws/ec2-describe-instances.json": aws_json(
            {"Reservations": s["reservations"],
             **({"InstanceIdsNotFound": s["instances_not_found"]} if s.get("instances_not_found") else {})}),
        "aws/ec2-describe-network-interfaces.json": aws_json({"NetworkInterfaces": s["network_interfaces"]}),
        "aws/ec2-describe-network-interfaces-load-balancer.json": aws_json({"NetworkInterfaces": s["lb_interfaces"]}),
        "aws/elbv2-describe-target-group-attributes.json": aws_json({"Attributes": s["tg_attributes"]}),
        "aws/elbv2-describe-load-balancer-attributes.json": aws_json({"Attributes": s["lb_attributes"]}),
        "aws/eks-describe-cluster.json": aws_json({"cluster": s["cluster"]}),
        "k8s/nodes.json": kubectl_json(k8s_list(s["nodes"])),
        "k8s/namespaces.json": kubectl_json(k8s_list(s["namespaces"])),
        "k8s/app.json": kubectl_json(k8s_list([o for o in s["app"] if o["kind"] != "TargetGroupBinding"])),
        # `kubectl get targetgroupbindings -A -o json`: an empty List still says "collected, none".
        "k8s/targetgroupbindings.json": kubectl_json(
            k8s_list([o for o in s["app"] if o["kind"] == "TargetGroupBinding"])),
        "k8s/events.json": kubectl_json(k8s_list(s["events"])),
        "k8s/ingressclasses.yaml": to_yaml(k8s_list(s["ingressclasses"])),
        # `kubectl get ingressclassparams -o yaml` (both API groups when installed)
        "k8s/ingressclassparams.yaml": to_yaml(k8s_list(s.get("ingressclassparams", []))),
        "k8s/kube-system.json": kubectl_json(k8s_list(s["kube_system"])),
        # `kubectl get networkpolicies -n <backend namespace> -o json`: empty says "none"
        "k8s/networkpolicies.json": kubectl_json(k8s_list(s["network_policies"])),
    }
    for pl_id, entries in sorted(s["prefix_lists"].items()):
        files[f"aws/ec2-get-managed-prefix-list-entries/{pl_id}.json"] = aws_json({"Entries": entries})
    for key, text in sorted(s["logs"].items()):
        files[f"k8s/logs/{key}.log"] = text
    if s["probe"] is not None:
        files["probe.json"] = aws_json(s["probe"])
    for rel in s.get("omit", ()):
        del files[rel]
    files.update(s.get("extra_files", {}))
    return files


# `kubectl get all` lists these kinds only (the "all" category).
GET_ALL_KINDS = {"Pod", "Service", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet", "Job", "CronJob"}


def render_get_all(s) -> dict:
    """A partial dump as a user makes it in a hurry: the AWS side, and only
    `kubectl get all -n default -o json > k8s/default.json` on the Kubernetes side."""
    s = dict(s, layout=None)
    full = render("get-all", s)
    files = {k: v for k, v in full.items() if not k.startswith("k8s/")}
    files["k8s/default.json"] = kubectl_json(k8s_list([o for o in s["app"] if o["kind"] in GET_ALL_KINDS]))
    return files


def build_all() -> dict:
    base = base_state()
    out = {}
    for name, mutate in SCENARIOS.items():
        s = copy.deepcopy(base)
        mutate(s)
        out[name] = render(name, s)
    return out


def write_all(root: Path):
    for name, files in build_all().items():
        d = root / name
        if d.exists():
            shutil.rmtree(d)
        for rel, text in files.items():
            path = d / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def tree(d: Path) -> set:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()} if d.is_dir() else set()


def check(root: Path) -> list:
    """Paths (relative to `root`) whose committed content differs from a fresh generation."""
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write_all(fresh)
        for name in SCENARIOS:
            new, old = tree(fresh / name), tree(root / name)
            for rel in sorted(new | old):
                a, b = fresh / name / rel, root / name / rel
                if rel not in old:
                    stale.append(f"{name}/{rel} (missing)")
                elif rel not in new:
                    stale.append(f"{name}/{rel} (not generated any more)")
                elif a.read_bytes() != b.read_bytes():
                    stale.append(f"{name}/{rel} (differs)")
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary directory and fail if the committed files differ")
    args = parser.parse_args()
    if args.check:
        stale = check(HERE)
        if stale:
            print("scenario files are out of date; run: python3 tests/scenarios/generate.py", file=sys.stderr)
            for line in stale:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{len(SCENARIOS)} scenarios up to date")
        return 0
    write_all(HERE)
    print(f"wrote {len(SCENARIOS)} scenarios under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
