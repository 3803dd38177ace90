"""Studies and benchmarks: the slow measurements behind the docs/ pages (never run by the tests,
never imported by the library). Each runs from the repository root as ``python -m studies.<name>``
and prints or writes what it measured and how."""
