"""A Smithy RPC v2 CBOR front for moto's CloudWatch, for the end-to-end harness.

The Rust SDK's CloudWatch client (aws-sdk-cloudwatch >= 1.1xx) speaks the Smithy RPC v2 CBOR
protocol (`POST /service/GraniteServiceVersion20100801/operation/<Operation>`,
`smithy-protocol: rpc-v2-cbor`, CBOR bodies); moto 5.2.5 only understands CloudWatch's query and
awsJson1_0 protocols (boto3 uses the latter). This shim, bound to 127.0.0.1, decodes the CBOR
request, makes the same call on moto with boto3, and encodes moto's answer (or its error) back
in CBOR. The function reaches it through `AWS_ENDPOINT_URL_CLOUDWATCH`; every other service
goes to moto directly.

    shim = CborCloudWatchShim(moto_endpoint).start()    # shim.url
    ...
    shim.stop()

Only what CloudWatch's shapes need is implemented of CBOR (RFC 8949): unsigned / negative
integers, byte and text strings (definite and indefinite length), arrays, maps, tag 1
(epoch-seconds timestamps), floats (half, single, double), booleans and null.
"""

from __future__ import annotations

import datetime as dt
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_PREFIX = "/service/GraniteServiceVersion20100801/operation/"
_BREAK = object()


# -- CBOR --------------------------------------------------------------------------------------


class CborError(ValueError):
    pass


def cbor_loads(data: bytes):
    value, pos = _decode(data, 0)
    if pos != len(data):
        raise CborError(f"{len(data) - pos} trailing bytes")
    return value


def _length(data: bytes, pos: int, info: int) -> tuple[int | None, int]:
    if info < 24:
        return info, pos
    if info == 31:
        return None, pos  # indefinite
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if size is None:
        raise CborError(f"reserved additional information {info}")
    return int.from_bytes(data[pos:pos + size], "big"), pos + size


def _decode(data: bytes, pos: int):
    if pos >= len(data):
        raise CborError("truncated")
    initial = data[pos]
    pos += 1
    major, info = initial >> 5, initial & 0x1F
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info in (22, 23):
            return None, pos
        if info == 25:
            return struct.unpack(">e", data[pos:pos + 2])[0], pos + 2
        if info == 26:
            return struct.unpack(">f", data[pos:pos + 4])[0], pos + 4
        if info == 27:
            return struct.unpack(">d", data[pos:pos + 8])[0], pos + 8
        if info == 31:
            return _BREAK, pos
        raise CborError(f"unsupported simple value {info}")
    n, pos = _length(data, pos, info)
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if n is None:
            chunks = []
            while True:
                chunk, pos = _decode(data, pos)
                if chunk is _BREAK:
                    break
                chunks.append(chunk)
            return (b"" if major == 2 else "").join(chunks), pos
        raw = data[pos:pos + n]
        return (bytes(raw) if major == 2 else raw.decode("utf-8")), pos + n
    if major == 4:
        out = []
        while n is None or len(out) < n:
            item, pos = _decode(data, pos)
            if item is _BREAK:
                break
            out.append(item)
        return out, pos
    if major == 5:
        out = {}
        count = 0
        while n is None or count < n:
            key, pos = _decode(data, pos)
            if key is _BREAK:
                break
            out[key], pos = _decode(data, pos)
            count += 1
        return out, pos
    if major == 6:
        inner, pos = _decode(data, pos)
        if n == 1:
            return dt.datetime.fromtimestamp(inner, tz=dt.timezone.utc), pos
        return inner, pos
    raise CborError(f"major type {major}")


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise CborError("integer too large")


def cbor_dumps(value) -> bytes:
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return b"\xc1" + cbor_dumps(value.timestamp())
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(cbor_dumps(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(cbor_dumps(k) + cbor_dumps(v) for k, v in value.items())
    raise CborError(f"cannot encode {type(value).__name__}")


# -- the shim -----------------------------------------------------------------------------------


class CborCloudWatchShim:
    def __init__(self, moto_endpoint: str, region: str = "us-east-1"):
        import boto3
        from botocore import xform_name
        from botocore.config import Config

        self._xform = xform_name
        self.client = boto3.client(
            "cloudwatch", region_name=region, endpoint_url=moto_endpoint, aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))
        self.calls: list[str] = []
        self._lock = threading.Lock()
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = shim.handle(self.path, body)
                data = cbor_dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/cbor")
                self.send_header("smithy-protocol", "rpc-v2-cbor")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "CborCloudWatchShim":
        threading.Thread(target=self._server.serve_forever, name="cbor-shim", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, path: str, body: bytes) -> tuple[int, dict]:
        from botocore.exceptions import ClientError, ParamValidationError

        if not path.startswith(PATH_PREFIX):
            return 404, {"__type": "UnknownOperationException", "message": f"not a CloudWatch RPC v2 path: {path}"}
        operation = path[len(PATH_PREFIX):].strip("/")
        with self._lock:
            self.calls.append(operation)
        try:
            params = cbor_loads(body) if body else {}
        except (CborError, UnicodeDecodeError, struct.error) as e:
            return 400, {"__type": "SerializationException", "message": f"bad CBOR: {e}"}
        method = getattr(self.client, self._xform(operation), None)
        if method is None:
            return 400, {"__type": "UnknownOperationException", "message": operation}
        try:
            out = method(**(params or {}))
        except ClientError as e:
            err = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            return status, {"__type": f"com.amazonaws.cloudwatch#{err.get('Code', 'InternalFailure')}",
                            "message": err.get("Message", str(e))}
        except ParamValidationError as e:
            return 400, {"__type": "com.amazonaws.cloudwatch#InvalidParameterValueException", "message": str(e)}
        out.pop("ResponseMetadata", None)
        return 200, out
