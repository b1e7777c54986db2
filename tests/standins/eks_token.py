#!/usr/bin/env python3
"""EKS bearer tokens as `aws eks get-token` makes them, and kubeconfigs that use them.

A token is ``k8s-aws-v1.`` + base64url (no padding) of an STS GetCallerIdentity URL presigned
with SigV4 (X-Amz-Expires=60) whose signed headers include ``x-k8s-aws-id: <cluster name>``.
The header is hoisted into the signature exactly like awscli's ``eks get-token`` does it: a
``provide-client-params`` handler takes it out of the operation parameters and a ``before-sign``
handler puts it on the request. Credentials come from the environment (AWS_ACCESS_KEY_ID=testing
...) unless given.

    python eks_token.py --sts-endpoint http://127.0.0.1:PORT --cluster demo-cluster [--region us-east-1]
        [--exec-credential]

prints the token (or, with --exec-credential, the client.authentication.k8s.io/v1beta1
ExecCredential JSON that `aws eks get-token` prints, for a kubeconfig exec plugin).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
from pathlib import Path

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
URL_TIMEOUT = 60
TOKEN_EXPIRATION_MINUTES = 14  # what awscli reports as expirationTimestamp


def make_token(sts_endpoint: str, cluster: str, region: str = "us-east-1", credentials: dict | None = None) -> str:
    """credentials: optional {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}."""
    import botocore.session

    session = botocore.session.get_session()
    client = session.create_client("sts", region_name=region, endpoint_url=sts_endpoint, **(credentials or {}))

    def retrieve_k8s_aws_id(params, context, **kwargs):
        if CLUSTER_ID_HEADER in params:
            context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)

    def inject_k8s_aws_id_header(request, **kwargs):
        if CLUSTER_ID_HEADER in request.context:
            request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]

    client.meta.events.register("provide-client-params.sts.GetCallerIdentity", retrieve_k8s_aws_id)
    client.meta.events.register("before-sign.sts.GetCallerIdentity", inject_k8s_aws_id_header)
    url = client.generate_presigned_url("get_caller_identity", Params={CLUSTER_ID_HEADER: cluster},
                                        ExpiresIn=URL_TIMEOUT, HttpMethod="GET")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")


def exec_credential(token: str) -> dict:
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=TOKEN_EXPIRATION_MINUTES)
    return {"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "spec": {},
            "status": {"expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token}}


def write_kubeconfig(path, server: str, ca_data: str, token: str | None = None, exec_command: list | None = None,
                     cluster_name: str = "demo-cluster", namespace: str = "default", exec_env: dict | None = None):
    """Write a kubeconfig for `server` (https URL) trusting `ca_data` (base64 PEM), authenticating
    with a static `token` or, like `aws eks update-kubeconfig`, an exec plugin `exec_command`
    (argv printing an ExecCredential). Returns the path."""
    if (token is None) == (exec_command is None):
        raise ValueError("give exactly one of token / exec_command")
    user: dict = {"token": token} if token is not None else {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": exec_command[0], "args": exec_command[1:],
        "env": [{"name": k, "value": v} for k, v in (exec_env or {}).items()] or None,
        "interactiveMode": "Never", "provideClusterInfo": False}}
    ctx = f"arn:aws:eks:us-east-1:123456789012:cluster/{cluster_name}"
    cfg = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": ctx, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": ctx, "user": user}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx, "namespace": namespace}}],
        "current-context": ctx,
    }
    path = Path(path)
    path.write_text(json.dumps(cfg, indent=2))  # JSON is YAML: kubectl reads it as is
    path.chmod(0o600)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description="Print an EKS token like `aws eks get-token`.")
    ap.add_argument("--sts-endpoint", required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--exec-credential", action="store_true", help="print an ExecCredential JSON instead")
    args = ap.parse_args(argv)
    token = make_token(args.sts_endpoint, args.cluster, args.region)
    print(json.dumps(exec_credential(token)) if args.exec_credential else token)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
