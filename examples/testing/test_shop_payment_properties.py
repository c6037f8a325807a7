"""A payment workflow's property test: crashed at every journal position, it recovers, the
customer is charged once, and the receipt goes out. Copy it for your own workflow.

    python -m pytest examples/testing -q
"""

from pathlib import Path

import pytest
from shop_tools import BANK, charge_card, reserve_funds, send_receipt

from tether.testing import finish

PAYMENT = Path(__file__).with_name("payment.yaml")


@pytest.mark.tether(tools=[reserve_funds, charge_card, send_receipt], workflows=[PAYMENT])
@pytest.mark.tether_crash_points  # once uncut, then once per journal position, crashed there
async def test_payment_charges_once_whatever_the_crash(tether_runtime, virtual_clock):
    BANK.reset()  # the body runs once per position: the bank starts empty each time
    run = await tether_runtime.start("payment", {"amount": 50})
    state = await finish(tether_runtime, run.id, virtual_clock)  # the 1 h wait takes no time
    assert state.status == "completed" and state.data["charged"] is True
    assert list(BANK.charged.values()) == [50]  # charged once
    crash = tether_runtime.crash
    charge_in_flight = crash is not None and f"{run.id}/charge/1" in crash.in_flight_at_crash
    # The charge tool ran twice only when the crash caught it in flight (at-least-once);
    # the idempotency key kept that to one charge.
    assert max(BANK.calls.values()) == (2 if charge_in_flight else 1)
