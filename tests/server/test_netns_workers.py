"""Workers on two "hosts": network namespaces made by the fixture (``ip netns``, a veth pair
each, addresses inside them only), torn down afterwards; skipped with a message when not root.

A shared engine on Postgres listens on its worker port beyond loopback (CURVE keys, I14). The
worker of host 1 takes a step and is cut off mid-step (its link set down): its lease expires,
the worker of host 2 runs the step and the run completes. When host 1's link comes back, its
late result is refused by fence (I5) and the journal holds the step once.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from test_server_http import Engine, free_port, ir_of
from test_shared_engines_processes import effects, sql, until

from tether.fleet.keys import generate

psycopg = pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")

pytestmark = pytest.mark.slow

TOKEN = "netns-test-token-0123456789"
CHAIN = """
workflow:
  id: hosts
  version: "1"
  state_schema: {tag: {type: string, required: true}}
nodes:
  s1: {type: tool, tool: effect_step, input: {k: 1, tag: $tag}, next: s2}
  s2: {type: tool, tool: effect_step, input: {k: 2, tag: $tag}, next: s3}
  s3: {type: tool, tool: effect_step, input: {k: 3, tag: $tag}, next: end}
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Host:
    """A network namespace joined to this one by a veth pair: ``address`` inside it,
    ``gateway`` (this side's end) is how it reaches the engine."""

    netns: str
    link: str  # this side's end of the veth pair: set down to cut the host off
    address: str
    gateway: str

    def cut(self) -> None:
        ip("link", "set", self.link, "down")

    def restore(self) -> None:
        ip("link", "set", self.link, "up")


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network-namespace hosts need root and iproute2 (ip netns)")
    tag = f"{random.randrange(16**4):04x}"
    net = random.randrange(100, 250)
    made: list[Host] = []
    try:
        for i in (1, 2):
            ns, here, there = f"t22-{tag}-{i}", f"v{tag}h{i}", f"v{tag}n{i}"
            ip("netns", "add", ns)
            made.append(Host(ns, here, f"10.{net}.{i}.2", f"10.{net}.{i}.1"))
            ip("link", "add", here, "type", "veth", "peer", "name", there)
            ip("link", "set", there, "netns", ns)
            ip("addr", "add", f"10.{net}.{i}.1/24", "dev", here)
            ip("link", "set", here, "up")
            ip("-n", ns, "addr", "add", f"10.{net}.{i}.2/24", "dev", there)
            ip("-n", ns, "link", "set", there, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield made
    finally:
        for h in made:
            subprocess.run(["ip", "link", "del", h.link], capture_output=True)
            subprocess.run(["ip", "netns", "del", h.netns], capture_output=True)


def worker_on(host: Host, engine: Engine, keys: Path, port: int, name: str,
              **env: str) -> subprocess.Popen[bytes]:  # fmt: skip
    """``tether worker`` inside ``host``'s namespace, reaching the engine at its gateway."""
    argv = ["ip", "netns", "exec", host.netns, sys.executable, "-m", "tether.cli", "worker",
            "--modules", "shared_tools", "--engine", f"tcp://{host.gateway}:{port}",
            "--key", str(keys / "workers" / f"{name}.key_secret"),
            "--engine-key", str(keys / "engine.key"),
            "--worker-id", name, "--concurrency", "2"]  # fmt: skip
    log = engine.log.parent / f"worker-{name}.log"
    return subprocess.Popen(argv, cwd=engine.cwd, env={**engine.env, **env},
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))  # fmt: skip


def test_a_host_cut_off_mid_step_loses_its_lease_and_its_late_result_is_refused_I5(
    tmp_path: Path, postgres_url: str, hosts: list[Host]
) -> None:
    keys = tmp_path / "keys"
    generate(keys, "engine")
    for name in ("h1", "h2"):
        generate(keys / "workers", name)
    port = free_port()
    engine = Engine(tmp_path, modules="shared_tools", env={
        "TETHER_DATABASE_URL": postgres_url, "TETHER_SHARED": "true",
        "TETHER_EMBED_WORKERS": "0", "TETHER_WORKER_PORT": str(port), "TETHER_BIND": "0.0.0.0",
        "TETHER_TOKEN": TOKEN, "TETHER_FLEET_KEY": str(keys / "engine.key_secret"),
        "TETHER_FLEET_WORKER_KEYS": str(keys / "workers"),
        "TETHER_TEST_EFFECTS": str(tmp_path / "effects.log"),
    })  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        engine.start()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        c = httpx.Client(base_url=engine.url, headers=auth)
        # host 1's worker alone first, so it takes the run's steps; its step 2 takes 8 s
        procs.append(worker_on(hosts[0], engine, keys, port, "h1", TETHER_TEST_SLOW_STEP="2:8"))
        until(lambda: len(c.get("/workers").json()["workers"]) == 1, "host 1's worker to join")
        c.post("/workflows", json={"ir": ir_of(CHAIN)}).raise_for_status()
        started = c.post("/executions", json={"workflow_id": "hosts", "input": {"tag": "x"}})
        eid = started.raise_for_status().json()["execution_id"]
        log = tmp_path / "effects.log"
        until(lambda: effects(log)[("start", 2, "x")], "host 1 to be inside step 2")
        procs.append(worker_on(hosts[1], engine, keys, port, "h2"))
        until(lambda: len(c.get("/workers").json()["workers"]) == 2, "host 2's worker to join")
        hosts[0].cut()
        view = until(lambda: (v := c.get(f"/executions/{eid}").json())["status"] == "completed"
                     and v, "the run to complete on host 2")  # fmt: skip
        assert view["current_state"]["tag"] == "x"
        until(lambda: effects(log)[("done", 2, "x")] == 2, "host 1's step to finish, cut off")
        hosts[0].restore()
        w1_log = tmp_path / "worker-h1.log"
        # refused either way: a Cancel of the expired lease (fence) when host 1 rejoins, or
        # Ack(accepted=False) for the result it sends again
        refusals = ("its result is refused", "refused the result")
        until(lambda: any(r in w1_log.read_text() for r in refusals),
              "host 1's late result refused", deadline_s=60)  # fmt: skip
        types = [t for (t,) in sql(postgres_url, "SELECT type FROM tether_journal WHERE"
                                   " execution_id = %s ORDER BY seq", (eid,))]  # fmt: skip
        assert types.count("node_completed") == 3  # step 2 once: host 2's result
        assert "node_failed" in types  # host 1's lease was lost (lease_lost, not an attempt)
        assert effects(log)[("start", 1, "x")] == 1 and effects(log)[("start", 3, "x")] == 1
        c.close()
    finally:
        for p in procs:
            p.kill()
            p.wait()
        engine.kill()
