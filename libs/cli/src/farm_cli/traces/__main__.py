"""`python -m farm_cli.traces`: the local trace sink (see sink.py)."""

from farm_cli.traces.sink import main

if __name__ == "__main__":
    main()
