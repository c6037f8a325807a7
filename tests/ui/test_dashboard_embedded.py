"""The dashboard of an embedded runtime: a service that opens ``tether.Runtime`` itself and
serves ``create_app(rt, config, open_runtime=False)`` with uvicorn in its own process gets
the same ``/ui``, showing the runs its own code started (real Chromium, real HTTP on
loopback; the service runs in a thread with its own event loop, as a service's would)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from test_dashboard_browser import ARGS, CHROMIUM, SHOWN_MS, shot, sync_api
from ui_engine import FLOWS, free_port
from ui_tools import add_one

from tether import Runtime
from tether.ir import compile_yaml_text
from tether.server import ServerConfig, create_app


class EmbeddedService:
    """A service's process in miniature: its runtime, its code starting a run, the app."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = f"sqlite:///{tmp / 'service.db'}"
        self.ready = threading.Event()
        self.server: uvicorn.Server | None = None
        self.run_id = ""
        self.failure: BaseException | None = None

    def serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # the test reports it instead of hanging
            self.failure = exc
            self.ready.set()

    async def _main(self) -> None:
        async with Runtime(self.db, tools=[add_one]) as rt:
            wf = rt.register(compile_yaml_text(FLOWS["pay"], "pay.yaml"))
            self.run_id = (await rt.start(wf, {"n": 1}, execution_id="service-run")).id
            config = ServerConfig(port=self.port)
            app = create_app(rt, config, open_runtime=False)
            self.server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                               lifespan="on")
            )  # fmt: skip
            serving = asyncio.create_task(self.server.serve())
            while not self.server.started:
                await asyncio.sleep(0.01)
            self.ready.set()
            await serving


@pytest.fixture
def service(tmp_path: Path) -> Iterator[EmbeddedService]:
    svc = EmbeddedService(tmp_path)
    thread = threading.Thread(target=svc.serve, daemon=True)
    thread.start()
    assert svc.ready.wait(30) and svc.failure is None, svc.failure
    yield svc
    assert svc.server is not None
    svc.server.should_exit = True
    thread.join(30)


def test_a_service_serves_the_same_dashboard(service: EmbeddedService) -> None:
    with sync_api.sync_playwright() as p:
        browser: Any = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 720})
            tab.set_default_timeout(SHOWN_MS)
            tab.goto(f"{service.url}/ui")
            tab.wait_for_selector("#runs tr[data-id='service-run'] [data-status='paused']")
            tab.click("#runs tr[data-id='service-run'] a")
            tab.wait_for_selector(".tl-row[data-kind='approval'][data-outcome='waiting']")
            shot(tab, "11-embedded-service")
        finally:
            browser.close()
