"""Tether: durable execution for AI agents and workflows, built on the actor model."""
