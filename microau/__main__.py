"""`python -m microau ...`: the same as the `microau` command."""

from microau.cli import console

console()
