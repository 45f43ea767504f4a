"""Deterministic workflow classes; the control worker registers `WORKFLOWS`."""

from workflows.gameserver import GameServerWorkflow
from workflows.pipeline import PipelineWorkflow

WORKFLOWS = [GameServerWorkflow, PipelineWorkflow]
