#!/usr/bin/env python3
"""proxy_latency.py -- what semcached's proxy adds to a miss, measured.

Starts tests/mock_upstream.py and semcached (exact-only, its upstreams the
mock) on free loopback ports, then sends N sequential requests with distinct
prompts (every one a miss, looked up, forwarded, recorded and stored),
alternately straight to the mock and through semcached. Reported:
  * streamed: time from the request's last byte to the first event's first
    byte ("data:"), with X-Mock-First-Byte-Delay-Ms 0 -- the time to first
    token the proxy adds;
  * plain: the whole request, to the end of the body (the store's commit
    follows the answer, so --sync full costs the client nothing).
Standard library only; one connection per request, as an SDK without
keep-alive would. Usage: bench/proxy_latency.py [-n 200] [--sync full|none]
[--json] (--json: one JSON line per kind, for bench/run.sh)
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(port, body, stream):
    """(seconds to the first body event, seconds to the end) for one POST."""
    data = json.dumps(body).encode()
    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nAuthorization: Bearer sk-bench\r\n"
            "X-Mock-First-Byte-Delay-Ms: 0\r\nContent-Length: %d\r\n\r\n" % len(data)).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(head + data)
    t0 = time.perf_counter()
    buf, first = b"", None
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        if first is None and (b"data:" in buf if stream else b"\r\n\r\n" in buf):
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    s.close()
    assert buf.startswith(b"HTTP/1.1 200"), buf[:200]
    return first, total


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--sync", default="full", choices=["full", "periodic", "none"])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sc-proxy-latency-")
    mock = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/mock_upstream.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    mport = int(mock.stdout.readline().split()[1])
    port = free_port()
    base = "http://127.0.0.1:%d/v1" % mport
    sc = subprocess.Popen([os.path.join(a.build, "semcached"), "--port", str(port), "--data-dir", tmp,
                           "--threads", "2", "--log-level", "warn", "--sync", a.sync,
                           "--openai-base-url", base, "--anthropic-base-url", base])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.02)
        run = str(time.time())
        out = {(s, n): ([], []) for s in (True, False) for n in ("direct", "proxy")}
        for stream in (True, False):
            for i in range(a.n):  # A B A B: both sides see the same machine
                for name, p in (("direct", mport), ("proxy", port)):
                    body = {"model": "gpt-4o-mini", "stream": stream,
                            "messages": [{"role": "user", "content": "q %s %s %d %s" % (name, stream, i, run)}]}
                    f, t = request(p, body, stream)
                    out[(stream, name)][0].append(f)
                    out[(stream, name)][1].append(t)
        for stream in (True, False):
            kind = "streamed: first event" if stream else "plain: whole request"
            d, x = out[(stream, "direct")], out[(stream, "proxy")]
            idx = 0 if stream else 1
            dm, xm = statistics.median(d[idx]), statistics.median(x[idx])
            d99, x99 = pct(d[idx], 99), pct(x[idx], 99)
            if a.json:
                print(json.dumps({"name": "proxy_latency_stream_ttfb" if stream else "proxy_latency_plain",
                                  "n": a.n, "sync": a.sync,
                                  "direct_ms": {"p50": dm * 1e3, "p99": d99 * 1e3},
                                  "proxy_ms": {"p50": xm * 1e3, "p99": x99 * 1e3},
                                  "added_ms": {"p50": (xm - dm) * 1e3, "p99": (x99 - d99) * 1e3}}))
                continue
            print("%-24s direct p50 %.3f ms p99 %.3f ms | proxy p50 %.3f ms p99 %.3f ms | added p50 %.3f ms p99 %.3f ms"
                  % (kind, dm * 1e3, d99 * 1e3, xm * 1e3, x99 * 1e3, (xm - dm) * 1e3, (x99 - d99) * 1e3))
    finally:
        sc.terminate()
        mock.terminate()
        sc.wait()
        mock.wait()
        subprocess.call(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
