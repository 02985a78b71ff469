#!/usr/bin/env python3
"""Architecture checks for issue 13: import cycles among src/domain files and non-test line counts.

Usage: python3 scripts/arch/check.py [--max-lines 700]
Exits 1 when a cycle exists or a file under src/ exceeds the line budget.
"""
import os, re, sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "src")
MAX = 700
if "--max-lines" in sys.argv:
    MAX = int(sys.argv[sys.argv.index("--max-lines") + 1])

def strip_tests(text, keep_comments=False):
    """The text without `#[cfg(test)] mod ... { }` blocks (and without `//` lines unless keep_comments)."""
    out = []
    depth = 0
    skip_depth = None
    pending = False
    for line in text.split("\n"):
        s = line.strip()
        if skip_depth is None:
            if s.startswith("#[cfg(test)]"):
                pending = True
                continue
            if pending and s.startswith("mod ") and s.endswith("{"):
                skip_depth = depth
                depth += line.count("{") - line.count("}")
                pending = False
                continue
            pending = False
            if keep_comments or not s.startswith("//"):
                out.append(line)
            depth += line.count("{") - line.count("}")
        else:
            depth += line.count("{") - line.count("}")
            if depth <= skip_depth:
                skip_depth = None
    return "\n".join(out)

def non_test_lines(text):
    return sum(1 for line in strip_tests(text, keep_comments=True).split("\n") if line.strip())

def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts

files = {}
for dp, _, fns in os.walk(ROOT):
    for fn in fns:
        if fn.endswith(".rs"):
            p = os.path.join(dp, fn)
            files[tuple(module_of(p))] = p

def is_test_file(p):
    return os.path.basename(p) in ("tests.rs",) or os.sep + "tests" + os.sep in p

bad = False
for mod, p in sorted(files.items()):
    n = non_test_lines(open(p).read())
    if n > MAX and not is_test_file(p):
        print(f"too long: {os.path.relpath(p, ROOT)}: {n} non-test lines (> {MAX})")
        bad = True

# Dependency graph among domain files (non-test code only).
domain = {m: p for m, p in files.items() if m and m[0] == "domain" and not is_test_file(p)}

def resolve(mod, path):
    """Longest prefix of path that names a domain file."""
    for k in range(len(path), 0, -1):
        if tuple(path[:k]) in domain:
            return tuple(path[:k])
    return None

edges = {m: set() for m in domain}
path_re = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
use_re = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);", re.S | re.M)
for mod, p in domain.items():
    text = strip_tests(open(p).read())
    is_mod_rs = p.endswith("mod.rs")
    base = list(mod) if is_mod_rs else list(mod[:-1])  # the module's "self" for super resolution
    refs = []
    for m in path_re.finditer(text):
        refs.append(m.group(1).split("::"))
    # expand braces in use statements: use super::{a, b::c};
    for m in use_re.finditer(text):
        body = re.sub(r"\s+", "", m.group(1))
        def expand(prefix, s):
            if "{" not in s:
                return [prefix + s.split("::")] if s else []
            i = s.index("{")
            head = s[:i].rstrip(":").split("::") if s[:i] else []
            inner = s[i + 1 : s.rindex("}")]
            parts, d, cur = [], 0, ""
            for ch in inner:
                if ch == "," and d == 0:
                    parts.append(cur); cur = ""
                    continue
                d += ch == "{"; d -= ch == "}"
                cur += ch
            parts.append(cur)
            res = []
            for part in parts:
                res += expand(prefix + [h for h in head if h], part)
            return res
        try:
            refs += expand([], body)
        except ValueError:
            pass  # not a use declaration (a word in a string or comment)
    for r in refs:
        if not r:
            continue
        if r[0] == "crate":
            path = r[1:]
        elif r[0] in ("super", "self"):
            cur = list(mod) if is_mod_rs else list(mod)
            # in a file `a/b.rs`, self = a::b, super = a
            i = 0
            while i < len(r) and r[i] in ("super", "self"):
                if r[i] == "super":
                    cur = cur[:-1]
                i += 1
            path = cur + r[i:]
        elif tuple(list(mod) + [r[0]]) in domain:
            path = list(mod) + r  # a child module named relative to this one (`use child::x`)
        else:
            continue
        t = resolve(mod, path)
        if t and t != mod:
            edges[mod].add(t)

# Child modules are declared by their parent (`mod x;`), which is not a use; ignore parent->child
# declarations (they are not imports) but keep `use child::...` edges.
# Tarjan SCC
index, low, stack, on, sccs = {}, {}, [], set(), []
counter = [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(comp)
for v in edges:
    if v not in index:
        strong(v)
for comp in sccs:
    bad = True
    names = sorted("::".join(c) for c in comp)
    print(f"cycle of {len(comp)} files: {', '.join(names)}")
    for c in sorted(comp):
        inside = sorted("::".join(t) for t in edges[c] if t in comp)
        print(f"  {'::'.join(c)} -> {', '.join(inside)}")
if not bad:
    print(f"ok: no cycle among {len(domain)} domain files; every file under src/ has <= {MAX} non-test lines")
sys.exit(1 if bad else 0)
