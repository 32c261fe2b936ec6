"""Writers of the run layouts `hpsweep ingest` reads, independent of the C++ parsers: every format is
written byte by byte here (TFRecord framing with CRC32C and protobuf encoding in pure Python, CSV,
MLflow file store, Trainer JSON, torchtitan stdout with ANSI colours, YAML and TOML by hand).

    ingest_fixtures.py OUT [--bad]     one good run of every layout under OUT (and, with --bad,
                                       damaged, truncated and unfinished runs); prints a JSON
                                       summary of what it wrote
    ingest_fixtures.py --examples DIR  the example runs of examples/ingest/<layout>/

The e2e test tests/scripts/test_ingest_layouts.py and examples/ingest/<layout>/ use it.
"""
import json
import math
import os
import struct
import sys
import zlib

# ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) and TFRecord's mask -----------------

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _CRC_TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """u64 length, masked CRC32C of the length, data, masked CRC32C of the data (all little endian)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


# ---- protobuf wire format ------------------------------------------------------------------------

def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def pb_varint(field, v):
    return key(field, 0) + varint(v)


def pb_double(field, v):
    return key(field, 1) + struct.pack("<d", v)


def pb_float(field, v):
    return key(field, 5) + struct.pack("<f", v)


def pb_bytes(field, data: bytes):
    return key(field, 2) + varint(len(data)) + data


def tb_value(tag: str, value: float, kind: str = "simple") -> bytes:
    """Summary.Value: tag = 1, simple_value = 2, or tensor = 8 (TensorProto dtype = 1, tensor_shape = 2,
    tensor_content = 4, float_val = 5 packed, double_val = 6 packed)."""
    body = pb_bytes(1, tag.encode())
    if kind == "simple":
        body += pb_float(2, value)
    elif kind == "tensor_float":
        body += pb_bytes(8, pb_varint(1, 1) + pb_bytes(2, b"") + pb_bytes(5, struct.pack("<f", value)))
    elif kind == "tensor_double":
        body += pb_bytes(8, pb_varint(1, 2) + pb_bytes(2, b"") + pb_bytes(6, struct.pack("<d", value)))
    elif kind == "tensor_content":
        body += pb_bytes(8, pb_varint(1, 1) + pb_bytes(2, b"") + pb_bytes(4, struct.pack("<f", value)))
    else:
        raise ValueError(kind)
    # plugin metadata (field 9) as TensorBoard writes it for scalars: skipped by readers
    body += pb_bytes(9, pb_bytes(1, pb_bytes(1, b"scalars")))
    return body


def tb_event(step: int, wall_time: float, values=(), file_version=None) -> bytes:
    """Event: wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5."""
    out = pb_double(1, wall_time)
    if step:
        out += pb_varint(2, step)
    if file_version:
        out += pb_bytes(3, file_version.encode())
    if values:
        out += pb_bytes(5, b"".join(pb_bytes(1, v) for v in values))
    return out


# ---- text formats --------------------------------------------------------------------------------

def yaml_text(d, indent=0):
    lines = []
    for k, v in d.items():
        pad = "  " * indent
        if isinstance(v, dict):
            lines.append(f"{pad}{k}:")
            lines.append(yaml_text(v, indent + 1))
        else:
            lines.append(f"{pad}{k}: {scalar_text(v)}")
    return "\n".join(lines)


def toml_text(d):
    top = [f"{k} = {toml_scalar(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = "\n".join(top) + ("\n" if top else "")
    for k, v in d.items():
        if isinstance(v, dict):
            out += f"\n[{k}]\n" + "".join(f"{kk} = {toml_scalar(vv)}\n" for kk, vv in v.items())
    return out


def scalar_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def toml_scalar(v):
    if isinstance(v, str):
        return json.dumps(v)
    return scalar_text(v)


def loss_at(step, base=2.5):
    return base + 40.0 / (step + 20.0) + 0.01 * math.sin(step)


def curve(last, every, base=2.5):
    return [(s, loss_at(s, base)) for s in range(every, last + 1, every)]


def write(path, data, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)
    return path


# ---- layouts -------------------------------------------------------------------------------------

def write_tensorboard(run_dir, points, config, tag="train/loss", kind="simple", files=1, t0=1.7e9):
    """events.out.tfevents.* (a file_version event first, then one scalar event per point, plus a
    learning-rate scalar that readers must skip) + config.yaml."""
    paths = []
    chunks = [points[len(points) * k // files:len(points) * (k + 1) // files] for k in range(files)]
    for k, chunk in enumerate(chunks):
        data = tfrecord(tb_event(0, t0 + k, file_version="brain.Event:2"))
        for step, loss in chunk:
            data += tfrecord(tb_event(step, t0 + step, [tb_value("train/lr", 3e-4), tb_value(tag, loss, kind)]))
        paths.append(write(os.path.join(run_dir, f"events.out.tfevents.{int(t0) + k}.host.{1000 + k}.0"), data, "wb"))
    write(os.path.join(run_dir, "config.yaml"), yaml_text(config) + "\n")
    return paths


def write_lightning(version_dir, points, hparams, val_every=0):
    """metrics.csv as CSVLogger writes it: epoch,step + one column per metric, empty where a row did
    not log it; hparams.yaml from save_hyperparameters()."""
    rows = ["epoch,step,train_loss,val_loss"]
    for i, (step, loss) in enumerate(points):
        rows.append(f"0,{step},{loss!r},")
        if val_every and (i + 1) % val_every == 0:
            rows.append(f"0,{step},,{loss + 0.1!r}")
    write(os.path.join(version_dir, "metrics.csv"), "\n".join(rows) + "\n")
    write(os.path.join(version_dir, "hparams.yaml"), yaml_text(hparams) + "\n")


def write_mlflow(store, exp_id, run_id, points, params, status=3, metric="loss"):
    """mlruns/<exp>/<run>/{meta.yaml, metrics/<key>, params/<key>} as MLflow's FileStore writes them."""
    exp = os.path.join(store, str(exp_id))
    if not os.path.exists(os.path.join(exp, "meta.yaml")):
        write(os.path.join(exp, "meta.yaml"),
              f"artifact_location: file:./mlruns/{exp_id}\nexperiment_id: '{exp_id}'\nlifecycle_stage: active\n"
              "name: sweep\n")
    run = os.path.join(exp, run_id)
    write(os.path.join(run, "meta.yaml"),
          f"artifact_uri: file:./mlruns/{exp_id}/{run_id}/artifacts\nend_time: 1700000900000\nentry_point_name: ''\n"
          f"experiment_id: '{exp_id}'\nlifecycle_stage: active\nrun_id: {run_id}\nrun_name: r{run_id[:4]}\n"
          f"run_uuid: {run_id}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000000\n"
          f"status: {status}\ntags: []\nuser_id: root\n")
    write(os.path.join(run, "metrics", *metric.split("/")),
          "".join(f"{1700000000000 + step} {loss!r} {step}\n" for step, loss in points))
    write(os.path.join(run, "metrics", "lr"), "".join(f"{1700000000000 + s} 0.0003 {s}\n" for s, _ in points))
    for k, v in params.items():
        write(os.path.join(run, "params", k), str(v))  # MLflow writes the value without a newline
    return run


def write_hf_trainer(out_dir, points, max_steps, config, checkpoints=(), lr=3e-4):
    """checkpoint-N/trainer_state.json as transformers.Trainer saves it (log_history: train entries
    with loss/learning_rate, eval entries with eval_loss, a final summary with train_loss)."""
    saves = list(checkpoints) or [points[-1][0]]
    for save in saves:
        history = []
        for step, loss in points:
            if step > save:
                break
            history.append({"epoch": round(step / max_steps, 4), "grad_norm": 1.25, "learning_rate": lr * (1 - step / (max_steps + 1)),
                            "loss": round(loss, 4), "step": step})
            if step % 50 == 0:
                history.append({"epoch": round(step / max_steps, 4), "eval_loss": loss + 0.1, "eval_runtime": 1.5,
                                "step": step})
        if save >= max_steps:
            history.append({"epoch": 1.0, "step": save, "total_flos": 1.2e15, "train_loss": 3.1, "train_runtime": 99.0})
        state = {"best_metric": None, "best_model_checkpoint": None, "epoch": round(save / max_steps, 4),
                 "eval_steps": 50, "global_step": save, "is_hyper_param_search": False, "is_local_process_zero": True,
                 "is_world_process_zero": True, "log_history": history, "logging_steps": 10, "max_steps": max_steps,
                 "num_input_tokens_seen": 0, "num_train_epochs": 1, "save_steps": 100, "total_flos": 1.2e15,
                 "train_batch_size": config.get("per_device_train_batch_size", 8), "trial_name": None, "trial_params": None}
        write(os.path.join(out_dir, f"checkpoint-{save}", "trainer_state.json"), json.dumps(state, indent=2) + "\n")
        write(os.path.join(out_dir, f"checkpoint-{save}", "config.json"), json.dumps({"hidden_size": 256}) + "\n")
    write(os.path.join(out_dir, "config.yaml"), yaml_text(config) + "\n")


ANSI = {"red": "\x1b[31m", "green": "\x1b[32m", "yellow": "\x1b[33m", "blue": "\x1b[34m", "cyan": "\x1b[36m",
        "magenta": "\x1b[35m", "reset": "\x1b[39m"}


def torchtitan_line(step, loss):
    c = ANSI
    return (f"[rank0]:[titan] 2025-01-10 10:{step // 60 % 60:02d}:{step % 60:02d},123 - root - INFO - "
            f"{c['red']}step: {step:2d}  {c['green']}loss: {loss:7.4f}  {c['yellow']}memory:  1.38GiB(1.46%)  "
            f"{c['blue']}tps: 7,384  {c['cyan']}tflops: 0.53  {c['magenta']}mfu: 0.17%{c['reset']}")


def write_torchtitan(run_dir, points, total_steps, config, params=6139880, final_newline=True):
    lines = ["[rank0]:[titan] 2025-01-10 10:00:00,000 - root - INFO - Starting job: Llama 3 debug training",
             f"[rank0]:[titan] 2025-01-10 10:00:01,000 - root - INFO - {ANSI['blue']}Model llama3 debugmodel "
             f"{ANSI['red']}size: {params:,} total parameters{ANSI['reset']}",
             f"[rank0]:[titan] 2025-01-10 10:00:02,000 - root - INFO - Training starts at step 1, with local batch "
             f"size 8, global batch size {config['training']['global_batch_size']}, sequence length "
             f"{config['training']['seq_len']}, total steps {total_steps} (warmup 2)"]
    for step, loss in points:
        if step % 50 == 0:
            lines.append(f"[rank0]:[titan] 2025-01-10 10:00:03,000 - root - INFO - validate step: {step}  loss: 9.9")
        lines.append(torchtitan_line(step, loss))
    write(os.path.join(run_dir, "train.log"), "\n".join(lines) + ("\n" if final_newline else ""))
    write(os.path.join(run_dir, "config.toml"), toml_text(config))


# ---- W&B: LevelDB log blocks of Record protobufs ------------------------------------------------

WANDB_BLOCK, WANDB_HEADER = 32768, 7


def leveldb_log(payloads):
    """':W&B' + magic 0xBEE1 + version 0, then each payload as FULL, or FIRST/MIDDLE/LAST fragments
    that never cross a 32 KiB block; a record header is crc32(type byte + data), u16 length, type.
    Blocks with fewer than 7 bytes left are zero-padded."""
    out = bytearray(b":W&B" + struct.pack("<HB", 0xBEE1, 0))

    def fragment(data, kind):
        crc = zlib.crc32(data, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF
        out.extend(struct.pack("<IHB", crc, len(data), kind) + data)

    for data in payloads:
        left = WANDB_BLOCK - len(out) % WANDB_BLOCK
        if left < WANDB_HEADER:
            out.extend(b"\0" * left)
            left = WANDB_BLOCK
        if len(data) + WANDB_HEADER <= left:
            fragment(data, 1)
            continue
        room = left - WANDB_HEADER
        fragment(data[:room], 2)
        used = room
        while len(data) - used > WANDB_BLOCK - WANDB_HEADER:
            fragment(data[used:used + WANDB_BLOCK - WANDB_HEADER], 3)
            used += WANDB_BLOCK - WANDB_HEADER
        fragment(data[used:], 4)
    return bytes(out)


def wandb_item(key_, value):
    """HistoryItem / ConfigItem / SummaryItem: key = 1, value_json = 16."""
    return pb_bytes(1, key_.encode()) + pb_bytes(16, json.dumps(value).encode())


def wandb_records(points, config, exit_code=0, notes_len=0):
    """Record: num = 1; history = 2 {item = 1, step = 2 {num = 1}}; summary = 3; config = 5;
    run = 17 {run_id = 1, project = 3, config = 4}; exit = 18 {exit_code = 1, runtime = 2}."""
    recs = [pb_varint(1, 1) + pb_bytes(17, pb_bytes(1, b"abc123") + pb_bytes(3, b"sweep") +
                                      pb_bytes(4, b"".join(pb_bytes(1, wandb_item(k, v)) for k, v in config.items())))]
    if notes_len:  # a config update longer than a block: FIRST, MIDDLE, LAST fragments
        recs.append(pb_varint(1, 2) + pb_bytes(5, pb_bytes(1, wandb_item("notes", "n" * notes_len))))
    for i, (step, loss) in enumerate(points):
        items = [wandb_item("loss", loss), wandb_item("lr", 3e-4), wandb_item("_step", step),
                 wandb_item("_runtime", 1.5 * step)]
        recs.append(pb_varint(1, 3 + i) + pb_bytes(2, b"".join(pb_bytes(1, it) for it in items) +
                                                   pb_bytes(2, pb_varint(1, step))))
    recs.append(pb_varint(1, 9999) + pb_bytes(3, pb_bytes(1, wandb_item("loss", points[-1][1]))))
    if exit_code is not None:
        recs.append(pb_varint(1, 10000) + pb_bytes(18, pb_varint(1, exit_code) + pb_varint(2, 120)))
    return recs


def write_wandb_offline(run_dir, points, config, exit_code=0, notes_len=0):
    run_id = os.path.basename(run_dir).rsplit("-", 1)[-1]
    path = write(os.path.join(run_dir, f"run-{run_id}.wandb"),
                 leveldb_log(wandb_records(points, config, exit_code, notes_len)), "wb")
    write(os.path.join(run_dir, "logs", "debug.log"), "2025-01-10 10:00:00,000 INFO    MainThread:1 [wandb_init.py] "
          "Logging user logs to wandb/offline-run/logs/debug.log\n")
    write(os.path.join(run_dir, "files", "wandb-metadata.json"), json.dumps({"python": "3.11"}) + "\n")
    return path


def write_wandb_legacy(run_dir, points, config):
    """The older W&B run folder: wandb-history.jsonl rows and config.yaml with {desc, value} entries."""
    write(os.path.join(run_dir, "wandb-history.jsonl"),
          "".join(json.dumps({"_step": s, "loss": l, "_runtime": 1.5 * s, "_timestamp": 1.6e9 + s}) + "\n"
                  for s, l in points))
    cfg = "wandb_version: 1\n\n" + "".join(f"{k}:\n  desc: null\n  value: {scalar_text(v)}\n" for k, v in config.items())
    write(os.path.join(run_dir, "config.yaml"), cfg)


def write_jsonl(run_dir, points, config):
    write(os.path.join(run_dir, "metrics.jsonl"), "".join(json.dumps({"step": s, "loss": l}) + "\n" for s, l in points))
    write(os.path.join(run_dir, "config.json"), json.dumps(config) + "\n")


def write_megatron(run_dir, points, total, config):
    lines = ["training ..."]
    for it, loss in points:
        lines.append(f" iteration {it:8d}/{total:8d} | consumed samples: {it * 64:12d} | elapsed time per iteration "
                     f"(ms): 512.3 | learning rate: 3.000E-04 | global batch size:    64 | lm loss: {loss:.6E} | "
                     "loss scale: 1.0 |")
    write(os.path.join(run_dir, "train.log"), "\n".join(lines) + "\n")
    write(os.path.join(run_dir, "config.json"), json.dumps(config) + "\n")


# ---- a folder of every layout --------------------------------------------------------------------

def write_all(out, bad=False):
    """One good run per layout (distinct hyperparameters), and with bad=True the damaged/truncated/
    unfinished variants. Returns {"good": {layout: [run dir, expected final loss, finished]}, "bad":
    {run dir: expected reason}}."""
    good, bad_runs = {}, {}
    pts = curve(200, 10)

    d = os.path.join(out, "tb", "run_a")
    write_tensorboard(d, pts, {"model": {"params": 2.0e7}, "optimizer": {"lr": 1e-3, "weight_decay": 0.05},
                               "data": {"global_batch_size": 64, "seq_len": 1024}, "trainer": {"max_steps": 200}})
    good["tensorboard"] = [d, pts[-1][1], True]

    d = os.path.join(out, "lightning", "lightning_logs", "version_0")
    write_lightning(d, pts, {"lr": 2e-3, "batch_size": 32, "n_params": 2.0e7, "max_steps": 200, "seq_len": 512,
                             "weight_decay": 0.1}, val_every=5)
    good["lightning"] = [d, pts[-1][1], True]

    d = write_mlflow(os.path.join(out, "mlruns"), 1, "0123456789abcdef0123456789abcdef", pts,
                     {"lr": 3e-3, "batch_size": 16, "params": 2.0e7, "max_steps": 200, "seq_len": 256})
    good["mlflow"] = [d, pts[-1][1], True]

    d = os.path.join(out, "hf", "output_lr4e-3")
    write_hf_trainer(d, pts, 200, {"learning_rate": 4e-3, "params": 2.0e7, "global_batch_size": 48, "seq_len": 1024},
                     checkpoints=(100, 200))
    good["hf-trainer"] = [d, round(pts[-1][1], 4), True]

    d = os.path.join(out, "titan", "llama_debug")
    write_torchtitan(d, pts, 200, {"job": {"dump_folder": "./outputs"}, "model": {"name": "llama3", "flavor": "debugmodel"},
                                   "optimizer": {"name": "AdamW", "lr": 5e-3, "weight_decay": 0.1},
                                   "training": {"local_batch_size": 8, "global_batch_size": 64, "seq_len": 2048,
                                                "steps": 200}})
    good["torchtitan"] = [d, float(f"{pts[-1][1]:7.4f}"), True]

    d = os.path.join(out, "jsonl", "run_j")
    write_jsonl(d, pts, {"lr": 6e-3, "batch": 64, "params": 2.0e7, "train_steps": 200, "seq_len": 1024})
    good["jsonl"] = [d, pts[-1][1], True]

    d = os.path.join(out, "megatron", "run_m")
    write_megatron(d, pts, 200, {"lr": 7e-3, "batch": 64, "params": 2.0e7, "seq_len": 1024})
    good["megatron"] = [d, float(f"{pts[-1][1]:.6E}"), True]

    d = os.path.join(out, "wandb", "wandb", "offline-run-20250110_100000-abc123")
    write_wandb_offline(d, pts, {"lr": 8e-3, "batch_size": 64, "params": 2.0e7, "max_steps": 200, "seq_len": 1024,
                                 "optimizer": {"name": "adamw", "weight_decay": 0.05}}, notes_len=40000)
    good["wandb"] = [d, pts[-1][1], True]
    d = os.path.join(out, "wandb", "old", "run-20200101_000000-old123")
    write_wandb_legacy(d, pts, {"lr": 1e-2, "batch_size": 64, "params": 2.0e7, "max_steps": 200})
    good["wandb-legacy"] = [d, pts[-1][1], True]

    if bad:
        cfg = {"optimizer": {"lr": 1e-3}, "params": 2e7, "batch_size": 64, "max_steps": 200}
        d = os.path.join(out, "bad", "tb_damaged_crc")
        [p] = write_tensorboard(d, pts, cfg)
        data = bytearray(open(p, "rb").read())
        data[len(data) // 2] ^= 0x40  # one flipped bit in the middle of a record
        write(p, bytes(data), "wb")
        bad_runs[d] = "damaged record"
        d = os.path.join(out, "bad", "tb_truncated")
        [p] = write_tensorboard(d, pts, cfg)
        data = open(p, "rb").read()
        write(p, data[:-7], "wb")
        bad_runs[d] = "truncated record"
        d = os.path.join(out, "bad", "hf_no_params")
        write_hf_trainer(d, pts, 200, {"learning_rate": 1e-3, "global_batch_size": 8})
        bad_runs[d] = "no params"
        d = os.path.join(out, "bad", "mlruns")
        write_mlflow(d, 2, "ffffffffffffffffffffffffffffffff", pts[:5], {"lr": 1e-3, "batch_size": 8, "params": 2e7,
                                                                        "max_steps": 200}, status=4)
        bad_runs[os.path.join(d, "2", "ffffffffffffffffffffffffffffffff")] = "FAILED"
        d = os.path.join(out, "bad", "lightning_no_hparams")
        write_lightning(d, pts, {})
        os.remove(os.path.join(d, "hparams.yaml"))
        bad_runs[d] = "no hparams.yaml"
        d = os.path.join(out, "bad", "wandb", "offline-run-20250110_110000-crash1")
        write_wandb_offline(d, pts, {"lr": 1e-3, "batch_size": 8, "params": 2e7, "max_steps": 200}, exit_code=1)
        bad_runs[d] = "exited with code 1"
        d = os.path.join(out, "bad", "wandb", "offline-run-20250110_120000-trunc1")
        p = write_wandb_offline(d, pts, {"lr": 1e-3, "batch_size": 8, "params": 2e7, "max_steps": 200})
        write(p, open(p, "rb").read()[:-3], "wb")
        bad_runs[d] = "truncated record"
        # unfinished: a good record flagged unfinished
        d = os.path.join(out, "unfinished", "titan_half")
        write_torchtitan(d, pts[:10], 200, {"optimizer": {"lr": 9e-3}, "training": {"global_batch_size": 64,
                                                                                    "seq_len": 2048, "steps": 200}},
                         final_newline=False)
        good["torchtitan-unfinished"] = [d, float(f"{pts[8][1]:7.4f}"), False]
    return {"good": good, "bad": bad_runs}


def write_examples(root):
    """examples/ingest/<layout>/: the good runs of write_all, plus a TensorBoard run whose scalars
    are tensors (as tf.summary writes them in TF2) and a resumed run split over two event files."""
    tmp = os.path.join(root, ".tmp-fixtures")
    summary = write_all(tmp)
    import shutil
    names = {"tensorboard": "tensorboard/run_lr1e-3", "lightning": "lightning/lightning_logs/version_0",
             "mlflow": "mlflow/mlruns/1/0123456789abcdef0123456789abcdef", "hf-trainer": "hf-trainer/output_lr4e-3",
             "torchtitan": "torchtitan/llama_debug", "wandb": "wandb/wandb/offline-run-20250110_100000-abc123",
             "wandb-legacy": "wandb/old/run-20200101_000000-old123"}
    for layout, rel in names.items():
        src = summary["good"][layout][0]
        dst = os.path.join(root, rel)
        shutil.rmtree(dst, ignore_errors=True)
        if layout == "mlflow":
            shutil.rmtree(os.path.join(root, "mlflow"), ignore_errors=True)
            shutil.copytree(os.path.join(tmp, "mlruns"), os.path.join(root, "mlflow", "mlruns"))
        else:
            shutil.copytree(src, dst)
    shutil.rmtree(tmp)
    pts = curve(200, 10)
    d = os.path.join(root, "tensorboard", "run_tensor_lr2e-3")
    shutil.rmtree(d, ignore_errors=True)
    write_tensorboard(d, pts, {"lr": 2e-3, "batch_size": 64, "params": 2.0e7, "max_steps": 200},
                      tag="loss", kind="tensor_double", files=2)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "--examples":
        write_examples(sys.argv[2])
        sys.exit(0)
    print(json.dumps(write_all(sys.argv[1], bad="--bad" in sys.argv[2:]), indent=1))
