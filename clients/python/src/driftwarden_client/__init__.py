"""driftwarden-client: the workflow side of driftwarden, with httpx as its only dependency.

``SwitchClient`` reads a workflow's kill switch (cached, fail-safe, never raises);
``EventSender`` sends runs, reviews and costs in the background (batched, retried,
bounded, flushed at exit, never raises).
"""

from driftwarden_client.events import CostFields, KpiFields, ReviewFields, RunFields
from driftwarden_client.sender import EventSender, SenderStats
from driftwarden_client.switch import Mode, SwitchClient, SwitchView
from driftwarden_client.timing import RunTimer

__all__ = [
    "CostFields",
    "EventSender",
    "KpiFields",
    "Mode",
    "ReviewFields",
    "RunFields",
    "RunTimer",
    "SenderStats",
    "SwitchClient",
    "SwitchView",
]
