"""The two-layer net and its training machinery (filled in by the nets issue)."""
