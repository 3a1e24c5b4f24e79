"""Reverse-ETL flows: what to write to which system, when, planned from the canonical model and the outbox's
own history (see docs/flows.md). :mod:`revloop.cycle` runs them."""

from revloop.flows.base import FieldChange, FlowConfig, FlowContext, FlowPlan, Hold, PlannedWrite
from revloop.flows.registry import FLOWS, MODELS, STAGES

__all__ = ["FLOWS", "MODELS", "STAGES", "FieldChange", "FlowConfig", "FlowContext", "FlowPlan", "Hold",
           "PlannedWrite"]
