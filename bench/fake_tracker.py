#!/usr/bin/env python3
"""A minimal Tracker stand-in for the benchmark: 200 with an issue body for GET and PATCH
on /v3/issues/<KEY> when the OAuth token matches. Usage: fake_tracker.py <port> <token>."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]
FIELDS = {}


class Handler(BaseHTTPRequestHandler):
    # headers and body go out in two writes: without this, Nagle and delayed ACKs add ~40 ms
    # to every answer, for both contestants
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def issue(self):
        if self.headers.get("Authorization") != f"OAuth {TOKEN}":
            self.answer(401, {"errorMessages": ["Not authorized."], "errors": {}, "statusCode": 401})
            return None
        key = self.path.rsplit("/", 1)[-1].split("?")[0]
        return {"key": key, "version": 1, "status": {"key": "open"}, **FIELDS.get(key, {})}

    def do_GET(self):
        issue = self.issue()
        if issue is not None:
            self.answer(200, issue)

    def do_PATCH(self):
        issue = self.issue()
        if issue is None:
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        FIELDS.setdefault(issue["key"], {}).update(body)
        self.answer(200, {**issue, **body})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
