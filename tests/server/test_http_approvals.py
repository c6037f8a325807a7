"""Approvals over HTTP on a real ``tether dev`` (I14 every peer is someone): a named token is
its user, so the body cannot claim another; an approver the node does not list is refused
(403); bad ids and comments are 422 with the rule; a refused decision journals nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from test_server_http import DEADLINE, ir_of, running_engine, wait_terminal

SHARED = "shared-token-of-24-chars"
ALICE = "alice-token-of-24-chars!"
BOB = "bobs-token-of-24-chars!!"
CAROL = "carol-token-of-24-chars!"

GUARDED = """
workflow: {id: guarded, version: "1", start: review, state_schema: {n: {type: integer}}}
nodes:
  review:
    type: human_approval
    description: "Pay?"
    approvers: [alice, "role:finance"]
    patchable: [n]
    next: add
  add: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: end}
"""


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def paused_run(c: httpx.Client) -> str:
    eid: str = c.post("/executions", json={"workflow_id": "guarded", "input": {"n": 1}}).json()[
        "execution_id"
    ]
    deadline = time.monotonic() + DEADLINE
    while c.get(f"/executions/{eid}").json()["status"] != "paused":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return eid


def decided(c: httpx.Client, eid: str) -> list[tuple[str, str]]:
    rows = c.get(f"/executions/{eid}/approvals").json()["decided"]
    return [(d["status"], d["user_id"]) for d in rows]


def test_named_tokens_decide_as_their_user_and_only_listed_ones_I14(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"# who token\nalice {ALICE}\nbob {BOB}\ncarol:finance,ops {CAROL}\n")
    env = {"TETHER_TOKEN": SHARED, "TETHER_TOKENS_FILE": str(tokens)}
    with running_engine(tmp_path, env) as e, httpx.Client(base_url=e.url) as c:
        c.headers.update(bearer(SHARED))
        c.post("/workflows", json={"ir": ir_of(GUARDED)}).raise_for_status()
        eid = paused_run(c)
        url = f"/executions/{eid}/approve"

        # bob is authenticated but not an approver of this node: 403, nothing journaled.
        refused = c.post(url, json={"decision": "approved"}, headers=bearer(BOB))
        assert refused.status_code == 403, refused.text
        assert "'bob' may not decide" in refused.json()["error"]
        # bob's token cannot pass as alice by saying so in the body.
        spoof = {"decision": "approved", "user_id": "alice"}
        spoofed = c.post(url, json=spoof, headers=bearer(BOB))
        assert spoofed.status_code == 403, spoofed.text
        assert "stands for user 'bob'" in spoofed.json()["error"]
        # The shared token names nobody: the body's id is taken, and checked.
        for body, rule in [
            ({"user_id": "ali\u202ece"}, "printable"),
            ({"user_id": "x" * 100_000}, "1-128"),
            ({"user_id": "al\x00"}, "printable"),
            ({"user_id": "dave", "comment": "hi\x00"}, "U+0000"),
            ({"user_id": "dave", "comment": "c" * 5000}, "at most 4096"),
        ]:
            bad = c.post(url, json={"decision": "approved", **body})
            assert bad.status_code == 422 and rule in bad.json()["error"], (body, bad.text)
        patch = {"decision": "approved", "state_patch": {"owner": "x"}}
        bad = c.post(url, json=patch, headers=bearer(ALICE))
        assert bad.status_code == 422 and "does not let a decision" in bad.text, bad.text
        unlisted = c.post(url, json={"decision": "approved", "user_id": "mallory"})
        assert unlisted.status_code == 403
        # Every worker holds the shared token: it cannot speak for a user with a named one.
        posing = c.post(url, json={"decision": "approved", "user_id": "alice"})
        assert posing.status_code == 403 and "has a named token" in posing.text, posing.text
        assert decided(c, eid) == []
        assert "approval_received" not in {
            ev["kind"]["type"] for ev in c.get(f"/executions/{eid}/events").json()["events"]
        }

        # carol holds the finance role: her decision counts, under her own id.
        ok = c.post(url, json={"decision": "approved", "state_patch": {"n": 41}},
                    headers=bearer(CAROL))  # fmt: skip
        assert ok.status_code == 200, ok.text
        assert wait_terminal(c, eid)["current_state"]["n"] == 42
        assert decided(c, eid) == [("approved", "carol")]

        # alice, listed by id, may name herself in the body.
        again = paused_run(c)
        body = {"decision": "rejected", "user_id": "alice", "comment": "no\n\tthanks"}
        assert c.post(f"/executions/{again}/approve", json=body, headers=bearer(ALICE)).is_success
        assert decided(c, again) == [("rejected", "alice")]


def test_a_tokens_file_with_a_weak_or_shared_token_is_refused_at_start(tmp_path: Path) -> None:
    from tether.server.config import ConfigError, ServerConfig

    tokens = tmp_path / "tokens.txt"
    for text, why in [
        ("alice short-token\n", "at least 16"),
        (f"alice {ALICE}\nbob {ALICE}\n", "already given"),
        (f"ali\u202ece {ALICE}\n", "printable"),
        (f"alice {SHARED}\n", "TETHER_TOKEN itself"),
        (f"alice {ALICE} extra\n", "expected"),
    ]:
        tokens.write_text(text)
        env = {"TETHER_TOKEN": SHARED, "TETHER_TOKENS_FILE": str(tokens)}
        try:
            ServerConfig.from_env(env)
        except ConfigError as exc:
            assert why in str(exc) and ALICE not in str(exc), (text, exc)
        else:
            raise AssertionError(f"accepted {text!r}")
    # Named tokens alone guard an open bind like TETHER_TOKEN does.
    tokens.write_text(f"alice {ALICE}\n")
    config = ServerConfig.from_env({"TETHER_TOKENS_FILE": str(tokens), "TETHER_BIND": "0.0.0.0"})
    assert config.api_keys().required
