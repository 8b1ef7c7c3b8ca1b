"""Tests of the rooms service."""
