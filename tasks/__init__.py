"""Prefect layer: thin tasks over the library.

Every task persists its result as JSON (`result_serializer="json"`), never pickle, and returns plain JSON
values: an incident stays open for a day and an approval may wait for hours, so results written by one version
of the tool must load in the next after an upgrade. Tasks that always run again (NO_CACHE) persist nothing.
"""
