#!/usr/bin/python3
"""mock_upstream.py -- a small OpenAI-compatible server for tests and benchmarks,
on loopback.
POST /v1/embeddings answers deterministic bag-of-words vectors (each lower-case
word hashes to a signed coordinate, dim 64), so rewordings with the same words
are identical and different questions are far apart.
POST /v1/chat/completions answers the last user message deterministically from
a labelled pair file (--pairs, TSV: question1, question2, is_duplicate, with a
header line, as ../shared/data/qqp/qqp_dev.tsv): questions linked as
duplicates, transitively, share one answer ("answer-<n>"); every other question
gets its own ("answer-<hash>"). So a semantic hit is right exactly when the two
questions are labelled duplicates.
POST /webhook records the body; GET /webhook returns the records (and empties
the list); GET /stats returns {"chat_calls": n, "webhook_posts": n,
"last_authorization": the Authorization header of the last chat or webhook call}.
Options:
  --port N          port (0 = any free port; the chosen one is printed)
  --delay-ms N      wait before answering (to exercise timeouts); with
  --slow-word W     only when an input contains the word W
  --status N        answer every request with this HTTP status
  --require-key K   answer 401 unless "Authorization: Bearer K"
  --pairs FILE      labelled pairs for the chat answers
It prints "READY <port>" once listening and serves until killed."""
import argparse, csv, hashlib, json, re, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {"chat_calls": 0, "webhook_posts": 0, "last_authorization": None}
WEBHOOK = []
ANSWER = {}  # question text -> answer


def load_pairs(path):
    """Union-find over duplicate pairs: one answer per connected class."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    csv.field_size_limit(1 << 24)
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows, None)
        for r in rows:
            if len(r) < 3:
                continue
            a, b = r[0].strip(), r[1].strip()
            find(a), find(b)
            if r[2].strip() == "1":
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb
    classes = {}
    for q in parent:
        classes.setdefault(find(q), len(classes))
    return {q: "answer-%d" % classes[find(q)] for q in parent}


def answer_for(question):
    q = question.strip()
    a = ANSWER.get(q)
    return a if a else "answer-" + hashlib.sha256(q.encode()).hexdigest()[:16]


def last_user_text(req):
    for m in reversed(req.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return c if isinstance(c, str) else ""
    return ""

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

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                return self.reply(200, dict(STATS))
        if self.path == "/webhook":
            with LOCK:
                out = list(WEBHOOK)
                WEBHOOK.clear()
            return self.reply(200, out)
        return self.reply(404, {"error": {"message": "no such endpoint"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path == "/webhook" or self.path.endswith("/chat/completions"):
            with LOCK:
                STATS["last_authorization"] = self.headers.get("Authorization")
        if self.path == "/webhook":
            with LOCK:
                WEBHOOK.append(req)
                STATS["webhook_posts"] += 1
            if ARGS.status != 200:
                return self.reply(ARGS.status, {"error": {"message": "configured failure"}})
            return self.reply(200, {"ok": True})
        if self.path.endswith("/chat/completions"):
            text = last_user_text(req)
        else:
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
        if self.path.endswith("/chat/completions"):
            with LOCK:
                STATS["chat_calls"] += 1
                n_call = STATS["chat_calls"]
            ans = answer_for(text)
            return self.reply(200, {
                "id": "chatcmpl-%d" % n_call, "object": "chat.completion",
                "created": int(time.time()), "model": req.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ans},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 2,
                          "total_tokens": len(text.split()) + 2}})
        return self.reply(404, {"error": {"message": "no such endpoint"}})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--slow-word", default="")
    p.add_argument("--require-key", default="")
    p.add_argument("--pairs", default="")
    ARGS = p.parse_args()
    if ARGS.pairs:
        ANSWER.update(load_pairs(ARGS.pairs))
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
