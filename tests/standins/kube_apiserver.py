#!/usr/bin/env python3
"""A stand-in for an Amazon EKS kube-apiserver, for eks-lb-doctor's tests.

It serves the objects of one or more dump folders (``tests/scenarios/*/k8s/``) over HTTPS the
way the real API server does, closely enough for the real ``kubectl`` (1.32) and the Rust
``kube`` client.

Run::

    python kube_apiserver.py --state DIR [--state DIR2 ...] --sts-endpoint http://127.0.0.1:PORT \
        --cluster-name demo-cluster [--authz FILE] [--port 0] [--workdir DIR] \
        [--discovery aggregated|legacy] [--strict-token-expiry] [--no-stdin] [--verbose]

When it listens it prints ONE JSON line on stdout and flushes::

    {"url": "https://127.0.0.1:PORT", "caFile": "/path/ca.crt", "caData": "<base64 of the CA PEM>"}

It exits when stdin reaches EOF (so a parent that dies takes it down; ``--no-stdin`` turns this
off) or on SIGTERM. Control commands arrive on stdin, one JSON object per line, and each gets one
JSON line on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``):

    {"cmd": "fault", "path": "<regex>", "status": 500, "times": N, "message": "..."}
        answer matching requests ("path?query" searched with the regex) with a Status error;
        ``times`` omitted = until clear-faults. Applied after authentication.
    {"cmd": "latency", "path": "<regex>", "ms": 300}   delay matching requests
    {"cmd": "clear-faults"}                             drop all faults and latencies
    {"cmd": "load", "state": "DIR" | ["DIR", ...]}      replace all state
    {"cmd": "requests"}        -> {"ok": true, "requests": ["GET /api/v1/pods?limit=500", ...]}
    {"cmd": "reset-requests"}
    {"cmd": "authz", "file": "PATH"} | {"cmd": "authz", "rules": {...} | null}   replace the policy
    {"cmd": "authz-rbac", "file": "rbac.yaml", "groups": ["g", ...]}   the policy those RBAC
        manifests grant to those groups (ClusterRoleBinding: every namespace; RoleBinding: its own)

State: every ``*.json`` / ``*.yaml`` / ``*.yml`` below a --state folder (except ``logs/``) holding
one object, a ``kind: List``, a typed list (``PodList``: items without kind) or several YAML
documents. Logs: ``DIR/logs/<namespace>/<pod>.log`` (any container), or
``DIR/logs/<namespace>/<pod>/<container>.log``; ``previous=true`` reads ``<pod>.previous.log`` /
``<pod>/<container>.previous.log``. Later --state folders override earlier ones.

Implemented (as the real server does):
- /version, /healthz, /livez, /readyz (also without credentials, like system:public-info-viewer);
  discovery: /api, /api/v1, /apis, /apis/G, /apis/G/V, and the aggregated discovery document
  (apidiscovery.k8s.io v2 / v2beta1) when the Accept header asks for it (``--discovery legacy``
  always answers the legacy form with plain application/json, which kubectl also accepts).
- Built-in resource metadata for pods (+log, +status), services, endpoints, nodes, namespaces,
  events, configmaps, secrets, serviceaccounts, deployments, daemonsets, replicasets,
  statefulsets, controllerrevisions, endpointslices, ingresses, ingressclasses, networkpolicies,
  targetgroupbindings (tgb) and ingressclassparams; any other kind found in the state is served
  too (plural guessed from the kind, scope from metadata.namespace). SelfSubjectAccessReview and
  SelfSubjectReview (``kubectl auth can-i`` / ``whoami``) are answered from the policy and the
  token; kubectl's typed clients send those two as protobuf, which is decoded for them only
  (any other protobuf body gets 415).
- get, list (namespaced and cluster-wide) with labelSelector (=, ==, !=, in, notin, exists, !key,
  gt, lt) and fieldSelector (=, ==, != on the fields the real server supports per kind; others
  are refused like the real server). limit/continue are ignored (one page). Lists carry
  metadata.resourceVersion; items of built-in types carry no kind/apiVersion (real JSON), items of
  custom resources do.
- Server-side printing: meta.k8s.io/v1 (or v1beta1) Table with the real server's columns for the
  common kinds (all priorities; kubectl hides priority 1 unless -o wide), ``includeObject``
  None/Metadata/Object; PartialObjectMetadata(List); YAML when only YAML is accepted.
- pods/log with container, previous, tailLines, limitBytes (text/plain).
- PATCH: merge-patch (RFC 7386), strategic-merge-patch (merge keys of the built-in types that
  matter here, $patch replace/delete, $retainKeys, $deleteFromPrimitiveList, $setElementOrder
  ignored; refused with 415 for custom resources like the real server), json-patch (RFC 6902:
  add, remove, replace, move, copy, test). A body that is not JSON is 400 BadRequest and a patch
  that does not apply (failed test, missing path) 422 Invalid, as on the real server. PUT (update, resourceVersion required and checked),
  POST (create, generateName), DELETE (immediate), deletecollection. ``dryRun=All`` returns the
  result without storing it. A real change bumps resourceVersion (a no-op does not) and
  metadata.generation when the spec changes (for the kinds that track it); the main resource
  ignores status changes and the status subresource ignores everything else; a stale
  resourceVersion or uid in the body is a 409 Conflict; a small validation of Service
  spec.type / externalTrafficPolicy / internalTrafficPolicy / ports and of label/annotation values
  gives 422 Invalid with the real wording.
- Errors are Status objects with the real wording and reasons (NotFound, Forbidden, Conflict,
  AlreadyExists, Invalid, BadRequest, UnsupportedMediaType, NotAcceptable, MethodNotAllowed,
  InternalError, Unauthorized).
- Authentication: ``Authorization: Bearer k8s-aws-v1.<base64url presigned STS URL>`` checked like
  aws-iam-authenticator (origin must be --sts-endpoint, path "/", allow-listed single-valued
  query parameters, Action=GetCallerIdentity, SigV4, x-k8s-aws-id signed, X-Amz-Expires <= 900,
  not older than 15 minutes -- or than X-Amz-Expires with --strict-token-expiry), then the URL is
  sent to --sts-endpoint with ``x-k8s-aws-id: <cluster-name>`` and the caller's Arn is read from
  the answer. Verified tokens are cached 60 s. Missing or invalid credentials: 401 Unauthorized
  (a real EKS endpoint treats a request without a token as system:anonymous, 403; this one does
  not). Refusal reasons go to stderr with --verbose.
- Authorization: --authz FILE ``{"<ARN glob>": {"allow": [{"verbs": [...], "resources": [...],
  "namespaces": [...], "apiGroups": [...]}]}}`` (globs; every list defaults to ["*"]; "pods"
  does not cover "pods/log", "*" and "pods/*" do). No file: every authenticated caller may do
  everything. Non-resource paths (discovery, /version, /openapi) are open to any authenticated
  caller. The user name in messages is the raw ARN from STS.

Notes on the STS leg (moto):
- moto routes a request by its Authorization header and does not understand presigned URLs, so
  the stand-in adds an equivalent ``Authorization`` / ``X-Amz-Date`` / ``X-Amz-Security-Token``
  built from the URL's own query parameters when it forwards (to the configured endpoint only).
- moto does not check signatures, so a token signed for another cluster name would pass. The
  stand-in therefore checks the SigV4 signature itself whenever it knows the secret of the
  token's access key: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from its environment, and every
  ``--known-credentials KEY:SECRET``. Tokens of other keys (e.g. moto-issued role credentials)
  are accepted on moto's word unless ``--require-known-credentials`` is given.

Not implemented: watch (``watch=true`` answers 405 MethodNotAllowed; discovery does not list the
verb), server-side apply (application/apply-patch+yaml -> 415), protobuf answers (JSON is always
answered; a client accepting only protobuf gets 406), /openapi/v2 and
/openapi/v3 (404: kubectl get/describe/logs/patch/rollout do not need them), exec/attach/
port-forward/proxy, scale and eviction subresources, pagination, field managers/managedFields,
admission, garbage collection, finalizers blocking deletion, defaulting of created objects.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import fnmatch
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import string
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.9-eks-113cf36",
    "gitCommit": "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4",
    "gitTreeState": "clean",
    "buildDate": "2025-10-07T21:05:42Z",
    "goVersion": "go1.23.12",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# ---------------------------------------------------------------------------------------------
# Resource types
# ---------------------------------------------------------------------------------------------

STANDARD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
STATUS_VERBS = ["get", "patch", "update"]


@dataclass
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    subresources: dict = field(default_factory=dict)  # name -> verbs
    builtin: bool = True  # False: a custom resource (CRD): no strategic merge patch, kind in items
    verbs: list = field(default_factory=lambda: list(STANDARD_VERBS))

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`pods`, `daemonsets.apps`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`Service`, `DaemonSet.apps`: how Invalid messages name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _rt(gv, kind, plural, short=(), namespaced=True, cats=(), status=True, builtin=True, extra=None, verbs=None):
    group, _, version = gv.rpartition("/")
    subs = {"status": STATUS_VERBS} if status else {}
    subs.update(extra or {})
    return ResourceType(group, version, kind, plural, namespaced, list(short), list(cats), subs, builtin,
                        list(verbs or STANDARD_VERBS))


def builtin_types() -> list:
    return [
        _rt("v1", "Pod", "pods", ["po"], cats=["all"], extra={"log": ["get"]}),
        _rt("v1", "Service", "services", ["svc"], cats=["all"]),
        _rt("v1", "Endpoints", "endpoints", ["ep"], status=False),
        _rt("v1", "Node", "nodes", ["no"], namespaced=False),
        _rt("v1", "Namespace", "namespaces", ["ns"], namespaced=False),
        _rt("v1", "Event", "events", ["ev"], status=False),
        _rt("v1", "ConfigMap", "configmaps", ["cm"], status=False),
        _rt("v1", "Secret", "secrets", status=False),
        _rt("v1", "ServiceAccount", "serviceaccounts", ["sa"], status=False),
        _rt("apps/v1", "Deployment", "deployments", ["deploy"], cats=["all"]),
        _rt("apps/v1", "DaemonSet", "daemonsets", ["ds"], cats=["all"]),
        _rt("apps/v1", "ReplicaSet", "replicasets", ["rs"], cats=["all"]),
        _rt("apps/v1", "StatefulSet", "statefulsets", ["sts"], cats=["all"]),
        _rt("apps/v1", "ControllerRevision", "controllerrevisions", status=False),
        _rt("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", status=False),
        _rt("networking.k8s.io/v1", "Ingress", "ingresses", ["ing"]),
        _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", namespaced=False, status=False),
        _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", ["netpol"], status=False),
        _rt("elbv2.k8s.aws/v1beta1", "TargetGroupBinding", "targetgroupbindings", ["tgb"], builtin=False),
        _rt("elbv2.k8s.aws/v1beta1", "IngressClassParams", "ingressclassparams", namespaced=False,
            status=False, builtin=False),
        # `kubectl auth can-i` / `kubectl auth whoami`: answered from the policy and the token.
        _rt("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False,
            status=False, verbs=["create"]),
        _rt("authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False,
            status=False, verbs=["create"]),
    ]


# Every authenticated user may create these (RBAC's system:basic-user).
SELF_REVIEWS = {("authorization.k8s.io", "selfsubjectaccessreviews"), ("authentication.k8s.io", "selfsubjectreviews")}


# Kinds whose metadata.generation follows spec changes (custom resources always do).
GENERATION_KINDS = {"Deployment", "DaemonSet", "ReplicaSet", "StatefulSet", "Ingress", "IngressClass",
                    "NetworkPolicy", "EndpointSlice", "Job", "CronJob", "HorizontalPodAutoscaler"}

KNOWN_GROUPS = {"", "apps", "discovery.k8s.io", "networking.k8s.io", "batch", "policy", "events.k8s.io",
                "rbac.authorization.k8s.io", "storage.k8s.io", "autoscaling", "coordination.k8s.io"}


# Plurals that no English rule gives (the CRDs' own `spec.names.plural`).
IRREGULAR_PLURALS = {"IngressClassParams": "ingressclassparams"}


def guess_plural(kind: str) -> str:
    if kind in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[kind]
    k = kind.lower()
    if k.endswith(("s", "x", "z", "ch", "sh")):
        return k + "es"
    if k.endswith("y") and len(k) > 1 and k[-2] not in "aeiou":
        return k[:-1] + "ies"
    return k + "s"


# ---------------------------------------------------------------------------------------------
# Errors (metav1.Status)
# ---------------------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answered as a metav1.Status, with the real API server's wording."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    def status(self) -> dict:
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message}
        if self.reason:
            s["reason"] = self.reason
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def _details(rt: ResourceType | None, name: str = "", kind: str | None = None, **extra) -> dict:
    d = {}
    if name:
        d["name"] = name
    if rt is not None and rt.group:
        d["group"] = rt.group
    if kind or rt is not None:
        d["kind"] = kind or rt.plural
    d.update(extra)
    return d


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def not_found_generic():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def conflict(rt, name, why="the object has been modified; please apply your changes to the latest "
                          "version and try again"):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
                    _details(rt, name))


def invalid(rt, name, errors):
    """errors: [(field, causeReason, message)] -> 422 like field.ErrorList.ToAggregate()."""
    msgs = [f"{f}: {m}" for f, _, m in errors]
    text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    causes = [{"reason": r, "message": m, "field": f} for f, r, m in errors]
    return ApiError(422, "Invalid", f'{rt.group_kind} "{name}" is invalid: {text}',
                    _details(rt, name, kind=rt.kind, causes=causes))


def patch_failed(message):
    """How the real server answers a JSON patch that does not apply (NewGenericServerResponse 422)."""
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]})


FAULT_REASONS = {400: ("BadRequest", "bad request"), 401: ("Unauthorized", "Unauthorized"),
                 403: ("Forbidden", "forbidden"), 404: ("NotFound", "the server could not find the requested resource"),
                 405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
                 409: ("Conflict", "the object has been modified"), 410: ("Expired", "too old resource version"),
                 422: ("Invalid", "the server rejected our request due to an error in our request"),
                 429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
                 500: ("InternalError", "Internal error occurred: injected fault"),
                 503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
                 504: ("Timeout", "Timeout: request did not complete within requested timeout")}


# ---------------------------------------------------------------------------------------------
# Time helpers
# ---------------------------------------------------------------------------------------------

def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s) -> dt.datetime | None:
    if not s or not isinstance(s, str):
        return None
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(ts) -> str:
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration((now_utc() - t).total_seconds())


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

class _YamlLoader(yaml.SafeLoader):
    """Like SafeLoader but keeps timestamps as strings (Kubernetes objects hold RFC 3339 text)."""


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_documents(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [d for d in yaml.load_all(text, Loader=_YamlLoader) if d is not None]


def flatten(doc) -> list:
    """One object, a `kind: List`, or a typed list (items without kind) -> objects with kind."""
    if not isinstance(doc, dict):
        return []
    kind = doc.get("kind", "")
    if isinstance(doc.get("items"), list) and (kind.endswith("List") or "metadata" not in doc or kind == ""):
        item_kind = kind[:-4] if kind.endswith("List") and kind != "List" else ""
        out = []
        for item in doc["items"]:
            if not isinstance(item, dict):
                continue
            item = dict(item)
            if not item.get("kind") and item_kind:
                item["kind"] = item_kind
            if not item.get("apiVersion") and doc.get("apiVersion") and kind != "List":
                item["apiVersion"] = doc["apiVersion"]
            out.extend(flatten(item))
        return out
    return [doc] if kind and doc.get("apiVersion") else []


class Store:
    """Every object, keyed by resource type and (namespace, name); one lock for everything."""

    def __init__(self):
        self.lock = threading.RLock()
        self.types = builtin_types()
        self.objects = {}  # (group, version, plural) -> {(ns, name): obj}
        self.log_dirs = []
        self.rv = 1

    # -- resource types --
    def find_type(self, group, version, plural=None, kind=None):
        for t in self.types:
            if t.group == group and t.version == version and (t.plural == plural or t.kind == kind):
                return t
        return None

    def groups(self):
        """[(group, [versions])] in registration order, core first."""
        out = {}
        for t in self.types:
            out.setdefault(t.group, [])
            if t.version not in out[t.group]:
                out[t.group].append(t.version)
        return list(out.items())

    # -- loading --
    def load(self, dirs):
        types = builtin_types()
        objects = {}
        pending = []
        max_rv = 1
        for d in dirs:
            root = Path(d)
            if not root.is_dir():
                raise ValueError(f"state folder not found: {d}")
            for path in sorted(root.rglob("*")):
                if path.suffix not in (".json", ".yaml", ".yml") or not path.is_file():
                    continue
                if "logs" in path.relative_to(root).parts[:-1]:
                    continue
                try:
                    docs = read_documents(path)
                except (ValueError, yaml.YAMLError) as e:
                    raise ValueError(f"{path}: {e}") from e
                for doc in docs:
                    pending.extend(flatten(doc))
        for obj in pending:
            group, _, version = obj["apiVersion"].rpartition("/")
            md = obj.setdefault("metadata", {})
            rt = next((t for t in types if t.group == group and t.version == version and t.kind == obj["kind"]), None)
            if rt is None:
                # An unknown kind: serve it as a custom resource, scope from its metadata.
                rt = ResourceType(group, version, obj["kind"], guess_plural(obj["kind"]),
                                  namespaced=bool(md.get("namespace")), builtin=group in KNOWN_GROUPS)
                types.append(rt)
            if not md.get("name"):
                continue
            ns = (md.get("namespace") or "default") if rt.namespaced else ""
            if rt.namespaced:
                md["namespace"] = ns
            else:
                md.pop("namespace", None)
            if str(md.get("resourceVersion", "")).isdigit():
                max_rv = max(max_rv, int(md["resourceVersion"]))
            objects.setdefault((rt.group, rt.version, rt.plural), {})[(ns, md["name"])] = obj
        rv = max_rv
        stamp = rfc3339(now_utc())
        for bucket in objects.values():
            for obj in bucket.values():
                md = obj["metadata"]
                # Fill in what the real server always sets; uids are stable across runs.
                md.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                    f"{obj['apiVersion']}/{obj['kind']}/{md.get('namespace', '')}/{md['name']}")))
                md.setdefault("creationTimestamp", stamp)
                if not str(md.get("resourceVersion", "")).isdigit():
                    rv += 1
                    md["resourceVersion"] = str(rv)
        with self.lock:
            self.types, self.objects, self.rv = types, objects, rv
            self.log_dirs = [Path(d) / "logs" for d in dirs]

    # -- access (callers hold self.lock for read-modify-write sequences) --
    def bucket(self, rt):
        return self.objects.setdefault((rt.group, rt.version, rt.plural), {})

    def get(self, rt, ns, name):
        return self.bucket(rt).get((ns if rt.namespaced else "", name))

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def find_log(self, ns, pod, container, previous):
        suffix = ".previous.log" if previous else ".log"
        for d in reversed(self.log_dirs):
            for p in (d / ns / pod / f"{container}{suffix}", d / ns / f"{pod}{suffix}"):
                if p.is_file():
                    return p.read_text(encoding="utf-8", errors="replace")
        return None


# ---------------------------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------------------------

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_VALUE_HELP = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
               "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
               "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def _split_top_level(s: str) -> list:
    """Split on commas that are not inside parentheses (set-based values)."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_label_selector(s: str) -> list:
    """-> [(key, op, [values])]; raises ApiError 400 like the real server."""
    reqs = []
    if not s or not s.strip():
        return reqs
    for raw in _split_top_level(s):
        r = raw.strip()
        m = (re.fullmatch(r"(?P<not>!)?\s*(?P<key>[^\s!=<>(),]+)", r)
             or re.fullmatch(r"(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|=|!=)\s*(?P<val>[^\s!=<>(),]*)", r)
             or re.fullmatch(r"(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<vals>[^()]*)\)", r)
             or re.fullmatch(r"(?P<key>[^\s!=<>(),]+)\s*(?P<op>[<>])\s*(?P<val>[^\s]*)", r))
        if not m:
            raise bad_request(f"unable to parse requirement: found '{r}', expected: a label selector requirement")
        g = m.groupdict()
        key = g["key"]
        if not _LABEL_KEY.fullmatch(key) or len(key.split("/")[-1]) > 63:
            raise bad_request(f'unable to parse requirement: key: Invalid value: "{key}": name part must consist of '
                              "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                              "alphanumeric character")
        if "op" not in g or g.get("op") is None:
            reqs.append((key, "!" if g.get("not") else "exists", []))
            continue
        op = g["op"]
        if op in ("in", "notin"):
            values = [v.strip() for v in g["vals"].split(",")]
        else:
            values = [g["val"]]
        for i, v in enumerate(values):
            if op in ("<", ">"):
                if not re.fullmatch(r"-?\d+", v):
                    raise bad_request(f'unable to parse requirement: for \'Gt\', \'Lt\' operators, the value must be '
                                      f'an integer: strconv.ParseInt: parsing "{v}": invalid syntax')
            elif not _LABEL_VALUE.fullmatch(v) or len(v) > 63:
                raise bad_request(f'unable to parse requirement: values[{i}][{key}]: Invalid value: "{v}": {_VALUE_HELP}')
        reqs.append((key, {"==": "=", "<": "lt", ">": "gt"}.get(op, op), values))
    return reqs


def labels_match(reqs, labels) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        has, val = key in labels, labels.get(key)
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
        if op == "=" and (not has or val != values[0]):
            return False
        if op == "!=" and has and val == values[0]:
            return False
        if op == "in" and (not has or val not in values):
            return False
        if op == "notin" and has and val in values:
            return False
        if op in ("gt", "lt"):
            try:
                n = int(val)
            except (TypeError, ValueError):
                return False
            if (op == "gt" and not n > int(values[0])) or (op == "lt" and not n < int(values[0])):
                return False
    return True


# Field selectors each kind supports besides metadata.name / metadata.namespace.
FIELD_SELECTORS = {
    ("", "Pod"): ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"],
    ("", "Event"): ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"],
    ("", "Node"): ["spec.unschedulable"],
    ("", "Namespace"): ["status.phase"],
    ("", "Secret"): ["type"],
    ("", "Service"): ["spec.clusterIP", "spec.type"],
    ("apps", "ReplicaSet"): ["status.replicas"],
}


def field_value(obj, fld) -> str:
    if fld == "source":  # events: source means source.component
        fld = "source.component"
    if fld == "status.podIPs":
        fld = "status.podIP"
    cur = obj
    for part in fld.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if cur is None:
        return "false" if fld in ("spec.hostNetwork", "spec.unschedulable") else ""
    return str(cur)


def parse_field_selector(s: str, rt: ResourceType) -> list:
    reqs = []
    if not s or not s.strip():
        return reqs
    allowed = {"metadata.name", "metadata.namespace", *FIELD_SELECTORS.get((rt.group, rt.kind), [])}
    for raw in re.split(r"(?<!\\),", s):
        m = re.fullmatch(r"\s*([^!=\s]+)\s*(==|=|!=)\s*(.*?)\s*", raw)
        if not m:
            raise bad_request(f"invalid selector: '{s}'; can't understand '{raw}'")
        key, op, val = m.groups()
        if key not in allowed:
            raise bad_request(f'field label not supported: {key}')
        val = re.sub(r"\\(.)", r"\1", val)
        reqs.append((key, "!=" if op == "!=" else "=", val))
    return reqs


def fields_match(reqs, obj) -> bool:
    for key, op, val in reqs:
        actual = field_value(obj, key)
        if (op == "=") != (actual == val):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Patches
# ---------------------------------------------------------------------------------------------

class PatchError(Exception):
    """A well-formed patch that does not apply: answered 422."""


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# patchMergeKey of the list fields of the built-in types (by field name; `ports` depends on where).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
              "imagePullSecrets": "name", "hostAliases": "ip", "conditions": "type", "ownerReferences": "uid",
              "topologySpreadConstraints": "topologyKey", "resourceClaims": "name", "addresses": "type"}
CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
PRIMITIVE_MERGE_LISTS = {"finalizers"}  # metadata.finalizers has patchStrategy=merge


def _merge_key(path: tuple):
    name = path[-1]
    if name == "ports":
        if len(path) > 1 and path[-2] in CONTAINER_LISTS:
            return "containerPort"
        return "port" if path == ("spec", "ports") else None
    if name == "addresses" and path != ("status", "addresses"):
        return None  # only Node status addresses merge by type; EndpointSlice addresses are atomic
    return MERGE_KEYS.get(name)


def strategic_merge(target, patch, path=()):
    """Strategic merge patch for the built-in types: maps merge, keyed lists merge by their key,
    other lists are replaced; null deletes; $patch/$retainKeys/$deleteFromPrimitiveList directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"Unknown patch type: {directive}")
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for k, v in patch.items():
        if k.startswith("$"):
            if k.startswith("$deleteFromPrimitiveList/"):
                f = k.split("/", 1)[1]
                if isinstance(result.get(f), list) and isinstance(v, list):
                    result[f] = [x for x in result[f] if x not in v]
            continue  # $setElementOrder/* only orders; $retainKeys handled above
        if v is None:
            result.pop(k, None)
            continue
        sub = path + (k,)
        cur = result.get(k)
        if isinstance(v, list):
            key = _merge_key(sub)
            if key and all(isinstance(x, dict) for x in v):
                result[k] = _merge_list(cur if isinstance(cur, list) else [], v, key, sub)
            elif k in PRIMITIVE_MERGE_LISTS and isinstance(cur, list):
                result[k] = cur + [x for x in v if x not in cur]
            else:
                result[k] = [copy.deepcopy(x) for x in v if not (isinstance(x, dict) and "$patch" in x)]
        elif isinstance(v, dict):
            merged = strategic_merge(cur, v, sub)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        else:
            result[k] = v
    return result


def _merge_list(cur, patch, key, path):
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if "$patch" not in i]
    out = copy.deepcopy(cur)
    for item in patch:
        if item.get("$patch") == "delete":
            out = [x for x in out if not (isinstance(x, dict) and x.get(key) == item.get(key))]
            continue
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        for i, x in enumerate(out):
            if isinstance(x, dict) and x.get(key) == item[key]:
                out[i] = strategic_merge(x, item, path)
                break
        else:
            out.append(strategic_merge({}, item, path))
    return out


def _pointer(path: str) -> list:
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _ptr_get(doc, toks, path):
    cur = doc
    for t in toks:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            raise PatchError(f"doc is missing path: {json.dumps(path)}: missing value")
    return cur


def _ptr_add(doc, toks, value, path, replace=False):
    if not toks:
        return value
    parent = _ptr_get(doc, toks[:-1], path)
    last = toks[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) < len(parent) + (0 if replace else 1):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise PatchError(f"add operation does not apply: doc is missing path: {json.dumps(path)}: missing value"
                             if not replace else f"replace operation does not apply: doc is missing key: {path}: missing value")
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: {json.dumps(path)}: missing value")
    return doc


def _ptr_remove(doc, toks, path):
    if not toks:
        raise PatchError("remove operation does not apply: cannot remove the whole document")
    parent = _ptr_get(doc, toks[:-1], path)
    last = toks[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"remove operation does not apply: doc is missing path: {json.dumps(path)}: missing value")


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if kind not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(f"Unexpected kind: {kind}")
        if not isinstance(path, str):
            raise PatchError(f"{kind} operation does not apply: missing path")
        toks = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation does not apply: missing value")
        if kind == "add":
            doc = _ptr_add(doc, toks, copy.deepcopy(op["value"]), path)
        elif kind == "remove":
            _ptr_remove(doc, toks, path)
        elif kind == "replace":
            doc = _ptr_add(doc, toks, copy.deepcopy(op["value"]), path, replace=True)
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise PatchError(f"{kind} operation does not apply: missing from")
            ftoks = _pointer(src)
            value = _ptr_remove(doc, ftoks, src) if kind == "move" else copy.deepcopy(_ptr_get(doc, ftoks, src))
            doc = _ptr_add(doc, toks, value, path)
        elif kind == "test":
            try:
                actual = _ptr_get(doc, toks, path)
            except PatchError:
                actual = None
            if json.dumps(actual, sort_keys=True) != json.dumps(op["value"], sort_keys=True):
                raise PatchError(f"testing value {path} failed: test failed")
    return doc


PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]


# ---------------------------------------------------------------------------------------------
# Validation (a few rules that matter to this project)
# ---------------------------------------------------------------------------------------------

def _unsupported(value, supported):
    return f'Unsupported value: {json.dumps(value)}: supported values: ' + ", ".join(f'"{s}"' for s in supported)


def validate(rt: ResourceType, obj: dict) -> list:
    errs = []
    md = obj.get("metadata") or {}
    for f in ("labels", "annotations"):
        m = md.get(f)
        if m is not None and (not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values())):
            errs.append((f"metadata.{f}", "FieldValueInvalid",
                         f"Invalid value: {json.dumps(m)}: {f} must be a map of string keys to string values"))
    if rt.group == "" and rt.kind == "Service":
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        stype = spec.get("type", "ClusterIP")
        types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
        if stype not in types:
            errs.append(("spec.type", "FieldValueNotSupported", _unsupported(stype, types)))
        etp = spec.get("externalTrafficPolicy")
        if etp not in (None, "", "Cluster", "Local"):
            errs.append(("spec.externalTrafficPolicy", "FieldValueNotSupported", _unsupported(etp, ["Cluster", "Local"])))
        elif etp and stype in ("ClusterIP", "ExternalName"):
            errs.append(("spec.externalTrafficPolicy", "FieldValueInvalid",
                         f'Invalid value: "{etp}": may only be set for externally-accessible services'))
        itp = spec.get("internalTrafficPolicy")
        if itp not in (None, "", "Cluster", "Local"):
            errs.append(("spec.internalTrafficPolicy", "FieldValueNotSupported", _unsupported(itp, ["Cluster", "Local"])))
        ports = spec.get("ports") or []
        if not isinstance(ports, list):
            errs.append(("spec.ports", "FieldValueInvalid", f"Invalid value: {json.dumps(ports)}: must be a list"))
            ports = []
        for i, p in enumerate(ports):
            port = p.get("port") if isinstance(p, dict) else None
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                errs.append((f"spec.ports[{i}].port", "FieldValueInvalid",
                             f"Invalid value: {json.dumps(port)}: must be between 1 and 65535, inclusive"))
    return errs


# ---------------------------------------------------------------------------------------------
# Server-side printing (Tables)
# ---------------------------------------------------------------------------------------------

def _col(name, priority=0, typ="string", fmt="", desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": priority}


NAME_COL = _col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE_COL = _col("Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")


def _none(v) -> str:
    return v if v not in (None, "", []) else "<none>"


def format_labels(m) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((m or {}).items())) or "<none>"


def format_selector(sel) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), ",".join(sorted(e.get("values") or []))
        parts.append({"In": f"{key} in ({vals})", "NotIn": f"{key} notin ({vals})", "Exists": key,
                      "DoesNotExist": f"!{key}"}.get(op, key))
    return ",".join(parts) or "<none>"


def _containers_images(tmpl_spec):
    cs = (tmpl_spec or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _pod_row(p):
    spec, st, md = p.get("spec") or {}, p.get("status") or {}, p["metadata"]
    containers = spec.get("containers") or []
    restarts, ready, last_restart = 0, 0, None
    reason = st.get("reason") or st.get("phase") or "Unknown"
    initializing = False
    init_specs = spec.get("initContainers") or []
    for i, cs in enumerate(st.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if "running" in state and cs.get("started"):
            continue  # a sidecar (restartable init container) that is up
        if term:
            reason = "Init:" + (term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                        else f"ExitCode:{term.get('exitCode')}"))
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            last_term = (cs.get("lastState") or {}).get("terminated") or {}
            t = parse_time(last_term.get("finishedAt"))
            if t and (last_restart is None or t > last_restart):
                last_restart = t
            state = cs.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode')}"
            elif "running" in state and cs.get("ready"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            ready_cond = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
            reason = "Running" if ready_cond else "NotReady"
    if md.get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    restarts_cell = str(restarts)
    if last_restart is not None and restarts:
        restarts_cell = f"{restarts} ({human_duration((now_utc() - last_restart).total_seconds())} ago)"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        gates_cell = f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    return [md["name"], f"{ready}/{len(containers)}", reason, restarts_cell, age(md.get("creationTimestamp")),
            _none(st.get("podIP")), _none(spec.get("nodeName")), _none(st.get("nominatedNodeName")), gates_cell]


def _lb_ingress(status):
    ing = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname") or "" for i in ing)


def _service_row(s):
    spec = s.get("spec") or {}
    stype = spec.get("type", "ClusterIP")
    external = ",".join(spec.get("externalIPs") or [])
    if stype == "LoadBalancer":
        lb = _lb_ingress(s.get("status"))
        external = ",".join(x for x in (lb, external) if x) or "<pending>"
    elif stype == "ExternalName":
        external = spec.get("externalName", "")
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol", "TCP")
        ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}" if p.get("nodePort") else f"{p.get('port')}/{proto}")
    cluster_ip = (spec.get("clusterIPs") or [spec.get("clusterIP")])[0]
    return [s["metadata"]["name"], stype, _none(cluster_ip), _none(external), ",".join(ports) or "<none>",
            age(s["metadata"].get("creationTimestamp")), format_labels(spec.get("selector"))]


def _endpoints_cell(ep):
    items, count, limit = [], 0, 3
    for ss in ep.get("subsets") or []:
        addrs = [a.get("ip", "") for a in ss.get("addresses") or []]
        for port in ss.get("ports") or [None]:
            count += len(addrs)
            for ip in addrs:
                if len(items) < limit:
                    items.append(ip if port is None else f"{ip}:{port.get('port')}")
    cell = ",".join(items) or "<none>"
    return f"{cell} + {count - limit} more..." if count > limit else cell


def _node_row(n):
    st, md = n.get("status") or {}, n["metadata"]
    ready = next((c.get("status") for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    status = {"True": "Ready", None: "Unknown"}.get(ready, "NotReady")
    if (n.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = md.get("labels") or {}
    roles = sorted({k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")} |
                   ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set()))
    addrs = st.get("addresses") or []
    ip = lambda t: next((a.get("address") for a in addrs if a.get("type") == t), "<none>")  # noqa: E731
    info = st.get("nodeInfo") or {}
    return [md["name"], status, ",".join(r for r in roles if r) or "<none>", age(md.get("creationTimestamp")),
            info.get("kubeletVersion", ""), ip("InternalIP"), ip("ExternalIP"), _none(info.get("osImage")),
            _none(info.get("kernelVersion")), _none(info.get("containerRuntimeVersion"))]


def _event_row(e):
    first = e.get("firstTimestamp") or e.get("eventTime")
    last = e.get("lastTimestamp") or first
    count = e.get("count") or 1
    if e.get("series"):
        last, count = e["series"].get("lastObservedTime"), e["series"].get("count", count)
    io = e.get("involvedObject") or {}
    target = f"{io.get('kind', '').lower()}/{io['name']}" if io.get("name") else io.get("kind", "").lower()
    src = e.get("source") or {}
    source = ", ".join(x for x in (src.get("component") or e.get("reportingComponent"),
                                   src.get("host") or e.get("reportingInstance")) if x)
    return [age(last), e.get("type", ""), e.get("reason", ""), target, io.get("fieldPath", ""), source,
            (e.get("message") or "").strip(), age(first), count, e["metadata"]["name"]]


def _workload_cells(o):
    tmpl = ((o.get("spec") or {}).get("template") or {}).get("spec")
    c, i = _containers_images(tmpl)
    return [c, i, format_selector((o.get("spec") or {}).get("selector"))]


def _g(o, *path, default=0):
    for p in path:
        o = o.get(p) if isinstance(o, dict) else None
    return default if o is None else o


WORKLOAD_COLS = [_col("Containers", 1), _col("Images", 1), _col("Selector", 1)]

TABLES = {
    ("", "Pod"): ([NAME_COL, _col("Ready"), _col("Status"), _col("Restarts"), AGE_COL, _col("IP", 1), _col("Node", 1),
                   _col("Nominated Node", 1), _col("Readiness Gates", 1)], _pod_row),
    ("", "Service"): ([NAME_COL, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE_COL,
                       _col("Selector", 1)], _service_row),
    ("", "Endpoints"): ([NAME_COL, _col("Endpoints"), AGE_COL],
                        lambda o: [o["metadata"]["name"], _endpoints_cell(o), age(o["metadata"].get("creationTimestamp"))]),
    ("", "Node"): ([NAME_COL, _col("Status"), _col("Roles"), AGE_COL, _col("Version"), _col("Internal-IP", 1),
                    _col("External-IP", 1), _col("OS-Image", 1), _col("Kernel-Version", 1),
                    _col("Container-Runtime", 1)], _node_row),
    ("", "Namespace"): ([NAME_COL, _col("Status"), AGE_COL],
                        lambda o: [o["metadata"]["name"], _g(o, "status", "phase", default=""),
                                   age(o["metadata"].get("creationTimestamp"))]),
    ("", "Event"): ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Subobject", 1),
                     _col("Source", 1), _col("Message"), _col("First Seen", 1), _col("Count", 1),
                     dict(NAME_COL, priority=1)], _event_row),
    ("", "ConfigMap"): ([NAME_COL, _col("Data", typ="integer"), AGE_COL],
                        lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                   age(o["metadata"].get("creationTimestamp"))]),
    ("", "Secret"): ([NAME_COL, _col("Type"), _col("Data", typ="integer"), AGE_COL],
                     lambda o: [o["metadata"]["name"], o.get("type", ""), len(o.get("data") or {}),
                                age(o["metadata"].get("creationTimestamp"))]),
    ("apps", "Deployment"): ([NAME_COL, _col("Ready"), _col("Up-to-date", typ="integer"),
                              _col("Available", typ="integer"), AGE_COL] + WORKLOAD_COLS,
                             lambda o: [o["metadata"]["name"],
                                        f"{_g(o, 'status', 'readyReplicas')}/{_g(o, 'spec', 'replicas', default=1)}",
                                        _g(o, "status", "updatedReplicas"), _g(o, "status", "availableReplicas"),
                                        age(o["metadata"].get("creationTimestamp"))] + _workload_cells(o)),
    ("apps", "DaemonSet"): ([NAME_COL, _col("Desired", typ="integer"), _col("Current", typ="integer"),
                             _col("Ready", typ="integer"), _col("Up-to-date", typ="integer"),
                             _col("Available", typ="integer"), _col("Node Selector"), AGE_COL] + WORKLOAD_COLS,
                            lambda o: [o["metadata"]["name"], _g(o, "status", "desiredNumberScheduled"),
                                       _g(o, "status", "currentNumberScheduled"), _g(o, "status", "numberReady"),
                                       _g(o, "status", "updatedNumberScheduled"), _g(o, "status", "numberAvailable"),
                                       format_labels(_g(o, "spec", "template", "spec", "nodeSelector", default={})),
                                       age(o["metadata"].get("creationTimestamp"))] + _workload_cells(o)),
    ("apps", "ReplicaSet"): ([NAME_COL, _col("Desired", typ="integer"), _col("Current", typ="integer"),
                              _col("Ready", typ="integer"), AGE_COL] + WORKLOAD_COLS,
                             lambda o: [o["metadata"]["name"], _g(o, "spec", "replicas", default=1),
                                        _g(o, "status", "replicas"), _g(o, "status", "readyReplicas"),
                                        age(o["metadata"].get("creationTimestamp"))] + _workload_cells(o)),
    ("apps", "StatefulSet"): ([NAME_COL, _col("Ready"), AGE_COL, _col("Containers", 1), _col("Images", 1)],
                              lambda o: [o["metadata"]["name"],
                                         f"{_g(o, 'status', 'readyReplicas')}/{_g(o, 'spec', 'replicas', default=1)}",
                                         age(o["metadata"].get("creationTimestamp"))] + _workload_cells(o)[:2]),
    ("discovery.k8s.io", "EndpointSlice"): (
        [NAME_COL, _col("AddressType"), _col("Ports"), _col("Endpoints"), AGE_COL],
        lambda o: [o["metadata"]["name"], o.get("addressType", ""),
                   ",".join(str(p.get("port")) for p in o.get("ports") or []) or "<unset>",
                   (lambda a: ",".join(a[:3]) + (f" + {len(a) - 3} more..." if len(a) > 3 else "") or "<unset>")(
                       [x for e in o.get("endpoints") or [] for x in e.get("addresses") or []]),
                   age(o["metadata"].get("creationTimestamp"))]),
    ("networking.k8s.io", "Ingress"): (
        [NAME_COL, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), AGE_COL],
        lambda o: [o["metadata"]["name"], _none(_g(o, "spec", "ingressClassName", default="")),
                   ",".join(r.get("host") for r in _g(o, "spec", "rules", default=[]) if r.get("host")) or "*",
                   _lb_ingress(o.get("status")), "80, 443" if _g(o, "spec", "tls", default=[]) else "80",
                   age(o["metadata"].get("creationTimestamp"))]),
    ("networking.k8s.io", "IngressClass"): (
        [NAME_COL, _col("Controller"), _col("Parameters"), AGE_COL],
        lambda o: [o["metadata"]["name"], _g(o, "spec", "controller", default=""),
                   (lambda p: f"{p.get('kind')}.{p.get('apiGroup')}/{p.get('name')}" if p else "<none>")(
                       _g(o, "spec", "parameters", default=None)),
                   age(o["metadata"].get("creationTimestamp"))]),
    # The AWS Load Balancer Controller CRD's additionalPrinterColumns.
    ("elbv2.k8s.aws", "TargetGroupBinding"): (
        [NAME_COL, _col("SERVICE-NAME"), _col("SERVICE-PORT"), _col("TARGET-TYPE"), _col("ARN", 1),
         _col("AGE", typ="date")],
        lambda o: [o["metadata"]["name"], _g(o, "spec", "serviceRef", "name", default=None),
                   _g(o, "spec", "serviceRef", "port", default=None), _g(o, "spec", "targetType", default=None),
                   _g(o, "spec", "targetGroupARN", default=None), age(o["metadata"].get("creationTimestamp"))]),
}


def partial_metadata(obj, api_version="meta.k8s.io/v1"):
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": copy.deepcopy(obj["metadata"])}


def to_table(rt, objs, include, table_version, list_rv=None):
    cols, row_fn = TABLES.get((rt.group, rt.kind)) or ([NAME_COL, _col("Age", typ="date")], None)
    rows = []
    for o in objs:
        cells = row_fn(o) if row_fn else [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))]
        row = {"cells": cells}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = partial_metadata(o, f"meta.k8s.io/{table_version}")
        rows.append(row)
    md = {"resourceVersion": list_rv} if list_rv else {}
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{table_version}", "metadata": md,
            "columnDefinitions": cols, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Authentication (EKS tokens) and authorization
# ---------------------------------------------------------------------------------------------

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_MAX_AGE = 15 * 60  # EKS accepts a token for 15 minutes after X-Amz-Date
ALLOWED_QUERY = {"action", "version", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
                 "x-amz-security-token", "x-amz-signature", "x-amz-signedheaders"}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class AuthError(Exception):
    """Why a token was refused (logged; the client only sees 401 Unauthorized)."""


def _origin(u: urllib.parse.SplitResult):
    scheme = (u.scheme or "").lower()
    return scheme, (u.hostname or "").lower(), u.port or {"http": 80, "https": 443}.get(scheme)


def sigv4_presigned_signature(secret, url: urllib.parse.SplitResult, header_values: dict) -> str:
    """The X-Amz-Signature botocore's SigV4QueryAuth computes for a presigned GET."""
    pairs = [p.partition("=") for p in url.query.split("&") if p]
    query = "&".join(f"{k}={v}" for k, _, v in sorted(pairs) if k != "X-Amz-Signature")
    params = {k: urllib.parse.unquote(v) for k, _, v in pairs}
    signed = params["X-Amz-SignedHeaders"].split(";")
    headers = "".join(f"{h}:{' '.join(str(header_values.get(h, '')).split())}\n" for h in signed)
    canonical = "\n".join(["GET", url.path or "/", query, headers, ";".join(signed), EMPTY_SHA256])
    _, date, region, service, term = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{term}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, term):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class Authenticator:
    def __init__(self, sts_endpoint, cluster_name, credentials, strict_expiry=False, require_known=False,
                 log=lambda m: None):
        self.sts = urllib.parse.urlsplit(sts_endpoint.rstrip("/"))
        self.cluster_name = cluster_name
        self.credentials = credentials  # access key id -> secret
        self.strict_expiry, self.require_known = strict_expiry, require_known
        self.cache = {}  # token -> (arn, cached_until, token_expires)
        self.lock = threading.Lock()
        self.log = log
        # Never follow proxies: the STS endpoint is on this machine.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def authenticate(self, header: str | None) -> str:
        if not header:
            raise AuthError("no Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("not a bearer token")
        token = token.strip()
        now = time.time()
        with self.lock:
            hit = self.cache.get(token)
        if hit and now < hit[1] and now < hit[2]:
            return hit[0]
        arn, expires = self._verify(token, now)
        with self.lock:
            self.cache = {t: v for t, v in self.cache.items() if v[1] > now}
            self.cache[token] = (arn, now + 60, expires)
        return arn

    def _verify(self, token, now):
        if not token.startswith(TOKEN_PREFIX):
            raise AuthError("token lacks the k8s-aws-v1. prefix")
        try:
            b64 = token[len(TOKEN_PREFIX):]
            url = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-8")
            u = urllib.parse.urlsplit(url)
        except (ValueError, UnicodeDecodeError) as e:
            raise AuthError(f"token does not decode: {e}") from e
        if _origin(u) != _origin(self.sts):
            raise AuthError(f"token's STS host {u.scheme}://{u.netloc} is not {self.sts.scheme}://{self.sts.netloc}")
        if u.path not in ("", "/"):
            raise AuthError("unexpected path in pre-signed URL")
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        lower = {}
        for k, v in q.items():
            if k.lower() not in ALLOWED_QUERY:
                raise AuthError(f"non-whitelisted query parameter {k!r}")
            if len(v) != 1:
                raise AuthError("query parameter with multiple values not supported")
            lower[k.lower()] = v[0]
        if lower.get("action") != "GetCallerIdentity":
            raise AuthError("unexpected action parameter in pre-signed URL")
        if lower.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise AuthError("unexpected X-Amz-Algorithm")
        if CLUSTER_ID_HEADER not in lower.get("x-amz-signedheaders", "").split(";"):
            raise AuthError(f"client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL")
        try:
            expires = int(lower.get("x-amz-expires", ""))
            signed_at = dt.datetime.strptime(lower.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=dt.timezone.utc).timestamp()
            access_key, _, region, service, _ = lower["x-amz-credential"].split("/")
        except (KeyError, ValueError) as e:
            raise AuthError(f"malformed X-Amz-Expires / X-Amz-Date / X-Amz-Credential: {e}") from e
        if not 0 <= expires <= 900:
            raise AuthError(f"invalid X-Amz-Expires parameter in pre-signed URL: {expires}")
        valid_until = signed_at + (expires if self.strict_expiry else PRESIGN_MAX_AGE)
        if now > valid_until:
            raise AuthError("X-Amz-Date parameter is expired")
        if service != "sts":
            raise AuthError(f"credential scope names service {service!r}")
        secret = self.credentials.get(access_key)
        if secret is not None:
            want = sigv4_presigned_signature(secret, u, {"host": u.netloc, CLUSTER_ID_HEADER: self.cluster_name})
            if not hmac.compare_digest(want, lower.get("x-amz-signature", "")):
                raise AuthError("signature does not match (wrong cluster name or credentials)")
        elif self.require_known:
            raise AuthError(f"unknown access key {access_key}")
        return self._caller_arn(u, lower), valid_until

    def _caller_arn(self, u, lower) -> str:
        # Always send to the configured endpoint (already checked equal): never anywhere else.
        target = f"{self.sts.scheme}://{self.sts.netloc}/?{u.query}"
        cred = lower["x-amz-credential"]
        headers = {
            CLUSTER_ID_HEADER: self.cluster_name,
            "Accept": "application/xml",
            # moto routes by Authorization (it does not understand presigned URLs): restate the
            # query's SigV4 parameters as headers.
            "Authorization": (f"AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={lower['x-amz-signedheaders']}, "
                              f"Signature={lower.get('x-amz-signature', '')}"),
            "X-Amz-Date": lower["x-amz-date"],
        }
        if lower.get("x-amz-security-token"):
            headers["X-Amz-Security-Token"] = lower["x-amz-security-token"]
        try:
            with self.opener.open(urllib.request.Request(target, headers=headers), timeout=10) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise AuthError(f"STS answered {e.code}: {e.read()[:300]!r}") from e
        except OSError as e:
            raise AuthError(f"STS unreachable: {e}") from e
        arn = None
        try:
            if body.lstrip().startswith(b"{"):
                arn = json.loads(body)["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"]
            else:
                root = ET.fromstring(body)
                if root.tag.rsplit("}", 1)[-1] == "GetCallerIdentityResponse":
                    arn = next((e.text for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Arn"), None)
        except (ValueError, KeyError, TypeError, ET.ParseError):
            arn = None
        if not arn:
            raise AuthError(f"STS answer has no GetCallerIdentity Arn: {body[:300]!r}")
        return arn


class Authorizer:
    """{"<ARN glob>": {"allow": [{"verbs", "resources", "namespaces", "apiGroups", "names"}]}};
    None allows all. "names" works like RBAC resourceNames: the rule only covers requests that
    name one of those objects (so never a list)."""

    def __init__(self, policy=None):
        self.policy = policy

    @classmethod
    def from_file(cls, path):
        return cls(json.loads(Path(path).read_text()) if path else None)

    def allowed(self, arn, verb, group, resource, namespace, name="") -> bool:
        if self.policy is None:
            return True
        for pattern, entry in self.policy.items():
            if not fnmatch.fnmatchcase(arn, pattern):
                continue
            for rule in (entry or {}).get("allow", []):
                def ok(key, value):
                    return any(fnmatch.fnmatchcase(value, p) for p in rule.get(key, ["*"]))
                if "names" in rule and name not in rule["names"]:
                    continue
                if ok("verbs", verb) and ok("resources", resource) and ok("namespaces", namespace) \
                        and ok("apiGroups", group):
                    return True
        return False


def policy_from_rbac(docs, groups, principal="*"):
    """The authorization policy RBAC manifests grant to the given groups: each ClusterRoleBinding
    / RoleBinding with one of the groups as a subject contributes its role's rules, cluster-wide
    or in the binding's namespace. Verbs, resources (``pods/log`` as written), apiGroups and
    resourceNames carry over; aggregation and non-resource URLs are not modelled."""
    docs = [d for d in docs if isinstance(d, dict)]
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
             for d in docs if d.get("kind") in ("ClusterRole", "Role")}
    allow = []
    for b in docs:
        if b.get("kind") not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(s.get("kind") == "Group" and s.get("name") in groups for s in b.get("subjects") or []):
            continue
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace", "") if b["kind"] == "RoleBinding" else ""
        role = roles.get((ref["kind"], ns if ref["kind"] == "Role" else "", ref["name"]))
        if role is None:
            continue
        for r in role.get("rules") or []:
            rule = {"verbs": r.get("verbs", []), "resources": r.get("resources", []),
                    "apiGroups": r.get("apiGroups", []), "namespaces": [ns] if ns else ["*"]}
            if r.get("resourceNames"):
                rule["names"] = list(r["resourceNames"])
            allow.append(rule)
    return {principal: {"allow": allow}}


def forbidden(qualified, user, verb, resource, group, namespace, name):
    """errors.NewForbidden + the RBAC authorizer's reason, as the real server words them.
    qualified: `pods`, `daemonsets.apps`; resource: `pods` or `pods/log`."""
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {where}'
    msg = f'{qualified} "{name}" is forbidden: {why}' if name else f"{qualified} is forbidden: {why}"
    plural = resource.split("/")[0]
    details = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = plural
    return ApiError(403, "Forbidden", msg, details)


# ---------------------------------------------------------------------------------------------
# Protobuf (only what kubectl's typed clients send: the self reviews)
# ---------------------------------------------------------------------------------------------

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _pb_fields(data: bytes) -> dict:
    """Protobuf wire format -> {field number: [values]} (varints as ints, the rest as bytes)."""
    out, i = {}, 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < len(data):
        key = varint()
        wire = key & 7
        if wire == 0:
            value = varint()
        elif wire == 2:
            n = varint()
            value, i = data[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = data[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(key >> 3, []).append(value)
    return out


def _pb_strings(data: bytes, names: dict) -> dict:
    f = _pb_fields(data)
    return {name: f[n][-1].decode() for n, name in names.items() if n in f}


def decode_protobuf_review(body: bytes) -> dict:
    """A SelfSubjectAccessReview / SelfSubjectReview in the Kubernetes protobuf envelope
    (b"k8s" + NUL + runtime.Unknown{typeMeta=1, raw=2}) -> the JSON shape."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("missing the k8s protobuf magic")
    unknown = _pb_fields(body[4:])
    type_meta = _pb_strings(unknown.get(1, [b""])[-1], {1: "apiVersion", 2: "kind"})
    obj = _pb_fields(unknown.get(2, [b""])[-1])
    review = dict(type_meta)
    if type_meta.get("kind") == "SelfSubjectAccessReview":
        spec = _pb_fields(obj.get(2, [b""])[-1])
        review["spec"] = {}
        if 1 in spec:
            review["spec"]["resourceAttributes"] = _pb_strings(spec[1][-1], {
                1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"})
        if 2 in spec:
            review["spec"]["nonResourceAttributes"] = _pb_strings(spec[2][-1], {1: "path", 2: "verb"})
    elif type_meta.get("kind") != "SelfSubjectReview":
        raise ValueError(f"protobuf is only understood for the self reviews, not {type_meta.get('kind')}")
    return review


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

@dataclass
class Response:
    code: int
    body: bytes
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)


def json_response(code, obj, content_type="application/json", headers=None):
    return Response(code, (json.dumps(obj, separators=(",", ":")) + "\n").encode(), content_type, headers or {})


def parse_accept(header):
    out = []
    for part in (header or "").split(","):
        items = [p.strip() for p in part.split(";")]
        if not items[0]:
            continue
        params = {}
        for p in items[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append((items[0].lower(), params))
    return out


PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")


class App:
    """Routing, API semantics and the control channel, shared by all handler threads."""

    def __init__(self, store, authn, authz, discovery_mode="aggregated", log=None):
        self.store, self.authn, self.authz = store, authn, authz
        self.discovery_mode = discovery_mode
        self.log = log or (lambda m: None)
        self.lock = threading.Lock()
        self.faults = []  # dicts: regex, status, remaining (None = forever), message
        self.latencies = []  # (regex, seconds)
        self.requests = []
        self.server_address = "127.0.0.1:0"

    # -- control channel --
    def control(self, cmd: dict) -> dict:
        c = cmd.get("cmd")
        if c == "fault":
            status = int(cmd.get("status", 500))
            times = cmd.get("times")
            with self.lock:
                self.faults.append({"regex": re.compile(cmd["path"]), "status": status,
                                    "remaining": None if times is None else int(times),
                                    "message": cmd.get("message"), "reason": cmd.get("reason")})
            return {"ok": True}
        if c == "latency":
            with self.lock:
                self.latencies.append((re.compile(cmd["path"]), float(cmd.get("ms", 0)) / 1000.0))
            return {"ok": True}
        if c == "clear-faults":
            with self.lock:
                self.faults.clear()
                self.latencies.clear()
            return {"ok": True}
        if c == "load":
            state = cmd["state"]
            self.store.load([state] if isinstance(state, str) else list(state))
            return {"ok": True}
        if c == "requests":
            with self.lock:
                return {"ok": True, "requests": list(self.requests)}
        if c == "reset-requests":
            with self.lock:
                self.requests.clear()
            return {"ok": True}
        if c == "authz-rbac":
            import yaml  # the test venv has PyYAML; only this command needs it
            docs = list(yaml.safe_load_all(Path(cmd["file"]).read_text()))
            self.authz = Authorizer(policy_from_rbac(docs, set(cmd["groups"]), cmd.get("principal", "*")))
            return {"ok": True, "policy": self.authz.policy}
        if c == "authz":
            if cmd.get("file"):
                self.authz = Authorizer.from_file(cmd["file"])
            else:
                self.authz = Authorizer(cmd.get("rules"))
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {c!r}"}

    def _take_fault(self, target):
        with self.lock:
            for f in self.faults:
                if f["regex"].search(target) and f["remaining"] != 0:
                    if f["remaining"] is not None:
                        f["remaining"] -= 1
                    return dict(f)
        return None

    # -- one request --
    def handle(self, method, raw_path, headers, body) -> Response:
        with self.lock:
            self.requests.append(f"{method} {raw_path}")
            delay = sum(s for rx, s in self.latencies if rx.search(raw_path))
        if delay:
            time.sleep(delay)
        url = urllib.parse.urlsplit(raw_path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            auth = headers.get("Authorization")
            if auth or not path.startswith(PUBLIC_PATHS):
                try:
                    user = self.authn.authenticate(auth)
                except AuthError as e:
                    self.log(f"401 for {method} {raw_path}: {e}")
                    raise unauthorized() from None
            else:
                user = "system:anonymous"
            fault = self._take_fault(raw_path)
            if fault:
                reason, message = FAULT_REASONS.get(fault["status"], ("", f"injected {fault['status']}"))
                raise ApiError(fault["status"], fault["reason"] or reason, fault["message"] or message, {},
                               {"Retry-After": "1"} if fault["status"] in (429, 503) else None)
            return self.route(method, path, query, headers, body, user)
        except ApiError as e:
            return json_response(e.code, e.status(), headers=e.headers)
        except Exception as e:  # a bug here must look like a server error, not a hang
            self.log(traceback.format_exc())
            return json_response(500, ApiError(500, "InternalError", f"Internal error occurred: {e}").status())

    def route(self, method, path, query, headers, body, user) -> Response:
        if path.startswith(("/healthz", "/livez", "/readyz")):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        is_resource = path.startswith("/api/v1/") or (path.startswith("/apis/") and path.count("/") >= 4)
        if not is_resource:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource", {})
            return self.non_resource(path, headers)
        return self.resource(method, path, query, headers, body, user)

    # -- discovery --
    def non_resource(self, path, headers) -> Response:
        if path == "/version":
            return json_response(200, SERVER_VERSION)
        aggregated = self._wants_aggregated(headers)
        if path == "/api":
            if aggregated:
                return self._aggregated(True, aggregated)
            return json_response(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}]})
        if path == "/apis":
            if aggregated:
                return self._aggregated(False, aggregated)
            return json_response(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                       "groups": [self._group(g, vs) for g, vs in self.store.groups() if g]})
        if path == "/api/v1":
            return json_response(200, self._resource_list("", "v1"))
        m = re.fullmatch(r"/apis/([^/]+)(?:/([^/]+))?", path)
        if m:
            groups = dict(self.store.groups())
            g, v = m.groups()
            if g and g in groups and v is None:
                return json_response(200, dict(self._group(g, groups[g]), kind="APIGroup", apiVersion="v1"))
            if g in groups and v in groups[g]:
                body = self._resource_list(g, v)
                body["apiVersion"] = "v1"
                return json_response(200, body)
        raise not_found_generic()

    def _wants_aggregated(self, headers):
        if self.discovery_mode != "aggregated":
            return None
        for mt, params in parse_accept(headers.get("Accept")):
            if mt == "application/json" and params.get("g") == "apidiscovery.k8s.io" \
                    and params.get("as") == "APIGroupDiscoveryList" and params.get("v") in ("v2", "v2beta1"):
                return params["v"]
        return None

    @staticmethod
    def _group(g, versions):
        vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
        return {"name": g, "versions": vs, "preferredVersion": vs[0]}

    def _resource_list(self, group, version):
        resources = []
        for t in self.store.types:
            if t.group != group or t.version != version:
                continue
            r = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
                 "verbs": t.verbs}
            if t.short_names:
                r["shortNames"] = t.short_names
            if t.categories:
                r["categories"] = t.categories
            r["storageVersionHash"] = base64.b64encode(
                hashlib.sha256(f"{t.group_version}/{t.kind}".encode()).digest()[:8]).decode()
            resources.append(r)
            for sub, verbs in t.subresources.items():
                resources.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                                  "kind": t.kind, "verbs": verbs})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "groupVersion": gv, "resources": resources}

    def _aggregated(self, core, version) -> Response:
        items = []
        for g, versions in self.store.groups():
            if (g == "") != core:
                continue
            vs = []
            for v in versions:
                res = []
                for t in self.store.types:
                    if t.group != g or t.version != v:
                        continue
                    kind_ref = {"group": g, "version": v, "kind": t.kind}
                    r = {"resource": t.plural, "responseKind": kind_ref,
                         "scope": "Namespaced" if t.namespaced else "Cluster",
                         "singularResource": t.singular, "verbs": t.verbs}
                    if t.short_names:
                        r["shortNames"] = t.short_names
                    if t.categories:
                        r["categories"] = t.categories
                    if t.subresources:
                        r["subresources"] = [{"subresource": s, "responseKind": kind_ref, "verbs": vb}
                                             for s, vb in t.subresources.items()]
                    res.append(r)
                vs.append({"version": v, "resources": res, "freshness": "Current"})
            md = {"creationTimestamp": None}
            if g:
                md["name"] = g
            items.append({"metadata": md, "versions": vs})
        body = {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
                "metadata": {}, "items": items}
        ct = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
        return json_response(200, body, ct, {"Vary": "Accept"})

    # -- resources --
    def resource(self, method, path, query, headers, body, user) -> Response:
        # Parse like apiserver's RequestInfoFactory, authorize, then resolve (so an unknown
        # resource is a 403 for a caller who may not touch it, a 404 otherwise).
        if path.startswith("/api/v1/"):
            group, version, rest = "", "v1", path[len("/api/v1/"):]
        else:
            _, _, group, version, rest = path.split("/", 4)
        parts = [urllib.parse.unquote(p) for p in rest.split("/")]
        namespace = ""
        if parts[0] == "namespaces" and len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in ("status", "finalize"):
                parts = parts[2:]
        resource = parts[0]
        name = parts[1] if len(parts) > 1 else ""
        sub = parts[2] if len(parts) > 2 else ""
        watch = query.get("watch", "") in ("true", "1")
        verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        if not name and verb == "get":
            verb = "watch" if watch else "list"
        if not name and verb == "delete":
            verb = "deletecollection"
        full = f"{resource}/{sub}" if sub else resource
        if (group, resource) not in SELF_REVIEWS and not self.authz.allowed(user, verb, group, full, namespace, name):
            qualified = f"{resource}.{group}" if group else resource
            raise forbidden(qualified, user, verb, full, group, namespace, name)

        with self.store.lock:
            rt = self.store.find_type(group, version, plural=resource)
        if rt is None or len(parts) > 3:
            raise not_found_generic()
        ns = namespace if rt.namespaced else ""
        if rt.plural == "namespaces":
            ns = ""
        if rt.namespaced and not namespace and name:
            raise not_found_generic()  # /api/v1/pods/NAME does not exist
        if not rt.namespaced and rt.plural != "namespaces" and namespace:
            raise not_found_generic()
        if sub and sub not in rt.subresources:
            raise not_found_generic()
        if (verb not in rt.verbs and not sub and verb != "watch") or (sub and verb not in rt.subresources[sub]):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        if verb == "watch":
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by this stand-in", {})
        dry_run = query.get("dryRun")
        if dry_run not in (None, "", "All"):
            raise bad_request(f'dryRun: Unsupported value: "{dry_run}": supported values: "All"')
        dry = dry_run == "All"

        if sub == "log":
            return self.pod_log(rt, ns, name, query)
        if verb == "get":
            with self.store.lock:
                obj = self.store.get(rt, ns, name)
                obj = copy.deepcopy(obj) if obj else None
            if obj is None:
                raise not_found(rt, name)
            return self.render(rt, [obj], headers, query, single=True)
        if verb == "list":
            return self.render(rt, self.select(rt, ns, query), headers, query, single=False)
        if verb == "patch":
            return self.patch(rt, ns, name, sub, headers, body, dry)
        if verb == "update":
            self._refuse_protobuf(headers)
            return self.update(rt, ns, name, sub, body, dry)
        if verb == "create":
            if name:
                raise not_found_generic()
            if (rt.group, rt.plural) in SELF_REVIEWS:
                return self.self_review(rt, headers, body, user)
            self._refuse_protobuf(headers)
            return self.create(rt, ns, body, dry)
        if verb == "delete":
            return self.delete(rt, ns, name, dry)
        if verb == "deletecollection":
            objs = self.select(rt, ns, query)
            if not dry:
                with self.store.lock:
                    for o in objs:
                        self.store.bucket(rt).pop((o["metadata"].get("namespace", ""), o["metadata"]["name"]), None)
            return self.render(rt, objs, {}, {}, single=False)
        raise not_found_generic()

    def select(self, rt, ns, query):
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""), rt)
        with self.store.lock:
            items = sorted(self.store.bucket(rt).items())
            out = [copy.deepcopy(o) for (ons, _), o in items
                   if (not ns or ons == ns) and labels_match(labels, o["metadata"].get("labels"))
                   and fields_match(fields, o)]
        return out

    def render(self, rt, objs, headers, query, single) -> Response:
        """JSON object/list, or a Table / PartialObjectMetadata when the Accept header asks for one."""
        with self.store.lock:
            list_rv = str(self.store.rv)
        accepted = parse_accept(headers.get("Accept")) or [("application/json", {})]
        for mt, params in accepted:
            as_ = params.get("as")
            if mt in ("application/json", "*/*", "application/*") and as_ == "Table" \
                    and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                include = query.get("includeObject") or "Metadata"
                if include not in ("None", "Metadata", "Object"):
                    raise bad_request(f'includeObject: Unsupported value: "{include}"')
                return json_response(200, to_table(rt, objs, include, params["v"], None if single else list_rv))
            if mt == "application/json" and as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") \
                    and params.get("g") == "meta.k8s.io":
                v = params.get("v", "v1")
                if single:
                    return json_response(200, partial_metadata(objs[0], f"meta.k8s.io/{v}"))
                return json_response(200, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{v}",
                                           "metadata": {"resourceVersion": list_rv},
                                           "items": [partial_metadata(o, f"meta.k8s.io/{v}") for o in objs]})
            if as_:
                continue  # some other conversion we do not offer: try the next media type
            if mt in ("application/json", "*/*", "application/*", "application/yaml"):
                body = objs[0] if single else self._list(rt, objs, list_rv)
                if mt == "application/yaml":
                    return Response(200, yaml.safe_dump(body, sort_keys=False).encode(), "application/yaml")
                return json_response(200, body)
        raise ApiError(406, "NotAcceptable",
                       "only the following media types are accepted: application/json, application/yaml", {})

    @staticmethod
    def _list(rt, objs, list_rv):
        items = []
        for o in objs:
            if rt.builtin:  # the real server's JSON omits kind/apiVersion in typed list items
                o = {k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
            items.append(o)
        return {"kind": f"{rt.kind}List", "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": list_rv}, "items": items}

    def pod_log(self, rt, ns, name, query) -> Response:
        with self.store.lock:
            pod = copy.deepcopy(self.store.get(rt, ns, name))
        if pod is None:
            raise not_found(rt, name)
        spec = pod.get("spec") or {}
        main = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        eph = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        container = query.get("container", "")
        if not container:
            if len(main) == 1 and not init and not eph:
                container = main[0]
            else:
                msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]"
                if init:
                    msg += f" or one of the init containers: [{' '.join(init)}]"
                raise bad_request(msg)
        elif container not in main + init + eph:
            raise bad_request(f"container {container} is not valid for pod {name}")
        previous = query.get("previous", "") in ("true", "1")
        text = self.store.find_log(ns, name, container, previous)
        if text is None:
            if previous:
                raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            wait = next(((s.get("state") or {}).get("waiting") for s in statuses if s.get("name") == container), None)
            if wait:
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                                  f'{wait.get("reason", "ContainerCreating")}')
            text = ""
        if "tailLines" in query:
            try:
                n = int(query["tailLines"])
            except ValueError:
                raise bad_request(f'tailLines: Invalid value: "{query["tailLines"]}"') from None
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-n:]) if n > 0 else ""
        data = text.encode()
        if "limitBytes" in query:
            try:
                data = data[:max(0, int(query["limitBytes"]))]
            except ValueError:
                raise bad_request(f'limitBytes: Invalid value: "{query["limitBytes"]}"') from None
        return Response(200, data, "text/plain")

    # -- writes --
    def _decode_body(self, body, what="object"):
        try:
            return json.loads(body or b"null")
        except ValueError:
            try:  # kubectl may send YAML for some verbs; accept it like the server's YAML decoder
                return yaml.load(body, Loader=_YamlLoader)
            except yaml.YAMLError as e:
                raise bad_request(f"error decoding {what}: {e}") from None

    def _finish_write(self, rt, cur, new, name, ns, sub):
        """Apply the server-owned fields and checks shared by PATCH and PUT; return the new object."""
        if not isinstance(new, dict):
            raise bad_request("the request body must be a JSON object")
        md = new.get("metadata")
        if not isinstance(md, dict):
            md = new["metadata"] = {}
        cmd_ = cur["metadata"]
        if md.get("name", name) != name:
            raise bad_request(f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})")
        if rt.namespaced and md.get("namespace", ns) != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if md.get("uid") and md["uid"] != cmd_.get("uid"):
            raise conflict(rt, name, f"Precondition failed: UID in precondition: {md['uid']}, "
                                     f"UID in object meta: {cmd_.get('uid')}")
        if md.get("resourceVersion") and md["resourceVersion"] != cmd_.get("resourceVersion"):
            raise conflict(rt, name)
        new["kind"], new["apiVersion"] = cur["kind"], cur["apiVersion"]
        for f in ("name", "namespace", "uid", "creationTimestamp", "resourceVersion", "generation",
                  "deletionTimestamp", "generateName"):
            if f in cmd_:
                md[f] = cmd_[f]
            else:
                md.pop(f, None)
        if "status" in rt.subresources:
            if sub == "status":  # the status subresource changes status only
                status = new.get("status")
                new = copy.deepcopy(cur)
                if status is None:
                    new.pop("status", None)
                else:
                    new["status"] = status
            elif "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])  # the main resource ignores status
            else:
                new.pop("status", None)
        errs = validate(rt, new)
        if errs:
            raise invalid(rt, name, errs)
        tracked = not rt.builtin or rt.kind in GENERATION_KINDS
        if tracked:
            def body_of(o):  # what "the spec" is: spec for built-ins, all but metadata/status else
                if rt.builtin and rt.kind != "EndpointSlice":
                    return o.get("spec")
                return {k: v for k, v in o.items() if k not in ("metadata", "status")}
            if body_of(new) != body_of(cur):
                new["metadata"]["generation"] = int(cmd_.get("generation", 1)) + 1
        return new

    def _store_write(self, rt, cur, new, dry):
        """Store (unless dry run) with a new resourceVersion; a no-op changes nothing."""
        if new == cur:
            return new
        if not dry:
            new["metadata"]["resourceVersion"] = self.store.next_rv()
            md = new["metadata"]
            self.store.bucket(rt)[(md.get("namespace", "") if rt.namespaced else "", md["name"])] = new
        return new

    def patch(self, rt, ns, name, sub, headers, body, dry) -> Response:
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        accepted = PATCH_TYPES if rt.builtin else [t for t in PATCH_TYPES if "strategic" not in t]
        if ctype not in accepted:
            shown = accepted[:2] + ["application/apply-patch+yaml"] + accepted[2:]
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           + ", ".join(shown), {})
        try:
            patch = json.loads(body or b"")
        except ValueError as e:
            raise bad_request(f"error decoding patch: {e}") from None
        if ctype != "application/json-patch+json" and not isinstance(patch, dict):
            raise bad_request("error decoding patch: the patch must be a JSON object")
        with self.store.lock:
            cur = self.store.get(rt, ns, name)
            if cur is None:
                raise not_found(rt, name)
            try:
                if ctype == "application/json-patch+json":
                    new = json_patch(cur, patch)
                elif ctype == "application/merge-patch+json":
                    new = merge_patch(cur, patch)
                else:
                    new = strategic_merge(cur, patch)
            except PatchError as e:
                raise patch_failed(str(e)) from None
            new = self._finish_write(rt, cur, new, name, ns, sub)
            return json_response(200, copy.deepcopy(self._store_write(rt, cur, new, dry)))

    def update(self, rt, ns, name, sub, body, dry) -> Response:
        new = self._decode_body(body)
        if not isinstance(new, dict):
            raise bad_request("the request body must be a JSON object")
        with self.store.lock:
            cur = self.store.get(rt, ns, name)
            if cur is None:
                raise not_found(rt, name)
            if not (new.get("metadata") or {}).get("resourceVersion"):
                raise invalid(rt, name, [("metadata.resourceVersion", "FieldValueInvalid",
                                          "Invalid value: 0x0: must be specified for an update")])
            new = self._finish_write(rt, cur, copy.deepcopy(new), name, ns, sub)
            return json_response(200, copy.deepcopy(self._store_write(rt, cur, new, dry)))

    def create(self, rt, ns, body, dry) -> Response:
        obj = self._decode_body(body)
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON object")
        md = obj.setdefault("metadata", {})
        if rt.namespaced:
            if md.get("namespace", ns) != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        if not md.get("name"):
            if not md.get("generateName"):
                raise invalid(rt, "", [("metadata.name", "FieldValueRequired",
                                        "Required value: name or generateName is required")])
            md["name"] = md["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = md["name"]
        obj["kind"], obj["apiVersion"] = rt.kind, rt.group_version
        errs = validate(rt, obj)
        if errs:
            raise invalid(rt, name, errs)
        with self.store.lock:
            ns_type = self.store.find_type("", "v1", plural="namespaces")
            if rt.namespaced and self.store.get(ns_type, "", ns) is None:
                raise not_found(ns_type, ns)
            if self.store.get(rt, ns, name) is not None:
                raise ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))
            md.update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339(now_utc()))
            if not rt.builtin or rt.kind in GENERATION_KINDS:
                md["generation"] = 1
            if not dry:
                md["resourceVersion"] = self.store.next_rv()
                self.store.bucket(rt)[(ns, name)] = obj
            return json_response(201, copy.deepcopy(obj))

    @staticmethod
    def _refuse_protobuf(headers):
        if (headers.get("Content-Type") or "").startswith(PROTOBUF):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json, application/yaml", {})

    def self_review(self, rt, headers, body, user) -> Response:
        if (headers.get("Content-Type") or "").startswith(PROTOBUF):
            try:
                review = decode_protobuf_review(body)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                raise bad_request(f"error decoding protobuf: {e}") from None
        else:
            review = self._decode_body(body)
        if not isinstance(review, dict):
            raise bad_request("the request body must be a JSON object")
        review.update(kind=rt.kind, apiVersion=rt.group_version)
        review.setdefault("metadata", {})["creationTimestamp"] = None
        if rt.kind == "SelfSubjectReview":
            review["status"] = {"userInfo": {"username": user, "groups": ["system:authenticated"]}}
            return json_response(201, review)
        attrs = (review.get("spec") or {}).get("resourceAttributes")
        if attrs is None:  # non-resource paths are open to every authenticated caller here
            review["status"] = {"allowed": True}
            return json_response(201, review)
        resource = attrs.get("resource", "") + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
        allowed = self.authz.allowed(user, attrs.get("verb", ""), attrs.get("group", ""), resource,
                                     attrs.get("namespace", ""), attrs.get("name", ""))
        review["status"] = {"allowed": allowed}
        if allowed and self.authz.policy is not None:
            review["status"]["reason"] = "allowed by the stand-in's authorization policy"
        return json_response(201, review)

    def delete(self, rt, ns, name, dry) -> Response:
        with self.store.lock:
            cur = self.store.get(rt, ns, name)
            if cur is None:
                raise not_found(rt, name)
            if not dry:
                self.store.bucket(rt).pop((ns, name))
            return json_response(200, copy.deepcopy(cur))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer has a Content-Length
    server_version = "kube-apiserver-standin"
    sys_version = ""
    timeout = 120  # idle keep-alive connections give their thread back eventually
    app: App = None  # set by make_server

    def _serve(self):
        length = self.headers.get("Content-Length")
        if length:
            body = self.rfile.read(int(length))
        elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = b""
        resp = self.app.handle(self.command, self.path, self.headers, body)
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, fmt, *args):
        self.app.log(f"{self.address_string()} {fmt % args}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return  # clients that hang up or distrust our CA are not our problem
        super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------

def make_certs(workdir: Path):
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost / ::1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now_utc()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-standin-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = workdir / "ca.crt", workdir / "server.crt", workdir / "server.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--state", action="append", required=True, help="a dump's k8s/ folder (repeatable)")
    ap.add_argument("--sts-endpoint", required=True, help="http://127.0.0.1:PORT of the STS stand-in (moto)")
    ap.add_argument("--cluster-name", required=True)
    ap.add_argument("--authz", help="authorization policy JSON (default: allow every authenticated caller)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--workdir", help="where to write ca.crt / server.crt / server.key (default: a temp dir)")
    ap.add_argument("--discovery", choices=["aggregated", "legacy"], default="aggregated")
    ap.add_argument("--known-credentials", action="append", default=[], metavar="KEY:SECRET",
                    help="verify the SigV4 signature of tokens made with this key (repeatable)")
    ap.add_argument("--require-known-credentials", action="store_true",
                    help="refuse tokens whose access key's secret is unknown")
    ap.add_argument("--strict-token-expiry", action="store_true",
                    help="expire tokens at X-Amz-Date + X-Amz-Expires instead of EKS's 15 minutes")
    ap.add_argument("--no-stdin", action="store_true", help="ignore stdin (run until SIGTERM)")
    ap.add_argument("--verbose", action="store_true", help="log requests and refusals on stderr")
    args = ap.parse_args(argv)

    sts = urllib.parse.urlsplit(args.sts_endpoint)
    if sts.scheme not in ("http", "https") or sts.hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--sts-endpoint must be http(s)://127.0.0.1:PORT (this stand-in talks to this machine only)")

    def log(msg):
        if args.verbose:
            sys.stderr.write(f"[kube-apiserver] {msg}\n")
            sys.stderr.flush()

    credentials = {}
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        credentials[os.environ["AWS_ACCESS_KEY_ID"]] = os.environ["AWS_SECRET_ACCESS_KEY"]
    for kc in args.known_credentials:
        k, _, s = kc.partition(":")
        credentials[k] = s

    store = Store()
    store.load(args.state)
    authn = Authenticator(args.sts_endpoint, args.cluster_name, credentials, args.strict_token_expiry,
                          args.require_known_credentials, log)
    app = App(store, authn, Authorizer.from_file(args.authz), args.discovery, log)

    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kube-apiserver-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = make_certs(workdir)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])  # no HTTP/2: clients fall back to HTTP/1.1

    Handler.app = app
    httpd = Server(("127.0.0.1", args.port), Handler)
    # Handshake in the handler thread, not in accept(): a silent client must not stall the server.
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    port = httpd.server_address[1]
    app.server_address = f"127.0.0.1:{port}"
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()

    out_lock = threading.Lock()

    def emit(obj):
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        emit({"url": f"https://127.0.0.1:{port}", "caFile": str(ca_file),
              "caData": base64.b64encode(ca_file.read_bytes()).decode()})
        if args.no_stdin:
            while True:
                time.sleep(3600)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
                answer = app.control(cmd) if isinstance(cmd, dict) else {"ok": False, "error": "not an object"}
            except Exception as e:  # a bad command must not kill the server
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            emit(answer)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        httpd.shutdown()
        httpd.server_close()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
