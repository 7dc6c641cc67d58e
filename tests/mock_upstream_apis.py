"""mock_upstream_apis.py -- the answers of tests/mock_upstream.py: pure
functions from a parsed request to a JSON body or to a list of server-sent
events, in the shapes the official SDKs parse (OpenAI Chat Completions,
Responses, Embeddings, Models; Anthropic Messages, Models; both error shapes).
The text of an answer is a function of the request alone (answer_for of the
last user message); only ids and timestamps change from call to call."""
import base64, csv, hashlib, json, math, re, secrets, struct, time

ANSWER = {}  # question text -> answer (from --pairs)
DIM = 64


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


def embed(text, dim=DIM):
    """Bag of words: each lower-case word hashes to a signed coordinate."""
    v = [0.0] * dim
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        h = hashlib.sha256(w.encode()).digest()
        v[h[0] % dim] += 1.0 if h[1] & 1 else -1.0
    if not any(v):
        v[0] = 1.0
    return v


def new_id(prefix):
    return prefix + secrets.token_hex(12)


def count_tokens(text):
    """A stand-in tokenizer (words and punctuation), the same for every API."""
    return len(re.findall(r"\w+|[^\w\s]", text or ""))


def split_chunks(text, n):
    """'text' in at most n pieces of near-equal length (one piece if empty)."""
    if not text:
        return [""]
    size = max(1, math.ceil(len(text) / max(1, n)))
    return [text[i:i + size] for i in range(0, len(text), size)]


def content_text(c):
    """The text of a message content: a string or a list of text parts."""
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return " ".join(p.get("text", "") for p in c if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def last_user_text(req):
    """The last user message of a Chat Completions or Messages request."""
    for m in reversed(req.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            return content_text(m.get("content"))
    return ""


def responses_input_text(req):
    """The last user input of a Responses request (a string or input items)."""
    inp = req.get("input")
    if isinstance(inp, str):
        return inp
    for item in reversed(inp if isinstance(inp, list) else []):
        if isinstance(item, dict) and item.get("role", "user") == "user" and "content" in item:
            return content_text(item.get("content"))
    return ""


def prompt_tokens(req):
    """Tokens of everything the caller sent as text (system, messages, input)."""
    parts = [content_text(req.get("system")), req.get("instructions") or ""]
    parts += [content_text(m.get("content")) for m in req.get("messages") or [] if isinstance(m, dict)]
    inp = req.get("input")
    if isinstance(inp, str):
        parts.append(inp)
    elif isinstance(inp, list):
        parts += [content_text(i.get("content")) for i in inp if isinstance(i, dict)]
    return sum(count_tokens(p) for p in parts if isinstance(p, str))


# ---- tool calls ---------------------------------------------------------------

def tool_defs(req):
    """(name, JSON schema) of each function tool, in any of the three shapes."""
    out = []
    for t in req.get("tools") or []:
        if not isinstance(t, dict):
            continue
        if isinstance(t.get("function"), dict):  # chat: {"type": "function", "function": {...}}
            out.append((t["function"].get("name", ""), t["function"].get("parameters") or {}))
        elif t.get("type") == "function":  # responses: {"type": "function", "name", "parameters"}
            out.append((t.get("name", ""), t.get("parameters") or {}))
        elif "input_schema" in t:  # anthropic: {"name", "input_schema"}
            out.append((t.get("name", ""), t.get("input_schema") or {}))
    return out


def pick_tool(req, text, word):
    """(name, arguments JSON) when the request offers tools, does not forbid
    them, and the user text holds the trigger word; else None. The tool named
    in the text wins, else the first; each argument is filled from the text."""
    tools = tool_defs(req)
    choice = req.get("tool_choice")
    if not tools or choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    if word.lower() not in re.findall(r"[a-z0-9_]+", text.lower()):
        return None
    name, schema = next(((n, s) for n, s in tools if n and n.lower() in text.lower()), tools[0])
    args = {}
    for prop, spec in (schema.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and spec.get("enum"):
            args[prop] = spec["enum"][0]
        else:
            args[prop] = {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind, text)
    return name, json.dumps(args, separators=(",", ":"))


# ---- errors ---------------------------------------------------------------------

OPENAI_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
                 403: ("permission_error", None), 404: ("invalid_request_error", "not_found"),
                 429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None),
                 503: ("server_error", "service_unavailable")}
ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def openai_error(status, message, param=None):
    kind, code = OPENAI_ERRORS.get(status, ("invalid_request_error" if status < 500 else "server_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def anthropic_error(status, message, request_id):
    kind = ANTHROPIC_ERRORS.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


# ---- OpenAI ------------------------------------------------------------------------

def chat_usage(req, completion):
    p = prompt_tokens(req)
    c = count_tokens(completion)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


JUDGE_PROMPT = "You check a response cache."


def judge_reply(req):
    """The verdict of a semcached judge call (system message = its fixed
    prompt), or None for any other request. Deterministic: a marker anywhere
    in the user message decides ("judge:same" -> SAME, "judge:different" ->
    DIFFERENT, "judge:garbage" -> a chatty reply that is not a verdict);
    without one, SAME when both answers start with the same word (lower-case,
    letters and digits), DIFFERENT otherwise."""
    msgs = req.get("messages") or []
    if not (msgs and isinstance(msgs[0], dict) and msgs[0].get("role") == "system"
            and content_text(msgs[0].get("content")).startswith(JUDGE_PROMPT)):
        return None
    text = last_user_text(req)
    for marker, reply in (("judge:garbage", "I think they are the SAME."),
                          ("judge:different", "DIFFERENT"), ("judge:same", "SAME")):
        if marker in text:
            return reply
    def first_word(tag):
        m = re.search("<%s>\\n(.*?)\\n</%s>" % (tag, tag), text, re.S)
        words = re.findall("[a-z0-9]+", m.group(1).lower()) if m else []
        return words[0] if words else None
    a, b = first_word("answer_a"), first_word("answer_b")
    return "SAME" if a is not None and a == b else "DIFFERENT"


def chat_completion(req, opts):
    """A chat.completion: the answer, a judge's verdict (judge_reply), or a
    tool call when one is triggered."""
    text = last_user_text(req)
    tool = pick_tool(req, text, opts.tool_word)
    verdict = judge_reply(req)
    if verdict is not None:
        message = {"role": "assistant", "content": verdict, "refusal": None, "annotations": []}
        finish, out = "stop", verdict
    elif tool:
        message = {"role": "assistant", "content": None, "refusal": None, "annotations": [],
                   "tool_calls": [{"id": new_id("call_"), "type": "function",
                                   "function": {"name": tool[0], "arguments": tool[1]}}]}
        finish, out = "tool_calls", tool[1]
    else:
        out = " ".join([answer_for(text)] * getattr(opts, "repeat", 1))
        message = {"role": "assistant", "content": out, "refusal": None, "annotations": []}
        finish = "stop"
    return {"id": new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model"), "system_fingerprint": "fp_mock", "service_tier": "default",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": chat_usage(req, out)}


def chat_chunks(req, opts, n_chunks):
    """The streamed form of chat_completion: (None, data) events ending in [DONE]."""
    whole = chat_completion(req, opts)
    msg = whole["choices"][0]["message"]
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    head = {k: whole[k] for k in ("id", "object", "created", "model", "system_fingerprint", "service_tier")}
    head["object"] = "chat.completion.chunk"
    events = []

    def chunk(delta, finish=None):
        c = dict(head, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        if include_usage:
            c["usage"] = None
        events.append(c)

    if msg.get("tool_calls"):
        call = msg["tool_calls"][0]
        chunk({"role": "assistant", "content": None, "refusal": None,
               "tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                               "function": {"name": call["function"]["name"], "arguments": ""}}]})
        for piece in split_chunks(call["function"]["arguments"], n_chunks):
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    else:
        chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in split_chunks(msg["content"], n_chunks):
            chunk({"content": piece})
    chunk({}, whole["choices"][0]["finish_reason"])
    if include_usage:
        events.append(dict(head, choices=[], usage=whole["usage"]))
    return [(None, json.dumps(e, separators=(",", ":"))) for e in events] + [(None, "[DONE]")]


def response_object(req, rid, created, status, output, usage):
    """The Response resource around 'output' (items) and 'usage'."""
    tools = req.get("tools") or []
    return {"id": rid, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": req.get("instructions"), "max_output_tokens": req.get("max_output_tokens"),
            "model": req.get("model"), "output": output, "parallel_tool_calls": True,
            "previous_response_id": req.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None}, "store": req.get("store", True),
            "temperature": req.get("temperature", 1.0), "text": {"format": {"type": "text"}},
            "tool_choice": req.get("tool_choice", "auto"), "tools": tools, "top_p": req.get("top_p", 1.0),
            "truncation": "disabled", "usage": usage, "user": None, "metadata": req.get("metadata") or {}}


def responses_events(req, opts, n_chunks):
    """The typed events of a streamed Response, numbered by sequence_number;
    the last one (response.completed) holds the whole Response."""
    text = responses_input_text(req)
    tool = pick_tool(req, text, opts.tool_word)
    rid, created = new_id("resp_"), int(time.time())
    events = []

    def ev(kind, **fields):
        events.append((kind, dict(type=kind, sequence_number=len(events), **fields)))

    ev("response.created", response=response_object(req, rid, created, "in_progress", [], None))
    ev("response.in_progress", response=response_object(req, rid, created, "in_progress", [], None))
    if tool:
        iid = new_id("fc_")
        item = {"id": iid, "type": "function_call", "status": "in_progress", "arguments": "",
                "call_id": new_id("call_"), "name": tool[0]}
        ev("response.output_item.added", output_index=0, item=dict(item))
        for piece in split_chunks(tool[1], n_chunks):
            ev("response.function_call_arguments.delta", item_id=iid, output_index=0, delta=piece)
        ev("response.function_call_arguments.done", item_id=iid, output_index=0, name=tool[0], arguments=tool[1])
        item.update(status="completed", arguments=tool[1])
        out = tool[1]
    else:
        out = answer_for(text)
        iid = new_id("msg_")
        item = {"id": iid, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        ev("response.output_item.added", output_index=0, item=dict(item))
        where = {"item_id": iid, "output_index": 0, "content_index": 0}
        ev("response.content_part.added", part={"type": "output_text", "text": "", "annotations": [],
                                                "logprobs": []}, **where)
        for piece in split_chunks(out, n_chunks):
            ev("response.output_text.delta", delta=piece, logprobs=[], **where)
        ev("response.output_text.done", text=out, logprobs=[], **where)
        part = {"type": "output_text", "text": out, "annotations": [], "logprobs": []}
        ev("response.content_part.done", part=part, **where)
        item.update(status="completed", content=[part])
    ev("response.output_item.done", output_index=0, item=item)
    p, c = prompt_tokens(req), count_tokens(out)
    usage = {"input_tokens": p, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": c,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": p + c}
    ev("response.completed", response=response_object(req, rid, created, "completed", [item], usage))
    return [(kind, json.dumps(data, separators=(",", ":"))) for kind, data in events]


def response(req, opts):
    """A non-streamed Response: the last event of the streamed form."""
    return json.loads(responses_events(req, opts, 1)[-1][1])["response"]


def embeddings(req):
    """Embeddings of a string, a list of strings, or token arrays (each token
    id a word), in order, as float lists or base64 little-endian float32."""
    inputs = req.get("input", [])
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    texts = [t if isinstance(t, str) else " ".join("t%d" % i for i in t) for t in inputs]
    dim = req.get("dimensions") if isinstance(req.get("dimensions"), int) and req["dimensions"] > 0 else DIM
    data = []
    for i, t in enumerate(texts):
        v = embed(t, dim)
        if req.get("encoding_format") == "base64":
            v = base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()
        data.append({"object": "embedding", "index": i, "embedding": v})
    n = sum(count_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": req.get("model"),
            "usage": {"prompt_tokens": n, "total_tokens": n}}


MODELS = ["gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "claude-sonnet-4-5", "claude-haiku-4-5"]


def models(anthropic):
    """GET /v1/models in OpenAI's list shape, or Anthropic's when asked with
    an anthropic-version header."""
    if anthropic:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in MODELS if m.startswith("claude")]
        return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"}
                                       for m in MODELS]}


# ---- Anthropic ----------------------------------------------------------------------

def anthropic_usage(input_tokens, output_tokens):
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "service_tier": "standard"}


def message(req, opts):
    """A Message: one text block, or one tool_use block when triggered."""
    text = last_user_text(req)
    tool = pick_tool(req, text, opts.tool_word)
    if tool:
        content = [{"type": "tool_use", "id": new_id("toolu_"), "name": tool[0], "input": json.loads(tool[1])}]
        stop, out = "tool_use", tool[1]
    else:
        out = answer_for(text)
        content = [{"type": "text", "text": out}]
        stop = "end_turn"
    return {"id": new_id("msg_"), "type": "message", "role": "assistant", "model": req.get("model"),
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": anthropic_usage(prompt_tokens(req), count_tokens(out))}


def message_events(req, opts, n_chunks):
    """The streamed form of message(): message_start, content_block_start,
    ping, content_block_delta..., content_block_stop, message_delta (stop
    reason and usage), message_stop."""
    whole = message(req, opts)
    block = whole["content"][0]
    start = dict(whole, content=[], stop_reason=None, stop_sequence=None,
                 usage=anthropic_usage(whole["usage"]["input_tokens"], 1))
    events = [("message_start", {"type": "message_start", "message": start})]
    if block["type"] == "tool_use":
        first = dict(block, input={})
        deltas = [{"type": "input_json_delta", "partial_json": p}
                  for p in split_chunks(json.dumps(block["input"], separators=(",", ":")), n_chunks)]
    else:
        first = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in split_chunks(block["text"], n_chunks)]
    events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": first}))
    events.append(("ping", {"type": "ping"}))
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": whole["usage"]["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return [(kind, json.dumps(data, separators=(",", ":"))) for kind, data in events]


def message_request_problem(req):
    """What Anthropic would reject in a Messages request (400), or None."""
    for field in ("model", "max_tokens", "messages"):
        if field not in req:
            return "%s: Field required" % field
    if not isinstance(req["messages"], list):
        return "messages: Input should be a valid list"
    if not isinstance(req["max_tokens"], int) or req["max_tokens"] < 1:
        return "max_tokens: Input should be a positive integer"
    return None
