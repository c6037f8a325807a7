"""Code-first workflows: an async function is a durable workflow, its ``@step`` calls steps.

The body runs on a deterministic loop driven by its execution's turns; each durable call is
journaled at its position and answered from the journal on replay; a replay that calls
something else stops the run with a :class:`NondeterminismError` (I8). See
``tether.runtime.code_first.decorators`` for ``@workflow``/``@step`` and
``tether.runtime.code_first.context`` for ``ctx``.

Example::

    from tether import Runtime, step, workflow

    @step
    async def fetch(url: str) -> str: ...

    @workflow(id="pipeline")
    async def pipeline(ctx, data: dict) -> str:
        return await fetch(data["url"])
"""
