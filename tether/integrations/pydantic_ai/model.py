"""A Pydantic AI model whose requests are durable steps when made in a Tether workflow.

The request (messages, settings, parameters) is journaled as JSON data before it is sent and
the response after it comes back, by the agent's ``{name}.model_request`` step: on replay the
recorded response is returned and the provider is not called again. Outside a workflow body
the model is the wrapped one.

Example::

    request = model_request_step("support", OpenAIChatModel("gpt-4o"))
    model = TetherModel(OpenAIChatModel("gpt-4o"), request)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import (
    CompletedStreamedResponse,
    Model,
    ModelRequestParameters,
    StreamedResponse,
)
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext

from tether.integrations.pydantic_ai import codec
from tether.integrations.pydantic_ai.scope import advance_clock
from tether.runtime.code_first.calls import current_driver
from tether.runtime.code_first.decorators import Step, step


def model_request_step(agent_name: str, model: Model, **options: Any) -> Step:
    """The step ``{agent_name}.model_request``: one request to ``model``, JSON in and out.

    ``options`` are :func:`tether.step`'s (``retry``, ``timeout``).
    """

    async def model_request(
        messages: list[Any], settings: dict[str, Any] | None, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        response = await model.request(
            codec.load_messages(messages),
            codec.load_settings(settings),
            codec.load_parameters(parameters),
        )
        return codec.dump_response(response)

    return step(name=f"{agent_name}.model_request", **options)(model_request)


class TetherModel(WrapperModel):
    """Sends each request through its step when called inside a workflow body."""

    def __init__(self, wrapped: Model, request_step: Step) -> None:
        super().__init__(wrapped)
        self._request_step = request_step

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        if current_driver() is None:
            return await super().request(messages, model_settings, model_request_parameters)
        payload = await self._request_step(
            messages=codec.dump_messages(messages),
            settings=codec.dump_settings(model_settings),
            parameters=codec.dump_parameters(model_request_parameters),
        )
        response = codec.load_response(payload)
        advance_clock(response.timestamp)  # journaled: the run's next stamps replay the same
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        if current_driver() is None:
            async with super().request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as streamed:
                yield streamed
            return
        # A stream cannot be replayed part by part: the whole response is the step's result,
        # and its parts are handed to the stream's reader as events once it is journaled.
        response = await self.request(messages, model_settings, model_request_parameters)
        yield CompletedStreamedResponse(
            response, model_request_parameters=model_request_parameters, replay_events=True
        )
