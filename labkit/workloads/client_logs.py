"""librdkafka's debug log of one client, captured to a file.

Capturing (``capture``) is opt-in and off by default: a client with ``debug`` contexts such
as ``eos,msg,protocol,broker`` logs thousands of lines a second. The client hands its lines
to a Python ``logging.Logger`` (confluent-kafka's ``logger`` config key); they are served
by the application's ``poll()``/``flush()``, so each line is stamped with the wall time it
was served, which trails the moment librdkafka wrote it by at most the time between two
polls.

A captured file has one line per log line::

    <wall, epoch seconds> <level> <facility> [<client name>] [thrd:<thread>]: <text>

``labkit.analysis.logs`` reads it back (``read_log``) and keeps the lines around given
moments (``lines_around``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator

DEBUG_CONTEXTS = "eos,msg,protocol,broker"
"""The debug contexts captured by default: idempotence state, message batches and their
fate, every request and response, broker connections."""

class _Stamped(logging.Formatter):
    """The capture's line format.

    Wall time to the microsecond, level, then the client's ``"%s [%s] %s"`` (facility,
    client name, text).
    """

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().replace("\n", " ")
        return f"{record.created:.6f} {record.levelname} {text}"


@contextlib.contextmanager
def capture(path: str | os.PathLike, name: str = "labkit.librdkafka.capture"
            ) -> Iterator[logging.Logger]:
    """A logger that writes every line it gets to ``path``, for a client's ``logger`` key.

    A context manager: the file is closed on leaving. The logger is not registered with
    ``logging`` (no global state, no propagation to the lab's handlers), so captures of
    parallel clients never mix.

    Example::

        with capture("producer.log") as logger:
            producer = Producer({..., "debug": DEBUG_CONTEXTS, "logger": logger})
            ...

    Args:
        path: the file to write (truncated first).
        name: the logger's name (shown nowhere in the file).

    Yields:
        The ``logging.Logger``.
    """
    logger = logging.Logger(name, logging.DEBUG)
    handler = logging.FileHandler(os.fspath(path), mode="w", encoding="utf-8")
    handler.setFormatter(_Stamped())
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def file_for(directory: str | os.PathLike, label: str, prefix: str = "") -> str:
    """The capture file of the client labelled ``label`` under ``directory``.

    Args:
        directory: where an experiment keeps its clients' logs.
        label: the client's label, e.g. "acks=all + idempotence" (made file-name safe).
        prefix: put before the name, e.g. "run2-" for one of several runs.
    """
    return os.path.join(directory, prefix + re.sub(r"[^a-z0-9]+", "-", label.lower()) + ".log")
