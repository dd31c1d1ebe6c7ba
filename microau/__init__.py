"""The `microau` command line.

It lives outside `microau_hf` on purpose: importing `microau_hf` registers the model with transformers' Auto classes,
which imports torch (seconds). This package parses and checks the arguments with the standard library only, so
`microau --help` and a mistyped path answer at once, and imports `microau_hf` only to run a command.
"""
