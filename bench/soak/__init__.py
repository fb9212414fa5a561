"""Soak the HED connector: faults, crash-and-resume, churn, drift, bad input, secret leaks.

Why: the unit and e2e tests prove each behaviour once on small data. The soak runs the
real `fivetran debug` against the in-process HED simulator (loopback) under sustained abuse
and proves with figures that can fail that no row is lost, stale or wrong and that the API
key never leaks. It prints counts and column names only, never a record's values.

    python -m bench.soak              # full run (tens of minutes)
    python -m bench.soak --quick      # bounded run that CI drives through tests/test_soak.py
    python -m bench.soak --self-test  # only the checker's planted-defect self-test

Modules: one per phase (selftest, fault_soak, crash, churn, drift, bad_input,
secret_scan), the shared checker (checker), the CLI plumbing (harness), the figures and
their table (results), sizes (settings) and the entry point (cli). Exit code 0 only if
every gating figure is zero and every check held.
"""
