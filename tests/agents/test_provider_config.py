"""Which provider a model goes to, the models section of a configuration, costs, and the
provider set that calls models under their concurrency caps."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from wires import KEY

from tether.agents.providers import (
    AnthropicClient,
    AzureOpenAIClient,
    CostTable,
    GeminiClient,
    ModelConfigError,
    ModelRequest,
    OpenAIClient,
    Price,
    ProviderSet,
    Usage,
    UserMessage,
    fallback_chain,
    make_client,
    parse_models,
    provider_for,
)
from tether.testing.fake_models import FakeModelServer, FakeReply, LoggedRequest

HI = (UserMessage("hi"),)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o-mini", "openai"), ("o3-mini", "openai"), ("o1", "openai"),
        ("o4-mini", "openai"), ("chatgpt-4o-latest", "openai"),
        ("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-flash", "gemini"),
    ],
)  # fmt: skip
def test_a_bare_model_name_resolves_by_family(model: str, provider: str) -> None:
    assert provider_for(model) == provider


def test_an_explicit_provider_wins_and_an_unknown_one_is_named() -> None:
    assert provider_for("gpt-4o-mini", "azure") == "azure"
    assert provider_for("llama3", "openai") == "openai"
    with pytest.raises(ModelConfigError, match="cannot tell the provider of model 'llama3'"):
        provider_for("llama3")
    with pytest.raises(ModelConfigError, match="unknown provider 'openia'"):
        provider_for("gpt-4o", "openia")


def test_clients_come_from_the_environment_given() -> None:
    env = {
        "OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a", "GEMINI_API_KEY": "g",
        "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com", "AZURE_OPENAI_API_KEY": "z",
    }  # fmt: skip
    kinds = {p: type(make_client(p, env)) for p in ("openai", "azure", "anthropic", "gemini")}
    assert kinds == {
        "openai": OpenAIClient, "azure": AzureOpenAIClient,
        "anthropic": AnthropicClient, "gemini": GeminiClient,
    }  # fmt: skip
    with pytest.raises(ModelConfigError, match="ANTHROPIC_API_KEY is not set"):
        make_client("anthropic", {})
    with pytest.raises(ModelConfigError, match="AZURE_OPENAI_ENDPOINT is not set"):
        make_client("azure", {"AZURE_OPENAI_API_KEY": "z"})


@pytest.mark.anyio
async def test_the_seam_url_sends_every_call_to_one_openai_endpoint() -> None:
    with FakeModelServer([FakeReply("a"), FakeReply("b")]) as srv:
        env = {"TETHER_MODEL_SEAM_URL": srv.openai_base_url}  # and no provider keys at all
        config = parse_models({"smart": {"provider": "anthropic", "model": "claude-sonnet-4-5"}})
        async with ProviderSet(config, env) as models:
            assert (await models.complete(ModelRequest("smart", HI))).text == "a"
            assert (await models.complete(ModelRequest("gemini-2.5-flash", HI))).text == "b"
    assert [(r.wire, r.model) for r in srv.requests] == [
        ("openai", "claude-sonnet-4-5"), ("openai", "gemini-2.5-flash")
    ]  # fmt: skip


SECTION: dict[str, Any] = {
    "fast": {"provider": "openai", "model": "gpt-4o-mini", "max_concurrency": 8},
    "smart": {"provider": "anthropic", "model": "claude-sonnet-4-5", "fallback": "fast"},
    "local": {"provider": "openai", "model": "llama3", "cost": {"input": 0.5, "output": 1}},
    "cheap": "gemini-2.5-flash",
}


def test_a_models_section_parses_into_specs_and_chains() -> None:
    config = parse_models(SECTION)
    fast = config.get("fast")
    assert fast is not None and (fast.provider, fast.max_concurrency) == ("openai", 8)
    cheap = config.get("cheap")
    assert cheap is not None and (cheap.provider, cheap.model) == ("gemini", "gemini-2.5-flash")
    assert [s.name for s in fallback_chain(config, "smart")] == ["smart", "fast"]
    local = config.get("local")
    assert local is not None and local.cost == Price(0.5, 1.0)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ([], "models: expected a mapping of model names, got list"),
        ({"a": 3}, "models.a: expected a mapping or a model name, got int 3"),
        ({"a": {"model": "gpt-4o", "temprature": 1}}, "models.a: unknown field 'temprature'"),
        ({"a": {"provider": "openai"}}, "models.a.model: expected a model name, got nothing"),
        ({"a": {"model": "llama3"}}, "models.a.model: cannot tell the provider of model"),
        ({"a": {"model": "x", "provider": "bedrock"}}, "models.a.provider: unknown provider"),
        ({"a": {"model": "gpt-4o", "max_concurrency": 0}}, "models.a.max_concurrency: expected"),
        ({"a": {"model": "gpt-4o", "fallback": "b"}}, "models.a.fallback: 'b' is not a model"),
        ({"a": {"model": "gpt-4o", "fallback": "b"}, "b": {"model": "o3", "fallback": "a"}},
         "models.a.fallback: falls back in a loop: a -> b -> a"),
        ({"a": {"model": "gpt-4o", "cost": {"input": 1}}}, "models.a.cost: expected {input"),
        ({"a": {"model": "gpt-4o", "cost": {"input": -1, "output": 1}}},
         "models.a.cost.input: expected US dollars"),
    ],
)  # fmt: skip
def test_a_bad_models_section_names_the_bad_field(section: Any, message: str) -> None:
    with pytest.raises(ModelConfigError) as caught:
        parse_models(section)
    assert str(caught.value).startswith(message), str(caught.value)


def test_cost_from_the_table_and_unknown_models_are_flagged_not_guessed() -> None:
    table = CostTable()
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    assert table.cost("gpt-4o-mini", usage).cost_usd == pytest.approx(0.15 + 0.06)
    dated = table.cost("claude-sonnet-4-5-20250929", usage)
    assert dated.known and dated.cost_usd == pytest.approx(3.0 + 1.5)
    for unknown in ("llama3", "gpt-4o-audio-preview"):
        cost = table.cost(unknown, usage)
        assert (cost.cost_usd, cost.known) == (0.0, False)
    custom = CostTable(overrides={"llama3": Price(1.0, 2.0)})
    assert custom.cost("llama3", usage).cost_usd == pytest.approx(1.2)


@pytest.mark.anyio
async def test_a_provider_set_calls_by_alias_prices_by_config_and_caps_concurrency() -> None:
    most = 0  # the most calls of "one" in flight at once, as its limiter counts them

    def answer(request: LoggedRequest) -> FakeReply:
        return FakeReply("ok", input_tokens=1_000_000, output_tokens=0, delay_secs=0.05)

    with FakeModelServer(answer, api_key=KEY) as srv:
        section = {"one": {"model": "gpt-4o-mini", "max_concurrency": 2}, **SECTION}
        async with ProviderSet(parse_models(section), srv.env(KEY)) as models:
            limiter = models.limiter("one")
            assert limiter is not None and limiter.total_tokens == 2

            async def call() -> None:
                await models.complete(ModelRequest("one", HI))

            async def watch() -> None:
                nonlocal most
                for _ in range(40):
                    most = max(most, limiter.borrowed_tokens)
                    await anyio.sleep(0.005)

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                for _ in range(6):
                    tg.start_soon(call)
            reply = await models.complete(ModelRequest("local", HI))
            assert models.cost("local", reply).cost_usd == pytest.approx(0.5)
            assert [s.name for s in models.chain("smart")] == ["smart", "fast"]
    assert most == 2
    assert [r.model for r in srv.requests] == ["gpt-4o-mini"] * 6 + ["llama3"]


def test_a_provider_set_refuses_a_configured_model_without_its_key() -> None:
    with pytest.raises(ModelConfigError, match="ANTHROPIC_API_KEY is not set"):
        ProviderSet(parse_models(SECTION), {"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g"})
