#!/usr/bin/python3
"""mock_openai.py -- a small OpenAI-compatible server for tests, on loopback.
POST /v1/embeddings answers deterministic bag-of-words vectors (each lower-case
word hashes to a signed coordinate, dim 64), so rewordings with the same words
are identical and different questions are far apart. Options:
  --port N          port (0 = any free port; the chosen one is printed)
  --delay-ms N      wait before answering (to exercise timeouts); with
  --slow-word W     only when an input contains the word W
  --status N        answer every request with this HTTP status
  --require-key K   answer 401 unless "Authorization: Bearer K"
It prints "READY <port>" once listening and serves until killed."""
import argparse, hashlib, json, re, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIM = 64


def embed(text):
    v = [0.0] * DIM
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        h = hashlib.sha256(w.encode()).digest()
        v[h[0] % DIM] += 1.0 if h[1] & 1 else -1.0
    if not any(v):
        v[0] = 1.0
    return v


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        inputs = req.get("input", [])
        text = " ".join(inputs) if isinstance(inputs, list) else str(inputs)
        if ARGS.delay_ms and (not ARGS.slow_word or ARGS.slow_word in text.lower().split()):
            time.sleep(ARGS.delay_ms / 1000.0)
        if ARGS.require_key and self.headers.get("Authorization") != "Bearer " + ARGS.require_key:
            return self.reply(401, {"error": {"message": "bad key"}})
        if ARGS.status != 200:
            return self.reply(ARGS.status, {"error": {"message": "configured failure"}})
        if self.path.endswith("/embeddings"):
            inputs = req.get("input", [])
            inputs = [inputs] if isinstance(inputs, str) else inputs
            data = [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(inputs)]
            return self.reply(200, {"object": "list", "data": data, "model": req.get("model")})
        return self.reply(404, {"error": {"message": "no such endpoint"}})


p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=0)
p.add_argument("--delay-ms", type=int, default=0)
p.add_argument("--status", type=int, default=200)
p.add_argument("--slow-word", default="")
p.add_argument("--require-key", default="")
ARGS = p.parse_args()
server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
print("READY %d" % server.server_address[1], flush=True)
server.serve_forever()
