"""hpsweep replay --refit re-fits each stored fit from the trials it saw, not from every trial
recorded since: a fit stored before --extend added a model size stays "identical", while a fit
of all the trials differs from it. A coefficient changed in the file must make replay say
DIFFERS: changed in the HDF5 file alone, the reader refuses naming the disagreement with the
journal; changed in both (the journal record's CRC recomputed, h5py rewriting the Fletcher32
checksum), replay re-fits and reports the stored and the re-fitted value."""
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from e2e import expect, h5py, hpsweep, read_trials, tempdir, write  # noqa: E402

JOB = """
[sweep]
name = replay-tamper
[scales]
params = {params}
tokens_per_param = 20, 60
[grid]
lr = log:2.5e-4:3.2e-2:8
batch = 32, 64, 128, 256
[backend]
kind = surrogate
[target]
params = 7e9
tokens = 1.4e12
"""

d = tempdir()
out = os.path.join(d, "s.h5")
job = write(os.path.join(d, "job.ini"), JOB.format(params="1e7, 3e7, 1e8"))
hpsweep("run", job, "--out", out, "--progress", "none")
hpsweep("fit", out, "--resamples", "100")  # "latest": the first 192 trials

# Trials recorded after the fit: a fourth model size.
bigger = write(os.path.join(d, "bigger.ini"), JOB.format(params="1e7, 3e7, 1e8, 3e8"))
hpsweep("run", bigger, "--out", out, "--progress", "none", "--extend")
hpsweep("fit", out, "--resamples", "100", "--name", "all")  # the same options on all 256 trials
trials, _, _, _ = read_trials(out)
expect(len(trials) == 256, f"{len(trials)} trials after --extend, expected 256")


def coefficients(name):
    with h5py.File(out, "r") as f:
        return {(r["law"].decode(), r["name"].decode()): float(r["estimate"]) for r in f["fits"][name]["coefficients"][:]}


before, after = coefficients("latest"), coefficients("all")
changed = [k for k in before if k in after and before[k] != after[k]]
expect(changed, f"the added model size changes no coefficient: the prefix would go untested\n{before}\n{after}")

r = hpsweep("replay", out, "--refit")
expect("latest: identical, bit for bit" in r.stdout, "a fit must be re-fitted from the trials it saw\n" + r.stdout)
expect("all: identical, bit for bit" in r.stdout, r.stdout)

# Tamper one coefficient of "latest": the lr law's multiplier estimate, doubled.
law, name = next(k for k in before if k[0] == "lr")
old = before[(law, name)]
new = old * 2
with h5py.File(out, "r+") as f:
    ds = f["fits"]["latest"]["coefficients"]
    rows = ds[:]
    i = next(i for i, row in enumerate(rows) if (row["law"].decode(), row["name"].decode()) == (law, name))
    rows[i]["estimate"] = new
    ds[i] = rows[i]
expect(coefficients("latest")[(law, name)] == new, "the HDF5 file was not changed")

refused = hpsweep("replay", out, "--refit", check=False)
text = refused.stdout + refused.stderr
expect(refused.returncode != 0, f"a file that disagrees with its journal was served (exit 0)\n{text}")
expect(out in text and out + ".journal" in text, "the refusal must name both files\n" + text)
expect("latest" in text and f"{law}.{name}" in text, "the refusal must name the fit and coefficient that disagree\n" + text)
expect("identical" not in text, text)


# Now the same change in the journal: rewrite the last fit record named "latest", CRC included.
def tamper_journal(path, fit_name, law, name, new_value):
    data = bytearray(open(path, "rb").read())
    expect(data[:8] == b"HPSWJNL1", "not a journal")
    pos, target = 8, None
    while pos + 9 <= len(data):
        (length,), rtype = struct.unpack_from("<I", data, pos), data[pos + 4]
        payload = pos + 5
        if rtype == 7:
            q = payload

            def string():
                nonlocal q
                (n,) = struct.unpack_from("<I", data, q)
                q += 4 + n
                return bytes(data[q - n:q]).decode()

            if string() == fit_name:
                string()  # options
                q += 8  # created
                string()  # json
                (count,) = struct.unpack_from("<Q", data, q)
                q += 8
                for _ in range(count):
                    key = (string(), string())
                    if key == (law, name):
                        target = (pos, length, q)
                    q += 5 * 8
        pos = payload + length + 4
    expect(pos == len(data), f"journal parse ended at {pos} of {len(data)} bytes")
    expect(target, f"no journal fit record {fit_name} {law}.{name}")
    start, length, at = target
    struct.pack_into("<d", data, at, new_value)
    struct.pack_into("<I", data, start + 5 + length, zlib.crc32(bytes(data[start + 4:start + 5 + length])))
    open(path, "wb").write(bytes(data))


tamper_journal(out + ".journal", "latest", law, name, new)
r = hpsweep("replay", out, "--refit", check=False)
expect(r.returncode == 0, f"replay refused a file that agrees with its journal\n{r.stdout}\n{r.stderr}")
line = next((l for l in r.stdout.splitlines() if l.strip().startswith("latest:")), "")
expect("DIFFERS in 1 of" in line, "a tampered coefficient must make replay say DIFFERS\n" + r.stdout)
expect(f"{law}.{name}" in line, "replay must name the coefficient that differs\n" + r.stdout)
expect("all: identical, bit for bit" in r.stdout, r.stdout)
print(f"ok: prefix re-fit identical ({len(changed)} coefficients move with the added size); "
      f"{law}.{name} {old} -> {new} refused in the HDF5 file alone, DIFFERS when both agree")
