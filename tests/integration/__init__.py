"""Integration tests: zag as a subprocess driving the stand-in agent."""
