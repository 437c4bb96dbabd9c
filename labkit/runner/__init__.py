"""The runner part: findings, run sizes, the report and the command line.

``findings`` (checked findings and observations), ``profiles`` (run sizes), ``report`` (every
notebook headlessly, the report and the stability table), ``cli`` (``python -m labkit``).
"""
