#!/usr/bin/env bash
# readme_proxy.sh -- runs the examples of README.md's "Use it as a proxy"
# section as printed (but for the port, and fake keys in OPENAI_API_KEY and
# ANTHROPIC_API_KEY) against semcached in front of tests/mock_upstream.py:
# every curl of its ```shell block, checked against the "# ..." lines printed
# under it, and every ```js block, run with node from the repository (so the
# SDKs in node_modules resolve). The ```python block is not run (no PyPI on
# the test machines). Prints the SC-RESULT line tests/run.sh adds up.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
. tests/harness.bash
harness_init sc-readme-proxy
start_mock
port=$(free_port)
"$BUILD/semcached" --port "$port" --data-dir "$tmp/data" --log-level warn \
  --openai-base-url "http://127.0.0.1:$mock/v1" --anthropic-base-url "http://127.0.0.1:$mock/v1" \
  >"$tmp/semcached.log" 2>&1 &
pids+=($!)
wait_ready "$port" semcached
node=0
command -v node >/dev/null && [ -f node_modules/openai/package.json ] &&
  [ -f node_modules/@anthropic-ai/sdk/package.json ] && node=1
OPENAI_API_KEY=sk-readme-openai ANTHROPIC_API_KEY=sk-readme-anthropic \
python3 - "$port" "$node" <<'PY'
import os, re, shlex, subprocess, sys
port, node = sys.argv[1], sys.argv[2] == "1"
text = open("README.md", encoding="utf-8").read()
section = re.search(r"^## Use it as a proxy\n(.*?)^## ", text, re.S | re.M).group(1)
blocks = lambda lang: re.findall(r"^```" + lang + r"\n(.*?)^```", section, re.S | re.M)
here = lambda s: s.replace("localhost:8080", "127.0.0.1:" + port)
passed = failed = skipped = 0

def check(name, ok, out):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: README proxy example %s:\n%s" % (name, out[-1500:]))

# curl: each command, then the "# ..." lines right under it (no blank line
# between) are expected in its output; other comments introduce the next one.
examples, buf, under = [], "", False
for line in blocks("shell")[0].splitlines() if blocks("shell") else []:
    if not buf and line.startswith("#"):
        if examples and under:
            examples[-1][1].append(line[1:].strip())
        continue
    if not buf and not line.strip():
        under = False
        continue
    buf += line + "\n"
    if line.endswith("\\"):
        continue
    try:
        shlex.split(buf.replace("\\\n", " "))
    except ValueError:
        continue
    examples.append((buf, []))
    buf, under = "", True
if len(examples) < 4:
    check("curl examples found", False, "only %d curl examples" % len(examples))
for i, (cmd, want) in enumerate(examples, 1):
    out = subprocess.run(["bash", "-c", here(cmd)], capture_output=True, text=True, timeout=30).stdout
    check("curl %d" % i, want and all(w in out for w in want), cmd + "->\n" + out)

# Node: each block as a module next to node_modules; what it prints is checked.
js = blocks("js")
wants = [["answer-", "HIT"], ["answer-"]]
if len(js) != len(wants):
    check("js examples found", False, "%d js blocks, expected %d" % (len(js), len(wants)))
for i, code in enumerate(js, 1):
    if not node:
        print("SKIP: README proxy js %d needs node and node_modules (make deps-node)" % i)
        skipped += 1
        continue
    path = "tests/.readme-proxy-%d-%d.mjs" % (os.getpid(), i)
    open(path, "w").write(here(code))
    try:
        r = subprocess.run(["node", path], capture_output=True, text=True, timeout=60)
    finally:
        os.remove(path)
    check("js %d" % i, r.returncode == 0 and all(w in r.stdout for w in wants[i - 1]),
          code + "->\n" + r.stdout + r.stderr)
print("SC-RESULT passed=%d failed=%d skipped=%d" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PY
