"""Answerers: build an answer to a question from retrieved chunks (and nothing else)."""
