#!/usr/bin/python3
"""mock_upstream.py -- a stand-in for the OpenAI and Anthropic APIs on
loopback, for tests and benchmarks (python3 standard library; HTTP/1.1
keep-alive; streams as text/event-stream in chunked encoding, one chunk per
event). The answers are built by mock_upstream_apis.py beside it.

API endpoints (any path prefix; OpenAI's error shape unless noted):
  POST /v1/chat/completions  a chat.completion answering the last user
        message (a semcached judge call, recognised by its system prompt, gets
        a verdict instead: mock_upstream_apis.judge_reply); "stream": true gives chat.completion.chunk events (role,
        content pieces, finish, a usage chunk with stream_options.include_usage,
        [DONE]); with "tools" and the trigger word (--tool-word) in the last
        user message, a tool call (streamed as tool-call deltas) instead.
  POST /v1/responses         a Response (output message item, usage), or the
        typed events (response.created ... response.completed) when streamed;
        function_call items under the same tool rule.
  POST /v1/embeddings        deterministic bag-of-words vectors (each
        lower-case word hashes to a signed coordinate; dim 64 or
        "dimensions"), for a string, strings or token arrays, as floats or
        base64 ("encoding_format"), in order, with usage.
  POST /v1/messages          Anthropic: a Message (text or tool_use block),
        or message_start ... message_stop events when streamed; needs the
        anthropic-version header and a key (x-api-key, or "Authorization:
        Bearer" as SDK 1.x sends it; 400/401 in Anthropic's error shape
        otherwise), and model, max_tokens, messages.
  GET  /v1/models[/ID]       OpenAI's list (Anthropic's with anthropic-version).
The answer text is answer_for(last user message): from the labelled pair file
(--pairs, TSV: question1, question2, is_duplicate, with a header line, as
../shared/data/qqp/qqp_dev.tsv) questions linked as duplicates, transitively,
share one answer ("answer-<n>"); every other question gets "answer-<hash>".
So the same request gets the same text; ids and created times differ per call.

Control endpoints: POST /webhook records the body; GET /webhook returns the
records (and empties the list); GET /stats returns {"chat_calls": chat answers
given, "webhook_posts": n, "last_authorization": the Authorization header of
the last chat or webhook call, "requests": n, "calls": {path: n} (every request
but the control endpoints), "last_path", "last_headers" (all, lower-case),
"last_body"}; GET /requests returns the last 256 such requests (method, path,
headers, body), oldest first; POST /reset zeroes all of it.

Options:
  --port N            port (0 = any free port; the chosen one is printed)
  --delay-ms N        wait before answering (to exercise timeouts); with
  --slow-word W       only when an input contains the word W
  --status N          answer every request with this HTTP status
  --require-key K     answer 401 unless "Authorization: Bearer K" (or, for
                      Anthropic, "x-api-key: K")
  --pairs FILE        labelled pairs for the answers
  --chunks N          stream an answer's text in N deltas (default 4)
  --chunk-delay-ms N  wait between streamed events (default 0)
  --tool-word W       the word that triggers a tool call (default "tool")
Request headers (override the options for one request):
  X-Mock-Status N              answer N in the API's error shape (429 adds
                               retry-after: X-Mock-Retry-After, default 1)
  X-Mock-Chunks N              as --chunks
  X-Mock-Chunk-Delay-Ms N      as --chunk-delay-ms
  X-Mock-First-Byte-Delay-Ms N wait N ms before the status line
  X-Mock-Fail-After-Chunks N   close the connection after N events (a JSON
                               answer: after its headers and half its body)
  X-Mock-Answer-Repeat N       chat: the answer text N times, space-separated
                               (a long stream, for flow-control tests)
  X-Mock-Hang 1                accept and never answer (until the client goes)
It prints "READY <port>" once listening and serves until killed."""
import argparse, collections, json, select, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mock_upstream_apis as apis
# The names bench/qqp_replay.py uses (its ground truth is answer_for).
ANSWER, answer_for, load_pairs = apis.ANSWER, apis.answer_for, apis.load_pairs

LOCK = threading.Lock()
WEBHOOK = []
RECENT = collections.deque(maxlen=256)
ARGS = None


def fresh_stats():
    return {"chat_calls": 0, "webhook_posts": 0, "last_authorization": None, "requests": 0,
            "calls": {}, "last_path": None, "last_headers": None, "last_body": None}


STATS = fresh_stats()


class Controls:
    """One request's controls: its X-Mock-* headers, else the options."""

    def __init__(self, headers):
        def num(name, default):
            try:
                return int(headers[name]) if headers.get(name) is not None else default
            except ValueError:
                return default
        self.status = num("X-Mock-Status", ARGS.status)
        self.chunks = max(1, num("X-Mock-Chunks", ARGS.chunks))
        self.chunk_delay_ms = num("X-Mock-Chunk-Delay-Ms", ARGS.chunk_delay_ms)
        self.first_byte_delay_ms = num("X-Mock-First-Byte-Delay-Ms", 0)
        self.fail_after = num("X-Mock-Fail-After-Chunks", None)
        self.retry_after = headers.get("X-Mock-Retry-After", "1")
        self.hang = (headers.get("X-Mock-Hang") or "0").lower() not in ("0", "false", "no")
        self.repeat = max(1, num("X-Mock-Answer-Repeat", 1))


def input_text(kind, req):
    """The text --slow-word looks at."""
    if kind in ("chat", "messages"):
        return apis.last_user_text(req)
    if kind == "responses":
        return apis.responses_input_text(req)
    inputs = req.get("input", [])
    items = inputs if isinstance(inputs, list) else [inputs]
    return " ".join(str(i) for i in items)


def route(path):
    for suffix, kind in (("/chat/completions", "chat"), ("/responses", "responses"),
                         ("/embeddings", "embeddings"), ("/messages", "messages")):
        if path.endswith(suffix):
            return kind
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Each SSE event leaves at once (no Nagle wait behind a delayed ACK).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- writing ----------------------------------------------------------------

    def reply(self, status, obj, headers=(), fail=False):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if fail:
            self.wfile.write(body[:len(body) // 2])
            self.abort()
            return
        self.wfile.write(body)

    def abort(self):
        """Closes the connection where the answer stands (a failure mid-way)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def send_events(self, events, ctl, headers):
        """Server-sent events, one chunk each, after the controls' delays."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        for i, (kind, data) in enumerate(events):
            if ctl.fail_after is not None and i >= ctl.fail_after:
                self.abort()
                return
            if i and ctl.chunk_delay_ms > 0:
                time.sleep(ctl.chunk_delay_ms / 1000.0)
            text = ("event: %s\n" % kind if kind else "") + "data: %s\n\n" % data
            self.write_chunk(text.encode())
        self.write_chunk(b"")

    def answer(self, api, ctl, result):
        """A JSON body (dict) or a stream (list of events), with a request id."""
        rid = apis.new_id("req_")
        headers = [("request-id", rid)] if api == "anthropic" else [("x-request-id", rid),
                                                                     ("openai-processing-ms", "1")]
        if isinstance(result, list):
            self.send_events(result, ctl, headers)
        else:
            self.reply(200, result, headers, fail=ctl.fail_after is not None)

    def api_error(self, api, status, message, ctl=None):
        rid = apis.new_id("req_")
        if api == "anthropic":
            body, headers = apis.anthropic_error(status, message, rid), [("request-id", rid)]
        else:
            body, headers = apis.openai_error(status, message), [("x-request-id", rid)]
        if status == 429:
            headers.append(("retry-after", ctl.retry_after if ctl else "1"))
        self.reply(status, body, headers)

    def hang(self):
        """Never answers: holds the connection until the client closes it
        (at most 10 minutes, so a forgotten client cannot keep the thread)."""
        self.close_connection = True
        end = time.monotonic() + 600
        while time.monotonic() < end:
            ready, _, _ = select.select([self.connection], [], [], 1.0)
            if ready:
                try:
                    if not self.connection.recv(65536):
                        return
                except OSError:
                    return

    # ---- reading ---------------------------------------------------------------------

    def read_body(self):
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def record(self, path, body):
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            STATS["requests"] += 1
            STATS["calls"][path] = STATS["calls"].get(path, 0) + 1
            STATS["last_path"], STATS["last_headers"], STATS["last_body"] = path, headers, body
            if path == "/webhook" or path.endswith("/chat/completions"):
                STATS["last_authorization"] = self.headers.get("Authorization")
            RECENT.append({"method": self.command, "path": path, "headers": headers, "body": body})

    def auth_problem(self, api):
        """(status, message) when the request's credentials would be refused."""
        key, bearer = ARGS.require_key, self.headers.get("Authorization")
        if api == "anthropic":
            # SDK 1.x sends its key as a bearer token, older ones as x-api-key.
            given = self.headers.get("x-api-key") or (bearer[7:] if bearer and bearer.startswith("Bearer ") else "")
            if not self.headers.get("anthropic-version"):
                return 400, "anthropic-version: header is required"
            if not given:
                return 401, "x-api-key header is required"
            if key and given != key:
                return 401, "invalid x-api-key"
        elif key and bearer != "Bearer " + key:
            return 401, "bad key: Incorrect API key provided"
        return None

    def preflight(self, api, text, ctl):
        """The controls that come before an answer: hang, delays, credentials,
        forced status. True when the request has been dealt with."""
        if ctl.hang:
            self.hang()
            return True
        if ARGS.delay_ms and (not ARGS.slow_word or ARGS.slow_word in text.lower().split()):
            time.sleep(ARGS.delay_ms / 1000.0)
        if ctl.first_byte_delay_ms > 0:
            time.sleep(ctl.first_byte_delay_ms / 1000.0)
        problem = self.auth_problem(api)
        if problem:
            self.api_error(api, problem[0], problem[1])
            return True
        if ctl.status != 200:
            self.api_error(api, ctl.status, "configured failure", ctl)
            return True
        return False

    # ---- methods ---------------------------------------------------------------------------

    def do_GET(self):
        self.guarded(self.get)

    def do_POST(self):
        self.guarded(self.post)

    def guarded(self, method):
        try:
            method()
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            self.close_connection = True

    def get(self):
        path = self.path.split("?", 1)[0]
        if path in ("/stats", "/requests", "/webhook"):
            with LOCK:
                if path == "/stats":
                    out = json.loads(json.dumps(STATS))
                elif path == "/requests":
                    out = list(RECENT)
                else:
                    out = list(WEBHOOK)
                    WEBHOOK.clear()
            return self.reply(200, out)
        self.record(path, None)
        api = "anthropic" if self.headers.get("anthropic-version") else "openai"
        ctl = Controls(self.headers)
        if "/models" not in path:
            return self.api_error(api, 404, "Unknown request URL: GET %s" % path)
        if self.preflight(api, "", ctl):
            return
        listing = apis.models(api == "anthropic")
        if path.endswith("/models"):
            return self.answer(api, ctl, listing)
        one = [m for m in listing["data"] if m["id"] == path.rsplit("/", 1)[1]]
        if not one:
            return self.api_error(api, 404, "The model does not exist")
        return self.answer(api, ctl, one[0])

    def post(self):
        path = self.path.split("?", 1)[0]
        raw = self.read_body()
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = None
        if path == "/reset":
            with LOCK:
                STATS.clear()
                STATS.update(fresh_stats())
                RECENT.clear()
                WEBHOOK.clear()
            return self.reply(200, {"ok": True})
        self.record(path, req if req is not None else raw.decode("utf-8", "replace"))
        if path == "/webhook":
            with LOCK:
                WEBHOOK.append(req)
                STATS["webhook_posts"] += 1
            if ARGS.status != 200:
                return self.api_error("openai", ARGS.status, "configured failure")
            return self.reply(200, {"ok": True})
        kind = route(path)
        api = "anthropic" if kind == "messages" else "openai"
        if kind is None:
            return self.api_error(api, 404, "Unknown request URL: POST %s" % path)
        if not isinstance(req, dict):
            return self.api_error(api, 400, "We could not parse the JSON body of your request.")
        ctl = Controls(self.headers)
        if self.preflight(api, input_text(kind, req), ctl):
            return
        stream = req.get("stream") is True
        if kind == "chat":
            with LOCK:
                STATS["chat_calls"] += 1
            opts = argparse.Namespace(**vars(ARGS), repeat=ctl.repeat)
            result = apis.chat_chunks(req, opts, ctl.chunks) if stream else apis.chat_completion(req, opts)
        elif kind == "responses":
            result = apis.responses_events(req, ARGS, ctl.chunks) if stream else apis.response(req, ARGS)
        elif kind == "embeddings":
            result = apis.embeddings(req)
        else:
            problem = apis.message_request_problem(req)
            if problem:
                return self.api_error(api, 400, problem)
            result = apis.message_events(req, ARGS, ctl.chunks) if stream else apis.message(req, ARGS)
        self.answer(api, ctl, result)


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # a proxy under test may open many connections at once
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gives up (a timeout, a cut stream) is part of the tests.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    global ARGS
    p = argparse.ArgumentParser(description="OpenAI/Anthropic stand-in for tests (see the file's header)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--slow-word", default="")
    p.add_argument("--require-key", default="")
    p.add_argument("--pairs", default="")
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--chunk-delay-ms", type=int, default=0)
    p.add_argument("--tool-word", default="tool")
    ARGS = p.parse_args()
    if ARGS.pairs:
        ANSWER.update(load_pairs(ARGS.pairs))
    server = Server(("127.0.0.1", ARGS.port), Handler)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
