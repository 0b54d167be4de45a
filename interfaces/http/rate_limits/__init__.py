"""Rate limits on every API route and concurrency slots for auditor reads (decision 0016)."""
