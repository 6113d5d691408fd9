"""The curator's file: YAML with positions -> a validated :class:`Edition`."""

from digest.edition.model import Edition, Group, Highlight, Item, Link, Section

__all__ = ["Edition", "Group", "Highlight", "Item", "Link", "Section"]
