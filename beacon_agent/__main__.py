"""`python -m beacon_agent` is `beacon-agent`."""

from beacon_agent.cli import main

if __name__ == "__main__":
    main()
