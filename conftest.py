# The anybench pytest plugin serves tests/ and the scenarios (pytest --scenarios scenarios/)
# through its pytest11 entry point (pyproject.toml), as it serves any project that installs
# anybench: not listed here, or it would be registered twice.
