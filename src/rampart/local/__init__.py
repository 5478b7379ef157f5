"""The whole system on one machine: the real handlers, with only their AWS surroundings emulated.

- :mod:`rampart.local.postgres`: the embedded PostgreSQL (RDS).
- :mod:`rampart.local.aws`: a moto server on loopback with the topic, queues and key (SNS, SQS, KMS).
- :mod:`rampart.local.esm`: the Lambda event source mapping for the ingest handler.
- :mod:`rampart.local.gateway`: API Gateway (REST, API keys, usage plan) in front of the API handler.
- :mod:`rampart.local.stack`: starts and stops all of it; :mod:`rampart.local.state` lets the CLI find it.
"""
