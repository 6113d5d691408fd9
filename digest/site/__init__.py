"""``digest publish``: the static site of the published editions (contract §7).

``editions`` decides which editions are published and when; ``index``, ``feed`` and ``sitemap``
write one file each; ``publish`` runs them into a temporary folder and swaps it into place.
Everything is a function of the content, ``digest.toml`` and the send ledger, never of the clock
(beyond the choice of what is published): the same content gives byte-identical files.
"""
