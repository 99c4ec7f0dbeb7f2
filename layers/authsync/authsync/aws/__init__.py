"""The adapters: the only modules that talk to AWS (Secrets Manager, DynamoDB, SQS contracts).

Empty on purpose: importing the package imports nothing (cold start).
"""
