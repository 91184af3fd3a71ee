#!/usr/bin/env python3
# Summarises a bench/pairs.sh directory: per run and median per build, CPU ms/height/validator
# (the bench's own figure), per-thread ms/height/validator (bench/threads.sh ticks × 10 ms /
# (heights/s × seconds × validators)), finality p50/p99, persist ms, load average.
#   python3 bench/pairsSummary.py DIR [DIR...]
import json, re, statistics, sys, glob, os
rows = {}
for d in sys.argv[1:]:
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        base = f[:-5]
        name = os.path.basename(base)
        build, shape, i = name.rsplit("-", 2)
        try:
            rep = json.load(open(f))
        except Exception:
            continue
        r = rep["runs"][0]; st = r.get("stages", {})
        dur = r["durationS"]; hps = st.get("heights", 0) / dur if dur else 0
        thr = {}
        if os.path.exists(base + ".thr"):
            lines = open(base + ".thr").read().split("\n")
            m = re.match(r"validators (\d+) seconds (\d+)", lines[0])
            nv, secs = int(m.group(1)), int(m.group(2))
            for l in lines[1:]:
                p = l.split()
                if len(p) == 2 and hps > 0 and nv > 0:
                    thr[p[0].lower()] = int(p[1]) * 10 / (hps * secs * nv)
        load = re.findall(r"load average: ([\d.]+)", open(base + ".load").read()) if os.path.exists(base + ".load") else []
        fin = r["finalityMs"]
        row = dict(cpu=st.get("cpuPerHeightMsPerValidator"), p50=fin["p50"], p99=fin["p99"], tps=r["achievedTps"],
                   hps=round(hps, 2), persist=st.get("persistMs"), pph=st.get("persistsPerHeight"),
                   main=thr.get("main"), other=thr.get("other"), v8=thr.get("v8"), uv=thr.get("uv"),
                   worker=thr.get("worker"), load=load[0] if load else "?", vc=st.get("viewChanges"))
        rows.setdefault((shape, build), []).append((name, row))
keys = ["cpu", "main", "other", "v8", "uv", "worker", "p50", "p99", "tps", "hps", "persist", "pph", "vc"]
fmt = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
print("| run | load | " + " | ".join(keys) + " |")
for (shape, build), rs in sorted(rows.items()):
    for name, row in rs:
        print(f"| {name} | {row['load']} | " + " | ".join(fmt(row[k]) for k in keys) + " |")
    med = {k: statistics.median([x[k] for _, x in rs if x[k] is not None]) if any(x[k] is not None for _, x in rs) else None for k in keys}
    print(f"| **{shape} {build} median (n={len(rs)})** | | " + " | ".join(fmt(med[k]) for k in keys) + " |")
