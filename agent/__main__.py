"""`python -m agent` runs the nasagent CLI."""

from agent.cli import main

main()
