"""The runner part: findings, run sizes, the report and the command line.

``findings`` (checked findings and observations), ``profiles`` (run sizes), ``report`` (every
notebook headlessly, the report and the stability table), ``contact_sheet`` (every chart of
the series on one page, ``figures.html``), ``cli`` (``python -m labkit``).
"""
