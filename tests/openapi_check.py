#!/usr/bin/env python3
"""openapi_check.py -- checks docs/openapi.yaml against a real semcached.

Replays every curl example of README.md (parsed as curl would send it), the
native API's and the proxy's, then probes that reach the operations and
error statuses the README does not (the proxy in front of
tests/mock_upstream.py, a fleet node on a loopback redis-server when there is
one), against servers this script starts; each request body is validated
against its operation's requestBody schema and each answer (body and
headers) against the response of its status and media type. The README's
documented answers (`# {...}` under a curl) and its namespace settings block
are validated too, with "…" standing for any string. Standard library only:
the validator (openapi_schema.py) covers the JSON Schema subset the spec uses
and refuses any other keyword. Prints one line per check and
`SC-RESULT passed=N failed=N skipped=N`.
"""
import argparse
import base64
import http.client
import json
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from openapi_schema import ELIDED, Validator


# ---- the spec's operations ----------------------------------------------------

# Statuses the HTTP layer may answer on any path (info.description).
TRANSPORT_STATUSES = {400, 404, 405, 408, 411, 413, 431, 503, 505}


class Spec:
    def __init__(self, doc):
        self.doc = doc
        self.v = Validator(doc)
        self.routes = []
        for tmpl, item in doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(tmpl)) + "$"
            self.routes.append((re.compile(rx), tmpl, item))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            node = self.v.resolve(node["$ref"])
        return node

    def operation(self, method, path):
        """(template, operation or None, allowed methods) or None for an unknown path."""
        for rx, tmpl, item in self.routes:
            if rx.match(path):
                methods = [m for m in item if m in ("get", "put", "post", "delete")]
                op = item.get("head" if method == "head" else method.lower())
                if method.lower() == "head" and op is None:
                    op = item.get("get")  # HEAD answers as GET without a body
                return tmpl, op, methods
        return None

    def request_schema(self, op):
        rb = self.deref(op.get("requestBody")) if op else None
        return rb["content"]["application/json"]["schema"] if rb else None

    def response(self, op, status):
        if op is None:
            return None
        r = op.get("responses", {}).get(str(status)) or op.get("responses", {}).get("default")
        return self.deref(r) if r else None

    def success(self, op):
        for code in sorted(op["responses"]):
            if code.startswith("2"):
                return int(code), self.deref(op["responses"][code])
        return None, None

    def problem(self):
        return {"$ref": "#/components/schemas/Problem"}


# ---- running servers ------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, args):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="semcached-openapi-")
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--data-dir", self.dir,
                                      "--log-level", "error"] + args)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if request(self.port, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"semcached {' '.join(args)} did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def request(port, method, path, body=None, headers=None):
    """(status, content type, body text, headers) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        return r.status, r.getheader("Content-Type", ""), text, dict(r.getheaders())
    finally:
        conn.close()


# ---- the README's examples ------------------------------------------------------

def readme_blocks(text, lang):
    """The bodies of the ```lang blocks, dedented (some sit in list items)."""
    out = []
    for m in re.finditer(r"^( *)```" + lang + r"\n(.*?)^\1```", text, re.S | re.M):
        ind = len(m.group(1))
        out.append("\n".join(line[ind:] for line in m.group(2).splitlines()))
    return out


def readme_curls(text, lang="sh"):
    """[(argv, [documented answers])] for every curl command in ```sh blocks."""
    found = []
    for block in readme_blocks(text, lang):
        buf = ""
        for line in block.splitlines():
            if not buf and line.startswith("#"):
                doc = line[1:].strip()
                if found and doc[:1] in "{[":
                    found[-1][1].append(doc)
                continue
            if not buf and not line.strip():
                continue
            buf += line + "\n"
            if line.endswith("\\"):
                continue
            try:
                argv = shlex.split(buf.replace("\\\n", " "), comments=True)
            except ValueError:
                continue  # a quote is still open
            buf = ""
            if argv and argv[0] == "curl":
                found.append((argv, []))
    return found


def curl_request(argv):
    """(method, path, body, headers) as curl would send them."""
    method, body, headers, url = None, None, {}, None
    it = iter(argv[1:])
    for a in it:
        if a in ("-s", "-i", "-sf", "-f", "-N"):
            continue
        if a == "-X":
            method = next(it)
        elif a == "-H":
            k, _, v = next(it).partition(":")
            headers[k.strip()] = v.strip()
        elif a in ("-d", "--data"):
            body = next(it)
        elif a.startswith("-"):
            raise ValueError(f"curl option {a} is not understood by this checker")
        else:
            url = a
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
    path = "/" + url.split("/", 1)[1] if "/" in url else "/"
    return method or ("POST" if body is not None else "GET"), path, body, headers


# ---- checks -------------------------------------------------------------------

class Checker:
    def __init__(self, spec, verbose):
        self.spec = spec
        self.passed = self.failed = self.skipped = 0
        self.covered = set()
        self.verbose = verbose

    def result(self, name, errs):
        if errs:
            self.failed += 1
            print(f"FAIL {name}")
            for e in errs[:8]:
                print(f"     {e}")
        else:
            self.passed += 1
            if self.verbose:
                print(f"ok   {name}")

    def exchange(self, name, port, method, path, body=None, headers=None, expect=None,
                 valid_request=True):
        """Sends one request and checks both sides against the spec; returns
        (status, parsed JSON or None, headers)."""
        if body is not None and headers is None:
            headers = {"Content-Type": "application/json"}
        status, ctype, text, rh = request(port, method, path, body, headers)
        route = self.spec.operation(method, path.split("?")[0])
        errs = []
        if expect is not None and status != expect:
            errs.append(f"answered {status}, expected {expect}: {text[:200]}")
        tmpl, op, methods = route if route else (None, None, [])
        jbody = None
        if "json" in ctype and text:
            try:
                jbody = json.loads(text)
            except ValueError as e:
                errs.append(f"answer is not JSON: {e}")
        # The request body, when it is JSON for an operation that takes one.
        rschema = self.spec.request_schema(op)
        if rschema is not None and body is not None:
            try:
                req = json.loads(body)
            except ValueError:
                req = None
            if req is not None:
                rerrs = self.spec.v.errors(rschema, req, "request")
                if valid_request and rerrs:
                    errs += ["the schema refuses a request the test means as valid:"] + rerrs
                elif not valid_request and not rerrs:
                    errs.append("the schema accepts a request the server must refuse")
                if 200 <= status < 300 and rerrs:
                    errs += [f"the server accepted ({status}) what the schema refuses:"] + rerrs
        # The answer, against its status's response in the spec.
        resp = self.spec.response(op, status)
        if resp is None:
            if status in TRANSPORT_STATUSES and "problem+json" in ctype:
                resp = {"content": {"application/problem+json": {"schema": self.spec.problem()}}}
            else:
                where = f"{method} {tmpl}" if op else f"{method} {path} (no such operation)"
                errs.append(f"status {status} is not in the spec for {where}")
        if resp is not None:
            media = resp.get("content", {})
            mtype = ctype.split(";")[0].strip()
            if method == "HEAD" or not media:
                pass
            elif mtype not in media:
                errs.append(f"Content-Type {mtype}, spec has {sorted(media)}")
            elif jbody is not None:
                errs += self.spec.v.errors(media[mtype]["schema"], jbody, "response")
            else:
                errs += self.spec.v.errors(media[mtype]["schema"], text, "response")
            errs += self.headers(resp, rh)
        if op is not None and 200 <= status < 300:
            self.covered.add((method.lower() if method != "HEAD" else "get", tmpl))
        self.result(f"{name}: {method} {path} -> {status}", errs)
        return status, jbody, rh

    def headers(self, resp, rh):
        """The answer's headers against those the response names: a required
        one must be there; each is parsed as its schema's type."""
        got = {k.lower(): v for k, v in rh.items()}
        errs = []
        for h, hs in resp.get("headers", {}).items():
            hs = self.spec.deref(hs)
            v = got.get(h.lower())
            if v is None:
                errs += [f"header {h} missing"] if hs.get("required") else []
                continue
            schema = self.spec.deref(hs["schema"])
            try:
                v = {"integer": int, "number": float}.get(schema.get("type"), str)(v)
            except ValueError:
                errs.append(f"header {h}: {v!r} is not {schema['type']}")
                continue
            errs += self.spec.v.errors(hs["schema"], v, h)
        return errs

    def documented(self, name, op, doc):
        """A documented answer (README comment) against the operation's success schema."""
        try:
            v = json.loads(doc)
        except ValueError as e:
            self.result(name, [f"documented answer is not JSON ({e}): {doc[:120]}"])
            return
        code, resp = self.spec.success(op)
        schema = resp["content"]["application/json"]["schema"]
        self.result(f"{name} documents a {code} answer", self.spec.v.errors(schema, v, "doc", True))

    def coverage(self):
        missing = [f"{m.upper()} {p}" for p, item in self.spec.doc["paths"].items()
                   for m in item if m in ("get", "put", "post", "delete") and (m, p) not in self.covered]
        self.result("every operation answered 2xx at least once",
                    [f"never exercised: {x}" for x in missing])


# ---- the run ------------------------------------------------------------------

def replay_readme(ck, port, readme):
    text = open(readme, encoding="utf-8").read()
    curls = readme_curls(text)
    if len(curls) < 10:
        ck.result("README curl examples found", [f"only {len(curls)} curl examples in {readme}"])
    for i, (argv, docs) in enumerate(curls, 1):
        method, path, body, headers = curl_request(argv)
        status, _, _ = ck.exchange(f"README curl {i}", port, method, path, body, headers)
        if status >= 400:
            print(f"NOTE README curl {i} ({method} {path}) answers {status}")
        route = ck.spec.operation(method, path.split("?")[0])
        for doc in docs:
            ck.documented(f"README curl {i}", route[1], doc.replace("…", ELIDED))
    # The namespace settings block: a PUT body, and what GET shows as settings.
    schemas = ck.spec.doc["components"]["schemas"]
    for block in readme_blocks(text, "json"):
        doc = json.loads(block)
        if "threshold" in doc and "delivery" in doc:
            for s in ("NamespaceSettingsIn", "NamespaceSettings"):
                ck.result(f"README namespace settings fit {s}",
                          ck.spec.v.errors(schemas[s], doc, "doc"))


def probe_main(ck, port):
    """Operations and errors the README does not reach, on the README's server."""
    x = ck.exchange
    st, j, _ = x("store", port, "POST", "/v1/store", json.dumps(
        {"namespace": "probe", "tenant": "t1", "model": "m", "prompt": "probe one", "response": "one",
         "ttl_s": 60, "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}), expect=201)
    key = j["key"] if j else "0" * 32
    x("entry", port, "GET", f"/v1/entries/{key}", expect=200)
    x("entry by upper-case key", port, "GET", f"/v1/entries/{key.upper()}", expect=200)
    x("lookup with messages", port, "POST", "/v1/lookup", json.dumps(
        {"namespace": "probe", "tenant": "t1", "model": "m", "max_age_s": 3600, "threshold": 0.995,
         "messages": [{"role": "system", "content": "be brief"},
                      {"role": "user", "content": [{"type": "text", "text": "probe one?"}]}]}), expect=200)
    vec = base64.b64encode(struct.pack("<4f", 0.12, -0.40, 0.33, 0.80)).decode()
    x("lookup with a base64 embedding", port, "POST", "/v1/lookup", json.dumps(
        {"namespace": "my-vectors", "model": "gpt-4o", "prompt": "reset my password please",
         "embedding": vec, "embedder": "my-embedding-model"}), expect=200)
    x("lookup lowering the threshold", port, "POST", "/v1/lookup",
      '{"model":"gpt-4o","prompt":"x","threshold":0.5}', expect=403)
    x("lookup from another embedder", port, "POST", "/v1/lookup", json.dumps(
        {"namespace": "my-vectors", "model": "gpt-4o", "prompt": "x", "embedding": [1, 2, 3, 4],
         "embedder": "another-model"}), expect=409)
    x("lookup with a parameter outside params", port, "POST", "/v1/lookup",
      '{"model":"m","prompt":"x","temperature":0}', expect=400, valid_request=False)
    x("lookup with prompt and messages", port, "POST", "/v1/lookup",
      '{"model":"m","prompt":"x","messages":[{"role":"user","content":"x"}]}', expect=400,
      valid_request=False)
    x("lookup without model", port, "POST", "/v1/lookup", '{"prompt":"x"}', expect=400,
      valid_request=False)
    x("lookup with a threshold above 1", port, "POST", "/v1/lookup",
      '{"model":"m","prompt":"x","threshold":1.5}', expect=400, valid_request=False)
    x("lookup as text/plain", port, "POST", "/v1/lookup", '{"model":"m","prompt":"x"}',
      {"Content-Type": "text/plain"}, expect=415)
    _, _, h = x("lookup by GET", port, "GET", "/v1/lookup", expect=405)
    ck.result("405 names the allowed methods", [] if h.get("Allow") == "POST" else [f"Allow: {h.get('Allow')}"])
    x("store with a fractional ttl_s", port, "POST", "/v1/store",
      '{"model":"m","prompt":"x","response":1,"ttl_s":1.5}', expect=400, valid_request=False)
    x("store without response", port, "POST", "/v1/store", '{"model":"m","prompt":"x"}',
      expect=400, valid_request=False)
    x("delete entry", port, "DELETE", f"/v1/entries/{key}", expect=200)
    x("delete it again", port, "DELETE", f"/v1/entries/{key}", expect=404)
    x("deleted entry", port, "GET", f"/v1/entries/{key}", expect=404)
    x("entry with a bad key", port, "GET", "/v1/entries/xyz", expect=404)
    x("invalidate a namespace", port, "POST", "/v1/invalidate", '{"namespace":"probe"}', expect=200)
    x("invalidate by tenant, all false", port, "POST", "/v1/invalidate",
      '{"tenant":"nobody","all":false}', expect=200)
    x("invalidate all with a filter", port, "POST", "/v1/invalidate",
      '{"all":true,"namespace":"x"}', expect=400, valid_request=False)
    x("invalidate without a filter", port, "POST", "/v1/invalidate", '{}', expect=400,
      valid_request=False)
    x("namespace with an error budget", port, "GET", "/v1/namespaces/support", expect=200)
    x("namespace never configured", port, "GET", "/v1/namespaces/fresh", expect=200)
    x("put namespace", port, "PUT", "/v1/namespaces/sampled", json.dumps(
        {"sample_rate": 1, "validation_budget": 1, "compare": "exact", "ttl_s": None, "max_entries": 100, "model": None,
         "threshold": 0.95, "dimensions": None}), expect=200)
    x("put an unknown setting", port, "PUT", "/v1/namespaces/sampled", '{"bogus":1}', expect=400,
      valid_request=False)
    x("put a bad name", port, "PUT", "/v1/namespaces/bad!name", '{}', expect=404)
    x("change recorded dimensions", port, "PUT", "/v1/namespaces/my-vectors", '{"dimensions":8}',
      expect=409)
    _, j, _ = x("store to sample", port, "POST", "/v1/store", json.dumps(
        {"namespace": "sampled", "model": "m", "prompt": "sampled", "response": {"content": "yes"}}),
        expect=201)
    skey = j["key"] if j else "0" * 32
    _, j, _ = x("sampled hit", port, "POST", "/v1/lookup",
                '{"namespace":"sampled","model":"m","prompt":"sampled"}', expect=200)
    vid = (j or {}).get("validation_id", "missing")
    x("feedback by validation id", port, "POST", "/v1/feedback",
      json.dumps({"validation_id": vid, "fresh_response": {"content": "yes"}}), expect=200)
    x("feedback by key", port, "POST", "/v1/feedback",
      json.dumps({"key": skey, "verdict": "wrong"}), expect=200)
    x("feedback with id and key", port, "POST", "/v1/feedback",
      json.dumps({"validation_id": vid, "key": skey, "verdict": "wrong"}), expect=400,
      valid_request=False)
    x("feedback on an unknown id", port, "POST", "/v1/feedback",
      '{"validation_id":"00","verdict":"correct"}', expect=404)
    x("feedback by GET", port, "GET", "/v1/feedback", expect=405)
    for _ in range(40):  # records are written by the store's writer
        if request(port, "GET", "/v1/validations")[2] != "[]":
            break
        time.sleep(0.05)
    _, j, _ = x("validations", port, "GET", "/v1/validations?limit=5", expect=200)
    ck.result("validation records were listed", [] if j else ["GET /v1/validations stayed empty"])
    x("stats", port, "GET", "/v1/stats", expect=200)
    x("metrics", port, "GET", "/metrics", expect=200)
    x("healthz", port, "GET", "/healthz", expect=200)
    x("healthz by HEAD", port, "HEAD", "/healthz", expect=200)
    x("readyz", port, "GET", "/readyz", expect=200)
    x("delete namespace", port, "DELETE", "/v1/namespaces/sampled", expect=200)
    x("unknown path", port, "GET", "/v2/nothing", expect=404)


def probe_auth(ck, port):
    """Tokens and limits: --auth-token, --admin-token, 1 KiB limits, --evict none."""
    x = ck.exchange
    user = {"Authorization": "Bearer user-token", "Content-Type": "application/json"}
    admin = {"Authorization": "Bearer admin-token", "Content-Type": "application/json"}
    x("stats without a token", port, "GET", "/v1/stats", expect=401)
    x("stats with the user token", port, "GET", "/v1/stats", headers=user, expect=200)
    x("healthz without a token", port, "GET", "/healthz", expect=200)
    x("metrics without a token", port, "GET", "/metrics", expect=200)
    x("invalidate with the user token", port, "POST", "/v1/invalidate", '{"all":true}', user, expect=403)
    x("invalidate with the admin token", port, "POST", "/v1/invalidate", '{"all":true}', admin, expect=200)
    x("namespace put with the user token", port, "PUT", "/v1/namespaces/a", '{}', user, expect=403)
    x("namespace put with the admin token", port, "PUT", "/v1/namespaces/a", '{}', admin, expect=200)
    x("store the one entry allowed", port, "POST", "/v1/store",
      '{"model":"m","prompt":"one","response":1}', user, expect=201)
    x("store past --max-entries", port, "POST", "/v1/store",
      '{"model":"m","prompt":"two","response":2}', user, expect=507)
    x("body over --max-body-bytes", port, "POST", "/v1/store",
      json.dumps({"model": "m", "prompt": "x" * 2000, "response": 1}), user, expect=413)
    x("headers over --max-header-bytes", port, "GET", "/v1/stats",
      headers=dict(user, **{"X-Padding": "p" * 2000}), expect=431)


def probe_remote_down(ck, port):
    """A remote:URL model whose endpoint does not answer: the "unavailable" shapes."""
    x = ck.exchange
    _, j, _ = x("readyz, embedder unavailable", port, "GET", "/readyz", expect=200)
    ck.result("readyz says the embedder is unavailable",
              [] if j and j.get("embedders") == {"default": "unavailable"} else [f"readyz: {j}"])
    x("stats, embedder unavailable", port, "GET", "/v1/stats", expect=200)
    _, j, _ = x("lookup, embedder unavailable", port, "POST", "/v1/lookup",
                json.dumps({"model": "m", "prompt": "no endpoint"}),
                headers={"Content-Type": "application/json"}, expect=200)
    ck.result("lookup skipped with embedder_unavailable",
              [] if j and j.get("semantic_skip_reason") == "embedder_unavailable" else [f"lookup: {j}"])


# ---- the proxy and the fleet ----------------------------------------------------

class Helper:
    """tests/mock_upstream.py, or a redis-server, on a free port."""
    def __init__(self, argv, ready):
        self.dir = tempfile.mkdtemp(prefix="semcached-openapi-helper-")
        self.port = free_port()
        self.proc = subprocess.Popen([a.format(port=self.port, dir=self.dir) for a in argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if not ready(self):
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start")

    def stop(self):
        Server.stop(self)


def mock_upstream():
    def ready(h):
        line = h.proc.stdout.readline()  # "READY <port>"
        h.port = int(line.split()[1]) if line.startswith("READY ") else 0
        return h.port != 0
    mock = __file__.rsplit("/", 1)[0] + "/mock_upstream.py" if "/" in __file__ else "mock_upstream.py"
    return Helper([sys.executable, mock, "--port", "0"], ready)


def redis_server():
    def ready(h):
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", h.port), 1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False
    return Helper(["redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", "{dir}", "--logfile", "{dir}/redis.log"], ready)


OPENAI = {"Authorization": "Bearer sk-openapi", "Content-Type": "application/json"}
ANTHROPIC = {"x-api-key": "sk-openapi", "anthropic-version": "2023-06-01",
             "Content-Type": "application/json"}


def chat(q, **extra):
    return json.dumps(dict({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": q}]}, **extra))


def message(q, **extra):
    return json.dumps(dict({"model": "claude-haiku-4-5", "max_tokens": 64,
                            "messages": [{"role": "user", "content": q}]}, **extra))


def probe_proxy(ck, port, readme):
    """The proxied APIs, semcached in front of tests/mock_upstream.py (with GloVe)."""
    def x(name, path, body, headers, expect, cache=None, match=None, valid_request=True):
        _, j, h = ck.exchange(name, port, "POST", path, body, headers, expect, valid_request)
        got = {k.lower(): v for k, v in h.items()}
        if cache or match:
            ck.result(f"{name}: X-Cache {cache}, match {match}",
                      [] if (got.get("x-cache"), got.get("x-semcached-match")) == (cache, match)
                      else [f"X-Cache {got.get('x-cache')}, X-Semcached-Match {got.get('x-semcached-match')}"])
        return j, got
    cc = "/v1/chat/completions"
    x("chat, a miss", cc, chat("What is the capital of France?"), OPENAI, 200, "MISS")
    time.sleep(0.2)  # the answer does not wait for the store's commit (README, "Streams")
    x("chat, the same", cc, chat("What is the capital of France?"), OPENAI, 200, "HIT", "exact")
    x("chat, other words", cc, chat("What is France's capital?"), OPENAI, 200, "HIT", "semantic")
    x("chat, streamed", cc, chat("What is the capital of France?", stream=True), OPENAI, 200, "HIT", "exact")
    x("chat, no-cache and a TTL", cc, chat("What is the capital of France?"),
      dict(OPENAI, **{"Cache-Control": "no-cache", "X-Semcached-TTL": "60"}), 200, "BYPASS")
    x("chat, only-if-cached", cc, chat("Never asked."), dict(OPENAI, **{"Cache-Control": "only-if-cached"}), 504)
    x("chat, a bad TTL header", cc, chat("x"), dict(OPENAI, **{"X-Semcached-TTL": "soon"}), 400)
    x("chat without messages", cc, '{"model":"gpt-4o-mini"}', OPENAI, 400, valid_request=False)
    x("chat, upstream 429 passed through", cc, chat("Too many."), dict(OPENAI, **{"X-Mock-Status": "429"}), 429)
    ck.exchange("namespace that validates", port, "PUT", "/v1/namespaces/sampled",
                '{"sample_rate":1,"delivery":"caller","validation_budget":1}', expect=200)
    sampled = dict(OPENAI, **{"X-Semcached-Namespace": "sampled", "X-Semcached-Threshold": "0.95"})
    x("chat in a sampled namespace", cc, chat("Sampled?"), sampled, 200, "MISS")
    time.sleep(0.2)  # stored, so the next is a hit of its own (not a follower of this miss)
    _, h = x("chat, a sampled hit", cc, chat("Sampled?"), sampled, 200, "HIT", "exact")
    ck.result("a sampled hit names its validation", [] if "x-semcached-validation-id" in h else [str(h)])
    x("responses, a miss", "/v1/responses", '{"model":"gpt-4.1","input":"Name a colour."}', OPENAI, 200, "MISS")
    x("responses, the same", "/v1/responses", '{"model":"gpt-4.1","input":"Name a colour."}', OPENAI, 200,
      "HIT", "exact")
    x("responses, stored upstream", "/v1/responses", '{"model":"gpt-4.1","input":"Keep it.","store":true}',
      OPENAI, 200, "BYPASS")
    x("messages, a miss", "/v1/messages", message("Name a planet."), ANTHROPIC, 200, "MISS")
    x("messages, the same streamed", "/v1/messages", message("Name a planet.", stream=True), ANTHROPIC, 200,
      "HIT", "exact")
    x("messages, only-if-cached", "/v1/messages", message("Never asked."),
      dict(ANTHROPIC, **{"Cache-Control": "only-if-cached"}), 504)
    emb = "/v1/embeddings"
    x("embeddings, a miss", emb, '{"model":"e","input":["one","two"]}', OPENAI, 200, "MISS")
    time.sleep(0.2)  # the answer does not wait for the store's commit
    _, h = x("embeddings, one cached", emb, '{"model":"e","input":["two","three"]}', OPENAI, 200, "MISS")
    ck.result("embeddings: 1/2 inputs cached", [] if h.get("x-semcached-cached-inputs") == "1/2" else [str(h)])
    x("embeddings, all cached", emb, '{"model":"e","input":"one","encoding_format":"base64"}', OPENAI, 200,
      "HIT")
    section = re.search(r"^## Use it as a proxy\n(.*?)^## ", open(readme, encoding="utf-8").read(),
                        re.S | re.M).group(1)
    curls = readme_curls(section, "shell")
    if len(curls) < 4:
        ck.result("README proxy curl examples found", [f"only {len(curls)}"])
    for i, (argv, _) in enumerate(curls, 1):
        method, path, body, headers = curl_request(argv)
        ck.exchange(f"README proxy curl {i}", port, method, path, body, headers, expect=200)


def probe_proxy_errors(ck, down_port, auth_port):
    """502 from an upstream nobody listens on; 401 without X-Semcached-Token."""
    x = ck.exchange
    x("chat, upstream down", down_port, "POST", "/v1/chat/completions", chat("x"), OPENAI, 502)
    x("messages, upstream down", down_port, "POST", "/v1/messages", message("x"), ANTHROPIC, 502)
    x("chat without the token", auth_port, "POST", "/v1/chat/completions", chat("x"), OPENAI, 401)
    x("messages without the token", auth_port, "POST", "/v1/messages", message("x"), ANTHROPIC, 401)


def probe_fleet(ck, server, redis):
    """A fleet node of one (redis-server on loopback); outside a fleet, 404s."""
    x = ck.exchange
    x("checksum outside a fleet", server.port, "GET", "/v1/fleet/checksum", expect=404)
    x("snapshot outside a fleet", server.port, "GET", "/v1/fleet/snapshot", expect=404)
    if redis is None:
        print("SKIP: the fleet endpoints need redis-server")
        ck.skipped += 1
        ck.covered |= {("get", "/v1/fleet/checksum"), ("get", "/v1/fleet/snapshot")}
        return
    node = Server(server.binary, ["--redis", f"redis://127.0.0.1:{redis.port}", "--fleet", "openapi"])
    try:
        x("fleet store", node.port, "POST", "/v1/store", '{"model":"m","prompt":"p","response":1}', expect=201)
        x("fleet checksum", node.port, "GET", "/v1/fleet/checksum", expect=200)
        x("fleet snapshot", node.port, "GET", "/v1/fleet/snapshot", expect=200)
        x("fleet stats", node.port, "GET", "/v1/stats", expect=200)
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True, help="the spec, as JSON (or YAML when PyYAML is there)")
    ap.add_argument("--server", required=True, help="the semcached binary")
    ap.add_argument("--model", required=True, help="the GloVe model the README's examples use")
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    with open(a.spec, encoding="utf-8") as f:
        if a.spec.endswith(".json"):
            doc = json.load(f)
        else:
            import yaml  # only when no JSON bundle was made
            doc = yaml.safe_load(f)
    ck = Checker(Spec(doc), a.verbose)
    servers, helpers = [], []
    try:
        servers.append(Server(a.server, ["--model", a.model, "--upstream-url",
                                         "http://127.0.0.1:9/v1/chat/completions"]))
        replay_readme(ck, servers[0].port, a.readme)
        probe_main(ck, servers[0].port)
        servers.append(Server(a.server, ["--auth-token", "user-token", "--admin-token", "admin-token",
                                         "--max-body-bytes", "1024", "--max-header-bytes", "1024",
                                         "--evict", "none", "--max-entries", "1"]))
        probe_auth(ck, servers[1].port)
        closed = f"http://127.0.0.1:{free_port()}"
        servers.append(Server(a.server, ["--model", f"remote:{closed}", "--openai-base-url", closed + "/v1",
                                         "--anthropic-base-url", closed + "/v1"]))
        probe_remote_down(ck, servers[2].port)
        probe_proxy_errors(ck, servers[2].port, servers[1].port)
        helpers.append(mock_upstream())
        up = f"http://127.0.0.1:{helpers[0].port}/v1"
        servers.append(Server(a.server, ["--model", a.model, "--openai-base-url", up, "--anthropic-base-url", up,
                                          # a fixed threshold (GloVe's default), not the proxy's error budget
                                          "--proxy-max-error-rate", "0"]))
        probe_proxy(ck, servers[3].port, a.readme)
        if shutil.which("redis-server"):
            helpers.append(redis_server())
        probe_fleet(ck, servers[0], helpers[1] if len(helpers) > 1 else None)
        ck.coverage()
    except (RuntimeError, OSError, ValueError) as e:
        ck.result("checker run", [f"{type(e).__name__}: {e}"])
    finally:
        for s in servers + helpers:
            s.stop()
    print(f"SC-RESULT passed={ck.passed} failed={ck.failed} skipped={ck.skipped}")
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
