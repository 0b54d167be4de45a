"""Fetching a URL a user names, without letting it reach our own network (SSRF)."""
