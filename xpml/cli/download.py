"""Download CIFAR-10's python archive, check its MD5 and unpack it into the data cache.

    xpml download                  # into ~/.cache/xpml/cifar-10-batches-py
    xpml download --data-dir data  # into data/cifar-10-batches-py

A dataset that is already there is not fetched again (``--force`` does). An interrupted or
corrupt download leaves nothing behind that loads as a dataset. Two downloads into one directory
take turns: the second waits for the first and then finds the dataset there.
"""

from __future__ import annotations

import sys

from . import _cli
from ._download import CIFAR10_MD5, CIFAR10_URL, default_data_dir, fetch_cifar10, find_cifar10
from ._progress import Progress


def add_download_arguments(parser) -> None:
    """The flags of a download, shared with ``train.py --download``."""
    g = parser.add_argument_group("CIFAR-10 download")
    g.add_argument("--data-dir", metavar="DIR",
                   help=f"cache directory for datasets (default: $XPML_DATA_DIR, else {default_data_dir()})")
    g.add_argument("--url", default=CIFAR10_URL, help="where the archive is (default: the official one)")
    g.add_argument("--md5", default=CIFAR10_MD5, help="expected MD5 of the archive (default: the published one)")
    g.add_argument("--timeout", type=_cli.positive, default=60.0, metavar="S",
                   help="seconds without data before giving up (default: 60)")


def download(args, *, force: bool = False) -> str:
    """Run the download the parsed ``args`` describe; return the dataset directory."""
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    already = find_cifar10(data_dir)
    def note(message):
        if not args.quiet:
            print(f"note: {message}", file=sys.stderr, flush=True)

    path = fetch_cifar10(data_dir, url=args.url, md5=args.md5, force=force, timeout=args.timeout,
                         progress=Progress(quiet=args.quiet), on_wait=note)
    if not args.quiet:
        state = "already present" if already == path and not force else "downloaded and checked"
        print(f"CIFAR-10 {state}: {path}", file=sys.stderr)
    return str(path)


def _main(argv) -> int:
    parser = _cli.ArgumentParser(prog="xpml download", description=__doc__.split("\n\n")[0])
    add_download_arguments(parser)
    parser.add_argument("--force", action="store_true", help="download again even if the dataset is there")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    args = parser.parse_args(argv)
    print(download(args, force=args.force))
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
