"""Formats bench_ddp's JSON lines (stdin) as a table; ratios are against 1 rank x 2 threads."""
import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
head = ("shape", "ranks x thr", "overlap", "step ms", "tok/s", "MB/step", "wait ms", "AR alone ms", "vs 1x2")
print("%12s %11s %7s %8s %8s %8s %8s %11s %7s" % head)
base = {}
for r in rows:
    shape = "%d->%d" % (r["d_in"], r["d_sae"])
    if r["world"] == 1:
        base[shape] = r["step_s"]
    print("%12s %11s %7s %8.1f %8.0f %8.1f %8.1f %11.1f %6.2fx" % (
        shape, "%d x %d" % (r["world"], r["threads"]), str(r["overlap"]) if r["world"] > 1 else "-",
        r["step_s"] * 1e3, r["tokens_per_s"], r.get("all_reduce_bytes_per_step", 0) / 2**20,
        r.get("all_reduce_wait_s_per_step", 0) * 1e3, r.get("all_reduce_alone_s", 0) * 1e3,
        base[shape] / r["step_s"]))
print("sgemm in this run: %.1f GFLOP/s at 2 threads" % rows[0]["sgemm_gflops"])
