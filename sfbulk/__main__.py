"""`python -m sfbulk` is the `sfbulk` command."""

from sfbulk.cli import main

main()
