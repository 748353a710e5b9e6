"""`python -m cli`: the same as the `qualflow` command."""

from cli.app import main

main()
