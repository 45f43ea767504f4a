"""Deterministic workflow classes; the control worker registers `WORKFLOWS`."""

from workflows.fleet import FleetWorkflow  # issue #10
from workflows.gameserver import GameServerWorkflow
from workflows.generation import ModelGenerationWorkflow, TripoSlotsWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.webhooks import PlatformSweepWorkflow, WebhookDeliveryWorkflow

WORKFLOWS = [GameServerWorkflow, PipelineWorkflow, ModelGenerationWorkflow, TripoSlotsWorkflow,
             WebhookDeliveryWorkflow, PlatformSweepWorkflow, FleetWorkflow]
