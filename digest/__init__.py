"""digest: email digests as code.

The data flows down the package: ``edition`` (the curator's YAML -> model) -> ``render`` (model ->
HTML + text, once per edition) -> ``send`` (rendered edition + subscriber -> one message) ->
``backends`` (where messages go) -> ``ledger`` (who has been sent what).
"""

__version__ = "0.1.0"
