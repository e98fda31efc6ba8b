"""``python -m backend``: print every backend and why it is or is not usable."""

from . import list_backends


def main() -> None:
    for status in list_backends():
        print(status)


if __name__ == "__main__":
    main()
