# The anybench pytest plugin serves both tests/ and benchmarks/: runtime selection and recording.
pytest_plugins = ["anybench.pytest_plugin"]
