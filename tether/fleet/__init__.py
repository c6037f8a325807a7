"""The worker fleet's ZeroMQ transport: typed messages between the engine and its workers.

The engine runs a :class:`Broker` (ROUTER) and implements :class:`BrokerHandler`; each worker
process opens an :class:`EngineConnection` (DEALER). The transport moves the messages of
:mod:`tether.fleet.protocol` and reports peers joining and leaving; leases, fences and
scheduling belong to the scheduler above it.

Example::

    keys = EngineKeys.from_files("keys/engine.key_secret", "keys/workers")
    async with Broker("tcp://0.0.0.0:5555", scheduler, engine_id="eng-1", keys=keys) as broker:
        ...
    async with EngineConnection("tcp://engine:5555", worker_id="w1", queues=["default"],
                                capacity=8, tools=["add"]) as conn:
        async for msg in conn.messages():
            ...
"""

from tether.fleet.broker import Broker
from tether.fleet.connection import (
    EngineConnection,
    EngineUnreachable,
    HandshakeRefused,
    Reconnected,
)
from tether.fleet.handler import BrokerHandler, Peer
from tether.fleet.keys import EngineKeys, InsecureEndpoint, KeyFileError, WorkerKeys
from tether.fleet.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Cancel,
    Credit,
    EngineMessage,
    FrameError,
    Grant,
    Heartbeat,
    HeartbeatAck,
    Hello,
    LeaseRef,
    ProtocolError,
    RateLimited,
    Result,
    Welcome,
    WorkerMessage,
    decode_engine_message,
    decode_worker_message,
    encode,
)
from tether.fleet.transport import ZmqFleet

__all__ = [
    "PROTOCOL_VERSION",
    "Ack",
    "Broker",
    "BrokerHandler",
    "Bye",
    "Cancel",
    "Credit",
    "EngineConnection",
    "EngineKeys",
    "EngineMessage",
    "EngineUnreachable",
    "FrameError",
    "Grant",
    "HandshakeRefused",
    "Heartbeat",
    "HeartbeatAck",
    "Hello",
    "InsecureEndpoint",
    "KeyFileError",
    "LeaseRef",
    "Peer",
    "ProtocolError",
    "RateLimited",
    "Reconnected",
    "Result",
    "Welcome",
    "WorkerKeys",
    "WorkerMessage",
    "ZmqFleet",
    "decode_engine_message",
    "decode_worker_message",
    "encode",
]
