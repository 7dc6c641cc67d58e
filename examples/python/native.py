#!/usr/bin/env python3
"""native.py -- semcached's native API from Python's standard library (urllib).

Stores an answer, finds it again exactly and by meaning, sees a miss, then
wraps a (fake) model call in cached_completion(), the lookup -> model ->
store pattern an application writes, answering the validations its
namespace asks for. Each run works in namespaces of its own and removes
them at the end. Exits 1 when an answer is not as expected.

  SEMCACHED_URL          the server (default http://127.0.0.1:8080)
  SEMCACHED_TOKEN        --auth-token, if the server has one
  SEMCACHED_ADMIN_TOKEN  --admin-token (namespace PUT and DELETE), if it has one
"""
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

BASE = os.environ.get("SEMCACHED_URL", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ.get("SEMCACHED_TOKEN", "")
ADMIN_TOKEN = os.environ.get("SEMCACHED_ADMIN_TOKEN", "") or TOKEN
RUN = uuid.uuid4().hex[:8]
NS = "examples-py-" + RUN  # the first part's entries
APP_NS = "examples-py-app-" + RUN  # cached_completion()'s, validated
MODEL = "gpt-4o-mini"


class CacheError(Exception):
    pass


def call(method, path, body=None, token=TOKEN):
    """(status, parsed JSON answer) of one request; errors are problem+json."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (OSError, ValueError) as e:
        raise CacheError(f"{method} {path}: {e}") from e


def expect(what, ok, got=None):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        print("      got:", json.dumps(got)[:300])
        sys.exit(1)


def chat(question, namespace=NS):
    """A request as the native API takes it: the same fields for lookup and store."""
    return {"namespace": namespace, "model": MODEL, "params": {"temperature": 0},
            "messages": [{"role": "user", "content": question}]}


# ---- the fake model and the pattern an application writes ----------------------

model_calls = 0


def fake_model(question):
    """Stands in for the LLM call: (answer, token usage)."""
    global model_calls
    model_calls += 1
    return ({"role": "assistant", "content": "An answer to: " + question},
            {"prompt_tokens": len(question.split()), "completion_tokens": 5})


def cached_completion(question):
    """The answer to 'question': from the cache when it has one, else from the
    model, then stored. A cache that is down or failing only costs a model call."""
    req = chat(question, APP_NS)
    try:
        status, hit = call("POST", "/v1/lookup", req)
    except CacheError:
        status, hit = 0, None
    if status == 200 and hit["status"] == "hit":
        if hit.get("validate"):  # the namespace samples this hit: ask the model too
            fresh, _ = fake_model(question)
            call("POST", "/v1/feedback", {"validation_id": hit["validation_id"],
                                          "fresh_response": fresh})
        return hit["response"]
    answer, usage = fake_model(question)
    try:
        call("POST", "/v1/store", dict(req, response=answer, usage=usage, ttl_s=3600))
    except CacheError:
        pass
    return answer


# ---- the walk-through ---------------------------------------------------------

def main():
    status, ready = call("GET", "/readyz")
    expect(f"{BASE} is ready", status == 200, ready)

    print("\n# store an answer")
    q = "What is the capital of France?"
    answer = {"role": "assistant", "content": "Paris."}
    status, stored = call("POST", "/v1/store", dict(chat(q), response=answer, ttl_s=3600,
                                                   usage={"prompt_tokens": 14, "completion_tokens": 2}))
    expect(f"stored under key {stored.get('key') if stored else None}", status == 201, stored)

    print("\n# the same request, fields in another order and 0.0 for 0: an exact hit")
    status, hit = call("POST", "/v1/lookup", {
        "params": {"temperature": 0.0}, "model": MODEL, "namespace": NS,
        "messages": [{"content": q, "role": "user"}]})
    expect("exact hit with the stored answer",
           status == 200 and hit.get("match") == "exact" and hit.get("key") == stored["key"]
           and hit.get("response") == answer, hit)

    print("\n# the same question in other words: a semantic hit (the server's model)")
    if ready.get("embedders", {}).get("default") != "up":
        print("SKIP: semantic lookup: the server has no --model")
    else:
        status, hit = call("POST", "/v1/lookup", chat("What is France's capital?"))
        expect(f"semantic hit, similarity {hit.get('similarity')} to {hit.get('matched_prompt')!r}",
               status == 200 and hit.get("match") == "semantic" and hit.get("response") == answer, hit)

    print("\n# an unrelated question: a miss, with the key to store under")
    status, miss = call("POST", "/v1/lookup", chat("How tall is Mount Everest?"))
    expect("miss", status == 200 and miss.get("status") == "miss" and len(miss.get("key", "")) == 32, miss)

    print("\n# lookup -> model -> store, in a namespace that validates every hit")
    # A real namespace samples a few hits (sample_rate 0.05, say); 1 shows it here.
    status, ns = call("PUT", f"/v1/namespaces/{APP_NS}",
                      {"sample_rate": 1, "validation_budget": 1, "delivery": "caller",
                       "compare": "normalized"}, ADMIN_TOKEN)
    expect(f"namespace {APP_NS} samples every hit", status == 200, ns)
    first = cached_completion("Name a prime number.")
    expect("first call: a miss, so the model answered", model_calls == 1, model_calls)
    second = cached_completion("Name a prime number.")
    expect("second call: the cached answer", second == first, second)
    expect("the hit was validated against the model (2 model calls)", model_calls == 2, model_calls)
    status, ns = call("GET", f"/v1/namespaces/{APP_NS}")
    quality = (ns or {}).get("quality", {})
    expect(f"namespace quality: {quality.get('validated')} validated, {quality.get('wrong')} wrong",
           status == 200 and quality.get("validated") == 1 and quality.get("wrong") == 0, ns)

    print("\n# stats")
    status, stats = call("GET", "/v1/stats")
    lookups = (stats or {}).get("lookups", {})
    expect(f"{stats.get('entries')} entries, lookups {lookups}, hit rate {stats.get('hit_rate')}",
           status == 200 and lookups.get("exact_hit", 0) >= 2 and lookups.get("miss", 0) >= 2, stats)

    for name in (NS, APP_NS):
        status, gone = call("DELETE", f"/v1/namespaces/{name}", token=ADMIN_TOKEN)
        expect(f"removed namespace {name} ({(gone or {}).get('removed')} entries)", status == 200, gone)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CacheError as e:
        print(f"FAIL  cannot reach semcached: {e}")
        sys.exit(1)
