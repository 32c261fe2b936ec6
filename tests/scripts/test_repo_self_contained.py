"""A clone stands on its own: no tracked file names a folder beside the repository, every
relative Markdown link resolves inside the repository, and the data the tests use is shipped.

Run by hand:  /usr/bin/python3 tests/scripts/test_repo_self_contained.py
"""
import os
import re
import subprocess
import sys

ROOT = os.environ.get("SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.path.realpath(ROOT)


def tracked_files():
    """Files under version control; a source tree without .git (an unpacked archive) is walked."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True, capture_output=True).stdout
        return [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in (".git", "build")]
            files += [os.path.relpath(os.path.join(d, n), ROOT) for n in names]
        return files


# A reference to the developers' folder beside the checkout, spelled as a path.
SIBLING = re.compile(rb"\.\./shared\b|\.\.[/\\]\.\.[/\\]shared\b|[\"']shared[\"']\s*,\s*[\"']data[\"']")
# [text](target) and [text]: target, skipping images' and links' absolute forms.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\s*\[[^\]]+\]:\s*(\S+)", re.M)

failures = []
files = tracked_files()
for f in files:
    path = os.path.join(ROOT, f)
    if not os.path.isfile(path):
        continue
    with open(path, "rb") as fh:
        data = fh.read()
    for m in SIBLING.finditer(data):
        line = data.count(b"\n", 0, m.start()) + 1
        failures.append(f"{f}:{line}: names a folder outside the repository ({m.group(0).decode(errors='replace')})")

markdown = [f for f in files if f.endswith(".md")]
checked = 0
for f in markdown:
    text = open(os.path.join(ROOT, f), encoding="utf-8").read()
    # Fenced code blocks hold commands, not links.
    text_no_code = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for m in LINK.finditer(text_no_code):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        target = target.split("#", 1)[0]
        line = text_no_code.count("\n", 0, m.start()) + 1
        resolved = os.path.realpath(os.path.join(ROOT, os.path.dirname(f), target))
        checked += 1
        if not (resolved == ROOT or resolved.startswith(ROOT + os.sep)):
            failures.append(f"{f}:{line}: link '{target}' leaves the repository")
        elif not os.path.exists(resolved):
            failures.append(f"{f}:{line}: link '{target}' points at nothing")

for data in ("data/steplaw/dense_lr_bs_loss.csv", "data/steplaw/moe_lr_bs_loss.csv"):
    if data not in files:
        failures.append(f"{data}: the released Step Law data is not shipped")

if checked < 10:
    failures.append(f"only {checked} Markdown links found: the link scan is broken")
for msg in failures:
    print(msg)
print(f"{len(files)} tracked files scanned, {checked} relative Markdown links checked")
sys.exit(1 if failures else 0)
