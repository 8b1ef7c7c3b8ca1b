"""Simulated hardware, a fake clock, the city-hall model and the demo."""
