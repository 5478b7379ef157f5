"""Rampart: a security-first data platform reference (SNS -> SQS -> Lambda -> PostgreSQL -> keyed API)."""
