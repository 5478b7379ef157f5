"""Rampart: a security-first data platform reference (SNS -> SQS -> Lambda -> PostgreSQL -> keyed API)."""

__version__ = "0.1.0"
