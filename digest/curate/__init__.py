"""The curator's month (contract §8): start the next edition (:mod:`.new`), collect links into
it (:mod:`.add`: fetch pages and arXiv records, append items with round-trip YAML edits) and
check its links (:mod:`.links`). A room beside the send flow: nothing here sends."""
