"""Fakes and builders shared by every test suite: one copy of each, so they cannot drift apart.

clocks: the Clock fakes; secrets: the SecretSource fake; contexts: command contexts;
apps: applications on memory or on a test database, and org seeding; catch_up: running
projections (and reactors) to the head of the log; tables: reading the database back;
stored: reading what an in-memory application stored; sse: parsing a server-sent event
stream; reactors: a reactor of the tests' own, with a fake mail relay.
"""
