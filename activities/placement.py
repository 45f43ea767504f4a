"""Control activity that places a server on a node (the choice itself: core/placement.py)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts import SelectNodeInput, SelectNodeResult
from core.placement import Placement


class PlacementActivities(Placement):
    @activity.defn(name="select_node")
    async def select_node(self, input: SelectNodeInput) -> SelectNodeResult:
        """Least-loaded live, schedulable node whose labels match; `NoCapacity` when none fits."""
        node_id = await self.choose(input)
        if node_id is None:
            raise ApplicationError(
                f"no online node matches {input.node_selector or 'any labels'} with room for the server",
                type="NoCapacity", non_retryable=True)
        return SelectNodeResult(node_id=node_id)
