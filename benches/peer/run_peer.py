#!/usr/bin/env python3
"""Run the DuckDB peer (duckdb_stitch.sql) on a raw lake and report wall time and peak memory.

    python3 benches/peer/run_peer.py --lake LAKE --output OUT [--date 2026-11-21] [--json]
    python3 benches/peer/run_peer.py measure -- COMMAND ARGS...   # time any command

The stitching runs in a child process; the parent measures its wall time and its peak
resident memory (getrusage(RUSAGE_CHILDREN).ru_maxrss), so Python's own start-up memory is
counted once, as for any command. The run is written as OUT/runs/<date>/{journeys,persons}
plus _SUCCESS and OUT/latest, the layout `lakestitch quality --run OUT` reads.

Needs the `duckdb` package (pip install duckdb).
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

SQL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "duckdb_stitch.sql")


def sections(text):
    """Split the SQL file into {section: [statement, ...]} at `-- @section NAME` lines."""
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r"--\s*@section\s+(\w+)", line)
        if m:
            name = m.group(1)
            out[name] = []
            continue
        if name is not None:
            out[name].append(line)
    result = {}
    for name, lines in out.items():
        body = "\n".join(l for l in lines if not l.lstrip().startswith("--"))
        result[name] = [s.strip() for s in body.split(";\n") if s.strip().rstrip(";")]
    return result


def child(args):
    """The stitching itself (in the child process); prints one JSON line of inner timings."""
    import duckdb

    run = os.path.join(os.path.abspath(args.output), "runs", args.date)
    os.makedirs(run, exist_ok=True)
    for name in os.listdir(run):  # a rerun starts from an empty run folder
        subprocess.run(["rm", "-rf", os.path.join(run, name)], check=True)
    os.makedirs(os.path.join(run, "persons"))
    with open(SQL) as f:
        text = f.read()
    text = (
        text.replace("${LAKE}", os.path.abspath(args.lake))
        .replace("${RUN}", run)
        .replace("${DATE}", args.date)
    )
    parts = sections(text)
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    timings = {}
    t = time.perf_counter()
    for stmt in parts["setup"]:
        con.execute(stmt)
    timings["setup_s"] = time.perf_counter() - t
    t = time.perf_counter()
    iterations = 0
    while True:
        iterations += 1
        result = None
        for stmt in parts["iterate"]:
            result = con.execute(stmt)
        changed = result.fetchone()[0]
        if changed == 0:
            break
    timings["label_propagation_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for stmt in parts["finish"]:
        con.execute(stmt)
    timings["finish_s"] = time.perf_counter() - t
    counts = {
        "events_used": con.execute("SELECT count(*) FROM journeys").fetchone()[0],
        "persons": con.execute("SELECT count(*) FROM persons").fetchone()[0],
        "iterations": iterations,
    }
    con.close()
    open(os.path.join(run, "_SUCCESS"), "w").close()
    with open(os.path.join(os.path.abspath(args.output), "latest"), "w") as f:
        f.write(args.date + "\n")
    print(json.dumps({**counts, **timings}))


def measure(cmd):
    """Run `cmd`; return (exit code, wall seconds, peak RSS MB of the child, its stdout)."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return proc.returncode, wall, peak_kb / 1024.0, proc.stdout.decode()


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "measure":
        cmd = argv[1:]
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        code, wall, peak, out = measure(cmd)
        sys.stdout.write(out)
        print(json.dumps({"exit": code, "wall_s": round(wall, 3), "peak_mb": round(peak, 1)}))
        sys.exit(code)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", required=True, help="the raw lake (holds raw/)")
    p.add_argument("--output", required=True, help="output folder (runs/<date>/ is written)")
    p.add_argument("--date", default="2026-11-21", help="run date; reads dt <= date")
    p.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--lake", args.lake,
           "--output", args.output, "--date", args.date, "--threads", str(args.threads)]
    code, wall, peak, out = measure(cmd)
    if code != 0:
        sys.exit(f"peer failed with exit code {code}")
    inner = json.loads(out.strip().splitlines()[-1])
    report = {"wall_s": round(wall, 3), "peak_mb": round(peak, 1), **inner}
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:22} {v:.3f}" if isinstance(v, float) else f"{k:22} {v}")


if __name__ == "__main__":
    main()
