"""`python -m zag` is the same as the `zag` console script."""

from zag.cli import main

if __name__ == "__main__":
    main()
