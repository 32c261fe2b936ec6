"""The source layout reads as the pipeline: every module (a folder of src/ and include/hpsweep/)
includes only modules listed before it in README's "Source layout" graph, the graph there is the
one the code has (no arrow missing, none extra), and no folder cycle exists.

Run by hand:  /usr/bin/python3 tests/scripts/test_module_layout.py
"""
import collections
import os
import re
import sys

ROOT = os.environ.get("SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The code's graph: module -> modules it includes.
code = collections.defaultdict(set)
modules = set()
for base in ("src", os.path.join("include", "hpsweep")):
    for d, _, files in os.walk(os.path.join(ROOT, base)):
        rel = os.path.relpath(d, os.path.join(ROOT, base))
        if rel == ".":
            continue
        module = rel.split(os.sep)[0]
        for f in files:
            if not f.endswith((".cpp", ".hpp")):
                continue
            modules.add(module)
            text = open(os.path.join(d, f), encoding="utf-8").read()
            for m in re.finditer(r'#include "(?:hpsweep/(?=[a-z_]+/))?([a-z_]+)/', text):
                if m.group(1) not in (module, "hpsweep"):  # hpsweep/version.hpp: generated, no module
                    code[module].add(m.group(1))

# README's graph, in its order.
readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
section = readme.split("## Source layout", 1)[1]
block = re.search(r"```\n(.*?)```", section, re.S).group(1)
order, documented = [], {}
for line in block.strip().splitlines():
    name, _, deps = line.partition("->")
    name = name.strip()
    order.append(name)
    deps = deps.strip()
    documented[name] = None if deps.startswith("every") else {x.strip() for x in deps.split(",") if x.strip()}

failures = []
missing = modules - set(order)
if missing:
    failures.append(f"modules missing from README's graph: {sorted(missing)}")
for extra in set(order) - modules:
    failures.append(f"README's graph names '{extra}', which is not a module of the tree")
position = {m: i for i, m in enumerate(order)}
for module, deps in sorted(code.items()):
    for dep in sorted(deps):
        if dep not in position or module not in position:
            continue
        if position[dep] >= position[module]:
            failures.append(f"{module}/ includes {dep}/, which is not below it: an upward arrow or a cycle")
    if documented.get(module) is not None and documented[module] != deps:
        failures.append(f"README says {module} -> {sorted(documented[module])}, the code has {sorted(deps)}")
table = re.findall(r"^\| `([a-z_]+)/` \|", section, re.M)
for m in modules - set(table):
    failures.append(f"module {m}/ has no row in README's Source layout table")

for f in failures:
    print(f)
print(f"{len(modules)} modules, {sum(len(v) for v in code.values())} module arrows checked")
sys.exit(1 if failures else 0)
