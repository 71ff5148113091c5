"""Operations for the whole stack: settings, credentials, processes and the headless pipeline runner.

`make` targets call `python -m stackctl <command>`; DAGs and tests import the settings from here.
"""
