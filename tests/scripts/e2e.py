"""Shared helpers for the end-to-end tests: the real CLI, a real mpiexec, the real HDF5 file."""
import atexit
import os
import shutil
import shlex
import subprocess
import sys
import tempfile

HPSWEEP = os.environ.get("HPSWEEP", "build/release/hpsweep")
MPIEXEC = os.environ.get("MPIEXEC", "mpiexec")
MPIEXEC_FLAGS = shlex.split(os.environ.get("MPIEXEC_FLAGS", "--oversubscribe"))
SOURCE_DIR = os.environ.get("SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

try:
    import h5py  # Debian python3-h5py
except ImportError:  # pragma: no cover
    sys.exit("these tests need h5py: apt-get install python3-h5py, and run them with /usr/bin/python3")

# The released Step Law sweep, shipped in data/steplaw; HPSWEEP_STEPLAW_CSV overrides.
STEPLAW_CSV = os.environ.get("HPSWEEP_STEPLAW_CSV") or os.path.join(
    SOURCE_DIR, "data", "steplaw", "dense_lr_bs_loss.csv")

STATES = {0: "PENDING", 1: "RUNNING", 2: "DONE", 3: "DIVERGED", 4: "FAILED", 5: "LOST", 6: "TIMEOUT", 7: "UNAVAILABLE"}


def tempdir():
    d = tempfile.mkdtemp(prefix="hpsweep-e2e-")
    if not os.environ.get("HPSWEEP_KEEP_TMP"):
        atexit.register(shutil.rmtree, d, True)
    return d


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def hpsweep(*args, ranks=None, check=True, **kw):
    cmd = [HPSWEEP, *map(str, args)]
    if ranks:
        cmd = [MPIEXEC, *MPIEXEC_FLAGS, "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def read_trials(path):
    with h5py.File(path, "r") as f:
        return f["trials"][:], f["grid"][:], dict(f.attrs), f["launches"][:]


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)
