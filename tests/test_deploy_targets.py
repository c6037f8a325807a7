"""Where ``deploy(runtime=...)`` points, read from the environment as documented; a named
remote leg without its URL is an error naming the variable, never the local engine."""

from __future__ import annotations

import pytest

from tether import DeployError, deploy
from tether.deployment import Target, resolve_target


@pytest.mark.parametrize(
    ("runtime", "env", "token", "expected"),
    [
        (None, {}, None, Target("local", "http://127.0.0.1:7700", None, "TETHER_TOKEN")),
        ("local", {"TETHER_PORT": "17700", "TETHER_TOKEN": "t" * 16}, None,
         Target("local", "http://127.0.0.1:17700", "t" * 16, "TETHER_TOKEN")),
        ("local", {"TETHER_BIND": "0.0.0.0"}, None,
         Target("local", "http://127.0.0.1:7700", None, "TETHER_TOKEN")),
        ("local", {"TETHER_BIND": "::1", "TETHER_PORT": "8"}, "given",
         Target("local", "http://[::1]:8", "given", "TETHER_TOKEN")),
        ("self-host", {"TETHER_RUNTIME_URL": "http://10.0.0.5:7700/",
                       "TETHER_RUNTIME_TOKEN": "s" * 16}, None,
         Target("self-host", "http://10.0.0.5:7700", "s" * 16, "TETHER_RUNTIME_TOKEN")),
        ("cloud", {"TETHER_CLOUD_URL": "https://tether.example.com",
                   "TETHER_CLOUD_TOKEN": "c" * 16}, "given",
         Target("cloud", "https://tether.example.com", "given", "TETHER_CLOUD_TOKEN")),
        ("https://engine.example.com/", {"TETHER_TOKEN": "u" * 16}, None,
         Target("url", "https://engine.example.com", "u" * 16, "TETHER_TOKEN")),
    ],
)  # fmt: skip
def test_each_leg_reads_its_own_variables(
    runtime: str | None, env: dict[str, str], token: str | None, expected: Target
) -> None:
    assert resolve_target(runtime, token, env) == expected


@pytest.mark.parametrize(
    ("runtime", "variable"), [("self-host", "TETHER_RUNTIME_URL"), ("cloud", "TETHER_CLOUD_URL")]
)
def test_a_named_leg_without_its_url_says_which_variable_to_set(
    runtime: str, variable: str
) -> None:
    local = {"TETHER_PORT": "7700", "TETHER_TOKEN": "t" * 16, "TETHER_ENGINE_URL": "http://x"}
    with pytest.raises(DeployError, match=f"set {variable} to the engine's URL") as err:
        deploy("no-such-file.yaml", runtime=runtime, env=local)  # refused before the file
    assert err.value.status is None


def test_cloud_takes_only_https_and_an_unknown_leg_is_refused() -> None:
    with pytest.raises(DeployError, match="TETHER_CLOUD_URL must be an https:// URL"):
        resolve_target("cloud", None, {"TETHER_CLOUD_URL": "http://tether.example.com"})
    with pytest.raises(DeployError, match="'local', 'self-host', 'cloud' or an http"):
        resolve_target("prod", None, {})
