"""How this xpml was installed, so that every install hint names a command that works here.

A checkout installed in editable mode (``pip install -e .``) takes ``pip install -e '<checkout>[extra]'``
(``.`` when run from the checkout); an installed wheel takes ``pip install 'xpml[extra]'``.
"""

from __future__ import annotations

import functools
import json
import os

__all__ = ["checkout", "install_hint"]


@functools.cache
def checkout() -> str | None:
    """The folder of the checkout xpml is installed from in editable mode; None for a wheel install."""
    from importlib import metadata

    # The first installed distribution that says where it came from: a checkout's own xpml.egg-info,
    # found first when run from the checkout, records nothing.
    info = {}
    for dist in metadata.distributions(name="xpml"):
        try:
            text = dist.read_text("direct_url.json")
            info = json.loads(text) if text else {}
        except (ValueError, OSError):
            continue
        if info:
            break
    url = info.get("url", "") if isinstance(info, dict) else ""
    if not (info.get("dir_info") or {}).get("editable") or not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


def install_hint(extra: str) -> str:
    """The pip command adding the optional dependencies ``extra`` (``"scripts"``, ``"torch"``, ...)."""
    root = checkout()
    if root is None:
        return f"pip install 'xpml[{extra}]'"
    here = os.path.realpath(os.getcwd()) == os.path.realpath(root)
    return f"pip install -e '{'.' if here else root}[{extra}]'"
