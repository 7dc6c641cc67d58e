#!/usr/bin/env python3
"""include_graph.py -- proves semcached's layering from the source and the
built objects. Includes are read from every .c/.cc/.h of the layer folders
(and include/<layer>/), resolved the way the Makefile's INC_* paths resolve
them; calls are read with nm from the objects in build/. Both must run
downwards only: core < index, embed < cache < server (index and embed are
siblings that never see each other), and no two modules may need each other.

A module is one .c/.cc file, or several that share a private header named
<dir>/<stem>_internal.h (not under include/): a module split across files by
responsibility, whose files may call each other through that header (the
store's record codec, reads, writer and eviction behind store_internal.h).
Such a group counts as the module <dir>/<stem> in every check.

usage: docs/include_graph.py [--build DIR] [--allow-cycles-in LAYER]...
                             [--markdown | --update docs/architecture.md]
Exit status: 0 clean, 1 a violation, 2 the tree could not be read.
Python 3 standard library only; needs nm (binutils) for the symbol checks.
"""
import argparse
import os
import re
import subprocess
import sys

# The architecture being checked. Same rank = siblings: neither may use the other.
LAYERS = ["core", "index", "embed", "cache", "server"]
RANK = {"core": 0, "index": 1, "embed": 1, "cache": 2, "server": 3}
SOURCE_EXT = (".c", ".cc", ".h")
BEGIN, END = "<!-- include-graph:begin -->", "<!-- include-graph:end -->"

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.M)
# String and character literals are matched first so that "/*" inside one
# does not open a comment; only comments are replaced.
COMMENT_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
WORD_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def fail_setup(msg):
    print("include_graph: " + msg, file=sys.stderr)
    sys.exit(2)


def strip_comments(text):
    """Comments become blank lines (line numbers stay right)."""
    return COMMENT_RE.sub(lambda m: m.group(0) if m.group(0)[0] in "\"'" else
                          "\n" * m.group(0).count("\n"), text)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


# ---- the tree -----------------------------------------------------------

def makefile_include_paths(root):
    """INC_<NAME> -> list of -I directories, $(INC_X) references expanded."""
    raw = {}
    for m in re.finditer(r'^(INC_[A-Z]+)\s*:?=\s*(.*)$', read(os.path.join(root, "Makefile")), re.M):
        raw[m.group(1)] = m.group(2)

    def expand(name, depth=0):
        if depth > 10 or name not in raw:
            fail_setup("Makefile: cannot expand " + name)
        out = []
        for tok in raw[name].split():
            ref = re.fullmatch(r'\$\((INC_[A-Z]+)\)', tok)
            if ref:
                out += expand(ref.group(1), depth + 1)
            elif tok.startswith("-I"):
                out.append(os.path.normpath(tok[2:]))
        return out

    paths = {name: expand(name) for name in raw}
    for layer in LAYERS:
        if "INC_" + layer.upper() not in paths:
            fail_setup("Makefile has no INC_%s" % layer.upper())
    return paths


def layer_of(rel):
    """The layer a repository path belongs to, or None."""
    parts = rel.split("/")
    if parts[0] in LAYERS:
        return parts[0]
    if parts[0] == "include" and len(parts) > 2 and parts[1] in LAYERS:
        return parts[1]
    return None


def source_files(root):
    out = []
    for top in LAYERS + ["include/" + l for l in LAYERS]:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(SOURCE_EXT):
                    out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(set(out))


def resolve(root, rel, kind, name, layer_dirs, all_dirs):
    """Where '#include <kind>name' in 'rel' lands: (path, on_layer_path) or
    (None, False) for a header outside the repository (system, libraries)."""
    here = [os.path.dirname(rel)] if kind == '"' else []
    for dirs, on_path in ((here + layer_dirs, True), (all_dirs, False)):
        for d in dirs:
            cand = os.path.normpath(os.path.join(d, name))
            if os.path.isfile(os.path.join(root, cand)):
                return cand, on_path
    return None, False


def scan_includes(root, files, inc_paths):
    """rel -> [(line, header_rel, on_layer_path)] for project headers."""
    all_dirs = []
    for d in inc_paths.get("INC_ALL", []) + LAYERS + ["include/" + l for l in LAYERS]:
        if d not in all_dirs:
            all_dirs.append(d)
    out = {}
    for rel in files:
        layer_dirs = inc_paths["INC_" + layer_of(rel).upper()]
        text = strip_comments(read(os.path.join(root, rel)))
        found = []
        for m in INCLUDE_RE.finditer(text):
            hdr, on_path = resolve(root, rel, m.group(1), m.group(2), layer_dirs, all_dirs)
            if hdr:
                found.append((text.count("\n", 0, m.start()) + 1, hdr, on_path))
        out[rel] = found
    return out


# file -> module name for files grouped behind a private *_internal.h
# header; filled by group_modules() before any check runs.
GROUP = {}
INTERNAL_RE = re.compile(r'^(.*)_internal\.h$')


def group_modules(includes):
    """Files that include a private <dir>/<stem>_internal.h of their own
    folder form the module <dir>/<stem> (see the module docstring)."""
    for rel, found in includes.items():
        if rel.endswith(".h") or rel.startswith("include/"):
            continue
        for _line, hdr, _on_path in found:
            m = INTERNAL_RE.match(hdr)
            if m and not hdr.startswith("include/") and os.path.dirname(hdr) == os.path.dirname(rel):
                GROUP[rel] = m.group(1)
                break


def module_of(rel):
    """Module name of a .c/.cc file: its path without the extension, or its
    group's name when it sits behind a private *_internal.h header."""
    return GROUP.get(rel, os.path.splitext(rel)[0])


def read_symbols(root, build, modules):
    """module -> (defined set, undefined set) from nm; problems listed."""
    syms, problems = {}, []
    for mod, srcs in sorted(modules.items()):
        defined, undefined = set(), set()
        for src in srcs:
            obj = os.path.join(build, os.path.splitext(src)[0] + ".o")
            if not os.path.isfile(obj):
                problems.append("%s: no object %s (run make all)" % (src, obj))
                continue
            if os.path.getmtime(obj) < os.path.getmtime(os.path.join(root, src)):
                print("include_graph: warning: %s is older than %s; the symbol checks read the "
                      "old code (run make all)" % (obj, src), file=sys.stderr)
            try:
                out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                                     text=True).stdout
            except (OSError, subprocess.CalledProcessError) as e:
                fail_setup("nm %s: %s" % (obj, e))
            for line in out.splitlines():
                f = line.split()
                if len(f) < 2:
                    continue
                name, t = f[0], f[1]
                if t in ("U", "w", "v"):
                    undefined.add(name)
                elif t.isupper():
                    defined.add(name)
        # Calls between the files of one module are the module's own business.
        syms[mod] = (defined, undefined - defined)
    return syms, problems


# ---- graphs -------------------------------------------------------------

def sccs(nodes, edges):
    """Strongly connected components (Tarjan) with more than one node, or
    with a node that reaches itself. edges: node -> iterable of nodes."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                out.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(nodes) + 100))
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(out)


def forbidden(src_layer, dst_layer):
    """Does a dependency of src_layer on dst_layer run the wrong way?"""
    return src_layer != dst_layer and RANK[dst_layer] >= RANK[src_layer]


class Report:
    """Findings by check; each is a violation unless allowed."""

    CHECKS = [
        ("wrong-way includes", "an include from a lower layer (or a sibling) into a higher one"),
        ("private headers", "a header outside include/ used from another layer"),
        ("header include cycles", "headers that include each other"),
        ("module include cycles", "modules that each use, through an include, what the other defines"),
        ("wrong-way calls", "an object using a symbol defined only in a higher layer (or a sibling)"),
        ("module call cycles", "modules that each use a symbol the other defines"),
    ]

    def __init__(self):
        self.found = {name: [] for name, _ in self.CHECKS}
        self.allowed = {name: [] for name, _ in self.CHECKS}
        self.problems = []

    def add(self, check, text, allowed=False):
        (self.allowed if allowed else self.found)[check].append(text)

    def violations(self):
        return sum(len(v) for v in self.found.values()) + len(self.problems)


# ---- the checks -----------------------------------------------------------

def check_includes(includes, report):
    """Folder edges from includes; wrong-way and private-header findings."""
    edges = {}
    for rel, found in sorted(includes.items()):
        src = layer_of(rel)
        for line, hdr, on_path in found:
            dst = layer_of(hdr)
            if dst is None:
                continue
            edges[(src, dst)] = edges.get((src, dst), 0) + 1
            where = "%s:%d includes %s" % (rel, line, hdr)
            if forbidden(src, dst):
                report.add("wrong-way includes", "%s: %s must not depend on %s" % (where, src, dst))
            elif src != dst and not hdr.startswith("include/"):
                report.add("private headers", "%s: a private header of %s" % (where, dst))
            elif not on_path:
                report.add("private headers", "%s: not on %s's include path (the build would fail)"
                           % (where, src))
    return edges


def header_names(files, syms):
    """header -> {name: modules defining it} for the external names the
    header mentions that some module defines (what it declares). Without
    symbols: one pseudo-name per header, owned by the module of the same
    stem (x.c for x.h or sc_x.h) in the same layer."""
    defined_by = {}
    for mod, (defined, _) in syms.items():
        for s in defined:
            defined_by.setdefault(s, set()).add(mod)
    out = {}
    for hdr in (f for f in files if f.endswith(".h")):
        if syms:
            words = set(WORD_RE.findall(strip_comments(read(hdr))))
            out[hdr] = {w: defined_by[w] for w in words & defined_by.keys()}
        else:
            stem = os.path.basename(hdr)[:-2]
            stem = stem[3:] if stem.startswith("sc_") else stem
            mods = {module_of(f) for f in files if not f.endswith(".h") and
                    layer_of(f) == layer_of(hdr) and os.path.basename(module_of(f)) == stem}
            out[hdr] = {"<%s>" % hdr: mods} if mods else {}
    return out


def reachable_headers(rel, includes):
    """Every project header 'rel' includes, directly or through others."""
    seen, todo = set(), [h for _, h, _ in includes.get(rel, ())]
    while todo:
        h = todo.pop()
        if h not in seen:
            seen.add(h)
            todo += [x for _, x, _ in includes.get(h, ())]
    return sorted(seen)


def names_by_header_are_symbols(hdr_names):
    return not any(n.startswith("<") for names in hdr_names.values() for n in names)


def first(names, n=3):
    """The first n of a list, and how many more."""
    return ", ".join(names[:n]) + (" +%d more" % (len(names) - n) if len(names) > n else "")


def allowed_cycle(comp, allow):
    layers = {layer_of(c) for c in comp}
    return len(layers) == 1 and layers <= allow


def describe_cycle(comp, edges, why):
    """'a -> b (why) -> ...' along the component's edges, one per member."""
    parts, pairs = [], []
    for a in comp:
        for b in comp:
            if b != a and b in edges.get(a, ()):
                parts.append("%s -> %s (%s)" % (a, b, why(a, b)))
                if a < b and a in edges.get(b, ()):
                    pairs.append("%s <-> %s" % (a, b))
    mutual = " [each uses the other: %s]" % ", ".join(pairs) if pairs else ""
    return "{%s}%s: %s" % (", ".join(comp), mutual, "; ".join(parts))


def check_include_cycles(files, includes, hdr_names, allow, report):
    hdr_edges = {}
    for rel in files:
        if rel.endswith(".h"):
            hdr_edges[rel] = {h for _, h, _ in includes[rel]}
    for comp in sccs(hdr_edges.keys(), hdr_edges):
        report.add("header include cycles",
                   describe_cycle(comp, hdr_edges, lambda a, b: "#include"),
                   allowed_cycle(comp, allow))
    # A -> B when A includes (directly or through other headers) a header
    # declaring names B defines and A's own text uses one of them: a header
    # two modules share (sc_index.h for the flat and HNSW indexes) ties them
    # only if one uses the other's part.
    mod_edges, via = {}, {}
    for rel in files:
        if rel.endswith(".h"):
            continue
        a = module_of(rel)
        used = set(WORD_RE.findall(strip_comments(read(rel)))) if names_by_header_are_symbols(hdr_names) else None
        for hdr in reachable_headers(rel, includes):
            for name, definers in hdr_names.get(hdr, {}).items():
                if used is not None and name not in used:
                    continue
                for b in definers - {a}:
                    mod_edges.setdefault(a, set()).add(b)
                    via.setdefault((a, b), set()).add("%s via %s" % (name, os.path.basename(hdr)))
    mods = {module_of(f) for f in files if not f.endswith(".h")}
    for comp in sccs(mods, mod_edges):
        report.add("module include cycles",
                   describe_cycle(comp, mod_edges, lambda a, b: first(sorted(via[(a, b)]))),
                   allowed_cycle(comp, allow))


def check_calls(syms, allow, report):
    """Folder edges from symbols; wrong-way calls and module call cycles."""
    defined_by = {}
    for mod, (defined, _) in syms.items():
        for s in defined:
            defined_by.setdefault(s, set()).add(mod)
    edges, mod_edges, uses = {}, {}, {}
    for mod, (defined, undefined) in sorted(syms.items()):
        src = layer_of(mod)
        for s in sorted(undefined - defined):
            definers = defined_by.get(s)
            if not definers:
                continue  # the C library, libuv, LMDB, ...
            for d in definers:
                edges.setdefault((src, layer_of(d)), set()).add(s)
                mod_edges.setdefault(mod, set()).add(d)
                uses.setdefault((mod, d), []).append(s)
            if all(forbidden(src, layer_of(d)) for d in definers):
                report.add("wrong-way calls", "%s uses %s, defined in %s: %s must not depend on %s"
                           % (mod, s, ", ".join(sorted(definers)), src,
                              ", ".join(sorted({layer_of(d) for d in definers}))))

    for comp in sccs(syms.keys(), mod_edges):
        report.add("module call cycles", describe_cycle(comp, mod_edges, lambda a, b: first(uses[(a, b)])),
                   allowed_cycle(comp, allow))
    return {k: len(v) for k, v in edges.items()}


# ---- output ---------------------------------------------------------------

def layer_pairs(inc_edges, call_edges):
    keys = set(inc_edges) | set(call_edges)
    order = {l: i for i, l in enumerate(LAYERS)}
    return sorted(keys, key=lambda k: (-order[k[0]], -order[k[1]]))


def print_text(inc_edges, call_edges, report, allow, have_syms):
    print("Folder edges (FROM uses TO): #include lines, distinct symbols used")
    print("  %-8s %-8s %9s %8s" % ("FROM", "TO", "includes", "symbols"))
    for src, dst in layer_pairs(inc_edges, call_edges):
        note = "" if src == dst else ("   <-- WRONG WAY" if forbidden(src, dst) else "")
        print("  %-8s %-8s %9d %8s%s" % (src, dst, inc_edges.get((src, dst), 0),
                                         call_edges.get((src, dst), 0) if have_syms else "-", note))
    print()
    for p in report.problems:
        print("ERROR: " + p)
    for name, what in Report.CHECKS:
        if not have_syms and name in ("wrong-way calls", "module call cycles"):
            print("%-24s skipped (--no-symbols)" % (name + ":"))
            continue
        bad, ok = report.found[name], report.allowed[name]
        extra = ", %d allowed in %s" % (len(ok), "/".join(sorted(allow))) if ok else ""
        print("%-24s %d%s  (%s)" % (name + ":", len(bad), extra, what))
        for t in bad:
            print("  VIOLATION: " + t)
        for t in ok:
            print("  allowed:   " + t)
    n = report.violations()
    print()
    print("layers: OK" if n == 0 else "layers: FAILED, %d violation(s)" % n)


def markdown(inc_edges, call_edges, modules, report, allow, have_syms, command):
    out = ["_Generated by `%s` from the sources and the objects in build/; do not edit by "
           "hand._" % command, "",
           "Layers, lowest first: core < index, embed < cache < server (index and embed are "
           "siblings). Per pair of folders: how many `#include` lines in FROM's files resolve "
           "to a header of TO, and how many distinct symbols FROM's objects use that TO's "
           "objects define (nm).", "",
           "| from | to | `#include` lines | symbols used |", "|---|---|--:|--:|"]
    for src, dst in layer_pairs(inc_edges, call_edges):
        out.append("| %s | %s | %d | %s |" % (src, dst, inc_edges.get((src, dst), 0),
                                              call_edges.get((src, dst), 0) if have_syms else "-"))
    out += ["", "```mermaid", "flowchart BT"]
    for layer in LAYERS:
        out.append('  subgraph L_%s ["%s/"]' % (layer, layer))
        for mod in sorted(m for m in modules if layer_of(m) == layer):
            node = re.sub(r'\W', '_', mod)
            out.append('    %s["%s"]' % (node, ", ".join(os.path.basename(f) for f in modules[mod])))
        out.append("  end")
    for src, dst in layer_pairs(inc_edges, call_edges):
        if src != dst:
            label = "%d inc" % inc_edges.get((src, dst), 0)
            if have_syms:
                label += ", %d sym" % call_edges.get((src, dst), 0)
            out.append('  L_%s -->|"%s"| L_%s' % (src, label, dst))
    out += ["```", ""]
    total_ok = sum(len(v) for v in report.allowed.values())
    if report.violations():
        out.append("**Layering violations: %d** (run `docs/include_graph.py`)." % report.violations())
    else:
        out.append("No include or call runs the wrong way, and no modules depend on each other%s."
                   % (" outside the allowed exceptions below" if total_ok else ""))
    if total_ok:
        out += ["", "Allowed for now (`--allow-cycles-in %s`):" % " ".join(sorted(allow)), ""]
        for name, _ in Report.CHECKS:
            for t in report.allowed[name]:
                out.append("- %s: %s" % (name, t))
    return "\n".join(out) + "\n"


def update(path, section):
    text = read(path)
    a, b = text.find(BEGIN), text.find(END)
    if a < 0 or b < a:
        fail_setup("%s has no %s ... %s section" % (path, BEGIN, END))
    new = text[:a + len(BEGIN)] + "\n" + section + text[b:]
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    print("%s: %s" % (path, "updated" if new != text else "unchanged"))


def main():
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root (default: the parent of docs/)")
    ap.add_argument("--build", help="build tree with the objects (default: $BUILD, else the "
                    "root's build/)")
    ap.add_argument("--allow-cycles-in", action="append", default=[], metavar="LAYER",
                    choices=LAYERS, help="report cycles among this layer's modules without failing")
    ap.add_argument("--no-symbols", action="store_true", help="skip the nm checks (no build)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--markdown", action="store_true", help="print the graph as markdown")
    g.add_argument("--update", metavar="FILE", help="rewrite FILE's include-graph section")
    args = ap.parse_args()

    root = os.path.abspath(args.root)
    build = os.path.abspath(args.build or os.environ.get("BUILD") or os.path.join(root, "build"))
    if args.update:
        args.update = os.path.abspath(args.update)
    os.chdir(root)
    allow = set(args.allow_cycles_in)
    files = source_files(root)
    if not files:
        fail_setup("no sources under %s" % root)
    includes = scan_includes(root, files, makefile_include_paths(root))
    group_modules(includes)
    modules = {}
    for f in files:
        if not f.endswith(".h"):
            modules.setdefault(module_of(f), []).append(f)
    report = Report()
    syms = {}
    if not args.no_symbols:
        syms, report.problems = read_symbols(root, build, modules)
    inc_edges = check_includes(includes, report)
    check_include_cycles(files, includes, header_names(files, syms), allow, report)
    call_edges = check_calls(syms, allow, report) if syms else {}
    have = not args.no_symbols
    if args.markdown or args.update:
        command = " ".join(["docs/include_graph.py"] +
                           ["--allow-cycles-in %s" % l for l in sorted(allow)] +
                           (["--no-symbols"] if args.no_symbols else []) +
                           (["--update", os.path.relpath(args.update, root)] if args.update
                            else ["--markdown"]))
        section = markdown(inc_edges, call_edges, modules, report, allow, have, command)
        if args.update:
            update(args.update, section)
        else:
            sys.stdout.write(section)
    else:
        print_text(inc_edges, call_edges, report, allow, have)
    return 1 if report.violations() else 0


if __name__ == "__main__":
    sys.exit(main())
