"""Deterministic workflow classes; the control worker registers `WORKFLOWS`."""

from workflows.gameserver import GameServerWorkflow

WORKFLOWS = [GameServerWorkflow]
