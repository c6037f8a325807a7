"""The chaos suite's printed verdict (``python -m benchmarks chaos``), and whether it failed."""

from __future__ import annotations

from typing import Any

from benchmarks.chaos_cluster import LEASE_TTL_SECS


def report(r: dict[str, Any]) -> None:
    f, se, lat = r["faults"], r["side_effects"], r["latency_s"]
    print(
        f"faults: {f['engine_kill']} engine SIGKILLs, {f['worker_kill']} worker SIGKILLs, "
        f"{f['worker_stop']} worker SIGSTOPs ({r['long_pauses']} longer than the "
        f"{LEASE_TTL_SECS:g} s lease TTL) over {r['chaos_s']:.1f} s; "
        f"{r['submit_retries']} submission retries"
    )
    if "engine_stop" in f:
        print(f"  {f['engine_stop']} engine SIGSTOPs past the lease TTL")
    if "clock_jump" in f:
        print(f"  {f['clock_jump']} engine clock jumps (its clock ended {r['clock_offset_s']:+.1f} "
              "s off)")  # fmt: skip
    if r["replies_dropped"] is not None:
        d = r["replies_dropped"]
        print(f"  {f['reply_lost']} lost replies armed: {d['api']} POST /executions replies and "
              f"{d['worker']} worker result acks dropped after the engine had them; "
              f"{r['results_unacked_at_rejoin']} results re-sent by workers rejoining")  # fmt: skip
    print(
        f"runs {r['runs']} accepted ({len(r['refused'])} never accepted): "
        f"lost {len(r['lost'])}  stuck {len(r['stuck'])}  doubled {len(r['doubled'])}  "
        f"wrong {len(r['wrong'])}"
    )
    print(
        f"side effects repeated: {se['extra_runs']} extra runs on {se['nodes_repeated']} nodes, "
        f"{se['explained']} explained by a journaled retry, {se['unexplained']} unexplained"
    )
    if lat:
        print(f"run latency under faults: p50 {lat['p50']:.2f} s  p99 {lat['p99']:.2f} s  "
              f"max {lat['max']:.2f} s")  # fmt: skip
    calm = r["baseline_latency_s"]
    if calm:
        print(f"run latency without faults (same cluster, same pace, before the faults): p50 "
              f"{calm['p50']:.2f} s  p99 {calm['p99']:.2f} s  max {calm['max']:.2f} s")  # fmt: skip
        if lat:
            print(f"p99 under faults - p99 without: {lat['p99'] - calm['p99']:+.2f} s "
                  "(target: within 3 s)")  # fmt: skip
    rejoin = r["rejoin_s"]
    if rejoin:
        health = r["rejoin_after_health_s"]
        mid, top, n = rejoin[len(rejoin) // 2], rejoin[-1], len(rejoin)
        print(f"worker rejoin after an engine restart: from its spawn p50 {mid:.2f} s  max "
              f"{top:.2f} s; from /health answering p50 {health[n // 2]:.2f} s  max "
              f"{health[-1]:.2f} s ({n} rejoins)")  # fmt: skip
    done = r["last_fault_to_all_done_s"]
    if done is not None:
        print(f"last fault to all done: {done:.2f} s" if done >= 0 else
              "every run had ended before the last fault")  # fmt: skip
    for name in ("lost", "stuck", "doubled", "wrong", "refused"):
        if r[name]:
            print(f"  {name}: {', '.join(r[name][:10])}{' ...' if len(r[name]) > 10 else ''}")


def failed(r: dict[str, Any]) -> bool:
    bad = ("lost", "stuck", "doubled", "wrong", "refused")
    return any(r[k] for k in bad) or r["side_effects"]["unexplained"] > 0
