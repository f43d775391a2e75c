"""The mongo-sidecar benchmark: `make bench`, or `PYTHONPATH=tests python -m bench [--quick]`.

Measures the real sidecar binary against a real FerretDB (the test harness), prints a readable
report and writes it as JSON to .tools/bench/results.json. It never fails because a figure is
slow: goals are printed next to the figures, not enforced. See README.md beside this file.
"""
