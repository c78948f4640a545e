"""`python -m hybridbatch` runs the command line."""

from hybridbatch.cli import main

main()
