"""The test suite (a package, so that `tests` is this folder even where IPython 7 puts its own `tests` on sys.path)."""
