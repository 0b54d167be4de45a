"""Timed jobs on APScheduler, fired exactly once per scheduled run across every process."""
