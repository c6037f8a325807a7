"""The bearer token on a real ``tether dev``: how it must be sent, and which tokens the
engine refuses to start with (I14 every peer is someone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from test_server_http import DEADLINE, EXAMPLES, running_engine

TOKEN = "a-token-of-24-characters"


def test_bearer_in_any_case_passes_and_two_headers_are_refused_I14(tmp_path: Path) -> None:
    with running_engine(tmp_path, {"TETHER_TOKEN": TOKEN}) as e, httpx.Client(base_url=e.url) as c:
        for scheme in ("Bearer", "bearer", "BEARER"):  # RFC 7235: one scheme, any case
            got = c.get("/executions", headers={"authorization": f"{scheme} {TOKEN}"})
            assert got.status_code == 200, (scheme, got.text)
        twice = c.get(
            "/executions",
            headers=[("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer other")],
        )
        assert twice.status_code == 401 and "one Authorization header" in twice.json()["error"]
        for header in ("Basic " + TOKEN, TOKEN, "Bearer", f"Bearer {TOKEN}x"):
            refused = c.get("/executions", headers={"authorization": header})
            assert refused.status_code == 401, header
            assert set(refused.json()) == {"error"}  # the API's own shape, no "detail"
            assert refused.headers["www-authenticate"].startswith("Bearer")
        assert c.get("/health").status_code == 200  # public


def test_a_token_shorter_than_16_characters_is_refused_at_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "dev"],
        env={**os.environ, "TETHER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
             "TETHER_TOKEN": "short-token-15c"},
        cwd=EXAMPLES, capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("tether dev: TETHER_TOKEN is 15 characters: use at least 16"), line
