"""Worker logs: readable on a terminal, JSON lines for machines.

Lines about a message carry ``campaign``, ``run``, ``outbox_id`` and
``channel`` as fields (``extra=…``); no line carries a message body or a full
email address, so logs can go to any log system.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(format_: str = "text", level: int = logging.INFO) -> None:
    """Send narrowcast's logs to stderr as ``text`` or ``json`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    if format_ == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger("narrowcast")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
