"""`python -m gateway` is the `mediahub` command."""

from gateway.cli import main

main()
