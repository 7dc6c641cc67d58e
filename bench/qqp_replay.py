#!/usr/bin/python3
"""qqp_replay.py -- replays a labelled pair file (../shared/data/qqp/qqp_dev.tsv)
as traffic through the real server, against the mock upstream
(tests/mock_upstream.py), and measures the true hit and false-hit rates.

For each pair, in a fixed shuffled order: store the first question with the
model's answer, look up the second; a hit is correct when its answer is the
second question's own (the mock gives duplicates, transitively, one answer);
a miss is followed by storing the second question, as an application would.
Each policy runs on a fresh server and data directory:
  fixed:T    namespace threshold T, no validation
  budget:E   max_error_rate E, delivery "upstream" (the server re-infers
             sampled hits and explorations against the mock)
Prints one JSON line per policy: lookups, exact and semantic hits, wrong hits,
the true false-hit rate of semantic hits (overall, and in the second half of
the replay, after the error-budget mode's warm-up), upstream calls per 1,000
lookups, and (budget) the server's own estimate and learned threshold.

usage: qqp_replay.py SERVER_BIN MODEL PAIRS_TSV N_PAIRS POLICY [POLICY...]
       qqp_replay.py SERVER_BIN MODEL PAIRS_TSV N_PAIRS --proxy PPOLICY [PPOLICY...]
       qqp_replay.py SERVER_BIN topics - N_LOOKUPS POLICY [POLICY...]

The --proxy form sends both questions of each pair, in order, through the
proxy (POST /v1/chat/completions, namespace "qqp") to the mock upstream,
as an application that only knows the OpenAI API would; every request is a
lookup, and every model call is counted at the mock: the clients' misses plus
the server's own validation re-inferences. PPOLICY is one of
  nocache       Cache-Control: no-store, no-cache on every request
  exact         namespace "semantic": false
  fixed:default the model's default threshold, set explicitly
  fixed:T       namespace threshold T
                (fixed thresholds with delivery "upstream": sampled hits are
                re-inferred through the proxy's upstream, and counted)
  budget:default nothing set: the proxy's default (--proxy-max-error-rate)
  budget:E      namespace max_error_rate E
and prints per policy: lookups, hits, wrong hits, model calls per 1,000
lookups (and how many of them were paid validations), the server's estimate,
learned threshold, observations and the validation spend.

The second form replays a synthetic stream whose embedding geometry is known
(as tests/integration/budget.c): 100 pairs of sibling topics in 32
dimensions (siblings' centres at cosine ~0.9, different answers), rewordings
of a topic at cosine ~0.86 to each other. Vectors come from the client and
validation is by the caller (this script plays the application: it re-infers
sampled hits, i.e. reports the true answer, and stores after every miss,
which settles explorations at no extra inference)."""
import http.client, json, os, random, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import mock_upstream  # noqa: E402  (its answers are the ground truth)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        self.c.request(method, path, data, {"Content-Type": "application/json"} if data else {})
        r = self.c.getresponse()
        out = r.read()
        return r.status, (json.loads(out) if out else None)


def wait_ready(port, proc):
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("server exited early")
        try:
            st, _ = Client(port).call("GET", "/readyz")
            if st == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("server not ready")


def load_pairs(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            r = line.rstrip("\n").split("\t")
            if len(r) >= 3 and r[0].strip() and r[1].strip():
                rows.append((r[0].strip(), r[1].strip()))
    random.Random(1).shuffle(rows)
    return rows


def with_budget_fields(out, kind, q):
    """Adds the server's own view of a budget namespace: its estimate, the
    learned threshold and how much it explored."""
    if kind == "budget":
        out["server_estimate"] = q.get("semantic_false_hit_rate")
        out["server_estimate_upper"] = q.get("semantic_false_hit_rate_upper")
        out["learned_threshold"] = q.get("learned_threshold")
        out["explored"] = q.get("explored")
    return out


def stop_server(proc, data):
    proc.terminate()
    proc.wait()
    subprocess.run(["rm", "-rf", data])


def completion(text):
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def run_policy(server_bin, model, pairs_tsv, pairs, policy, mock_port):
    kind, value = policy.split(":")
    port = free_port()
    data = tempfile.mkdtemp(prefix="sc-replay-")
    args = [server_bin, "--port", str(port), "--data-dir", data, "--model", model,
            "--sync", "none", "--threads", "1", "--sample-rate", "0", "--validate-first", "0",
            "--upstream-url", "http://127.0.0.1:%d/v1/chat/completions" % mock_port,
            "--upstream-concurrency", "4", "--log-level", "warn"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        c = Client(port)
        if kind == "fixed":
            ns = {"threshold": float(value), "sample_rate": 0}
        else:
            ns = {"max_error_rate": float(value), "threshold": None, "delivery": "upstream",
                  "sample_rate": 0.05, "explore_rate": 0.3, "explore_floor": 0.5}
        st, _ = c.call("PUT", "/v1/namespaces/qqp", ns)
        assert st == 200, st
        calls0 = Client(mock_port).call("GET", "/stats")[1]["chat_calls"]
        lookups = exact = semantic = wrong = late = late_wrong = 0
        t0 = time.time()
        for q1, q2 in pairs:
            st, _ = c.call("POST", "/v1/store", {"namespace": "qqp", "model": "m", "prompt": q1,
                                                 "response": completion(mock_upstream.answer_for(q1))})
            assert st == 201, st
            st, r = c.call("POST", "/v1/lookup", {"namespace": "qqp", "model": "m", "prompt": q2})
            assert st == 200, st
            lookups += 1
            if r["status"] == "hit":
                if r["match"] == "exact":
                    exact += 1
                    continue
                semantic += 1
                served = r["response"]["choices"][0]["message"]["content"]
                bad = served != mock_upstream.answer_for(q2)
                wrong += bad
                if lookups > len(pairs) // 2:  # after warm-up: the second half
                    late += 1
                    late_wrong += bad
            else:
                st, _ = c.call("POST", "/v1/store", {"namespace": "qqp", "model": "m", "prompt": q2,
                                                     "response": completion(mock_upstream.answer_for(q2))})
                assert st == 201, st
        elapsed = time.time() - t0
        time.sleep(1.0)  # the last re-inferences land
        calls = Client(mock_port).call("GET", "/stats")[1]["chat_calls"] - calls0
        q = c.call("GET", "/v1/namespaces/qqp")[1]["quality"]
        out = {"model": os.path.basename(model.rstrip("/")), "policy": policy, "lookups": lookups,
               "exact_hits": exact, "semantic_hits": semantic, "wrong": wrong,
               "hit_rate": round((exact + semantic) / lookups, 4),
               "semantic_hit_rate": round(semantic / lookups, 4),
               "false_hit_rate": round(wrong / semantic, 4) if semantic else 0.0,
               "late_semantic_hit_rate": round(late / (lookups - lookups // 2), 4),
               "late_false_hit_rate": round(late_wrong / late, 4) if late else 0.0,
               "reinferences_per_1000": round(1000.0 * calls / lookups, 1),
               "seconds": round(elapsed, 1)}
        return with_budget_fields(out, kind, q)
    finally:
        stop_server(proc, data)


def proxy_call(conn, question, headers):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": question}]})
    conn.request("POST", "/v1/chat/completions", body, headers)
    r = conn.getresponse()
    out = json.loads(r.read())
    return r.status, r.getheader("X-Cache"), r.getheader("X-Semcached-Match"), out


def run_proxy_policy(server_bin, model, pairs, policy, mock_port, extra_args=()):
    kind, _, value = policy.partition(":")
    port = free_port()
    data = tempfile.mkdtemp(prefix="sc-replay-")
    args = [server_bin, "--port", str(port), "--data-dir", data, "--model", model,
            "--sync", "none", "--threads", "1", "--proxy-tenant", "none",
            "--openai-base-url", "http://127.0.0.1:%d/v1" % mock_port, "--log-level", "warn",
            # lets a namespace say delivery "upstream" (proxied hits go to the proxy's upstream)
            "--upstream-url", "http://127.0.0.1:%d/v1/chat/completions" % mock_port]
    proc = subprocess.Popen(args + list(extra_args), stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        c = Client(port)
        ns = None
        if kind == "exact":
            ns = {"semantic": False}
        elif kind == "fixed":
            t = c.call("GET", "/v1/namespaces/qqp")[1]["settings"]["threshold"]
            ns = {"threshold": float(t if value == "default" else value), "delivery": "upstream"}
        elif kind == "budget" and value != "default":
            ns = {"max_error_rate": float(value)}
        if ns is not None:
            st, _ = c.call("PUT", "/v1/namespaces/qqp", ns)
            assert st == 200, st
        headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-replay",
                   "X-Semcached-Namespace": "qqp"}
        if kind == "nocache":
            headers["Cache-Control"] = "no-store, no-cache"
        calls0 = Client(mock_port).call("GET", "/stats")[1]["chat_calls"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        lookups = misses = exact = semantic = wrong = late = late_wrong = 0
        t0 = time.time()
        for q1, q2 in pairs:
            for q in (q1, q2):
                st, cache, match, out = proxy_call(conn, q, headers)
                assert st == 200, (st, out)
                lookups += 1
                if cache != "HIT":
                    misses += 1
                    continue
                if match == "exact":
                    exact += 1
                    continue
                semantic += 1
                bad = out["choices"][0]["message"]["content"] != mock_upstream.answer_for(q)
                wrong += bad
                if lookups > len(pairs):  # the second half of the replay
                    late += 1
                    late_wrong += bad
        elapsed = time.time() - t0
        time.sleep(1.0)  # the last re-inferences land
        calls = Client(mock_port).call("GET", "/stats")[1]["chat_calls"] - calls0
        # a fresh connection: the first one idled through the replay
        q = Client(port).call("GET", "/v1/namespaces/qqp")[1].get("quality", {})
        spend = q.get("validation_spend", {})
        return {"model": os.path.basename(model.rstrip("/")), "policy": "proxy " + policy,
                "lookups": lookups, "exact_hits": exact, "semantic_hits": semantic, "wrong": wrong,
                "false_hit_rate": round(wrong / semantic, 4) if semantic else 0.0,
                "late_semantic_hits": late, "late_false_hit_rate": round(late_wrong / late, 4) if late else 0.0,
                "model_calls_per_1000": round(1000.0 * calls / lookups, 1),
                "paid_validations_per_1000": round(1000.0 * (calls - misses) / lookups, 1),
                "server_estimate": q.get("semantic_false_hit_rate"),
                "learned_threshold": q.get("learned_threshold"),
                "budget_observations": q.get("budget_observations"),
                "observed": q.get("observed"), "observed_wrong": q.get("observed_wrong"),
                "paid": spend.get("paid"), "paused": spend.get("paused"),
                "seconds": round(elapsed, 1)}
    finally:
        stop_server(proc, data)


def run_topics(server_bin, n, policy):
    import numpy as np
    rng = np.random.default_rng(1)
    dim, topics = 32, 200

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    centre = np.zeros((topics, dim))
    centre[0::2] = unit(rng.standard_normal((topics // 2, dim)))
    centre[1::2] = unit(centre[0::2] + 0.5 * rng.standard_normal((topics // 2, dim)) / np.sqrt(dim))
    kind, value = policy.split(":")
    port = free_port()
    data = tempfile.mkdtemp(prefix="sc-replay-")
    proc = subprocess.Popen([server_bin, "--port", str(port), "--data-dir", data, "--sync", "none",
                             "--threads", "1", "--validate-first", "0", "--log-level", "warn"],
                            stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        c = Client(port)
        ns = ({"threshold": float(value), "sample_rate": 0} if kind == "fixed" else
              {"max_error_rate": float(value), "threshold": None, "sample_rate": 0.05,
               "explore_rate": 0.3, "explore_floor": 0.5})
        assert c.call("PUT", "/v1/namespaces/t", ns)[0] == 200
        hits = wrong = reinfer = late = late_wrong = 0
        first_hit = first_hit_paid = None  # when the learned threshold first served, and its cost
        for i in range(n):
            t = int(rng.integers(topics))
            v = unit(centre[t] + 0.4 * rng.standard_normal(dim) / np.sqrt(dim))
            req = {"namespace": "t", "model": "m", "prompt": "q%d" % i, "embedding": [round(float(x), 6) for x in v]}
            st, r = c.call("POST", "/v1/lookup", req)
            truth = "topic-%d" % t
            if r["status"] == "hit":
                if first_hit is None:
                    first_hit, first_hit_paid = i, reinfer
                hits += 1
                bad = r["response"] != truth
                wrong += bad
                if i >= n // 2:
                    late += 1
                    late_wrong += bad
                if r.get("validate"):
                    reinfer += 1
                    c.call("POST", "/v1/feedback", {"validation_id": r["validation_id"], "fresh_response": truth})
            else:
                req["response"] = truth
                assert c.call("POST", "/v1/store", req)[0] == 201
        q = c.call("GET", "/v1/namespaces/t")[1]["quality"]
        out = {"model": "topics (client vectors)", "policy": policy, "lookups": n, "exact_hits": 0,
               "semantic_hits": hits, "wrong": wrong, "hit_rate": round(hits / n, 4),
               "semantic_hit_rate": round(hits / n, 4),
               "false_hit_rate": round(wrong / hits, 4) if hits else 0.0,
               "late_semantic_hit_rate": round(late / (n - n // 2), 4),
               "late_false_hit_rate": round(late_wrong / late, 4) if late else 0.0,
               "reinferences_per_1000": round(1000.0 * reinfer / n, 1),
               "first_hit_at": first_hit, "reinferences_before_first_hit": first_hit_paid}
        return with_budget_fields(out, kind, q)
    finally:
        stop_server(proc, data)


def main():
    if len(sys.argv) < 6:
        raise SystemExit(__doc__)
    if sys.argv[2] == "topics":
        for policy in sys.argv[5:]:
            print(json.dumps(run_topics(sys.argv[1], int(sys.argv[4]), policy)), flush=True)
        return
    server_bin, model, pairs_tsv, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    mock_upstream.ANSWER.update(mock_upstream.load_pairs(pairs_tsv))
    pairs = load_pairs(pairs_tsv)[:n]
    mock = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(mock_upstream.__file__),
                                                                 "mock_upstream.py"), "--pairs", pairs_tsv],
                            stdout=subprocess.PIPE, text=True)
    try:
        mock_port = int(mock.stdout.readline().split()[1])
        if sys.argv[5] == "--proxy":
            for policy in sys.argv[6:]:
                print(json.dumps(run_proxy_policy(server_bin, model, pairs, policy, mock_port)), flush=True)
            return
        for policy in sys.argv[5:]:
            print(json.dumps(run_policy(server_bin, model, pairs_tsv, pairs, policy, mock_port)), flush=True)
    finally:
        mock.kill()
        mock.wait()


if __name__ == "__main__":
    main()
