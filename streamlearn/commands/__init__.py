"""The `streamlearn` command line and what each command does (`cli.py` is the entry point)."""
