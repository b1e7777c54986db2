#!/usr/bin/env python3
"""A Slack incoming-webhook stand-in for eks-lb-doctor's end-to-end tests.

    python slack_sink.py [--port 0]

Binds 127.0.0.1 only, prints ONE JSON line and flushes::

    {"url": "http://127.0.0.1:PORT/services/T000/B000/XXXX"}

HTTP, as Slack answers an incoming webhook:

    POST /services/T000/B000/XXXX   JSON body with `text`, `blocks` or `attachments`
                                    -> 200 "ok" (the body is recorded)
                                    body not JSON / not an object / none of those keys
                                    -> 400 "invalid_payload" (not recorded)
    any other POST path              -> 404 "no_service"

Test hooks:

    GET  /_received   -> 200, the JSON list of the bodies recorded, oldest first
    POST /_reset      -> 200 "ok", clears the recorded bodies and any pending failures

Control commands on stdin, one JSON object per line, each answered with one JSON line on
stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``):

    {"cmd": "fail", "status": 500, "times": N}   the next N webhook posts answer `status`
                                                 (body "internal_error"; not recorded) - for
                                                 the sender's retries; counts stack up
    {"cmd": "received"}                          -> {"ok": true, "received": [...]}
    {"cmd": "reset"}                             same as POST /_reset

Exits on stdin EOF or SIGTERM.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBHOOK_PATH = "/services/T000/B000/XXXX"


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list = []
        self.failures: list[int] = []  # statuses to answer, in order
        self.attempts = 0

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.failures.clear()
            self.attempts = 0

    def snapshot(self) -> list:
        with self.lock:
            return json.loads(json.dumps(self.received))

    def fail(self, status: int, times: int) -> None:
        with self.lock:
            self.failures.extend([status] * times)

    def post(self, raw: bytes) -> tuple[int, str]:
        with self.lock:
            self.attempts += 1
            if self.failures:
                status = self.failures.pop(0)
                return status, "internal_error" if status >= 500 else "rate_limited" if status == 429 else "error"
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, "invalid_payload"
        if not isinstance(body, dict) or not any(k in body for k in ("text", "blocks", "attachments")):
            return 400, "invalid_payload"
        with self.lock:
            self.received.append(body)
        return 200, "ok"


class Handler(BaseHTTPRequestHandler):
    sink: Sink
    server_version = "slack-sink"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests read what they need from the hooks
        pass

    def _answer(self, status: int, body: str | bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path == "/_received":
            self._answer(200, json.dumps(self.sink.snapshot()), "application/json")
        else:
            self._answer(404, "not_found")

    def do_POST(self):
        raw = self._body()
        if self.path == WEBHOOK_PATH:
            status, text = self.sink.post(raw)
            self._answer(status, text)
        elif self.path == "/_reset":
            self.sink.reset()
            self._answer(200, "ok")
        else:
            self._answer(404, "no_service")


def control(sink: Sink, cmd: dict) -> dict:
    c = cmd.get("cmd")
    if c == "fail":
        times = int(cmd.get("times", 1))
        status = int(cmd.get("status", 500))
        sink.fail(status, times)
        return {"ok": True}
    if c == "received":
        return {"ok": True, "received": sink.snapshot()}
    if c == "reset":
        sink.reset()
        return {"ok": True}
    return {"ok": False, "error": f"unknown cmd {c!r}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args()

    sink = Sink()
    Handler.sink = sink
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()

    def on_term(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    port = httpd.server_address[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}{WEBHOOK_PATH}"}), flush=True)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
                answer = control(sink, cmd) if isinstance(cmd, dict) else {"ok": False, "error": "not a JSON object"}
            except (json.JSONDecodeError, ValueError, TypeError) as e:
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(answer), flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        httpd.shutdown()
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
