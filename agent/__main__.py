"""`python -m agent` runs the nasagent CLI."""

from nasagent.agent.cli import main

main()
