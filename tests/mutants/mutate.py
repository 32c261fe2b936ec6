#!/usr/bin/env python3
"""Reads tests/mutants/mutants.txt for tests/mutants.sh.

  mutate.py list LIST              one line per mutant: id<TAB>file<TAB>tests<TAB>why
  mutate.py check LIST ROOT        every `from` occurs exactly once in its file (exit 1 if not)
  mutate.py apply LIST ID ROOT     replaces the mutant's `from` text in ROOT/file (exit 3: stale)
"""
import sys

FIELDS = ("id", "file", "from", "to", "tests", "why")


def read_list(path):
    mutants, current = [], {}
    for lineno, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.rstrip("\n")
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                mutants.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if not sep or key not in FIELDS:
            sys.exit(f"{path}:{lineno}: expected one of {', '.join(FIELDS)} followed by ':'")
        current[key] = value.strip()
    if current:
        mutants.append(current)
    seen = set()
    for m in mutants:
        missing = [f for f in FIELDS[:5] if not m.get(f)]
        if missing:
            sys.exit(f"{path}: mutant {m.get('id', '?')} lacks {', '.join(missing)}")
        if m["id"] in seen:
            sys.exit(f"{path}: mutant id {m['id']} appears twice")
        seen.add(m["id"])
    return mutants


def occurrences(m, root):
    return open(f"{root}/{m['file']}", encoding="utf-8").read().count(m["from"])


def main():
    cmd, list_path = sys.argv[1], sys.argv[2]
    mutants = read_list(list_path)
    if cmd == "list":
        for m in mutants:
            print("\t".join([m["id"], m["file"], m["tests"], m.get("why", "")]))
    elif cmd == "check":
        bad = [f"{m['id']}: `from` occurs {occurrences(m, sys.argv[3])} times in {m['file']}"
               for m in mutants if occurrences(m, sys.argv[3]) != 1]
        print("\n".join(bad) if bad else f"{len(mutants)} mutants, each `from` found once")
        sys.exit(1 if bad else 0)
    elif cmd == "apply":
        m = next((m for m in mutants if m["id"] == sys.argv[3]), None)
        if m is None:
            sys.exit(f"no mutant {sys.argv[3]}")
        path = f"{sys.argv[4]}/{m['file']}"
        text = open(path, encoding="utf-8").read()
        if text.count(m["from"]) != 1:
            print(f"{m['id']}: `from` occurs {text.count(m['from'])} times in {m['file']}", file=sys.stderr)
            sys.exit(3)
        open(path, "w", encoding="utf-8").write(text.replace(m["from"], m["to"]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
