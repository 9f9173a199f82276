"""The only code that calls the Kubernetes API (Secrets, workloads, Events, status).

Called by the kopf controllers and the CLI.
"""
