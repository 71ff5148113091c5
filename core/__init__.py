"""Foundation layer: small facts and helpers every other package of the stack may import.

`core` imports nothing of ours, only the standard library and third-party packages, so any
package (ingestion, quality, serving, governance, ml, stackctl, the DAGs) can depend on it
without an import cycle and without pulling Airflow in.
"""
