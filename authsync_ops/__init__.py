"""authsync-ops: the operator's command line for a wecom-authsync stack (deployed, or the local one).

Not deployed (it is not in the layer): it runs where an operator has AWS credentials, and reads
the stack's resources from its CloudFormation outputs (``--stack``) or from ``make serve``'s first
JSON line (``--local``).
"""
