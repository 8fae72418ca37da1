"""`python -m sfbulk` is the `sfbulk` command."""

from sfbulk.cli import main

if __name__ == "__main__":  # guarded: spawned worker processes re-import the main module
    main()
