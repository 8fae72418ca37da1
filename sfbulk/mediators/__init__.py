"""Mediators: one small class per Synapse mediator, shared by every config front-end."""
