"""Operations for the whole stack: credentials, processes and the headless pipeline runner.

`make` targets call `python -m stackctl <command>`. Settings, `.env` handling and the other
foundations every package shares live in `core`.
"""
