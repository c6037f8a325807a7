"""Agent-to-agent delegation over the A2A protocol (0.3, JSON-RPC): the cards an engine
publishes, the task methods it answers, and the ``a2a_task`` node that delegates to a remote
agent (another Tether engine, or any A2A server).

Example::

    nodes:
      delegate: {type: a2a_task, remote_agent: "http://10.0.0.7:7700", skill: research,
                 input: {query: $query}, output_key: findings, next: end}
"""
