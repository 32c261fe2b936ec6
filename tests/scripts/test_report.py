"""hpsweep report on a small surrogate sweep run under mpirun and on the released Step Law data
(ingested from its CSV): each report folder holds index.html, every figure's gnuplot script and
data, and (with gnuplot) its SVG and PNG; every SVG parses as XML with an <svg> root, every PNG is
a PNG of a plausible size, index.html parses, loads nothing from the network and references only
files that exist. The prediction plotted in laws_lr.dat is the one `hpsweep fit` prints. Headless
Chromium renders index.html to a screenshot that is not blank and shows the loss maps. With
`--gnuplot /nonexistent` the report still exits 0, writes every script and data file, and says
on stderr and in index.html that the figures were not rendered.

Exit status 77 (skipped, reported to ctest as a skip) when gnuplot or Chromium is missing, after
every check that can run without them has passed.

Run with /usr/bin/python3:
    HPSWEEP=build/release/hpsweep SOURCE_DIR=. /usr/bin/python3 tests/scripts/test_report.py
"""
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from e2e import STEPLAW_CSV, SOURCE_DIR, expect, hpsweep, tempdir, write  # noqa: E402

CSV = STEPLAW_CSV
MAP = "lr=lr,batch=bs,loss=smooth loss,final_loss=loss,params=N,tokens=D,steps=ti"
GNUPLOT = shutil.which("gnuplot")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("href", "src") and v:
                self.refs.append(v)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    expect(head[:8] == PNG_SIGNATURE, f"{path}: not a PNG")
    return struct.unpack(">II", head[16:24])


def check_report(folder, rendered, cells):
    figures = os.path.join(folder, "figures")
    index = os.path.join(folder, "index.html")
    expect(os.path.isfile(index), f"no {index}")
    text = open(index, encoding="utf-8").read()
    links = Links()
    links.feed(text)
    links.close()
    expect("script" not in links.tags, "index.html must not run scripts")
    for ref in links.refs:
        if ref.startswith("#"):
            continue
        expect("://" not in ref and not ref.startswith("//"), f"index.html loads {ref} from the network")
        expect(os.path.isfile(os.path.join(folder, ref)), f"index.html references {ref}, which does not exist")
    for word in ("http://", "https://"):
        expect(word not in text, f"index.html mentions {word}: the report must work offline")

    scripts = sorted(f[:-3] for f in os.listdir(figures) if f.endswith(".gp"))
    cell_maps = [s for s in scripts if s.startswith("cell_")]
    expect(len(cell_maps) == cells, f"{len(cell_maps)} cell maps, expected {cells}: {scripts}")
    for name in ("laws_lr", "laws_batch", "laws_residuals", "loss_law", "health_states"):
        expect(name in scripts, f"no figure {name} in {scripts}")
    for name in scripts:
        expect(os.path.isfile(os.path.join(figures, name + ".dat")), f"{name}.gp has no {name}.dat")
        expect(f"figures/{name}.gp" in text, f"index.html does not link {name}.gp")
        svg, png = os.path.join(figures, name + ".svg"), os.path.join(figures, name + ".png")
        if not rendered:
            expect(not os.path.exists(svg), f"{svg} exists although gnuplot did not run")
            continue
        root = ET.parse(svg).getroot()
        expect(root.tag.endswith("svg"), f"{svg}: root element is {root.tag}")
        w, h = png_size(png)
        expect(1000 <= w <= 4000 and 500 <= h <= 4000, f"{png}: implausible size {w}x{h}")
        expect(os.path.getsize(png) > 20000, f"{png}: only {os.path.getsize(png)} bytes")
        expect(f"figures/{name}.svg" in text, f"index.html does not show {name}.svg")
    return text, scripts


def decode_png(path):
    """RGB rows of a PNG: PIL if installed, else zlib and the five PNG filters by hand."""
    try:
        from PIL import Image  # Debian python3-pil
        img = Image.open(path).convert("RGB")
        w, h = img.size
        data = img.tobytes()
        return w, h, [data[y * 3 * w:(y + 1) * 3 * w] for y in range(h)]
    except ImportError:
        pass
    raw = open(path, "rb").read()
    pos, idat, w, h, bpp = 8, b"", 0, 0, 3
    while pos < len(raw):
        n, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        body = raw[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            expect(depth == 8 and colour in (2, 6), f"{path}: unexpected PNG format {depth}/{colour}")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    data, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = data[y * (stride + 1)], bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return w, h, rows


def screenshot(folder):
    shot = os.path.join(folder, "screenshot.png")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1400,3000",
                    "file://" + os.path.abspath(os.path.join(folder, "index.html"))],
                   capture_output=True, timeout=180)
    expect(os.path.isfile(shot), f"chromium wrote no screenshot of {folder}/index.html")
    w, h, rows = decode_png(shot)
    expect((w, h) == (1400, 3000), f"screenshot is {w}x{h}")
    colours, ink, purple = set(), 0, 0
    for row in rows[::4]:
        for x in range(0, len(row), 12):  # every 4th pixel of every 4th row
            r, g, b = row[x], row[x + 1], row[x + 2]
            colours.add((r >> 3, g >> 3, b >> 3))
            ink += r + g + b < 600
            purple += r < 110 and g < 60 and b > 70  # the dark end of the loss-map palette
    total = len(rows[::4]) * (w // 4)
    return len(colours), ink / total, purple / total


# ---------------------------------------------------------------- 1. a surrogate sweep under mpirun
d = tempdir()
job = write(os.path.join(d, "job.ini"), """
[sweep]
name = report-e2e
[scales]
params = 1e7, 3e7, 1e8
tokens_per_param = 20, 60
[grid]
lr = log:2.5e-4:3.2e-2:8
batch = 16, 32, 64, 128, 256
[backend]
kind = surrogate
[surrogate]
sleep_per_pflop = 2e-5
[target]
params = 7e9
tokens = 1.4e12
""")
sweep = os.path.join(d, "s.h5")
hpsweep("run", job, "--out", sweep, "--progress", "none", ranks=3)
surrogate = os.path.join(d, "surrogate-report")
r = hpsweep("report", sweep, "--out", surrogate, "--resamples", "200")
expect("figures rendered" in r.stdout, r.stdout)
if GNUPLOT:
    expect(r.stderr == "", f"warnings from a clean report:\n{r.stderr}")
text, scripts = check_report(surrogate, rendered=bool(GNUPLOT), cells=6)
expect("health_timeline" in scripts, "a sweep run under mpirun has a per-rank timeline")
expect("Prediction for N = 7e9, D = 1.4e12 tokens" in text, "no prediction in the summary")
expect("launch" in text.lower() and "completed" in text, "no launch table")

# ---------------------------------------------------------------- 2. the Step Law data
expect(os.path.isfile(CSV), f"Step Law data not found at {CSV}")
steplaw_sweep = os.path.join(d, "steplaw.h5")
hpsweep("ingest", CSV, "--into", steplaw_sweep, "--map", MAP)
steplaw = os.path.join(d, "steplaw-report")
target = ["--target-params", "7e9", "--target-tokens", "1.4e12"]
hpsweep("report", steplaw_sweep, "--out", steplaw, "--select", "within:0.25%", *target)
text, scripts = check_report(steplaw, rendered=bool(GNUPLOT), cells=17)
expect("health_timeline" not in scripts and "No per-rank timeline" in text,
       "ingested results have no ranks: the page must say why there is no timeline")
fit = json.loads(hpsweep("fit", steplaw_sweep, "--select", "within:0.25%", "--json", "--no-store", *target).stdout)
with open(os.path.join(steplaw, "figures", "laws_lr.dat")) as f:
    block = f.read().split("# [target]")[1].splitlines()[1]
plotted = [float(v) for v in block.split()]
lr = fit["prediction"]["lr"]
expect(plotted[1:] == [lr["estimate"], lr["lo"], lr["hi"]], f"laws_lr.dat target {plotted} vs fit {lr}")
for w in fit["warnings"]:
    expect(w.replace("'", "&#39;") in text, f"warning not in the summary: {w}")

# ---------------------------------------------------------------- 3. no gnuplot
bare = os.path.join(d, "no-gnuplot")
r = hpsweep("report", sweep, "--out", bare, "--gnuplot", "/nonexistent/gnuplot", "--resamples", "50")
expect("figures were not rendered" in r.stderr, f"stderr does not say it:\n{r.stderr}")
text, _ = check_report(bare, rendered=False, cells=6)
expect("Figures were not rendered" in text, "index.html does not say the figures were not rendered")
expect("0 of " in r.stdout, r.stdout)

# ---------------------------------------------------------------- 4. in a browser
if not GNUPLOT:
    print("SKIP: gnuplot is not installed (apt-get install gnuplot-nox): no SVG/PNG check ran; every other check passed")
    sys.exit(77)
if not CHROMIUM:
    print("SKIP: chromium is not installed (apt-get install chromium); every other check passed")
    sys.exit(77)
colours, ink, purple = screenshot(surrogate)
expect(colours > 50 and ink > 0.02, f"the screenshot looks blank: {colours} colours, {ink:.1%} ink")
expect(purple > 0.005, f"no loss map visible in the screenshot ({purple:.2%} dark purple pixels)")
print(f"ok: surrogate and Step Law reports; screenshot with {colours} colours, {ink:.1%} ink, "
      f"{purple:.2%} loss-map pixels; the no-gnuplot report says so")
