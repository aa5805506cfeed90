#!/usr/bin/env python3
"""make bench: each state of the sync as its own process (`lscw step`, release build),
with its real input and output, against `lscw simulate pair` in another process, at
several sizes; then the enrichment, full and incremental.

Prints per size and step: ConnectWise and Lansweeper requests, wall time, the step's
peak memory (its process alone), the largest state in or out (bytes); per run: requests
against the lower bound, the store's items and largest item; and whether each target
holds. Figures are from one run on a shared machine: read them as ratios.
"""

import base64
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "lscw")
WORK = os.path.join(ROOT, "target", "bench")
CW_PORT = int(os.environ.get("BENCH_CW_PORT", "18580"))
LS_PORT = int(os.environ.get("BENCH_LS_PORT", "18590"))
SPEED = 100
KIB = 1024


def wait_for(port, seconds=900):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"the simulator on port {port} did not start")


def environment(store_dir):
    env = dict(os.environ)
    for key in ("SYNC_TABLE", "AWS_ENDPOINT_URL", "SECRET_ARN"):
        env.pop(key, None)
    env.update({
        "CW_BASE_URL": f"http://127.0.0.1:{CW_PORT}/v4_6_release/apis/3.0",
        "CW_COMPANY_ID": "sim", "CW_PUBLIC_KEY": "simpub", "CW_PRIVATE_KEY": "simpriv",
        "CW_CLIENT_ID": "00000000-0000-4000-8000-00000000c0de",
        "CW_TARGET_COMPANY": "BlueLightCo",
        "LS_API_URL": f"http://127.0.0.1:{LS_PORT}/api/v2/graphql",
        "LS_TOKEN": "simtoken", "LS_SITE_ID": "sim-site",
        "LS_QUOTA_SPEED": str(SPEED), "LSCW_DATA_DIR": store_dir, "RUST_LOG": "warn",
    })
    return env


def timed(args, env):
    """Runs a process; answers (wall seconds, peak resident KB, CPU seconds)."""
    stats = os.path.join(WORK, "time")
    subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S", "-o", stats, BIN, *args],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, kb, user, system = open(stats).read().split()
    return float(wall), int(kb), float(user) + float(system)


def step(name, payload, env, tag):
    source = os.path.join(WORK, f"{tag}-in.json")
    target = os.path.join(WORK, f"{tag}-out.json")
    text = json.dumps(payload)
    open(source, "w").write(text)
    wall, kb, cpu = timed(["step", name, "--input", source, "--output", target], env)
    out_text = open(target).read()
    return json.loads(out_text), wall, kb, cpu, max(len(text), len(out_text))


def connectwise(path, method="GET", body=None):
    """One request to the ConnectWise simulator, as any API member would send it."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{CW_PORT}/v4_6_release/apis/3.0/{path}", method=method,
        data=None if body is None else json.dumps(body).encode())
    token = base64.b64encode(b"sim+simpub:simpriv").decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("clientId", "00000000-0000-4000-8000-00000000c0de")
    request.add_header("Content-Type", "application/json")
    return json.load(urllib.request.urlopen(request))


def configurations_in_tenant():
    return connectwise("company/configurations/count")["count"]


def change_tickets(share):
    """Closes (or reopens) `share` of the tenant's tickets, spread over all of them, as a
    service desk would; ConnectWise moves their last update. Answers how many changed."""
    total = connectwise("service/tickets/count")["count"]
    every = max(1, total // max(1, math.ceil(total * share)))
    changed, seen, page = 0, 0, 1
    while True:
        tickets = connectwise(f"service/tickets?fields=id,closedFlag&orderBy=id&pageSize=1000&page={page}")
        if not tickets:
            return changed
        for ticket in tickets:
            if seen % every == 0:
                connectwise(f"service/tickets/{ticket['id']}", "PATCH",
                            [{"op": "replace", "path": "closedFlag", "value": not ticket.get("closedFlag", False)}])
                changed += 1
            seen += 1
        page += 1


def sync(n, run, env):
    rows = {}

    def add(name, answer, wall, kb, cpu, size):
        row = rows.setdefault(name, {"cw": 0, "ls": 0, "wall": 0.0, "cpu": 0.0, "kb": 0, "state": 0, "n": 0})
        calls = answer.get("apiCalls", {}) if isinstance(answer, dict) else {}
        row["cw"] += calls.get("connectwise", 0)
        row["ls"] += calls.get("lansweeper", 0)
        row["wall"] += wall
        row["cpu"] += cpu
        row["kb"] = max(row["kb"], kb)
        row["state"] = max(row["state"], size)
        row["n"] += 1

    configurations = configurations_in_tenant()
    run_id = f"bench-{n}-{run}"
    fetched, *m = step("fetch-assets", {"runId": run_id}, env, "fetch")
    add("fetch-assets", fetched, *m)
    ensured, *m = step("ensure-references", fetched, env, "ensure")
    add("ensure-references", ensured, *m)
    matched, *m = step("match", ensured, env, "match")
    add("match", matched, *m)
    for kind, lanes in (("bulk-create", matched["createLanes"]), ("bulk-modify", matched["modifyLanes"])):
        # Each Map lane invoked again with where it goes on, until done.
        for lane in lanes:
            invocation = 0
            while True:
                answer, *m = step(kind, lane, env, f"{kind}-{lane['lane']}-{invocation}")
                add(kind, answer, *m)
                if answer["done"]:
                    break
                lane = {key: answer[key] for key in ("runId", "lane", "lanes", "next")}
                invocation += 1
    summary, *m = step("run-report", {"runId": run_id}, env, "report")
    add("run-report", {}, *m)
    step("release-lease", {"runId": run_id}, env, "release")
    stats, *_ = step("store-stats", {}, env, "stats")
    references = sum(ensured.get("referencesCreated", {}).values())
    # The fewest requests any sync could make: read the configurations (1,000 a
    # request) and the site (500 assets a request), the companies and custom fields
    # once, one request per reference created, one bulk POST per 50 created, one read
    # and one bulk PUT per 50 changed.
    cw_floor = (math.ceil(configurations / 1000) + 2 + references
                + math.ceil(summary["created"] / 50) + 2 * math.ceil(summary["modified"] / 50))
    ls_floor = math.ceil(n / 500)
    return rows, summary, stats, cw_floor, ls_floor


def enrich(env, tag):
    report = os.path.join(WORK, f"enrich-{tag}.json")
    wall, kb, cpu = timed(["enrich", "--report", report], env)
    return json.load(open(report)), wall, kb, cpu


def main():
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1000 10000 100000").split()]
    subprocess.run(["cargo", "build", "--quiet", "--release", "--bin", "lscw"], cwd=ROOT, check=True)
    os.makedirs(WORK, exist_ok=True)
    verdicts = []
    peaks = {}
    for n in sizes:
        measured = peaks.setdefault(n, {})
        store_dir = os.path.join(WORK, f"store-{n}")
        subprocess.run(["rm", "-rf", store_dir], check=True)
        sim = subprocess.Popen(
            [BIN, "simulate", "pair", "--assets", str(n), "--speed", str(SPEED),
             "--connectwise-listen", f"127.0.0.1:{CW_PORT}", "--lansweeper-listen", f"127.0.0.1:{LS_PORT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(LS_PORT)
            wait_for(CW_PORT)
            env = environment(store_dir)
            for run in ("first", "repeat"):
                rows, summary, stats, cw_floor, ls_floor = sync(n, run, env)
                cw = summary["apiCalls"]["connectwise"]
                ls = summary["apiCalls"]["lansweeper"]
                print(f"\n{n:,} assets, {run} run: created {summary['created']:,}, modified {summary['modified']:,}")
                print(f"  {'step':<18} {'invocations':>11} {'CW req':>7} {'LS req':>7} {'wall s':>7} {'CPU s':>6} {'peak MB':>8} {'state KiB':>9}")
                for name, r in rows.items():
                    print(f"  {name:<18} {r['n']:>11} {r['cw']:>7} {r['ls']:>7} {r['wall']:>7.1f} {r['cpu']:>6.1f} {r['kb']/1024:>8.1f} {r['state']/KIB:>9.1f}")
                print(f"  ConnectWise {cw} requests, lower bound {cw_floor} ({cw/cw_floor:.2f}x); "
                      f"Lansweeper {ls}, lower bound {ls_floor} ({ls/max(ls_floor,1):.2f}x)")
                print(f"  store: {stats['items']:,} items, largest {stats['largestBytes']/KIB:.1f} KiB ({stats['largestKey']})")
                for name, r in rows.items():
                    measured[name] = max(measured.get(name, 0), math.ceil(r["kb"] / 1024))
                largest_state = max(r["state"] for r in rows.values())
                peak = max(r["kb"] for r in rows.values()) / 1024
                match_peak = rows["match"]["kb"] / 1024
                match_cpu = rows["match"]["cpu"]
                checks = [
                    (f"{n} {run}: ConnectWise ≤ 1.1× lower bound", n < 10000 or cw <= 1.1 * cw_floor),
                    (f"{n} {run}: largest state < 64 KiB ({largest_state/KIB:.1f})", largest_state < 64 * KIB),
                    (f"{n} {run}: no step over 1 GB ({peak:.0f} MB)", peak < 1024),
                    (f"{n} {run}: match under 512 MB ({match_peak:.0f} MB)", match_peak < 512),
                    (f"{n} {run}: match under 20 s of CPU ({match_cpu:.1f} s)", match_cpu < 20),
                ]
                if run == "repeat":
                    checks.append((f"{n} repeat: writes nothing", summary["created"] + summary["modified"] == 0))
                verdicts += checks
            first, wall, kb, _ = enrich(env, f"{n}-first")
            again, wall2, kb2, _ = enrich(env, f"{n}-again")
            linked = max(first["assets"] - first["unchanged"], 1)
            print(f"  enrichment: full read {first['apiCalls']['connectwise']} ConnectWise requests ({wall:.1f} s, {kb/1024:.0f} MB); "
                  f"rerun {again['apiCalls']['connectwise']} ({wall2:.1f} s, {kb2/1024:.0f} MB), {again['written']} written")
            verdicts.append((f"{n} enrichment rerun: ≤ 10 requests per 10,000 linked + 9",
                             again["apiCalls"]["connectwise"] <= 9 + 10 * math.ceil(linked / 10000)))
            verdicts.append((f"{n} enrichment rerun writes nothing", again["written"] == 0))
            changed = change_tickets(0.01)
            after, wall3, kb3, _ = enrich(env, f"{n}-changed")
            measured["ticket-agreement-enrich"] = math.ceil(max(kb, kb2, kb3) / 1024)
            constant = again["apiCalls"]["connectwise"]
            print(f"  enrichment after {changed} tickets (1%) changed: {after['apiCalls']['connectwise']} ConnectWise requests "
                  f"(constant part {constant} + {changed} changed; {wall3:.1f} s), {after['written']} written")
            verdicts.append((f"{n} enrichment after 1% changed: ≤ constant + 1.1 × changed",
                             after["apiCalls"]["connectwise"] <= constant + math.ceil(1.1 * changed)))
            verdicts.append((f"{n} matching assets enriched again: ≥ 1 written", after["written"] >= 1))
        finally:
            sim.terminate()
            sim.wait()
    largest = max(sizes)
    if largest >= 100000:
        # What template.yaml's MemorySize is checked against (infra/tests/test_template.py).
        with open(os.path.join(ROOT, "infra", "sizing.json"), "w") as out:
            measured = time.strftime("%Y-%m-%d") + f", release build, {os.cpu_count()}-core machine"
            json.dump({"assets": largest, "measured": measured, "peakMB": peaks[largest]},
                      out, indent=2, sort_keys=True)
            out.write("\n")
        print(f"\nWrote infra/sizing.json: the peaks at {largest:,} assets")
    print("\nTargets")
    for text, held in verdicts:
        print(f"  {'holds' if held else 'MISSED'}  {text}")


if __name__ == "__main__":
    main()
