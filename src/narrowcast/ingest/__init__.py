"""Importers: customers and events from CSV / JSONL files, streaming."""

from narrowcast.ingest.customers import import_customers
from narrowcast.ingest.errors import ImportFailed, RowError, SourceError
from narrowcast.ingest.events import VOCABULARY, import_events
from narrowcast.ingest.runner import ImportOptions, ImportReport
from narrowcast.ingest.sources import Source, open_source

__all__ = [
    "VOCABULARY",
    "ImportFailed",
    "ImportOptions",
    "ImportReport",
    "RowError",
    "Source",
    "SourceError",
    "import_customers",
    "import_events",
    "open_source",
]
