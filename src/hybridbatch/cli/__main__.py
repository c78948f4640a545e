"""`python -m hybridbatch.cli` runs the command line."""

from hybridbatch.cli import main

main()
