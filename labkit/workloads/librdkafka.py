"""The librdkafka shared library that confluent-kafka bundles, opened with ctypes.

Two things the Python client does not expose need it: destroying a consumer without
leaving its group (``consumer.abandon``, a crash) and reading a setting's default
(``producer.setting_in_effect``).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os


@functools.cache
def library() -> ctypes.CDLL:
    """The bundled librdkafka, with the argument types labkit's calls need declared.

    Raises:
        RuntimeError: confluent-kafka's bundled library is not where its wheels put it.
    """
    import confluent_kafka

    base = os.path.dirname(confluent_kafka.__file__)
    found = glob.glob(base + ".libs/librdkafka*.so*") + glob.glob(base + "/.dylibs/librdkafka*")
    if not found:
        raise RuntimeError("cannot find the librdkafka library bundled with confluent-kafka")
    lib = ctypes.CDLL(found[0])
    lib.rd_kafka_destroy_flags.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib
