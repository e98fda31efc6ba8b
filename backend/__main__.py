"""``python -m xpml.backend``: print every backend and why it is or is not usable (as ``xpml backends``)."""

from . import list_backends


def main() -> None:
    for status in list_backends():
        print(status)


if __name__ == "__main__":
    main()
