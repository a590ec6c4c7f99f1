"""Helpers for testing tinyllm (and code built on it): the strict CPU device."""
